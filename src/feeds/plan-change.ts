import type { FeedChange } from './changes.js';
import type { LiveFlagState, LiveVersion, RunTrigger } from './live-state.js';

/** What one change does to the live state. */
export interface ChangePlan {
  state: LiveFlagState;
  /** Users whose result may have changed: added ones to send, removed ones to forget if disabled. */
  pending: string[];
  trigger: RunTrigger | null;
  added: number;
  removed: number;
}

/**
 * The live state after `change`, the users it puts in the pending set and the full run it owes
 * (pure: the sink commits the plan). A change the users cannot express — the switch turned on, a
 * percentage raised, other rules changed, the bucketing parameters changed, or no state known
 * before — owes a full polling run; a switch turned off or a percentage lowered owes none here
 * (the next scheduled run forgets, under the forget guard).
 */
export function planChange(previous: LiveFlagState | null, change: FeedChange, version: LiveVersion, now: Date): ChangePlan {
  const base: LiveFlagState = previous ?? { flag: change.flag, version, enabled: null, percentage: null, users: [], complete: false, removed: [], rulesDigest: null, bucketingDigest: null, updatedAt: now.toISOString() };
  const at = now.toISOString();
  const unknownBefore = previous === null ? trigger('the first change the feed applied: what happened before it is unknown', at) : null;
  const next = { ...base, version, updatedAt: at };
  switch (change.type) {
    case 'snapshot': {
      const users = new Set(change.users);
      const before = new Set(base.users);
      const added = [...users].filter((user) => !before.has(user));
      const removed = base.users.filter((user) => !users.has(user));
      const state: LiveFlagState = {
        ...next,
        enabled: change.enabled ?? base.enabled,
        percentage: change.percentage ?? base.percentage,
        users: [...users].sort(),
        complete: true,
        removed: [],
        // undefined: the source does not digest (keep the last); null: the document has none.
        rulesDigest: change.rulesDigest === undefined ? base.rulesDigest : change.rulesDigest,
        bucketingDigest: change.bucketingDigest === undefined ? base.bucketingDigest : change.bucketingDigest,
      };
      return { state, pending: [...added, ...removed], trigger: unknownBefore ?? snapshotTrigger(base, state, at), added: added.length, removed: removed.length };
    }
    case 'add': {
      const before = new Set(base.users);
      const added = [...new Set(change.users)].filter((user) => !before.has(user));
      const addedSet = new Set(change.users);
      const state = { ...next, users: [...base.users, ...added].sort(), removed: base.removed.filter((user) => !addedSet.has(user)) };
      return { state, pending: added, trigger: unknownBefore, added: added.length, removed: 0 };
    }
    case 'remove': {
      const removedSet = new Set(change.users);
      const users = base.users.filter((user) => !removedSet.has(user));
      // While the whole list is unknown, remember removals: they override the rules file's users.
      const removed = base.complete ? [] : [...new Set([...base.removed, ...change.users])].sort();
      return { state: { ...next, users, removed }, pending: [...removedSet], trigger: unknownBefore, added: 0, removed: removedSet.size };
    }
    case 'resync':
      return { state: next, pending: [], trigger: trigger(change.reason, at), added: 0, removed: 0 };
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
