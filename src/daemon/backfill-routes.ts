import { z } from 'zod';
import type { BackfillCoordinator, BackfillRequest } from '../backfill/coordinator.js';
import { FfError, errorMessage } from '../errors.js';
import type { AdminResponse, Route } from './admin-server.js';

/** POST /admin/backfill bodies (seed section 6). */
const requestSchema = z.union([
  z.object({ user_ids: z.array(z.string()).min(1) }).strict(),
  z.object({ s3_uri: z.string().startsWith('s3://') }).strict(),
  z.object({ source: z.literal('candidates') }).strict(),
]);

function toRequest(body: z.infer<typeof requestSchema>): BackfillRequest {
  if ('user_ids' in body) return { kind: 'user_ids', userIds: body.user_ids };
  if ('s3_uri' in body) return { kind: 's3_uri', uri: body.s3_uri };
  return { kind: 'candidates' };
}

/** A state store that cannot be reached is the service being unavailable, not the caller's fault. */
async function answering(handle: () => Promise<AdminResponse>): Promise<AdminResponse> {
  try {
    return await handle();
  } catch (error) {
    if (error instanceof FfError && error.code === 'STATE_UNAVAILABLE') return { status: 503, body: { error: errorMessage(error) } };
    throw error;
  }
}

/** The admin backfill routes (README, "Admin API"): HTTP in and out of the coordinator. */
export function backfillRoutes(backfills: BackfillCoordinator, limits: { bodyLimitBytes: number; maxUsers: number }): Route[] {
  return [
    {
      method: 'POST',
      path: '/admin/backfill',
      mutating: true,
      bodyLimitBytes: limits.bodyLimitBytes,
      // A list of maxUsers IDs holds maxUsers - 1 commas; anything more is over the cap.
      maxItems: limits.maxUsers,
      handle: (body) =>
        answering(async () => {
          const parsed = requestSchema.safeParse(body);
          if (!parsed.success) return { status: 400, body: { error: 'body must be {"user_ids": [...]}, {"s3_uri": "s3://…"} or {"source": "candidates"}' } };
          const started = await backfills.start(toRequest(parsed.data));
          if (started.outcome === 'invalid') return { status: 400, body: { error: started.error } };
          if (started.outcome === 'busy') return { status: 409, body: { error: started.reason, job: started.job } };
          const { job } = started;
          const gathered = job.status !== 'preparing';
          return {
            status: 202,
            body: { accepted: true, jobId: job.jobId, origin: job.origin, users: gathered ? job.total : null, invalid: gathered ? job.invalid : null, duplicates: gathered ? job.duplicates : null },
          };
        }),
    },
    { method: 'GET', path: '/admin/backfill/status', mutating: false, handle: () => answering(async () => ({ status: 200, body: await backfills.status() })) },
    {
      method: 'POST',
      path: '/admin/backfill/cancel',
      mutating: true,
      handle: () =>
        answering(async () => ((await backfills.cancel()) === 'cancelling' ? { status: 202, body: { cancelling: true } } : { status: 409, body: { error: 'no backfill job is running' } })),
    },
    {
      method: 'POST',
      path: '/admin/backfill/resume',
      mutating: true,
      handle: () =>
        answering(async () =>
          (await backfills.resume()) === 'resuming' ? { status: 202, body: { resuming: true } } : { status: 409, body: { error: 'no failed or cancelled backfill job has users remaining' } },
        ),
    },
  ];
}
