import type { FeedChange } from './changes.js';
import type { LiveFlagState, LiveVersion, RunTrigger, UsersChange } from './live-state.js';

/** What one change does to the live state; the store finds how many users it added and removed. */
export interface ChangePlan {
  state: LiveFlagState;
  users: UsersChange;
  trigger: RunTrigger | null;
}

/**
 * The live state after `change` (a new revision), what it does to the explicit users (every
 * user it adds or removes becomes pending: the drain sends or forgets each), and the full run it
 * owes. Pure: the sink commits the plan. A change the users cannot express — the switch turned
 * on, a percentage raised, other rules changed, the bucketing parameters changed, or nothing known
 * before — owes a full polling run; a switch turned off or a percentage lowered owes none here
 * (the next scheduled run forgets, under the forget guard).
 */
export function planChange(previous: LiveFlagState | null, change: FeedChange, version: LiveVersion, now: Date): ChangePlan {
  const at = now.toISOString();
  const base: LiveFlagState = previous ?? { flag: change.flag, revision: 0, version, snapshotVersion: null, applied: {}, enabled: null, percentage: null, complete: false, rulesDigest: null, bucketingDigest: null, updatedAt: at };
  const next: LiveFlagState = { ...base, revision: (base.revision ?? 0) + 1, version, applied: { ...base.applied, [String(version.partition)]: version.offset }, updatedAt: at };
  const unknownBefore = previous === null ? trigger('the first change the feed applied: what happened before it is unknown', at) : null;
  switch (change.type) {
    case 'snapshot': {
      const state: LiveFlagState = {
        ...next,
        snapshotVersion: version,
        enabled: change.enabled ?? base.enabled,
        percentage: change.percentage ?? base.percentage,
        complete: true,
        // undefined: the source does not digest (keep the last); null: the document has none.
        rulesDigest: change.rulesDigest === undefined ? base.rulesDigest : change.rulesDigest,
        bucketingDigest: change.bucketingDigest === undefined ? base.bucketingDigest : change.bucketingDigest,
      };
      const users: UsersChange = change.stage ? { kind: 'replace-staged', stage: change.stage.id, count: change.stage.count } : { kind: 'replace', users: [...new Set(change.users)] };
      return { state, users, trigger: unknownBefore ?? snapshotTrigger(base, state, at) };
    }
    case 'add':
      return { state: next, users: { kind: 'add', users: [...new Set(change.users)] }, trigger: unknownBefore };
    case 'remove':
      // While the whole list is unknown, removals are remembered: they override the rules file's users.
      return { state: next, users: { kind: 'remove', users: [...new Set(change.users)], remember: !base.complete }, trigger: unknownBefore };
    case 'resync':
      return { state: next, users: { kind: 'none' }, trigger: trigger(change.reason, at) };
    default:
      return change satisfies never;
  }
}

function snapshotTrigger(before: LiveFlagState, after: LiveFlagState, at: string): RunTrigger | null {
  if (!before.complete) return trigger('the first whole snapshot: the users enabled by rules are unknown until a full run', at);
  // A salt or seed that appears or disappears re-draws the cohort as surely as one that changes.
  if (before.bucketingDigest !== after.bucketingDigest) {
    return { ...trigger('the bucketing parameters changed (salt, seed, groupId, algorithm): the rollout cohort is re-drawn', at), rebucketing: true };
  }
  if (before.enabled !== true && after.enabled === true) return trigger('the flag was switched on', at);
  if (after.percentage !== null && after.percentage > (before.percentage ?? 0)) return trigger(`the percentage rose from ${before.percentage ?? 0}% to ${after.percentage}%`, at);
  if (before.rulesDigest !== null && after.rulesDigest !== null && before.rulesDigest !== after.rulesDigest) return trigger('the flag definition changed beyond its explicit users (segments, groups or rules)', at);
  return null;
}

function trigger(reason: string, at: string): RunTrigger {
  return { reason, rebucketing: false, at };
}
