import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { SqsFaultProxy } from './sqs-fault-proxy.js';
import { CONCURRENCY, type Scenario, type ScenarioContext } from './scenarios.js';
import { LAUNCHER, World, type ScenarioResult } from './world.js';

// The daemon's share of the campaign: a leader killed during its run, and an admin backfill
// interrupted by SIGTERM, each picked up by the next replica.

const BATCH = 10;
const SENDING = `sqs:\n  concurrency: ${CONCURRENCY}\n  maxBacklog: 0\n  requestTimeoutMs: 1500\nenqueue:\n  rateLimit: 2000\n  budget: 0\n`;

class Replica {
  admin = '';
  private output = '';
  readonly exited: Promise<unknown>;

  private constructor(readonly child: ChildProcess) {
    child.stdout?.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    this.exited = once(child, 'exit');
  }

  static async start(world: World, config: string, sqsEndpoint?: string): Promise<Replica> {
    const env = { ...world.env(sqsEndpoint ? { sqsEndpoint } : {}), ADMIN_PORT: '0', LOG_LEVEL: 'info' };
    const replica = new Replica(spawn(LAUNCHER, ['run', '--config', config], { env, stdio: ['ignore', 'pipe', 'pipe'] }));
    await waitFor(() => /admin API listening on (http:\/\/[^"\s]+)/.test(replica.output), 'the admin API', 30_000);
    replica.admin = /admin API listening on (http:\/\/[^"\s]+)/.exec(replica.output)?.[1] ?? '';
    return replica;
  }

  async get<T>(route: string): Promise<T> {
    return (await fetch(`${this.admin}${route}`)).json() as Promise<T>;
  }

  post(route: string, body?: unknown): Promise<Response> {
    return fetch(`${this.admin}${route}`, { method: 'POST', headers: { 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    this.child.kill(signal);
    await this.exited;
  }
}

async function waitFor(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

interface StatusBody {
  role: string;
  lastRuns: Array<{ status: string }>;
}

/** The leader is SIGKILLed during its run; a second replica takes over and its run completes. */
async function leaderKilled(context: ScenarioContext): Promise<ScenarioResult> {
  const world = new World(context.services, 'leader-sigkill', 20_000);
  await world.prepare();
  const config = world.config({ extra: `${SENDING}daemon:\n  schedule: "0 0 1 1 *"\n  runAtStart: true\n  leaderTtlMs: 1500\n`, state: '  runLockTtlMs: 1500\n' });
  const counter = await SqsFaultProxy.start(context.services.awsEndpoint, context.seed);
  const first = await Replica.start(world, config, counter.endpoint);
  let killed = false;
  counter.onSendBatch = (stats) => {
    if (stats.sendBatches === 200 && !killed) {
      killed = true;
      first.child.kill('SIGKILL');
    }
  };
  try {
    await first.exited;
    const second = await Replica.start(world, config);
    try {
      // It becomes the leader once the dead one's lock expires; its first run may find the dead
      // run's lock still held (skipped): ask again until a run finishes.
      await waitFor(async () => {
        const status = await second.get<StatusBody>('/status');
        if (status.role !== 'leader') return false;
        const last = status.lastRuns[0]?.status;
        if (last === 'ok') return true;
        if (last === undefined || last === 'skipped') await second.post('/runs');
        await new Promise((resolve) => setTimeout(resolve, 200));
        return false;
      }, 'the new leader to complete a run');
    } finally {
      await second.stop();
    }
    return await world.measure('leader-sigkill-during-run', CONCURRENCY * BATCH, `killed after ${counter.stats.sendBatches} batches: ${killed}`);
  } finally {
    await counter.close();
  }
}

interface BackfillStatus {
  running: boolean;
  job: { status: string; sent: number; total: number; remaining: number } | null;
}

/** SIGTERM during an admin backfill: the job is left interrupted; the restarted daemon finishes it. */
async function backfillInterrupted(context: ScenarioContext): Promise<ScenarioResult> {
  // Every candidate is a backfill user: enabled, none loaded (the backfill does not check).
  const world = new World(context.services, 'backfill-sigterm', 20_000, 1, 0);
  await world.prepare();
  const config = world.config({ extra: `${SENDING}daemon:\n  schedule: "0 0 1 1 *"\nbackfill:\n  leaseTtlMs: 1500\n` });
  const counter = await SqsFaultProxy.start(context.services.awsEndpoint, context.seed);
  const first = await Replica.start(world, config, counter.endpoint);
  let stopping: Promise<void> | undefined;
  counter.onSendBatch = (stats) => {
    if (stats.sendBatches === 300) stopping ??= first.stop('SIGTERM');
  };
  try {
    const accepted = await first.post('/admin/backfill', { user_ids: world.candidates });
    if (accepted.status !== 202) throw new Error(`backfill refused: ${accepted.status} ${await accepted.text()}`);
    await first.exited;
    await stopping;
    const second = await Replica.start(world, config);
    try {
      await waitFor(async () => (await second.get<BackfillStatus>('/admin/backfill/status')).job?.status === 'ok', 'the restarted daemon to finish the job');
    } finally {
      await second.stop();
    }
    return await world.measure('sigterm-during-admin-backfill', CONCURRENCY * BATCH, `stopped after ${counter.stats.sendBatches} batches`);
  } finally {
    await counter.close();
  }
}

export const daemonScenarios: Scenario[] = [
  { name: 'leader-sigkill-during-run', run: leaderKilled },
  { name: 'sigterm-during-admin-backfill', run: backfillInterrupted },
];
