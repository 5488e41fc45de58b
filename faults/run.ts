import { daemonScenarios } from './daemon-scenarios.js';
import { feedScenarios } from './feed-scenarios.js';
import { detectionScenarios, type Scenario } from './scenarios.js';
import { servicesFromEnv, type ScenarioResult } from './world.js';

/**
 * `npm run faults [-- --seed N] [-- --only name,name]`: the fault campaign (README "Reliability").
 * Each scenario injects its fault into a real detector against the real servers, runs again with
 * the fault gone, and checks the invariants: nobody expected is lost, nobody is marked known
 * without an accepted message, duplicates stay within one batch per request in flight at the
 * fault. Prints a table, then one JSON line; exits 1 when any scenario breaks an invariant.
 * Bounded: a scenario that takes more than SCENARIO_TIMEOUT_MS fails, and the campaign stops
 * within CAMPAIGN_BUDGET_MS.
 */

const SCENARIO_TIMEOUT_MS = 240_000;
/** The whole campaign stops by itself within this: a scenario gets what is left, at most the above. */
const CAMPAIGN_BUDGET_MS = 9 * 60_000;

/** The report goes to stdout (table, then JSON); progress to stderr. */
const print = (line: string): void => void process.stdout.write(`${line}\n`);
const progress = (line: string): void => void process.stderr.write(`${line}\n`);
const all: Scenario[] = [...detectionScenarios, ...daemonScenarios, ...feedScenarios];

function option(name: string): string | undefined {
  const index = process.argv.indexOf(`--${name}`);
  return index === -1 ? undefined : process.argv[index + 1];
}

const seed = Number(option('seed') ?? 20_261_129);
const only = option('only')?.split(',');
const chosen = only ? all.filter((scenario) => only.includes(scenario.name)) : all;
if (only && chosen.length !== only.length) {
  progress(`unknown scenario in --only; known: ${all.map((scenario) => scenario.name).join(', ')}`);
  process.exit(2);
}

const services = servicesFromEnv();
const results: ScenarioResult[] = [];
const started = Date.now();
for (const scenario of chosen) {
  const at = Date.now();
  let result: ScenarioResult;
  try {
    const allowedMs = Math.min(SCENARIO_TIMEOUT_MS, CAMPAIGN_BUDGET_MS - (at - started));
    if (allowedMs <= 0) throw new Error(`not run: the campaign's ${CAMPAIGN_BUDGET_MS / 60_000} minutes were used up`);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`took more than ${Math.round(allowedMs / 1000)} s`)), allowedMs)));
    result = await Promise.race([scenario.run({ services, seed }), timeout]).finally(() => clearTimeout(timer));
  } catch (error) {
    result = { name: scenario.name, expected: 0, enqueued: 0, lost: 0, markedUnsent: 0, duplicates: 0, duplicateBound: 0, ok: false, note: `scenario failed: ${error instanceof Error ? error.message : String(error)}` };
  }
  results.push(result);
  progress(`${result.ok ? 'ok  ' : 'FAIL'} ${result.name} (${((Date.now() - at) / 1000).toFixed(1)} s) ${result.note}`);
}

const header = ['scenario', 'expected', 'enqueued', 'lost', 'markedUnsent', 'duplicates (bound)', 'result'];
const rows = results.map((r) => [r.name, String(r.expected), String(r.enqueued), String(r.lost), String(r.markedUnsent), `${r.duplicates} (≤ ${r.duplicateBound})`, r.ok ? 'ok' : 'FAIL']);
const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)));
for (const row of [header, ...rows]) print(row.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join('  '));
print(`seed ${seed}, ${results.length} scenarios in ${((Date.now() - started) / 1000).toFixed(0)} s`);
print(
  JSON.stringify({
    seed,
    scenarios: results.map(({ name, expected, enqueued, lost, markedUnsent, duplicates, duplicateBound, ok }) => ({ name, expected, enqueued, lost, markedUnsent, duplicates, duplicateBound, ok })),
  }),
);
// Exits explicitly (a client a scenario could not close must not keep the campaign alive), once
// stdout has taken everything written to it.
await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
process.exit(results.every((r) => r.ok) ? 0 : 1);
