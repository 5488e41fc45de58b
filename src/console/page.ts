/**
 * The console's page and stylesheet, served as they are: the page holds no data (the script
 * fetches it with the operator's token), so it is the same for everyone and needs no escaping.
 */
export const CONSOLE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ff-detector console</title>
<link rel="stylesheet" href="/console/console.css">
<script type="module" src="/console/app.js"></script>
</head>
<body>
<header>
  <h1>ff-detector</h1>
  <p id="connection">connecting…</p>
  <form id="token-form" autocomplete="off">
    <label for="token">Admin token</label>
    <input id="token" type="password" autocomplete="off" spellcheck="false">
    <button type="submit" id="use-token">Use token</button>
    <button type="button" id="forget-token">Forget</button>
    <span id="token-state"></span>
  </form>
</header>
<p id="notice" role="status" aria-live="polite"></p>
<main>
  <section>
    <h2>Replicas</h2>
    <p id="leader"></p>
    <div id="replicas"></div>
  </section>
  <section>
    <h2>Current run</h2>
    <p id="run-state"></p>
    <progress id="run-progress" max="1" value="0"></progress>
    <p id="run-figures"></p>
    <button type="button" id="start-run">Start a run</button>
    <button type="button" id="cancel-run">Cancel the run</button>
  </section>
  <section class="wide">
    <h2>Last runs</h2>
    <div id="runs-chart"></div>
    <div id="runs-table" class="scroll"></div>
  </section>
  <section>
    <h2>Backfill</h2>
    <p id="backfill-state"></p>
    <progress id="backfill-progress" max="1" value="0"></progress>
    <form id="backfill-form">
      <label for="backfill-ids">User IDs (one per line, or separated by commas)</label>
      <textarea id="backfill-ids" rows="4" spellcheck="false"></textarea>
      <label for="backfill-uri">or a user file in S3</label>
      <input id="backfill-uri" type="text" placeholder="s3://bucket/users.txt" spellcheck="false">
      <button type="submit" id="start-backfill">Start a backfill</button>
    </form>
    <button type="button" id="cancel-backfill">Cancel the backfill</button>
    <button type="button" id="resume-backfill">Resume</button>
  </section>
  <section>
    <h2>Safety</h2>
    <dl>
      <dt>Known set</dt><dd><span id="known-users">–</span> users</dd>
      <dt>Sending</dt><dd id="sending-paused"></dd>
      <dt>Guards</dt><dd id="guard-state"></dd>
    </dl>
    <button type="button" id="release-guard" disabled>Release the held guard</button>
    <h3>Lag gate, last reading</h3>
    <div id="lag-gate"></div>
  </section>
  <section id="feeds-section" class="wide" hidden>
    <h2>Feeds</h2>
    <div id="feeds" class="scroll"></div>
  </section>
</main>
</body>
</html>
`;

export const CONSOLE_CSS = `:root { color-scheme: light dark; --ok: #2e7d32; --warn: #b26a00; --bad: #c62828; --muted: #777; --line: #8884; font: 14px/1.4 system-ui, sans-serif; }
body { margin: 0 auto; max-width: 1200px; padding: 0 16px 32px; }
header { display: flex; flex-wrap: wrap; align-items: baseline; gap: 8px 24px; border-bottom: 1px solid var(--line); }
h1 { font-size: 20px; margin: 12px 0; }
h2 { font-size: 16px; margin: 0 0 8px; }
h3 { font-size: 14px; margin: 12px 0 4px; }
#connection, #token-state, #leader { color: var(--muted); }
#token-form { display: flex; gap: 6px; align-items: center; margin-left: auto; }
main { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 16px; margin-top: 12px; }
section { border: 1px solid var(--line); border-radius: 6px; padding: 12px; min-width: 0; }
section.wide { grid-column: 1 / -1; }
.scroll { overflow-x: auto; }
progress { width: 100%; height: 18px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 3px 8px 3px 0; border-bottom: 1px solid var(--line); white-space: nowrap; }
td:last-child { white-space: normal; }
textarea, input[type=text] { width: 100%; box-sizing: border-box; font-family: ui-monospace, monospace; }
label { display: block; margin-top: 6px; }
#token-form label { display: inline; margin: 0; }
button { margin: 8px 6px 0 0; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 4px 12px; margin: 0; }
dd { margin: 0; }
#notice { min-height: 1.4em; margin: 8px 0 0; }
#notice.error { color: var(--bad); font-weight: 600; }
.role-leader, .status-ok { color: var(--ok); }
.status-failed, .status-degraded, .status-cancelled { color: var(--bad); }
.status-held, .status-partial, .status-deferred, .status-cancelling, .status-interrupted { color: var(--warn); }
.chart { width: 100%; height: auto; max-height: 260px; }
.chart .axis { font-size: 11px; fill: var(--muted); }
.chart .axis-line { stroke: var(--line); }
.chart .hit { fill: transparent; }
.chart .hit:hover { fill: #8882; }
.series-enqueued { fill: var(--ok); }
.series-deferred { fill: var(--warn); }
.series-failed { fill: var(--bad); }
.series-forgotten { fill: var(--muted); }
.chart .duration { fill: none; stroke: #1565c0; stroke-width: 2; }
.duration-key { fill: #1565c0; }
`;
