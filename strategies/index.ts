import { pollingStrategy } from './polling.js';
import { reconcileStrategy } from './reconcile.js';
import type { Strategy } from './types.js';

/** Every strategy the daemon and CLI know, by name. */
export const strategies: readonly Strategy[] = [pollingStrategy, reconcileStrategy];

export function findStrategy(name: string): Strategy | undefined {
  return strategies.find((strategy) => strategy.name === name);
}
