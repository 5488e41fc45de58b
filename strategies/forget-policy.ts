import { massForgetPermitKey, type ForgetPolicy } from '../src/pipeline/forget-guard.js';
import type { Runtime } from '../src/runtime/runtime.js';
import type { StateStore } from '../src/state/types.js';
import type { RunRequest } from './types.js';

/**
 * The forget guard's policy for a run of any strategy that forgets (polling, reconcile): released
 * by --allow-mass-forget, or by a permit granted through the admin API. A dry run only reports
 * what would be held; it does not use up a permit.
 */
export function forgetPolicyFor(runtime: Runtime, store: StateStore, request: RunRequest): ForgetPolicy {
  const { state } = runtime.config;
  const released = (): Promise<boolean> =>
    request.allowMassForget ? Promise.resolve(true) : request.dryRun ? Promise.resolve(false) : store.permits.take(massForgetPermitKey(state.detectorKeyPrefix));
  return { maxFraction: state.maxForgetFraction, floor: state.maxForgetFloor, released };
}
