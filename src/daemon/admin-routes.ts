import { errorMessage } from '../errors.js';
import { DAY } from '../time.js';
import { massForgetPermitKey } from '../pipeline/forget-guard.js';
import type { Runtime } from '../runtime/runtime.js';
import type { RunSummary } from '../pipeline/summary.js';
import type { Route } from './admin-server.js';
import type { Daemon } from './daemon.js';

/** The admin API's routes (README, "Admin API"). */
export function adminRoutes(daemon: Daemon, runtime: Runtime): Route[] {
  return [
    { method: 'GET', path: '/healthz', mutating: false, handle: () => ({ status: 200, body: { status: 'ok' } }) },
    {
      method: 'GET',
      path: '/readyz',
      mutating: false,
      handle: async () => {
        const checks: Record<string, string> = { config: 'ok', flagRules: runtime.checkerReady ? 'ok' : 'not loaded' };
        try {
          await (await runtime.openStore()).ping();
          checks.state = 'ok';
        } catch (error) {
          checks.state = errorMessage(error);
        }
        const ready = Object.values(checks).every((value) => value === 'ok');
        return { status: ready ? 200 : 503, body: { ready, checks } };
      },
    },
    {
      method: 'GET',
      path: '/metrics',
      mutating: false,
      handle: async () => ({ status: 200, body: await daemon.registry.metrics(), contentType: daemon.registry.contentType }),
    },
    {
      method: 'GET',
      path: '/status',
      mutating: false,
      handle: async () => {
        const lastRuns = redactInputs(await daemon.lastRuns(), runtime.config.admin.showInputs);
        const held = lastRuns[0]?.status === 'held' ? { runId: lastRuns[0].runId, users: lastRuns[0].forgetHeld, reason: lastRuns[0].error } : null;
        const { shared } = daemon;
        const store = await runtime.openStore();
        // The board and the known set's size are for display: one unreadable part is null, with why.
        const [replicas, currentRun, lagGate, knownUsers] = await Promise.allSettled([shared.replicas(), shared.currentRun(), shared.lagReading(), store.known.count()]);
        const errors = [replicas, currentRun, lagGate, knownUsers].flatMap((part) => (part.status === 'rejected' ? [errorMessage(part.reason)] : []));
        return {
          status: 200,
          body: {
            flag: runtime.config.flag,
            role: daemon.role,
            replica: shared.replicaId,
            replicas: valueOf(replicas, [shared.self()]),
            currentRun: valueOf(currentRun, null),
            sendingPaused: daemon.sendingPaused(),
            forgetHold: held,
            lagGate: valueOf(lagGate, null),
            knownUsers: valueOf(knownUsers, null),
            feeds: await daemon.feedStatus(),
            lastRuns,
            ...(errors.length > 0 ? { errors } : {}),
          },
        };
      },
    },
    {
      method: 'POST',
      path: '/runs',
      mutating: true,
      handle: () => {
        const result = daemon.trigger('admin');
        if (result === 'started') return { status: 202, body: { started: true } };
        const reasons = { busy: 'a run is in progress', follower: 'this replica is a follower; the leader runs', stopping: 'shutting down' };
        return { status: 409, body: { error: reasons[result] } };
      },
    },
    {
      method: 'POST',
      path: '/admin/forget-hold/release',
      mutating: true,
      handle: async () => {
        // The next run that would hold its forgets goes ahead (any replica's run; within a day).
        await (await runtime.openStore()).permits.grant(massForgetPermitKey(runtime.config.state.detectorKeyPrefix), DAY);
        return { status: 202, body: { released: true, validForMs: DAY } };
      },
    },
    {
      method: 'POST',
      path: '/runs/cancel',
      mutating: true,
      handle: async () => {
        if (daemon.cancel()) return { status: 202, body: { cancelling: true } };
        // A follower passes the request to the leader, which looks for it while its run goes on.
        if (daemon.role === 'follower' && (await daemon.shared.askLeaderToCancel())) return { status: 202, body: { cancelling: true, onLeader: true } };
        return { status: 409, body: { error: 'no run in progress' } };
      },
    },
  ];
}

function valueOf<T>(part: PromiseSettledResult<T>, otherwise: T): T {
  return part.status === 'fulfilled' ? part.value : otherwise;
}

/**
 * Raw input lines of invalid candidates may be user IDs, or whatever a file held: /status shows
 * where they were and why they were refused, and their text only with admin.showInputs.
 */
function redactInputs(runs: RunSummary[], show: boolean): RunSummary[] {
  if (show) return runs;
  return runs.map((run) => ({ ...run, invalidExamples: run.invalidExamples.map(({ value, ...example }) => (value === undefined ? example : { ...example, value: '[redacted]' })) }));
}
