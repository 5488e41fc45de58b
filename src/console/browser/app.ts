import { get, post, savedToken, saveToken, type ApiResult } from './api.js';
import { runsChart } from './chart.js';
import { byId, count, duration, el, fill, table, time } from './dom.js';
import type { BackfillStatus, FeedStatus, Status } from './types.js';

/**
 * The operator's console: reads GET /status and GET /admin/backfill/status every second and acts
 * through the admin API's POST routes. Handlers are attached here (the page has no inline script
 * or handler: its Content-Security-Policy allows only this file).
 */
const REFRESH_MS = 1000;

function notice(text: string, kind: 'info' | 'error' = 'info'): void {
  const box = byId('notice');
  box.textContent = text;
  box.className = kind;
}

function showTokenState(): void {
  fill(byId('token-state'), savedToken() ? 'token set for this browser session' : 'no token: reading only where the API allows it');
}

async function act(what: string, request: () => Promise<ApiResult<unknown>>): Promise<void> {
  const result = await request();
  if (result.ok) notice(`${what}: accepted`);
  else notice(`${what}: ${result.error}`, 'error');
  await refresh();
}

function renderReplicas(status: Status): void {
  const rows = status.replicas.map((replica) => [
    replica.replicaId === status.replica ? `${replica.replicaId} (this one)` : replica.replicaId,
    el('span', { class: `role role-${replica.role}` }, replica.role),
    replica.version,
    time(replica.startedAt),
    time(replica.seenAt),
  ]);
  fill(byId('replicas'), table(['replica', 'role', 'version', 'started', 'last heard'], rows));
  // Just after a failover the old leader's last heartbeat may still say leader: the latest word wins.
  const [leader] = status.replicas.filter((replica) => replica.role === 'leader').sort((a, b) => b.seenAt.localeCompare(a.seenAt));
  fill(byId('leader'), leader ? `leader: ${leader.replicaId}` : 'no leader heard from');
}

function renderRun(status: Status): void {
  const run = status.currentRun;
  const bar = byId<HTMLProgressElement>('run-progress');
  if (!run) {
    // Idle: the bar shows the last run, finished (full), so its end stays visible.
    const last = status.lastRuns[0];
    fill(byId('run-state'), last ? `no run in progress; the last (${last.status}) ended ${time(new Date(Date.parse(last.startedAt) + last.durationMs).toISOString())}` : 'no run yet');
    bar.max = 1;
    bar.value = last ? 1 : 0;
    fill(byId('run-figures'), last ? `${count(last.enqueued)} enqueued in ${duration(last.durationMs / 1000)}` : '');
    return;
  }
  fill(byId('run-state'), `run ${run.runId} on ${run.replicaId}, ${run.trigger}, since ${time(run.startedAt)}`);
  bar.max = Math.max(1, run.queued);
  bar.value = run.enqueued;
  fill(byId('run-figures'), `${count(run.enqueued)} / ${count(run.queued)} enqueued · ${run.rate.toLocaleString('en-US')} users/s · ETA ${duration(run.etaSeconds)}`);
}

function renderRuns(status: Status): void {
  fill(byId('runs-chart'), runsChart(status.lastRuns));
  const rows = status.lastRuns.map((run) => [time(run.startedAt), run.strategy, el('span', { class: `status status-${run.status}` }, run.status), count(run.enqueued), count(run.deferred), count(run.failed), count(run.forgotten), duration(run.durationMs / 1000), run.error ?? '']);
  fill(byId('runs-table'), table(['started', 'strategy', 'status', 'enqueued', 'deferred', 'failed', 'forgotten', 'duration', 'error'], rows));
}

function renderSafety(status: Status): void {
  fill(byId('known-users'), count(status.knownUsers));
  const lag = status.lagGate;
  fill(
    byId('lag-gate'),
    lag
      ? table(
          ['group', 'topic', 'lag (messages)', 'behind', 'read at'],
          lag.groups.map((group) => [group.group, group.topic, count(group.lag), group.behind ? 'yes' : 'no', time(lag.readAt)]),
        )
      : 'no reading yet (safety.consumerLag off, or nothing sent since the start)',
  );
  const paused = status.sendingPaused.map((pause) => `${pause.gate} since ${time(pause.since)}: ${pause.reason}`);
  fill(byId('sending-paused'), paused.length > 0 ? paused.join('; ') : 'sending is not paused');
  const held = [
    ...(status.forgetHold ? [`run ${status.forgetHold.runId} held ${count(status.forgetHold.users)} forgets: ${status.forgetHold.reason ?? ''}`] : []),
    ...status.feeds.flatMap((feed) => (feed.details?.held ?? []).map((object) => `${feed.strategy}: ${object.key} ${object.detail ?? ''}`)),
  ];
  fill(byId('guard-state'), held.length > 0 ? held.join('; ') : 'no guard is holding');
  byId<HTMLButtonElement>('release-guard').disabled = held.length === 0;
}

function feedRow(feed: FeedStatus): Array<string | Node> {
  const agreement = feed.lastAgreement;
  const live = feed.liveState;
  return [
    feed.strategy,
    feed.shadow ? 'shadow' : 'sending',
    feed.health.state,
    live ? `revision ${live.revision} · switch ${live.enabled === null ? 'unknown' : live.enabled ? 'on' : 'off'} · ${live.percentage === null ? 'no' : `${live.percentage} %`} rollout · ${count(live.explicitUsers)} explicit users · ${duration(live.ageSeconds)} old` : 'no live state yet',
    count(feed.pending),
    agreement ? `both ${count(agreement.both)} · only polling ${count(agreement.onlyPolling)} · only feed ${count(agreement.onlyFeed)}${agreement.feedEarlierMinutes.p50 === null ? '' : ` · feed ${agreement.feedEarlierMinutes.p50} min earlier (median)`}` : '–',
    feed.error ?? '',
  ];
}

function renderFeeds(status: Status): void {
  byId('feeds-section').hidden = status.feeds.length === 0;
  fill(byId('feeds'), table(['feed', 'mode', 'health', 'live state', 'pending', 'shadow agreement', 'error'], status.feeds.map(feedRow)));
}

function renderBackfill(report: BackfillStatus): void {
  const job = report.job;
  const bar = byId<HTMLProgressElement>('backfill-progress');
  if (!job) {
    fill(byId('backfill-state'), 'no backfill job yet');
    bar.max = 1;
    bar.value = 0;
    return;
  }
  bar.max = Math.max(1, job.total);
  bar.value = job.sent + job.failed;
  fill(
    byId('backfill-state'),
    `job ${job.jobId} (${job.origin}): `,
    el('span', { class: `status status-${job.status}`, id: 'backfill-status' }, job.status),
    ` · ${count(job.sent)} sent, ${count(job.failed)} failed, ${count(job.remaining)} remaining of ${count(job.total)} · ETA ${duration(job.etaSeconds)}${job.error ? ` · ${job.error}` : ''}`,
  );
}

async function refresh(): Promise<void> {
  const [status, backfill] = await Promise.all([get<Status>('/status'), get<BackfillStatus>('/admin/backfill/status')]);
  if (!status.ok) {
    fill(byId('connection'), `status unavailable: ${status.error}`);
    return;
  }
  const body = status.body;
  fill(byId('connection'), `flag ${body.flag} · served by ${body.replica} (${body.role})${body.errors ? ` · partly unavailable: ${body.errors.join('; ')}` : ''}`);
  renderReplicas(body);
  renderRun(body);
  renderRuns(body);
  renderSafety(body);
  renderFeeds(body);
  if (backfill.ok) renderBackfill(backfill.body);
}

/** Pasted IDs: one per line, or separated by commas or spaces. */
function pastedIds(text: string): string[] {
  return text.split(/[\s,]+/).filter((id) => id !== '');
}

function wire(): void {
  byId<HTMLFormElement>('token-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const input = byId<HTMLInputElement>('token');
    saveToken(input.value.trim());
    input.value = '';
    showTokenState();
    notice('token kept for this browser session');
    void refresh();
  });
  byId('forget-token').addEventListener('click', () => {
    saveToken(null);
    showTokenState();
    notice('token forgotten');
  });
  byId('start-run').addEventListener('click', () => void act('start a run', () => post('/runs')));
  byId('cancel-run').addEventListener('click', () => void act('cancel the run', () => post('/runs/cancel')));
  byId('release-guard').addEventListener('click', () => void act('release the held guard', () => post('/admin/forget-hold/release')));
  byId('cancel-backfill').addEventListener('click', () => void act('cancel the backfill', () => post('/admin/backfill/cancel')));
  byId('resume-backfill').addEventListener('click', () => void act('resume the backfill', () => post('/admin/backfill/resume')));
  byId<HTMLFormElement>('backfill-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const uri = byId<HTMLInputElement>('backfill-uri').value.trim();
    const ids = pastedIds(byId<HTMLTextAreaElement>('backfill-ids').value);
    if (uri === '' && ids.length === 0) return notice('paste user IDs or give an s3:// URI', 'error');
    if (uri !== '' && ids.length > 0) return notice('give either user IDs or an s3:// URI, not both', 'error');
    void act('start a backfill', () => post('/admin/backfill', uri !== '' ? { s3_uri: uri } : { user_ids: ids }));
  });
}

function start(): void {
  wire();
  showTokenState();
  const loop = (): void => {
    void refresh().finally(() => setTimeout(loop, REFRESH_MS));
  };
  loop();
}

start();
