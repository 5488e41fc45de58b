import type { Logger } from '../logger.js';
import type { JsonValue } from './openfeature-schema.js';

/** An option of a provider's constructor that stops it reporting each evaluation to its vendor. */
interface AnalyticsSwitch {
  /** Which constructor argument holds the options object. */
  arg: number;
  key: string;
  off: JsonValue;
  what: string;
}

/**
 * The providers known to report evaluations, by package. A run checks up to millions of users:
 * that is not usage, and sending it would flood the vendor (and the bill). Unleash's SDK has the
 * same habit (`disableMetrics`) but no provider package; see README "The OpenFeature checker".
 */
const ANALYTICS_SWITCHES: Readonly<Record<string, readonly AnalyticsSwitch[]>> = {
  '@launchdarkly/openfeature-node-server': [
    { arg: 1, key: 'sendEvents', off: false, what: 'analytics events (every evaluation and context)' },
    { arg: 1, key: 'diagnosticOptOut', off: true, what: 'diagnostic events' },
  ],
  '@openfeature/go-feature-flag-provider': [{ arg: 0, key: 'disableDataCollection', off: true, what: 'evaluation events to the relay proxy (its data collector)' }],
};

/**
 * The constructor arguments with the provider's per-evaluation reporting switched off where the
 * operator did not say otherwise; an explicit setting that keeps it on is kept, with a warning.
 */
export function withAnalyticsOff(packageName: string, args: readonly JsonValue[], logger: Logger): JsonValue[] {
  const result = [...args];
  for (const { arg, key, off, what } of ANALYTICS_SWITCHES[packageName] ?? []) {
    while (result.length < arg) result.push(null);
    const options = result[arg] ?? {};
    if (typeof options !== 'object' || Array.isArray(options) || options === null) {
      logger.warn(`flags.openfeature.args.${arg} is not an options object: cannot set ${key}: ${JSON.stringify(off)}; ${packageName} may send ${what}`);
      continue;
    }
    if (!(key in options)) {
      result[arg] = { ...options, [key]: off };
      logger.info(`flags.openfeature.args.${arg}.${key}: ${JSON.stringify(off)} set, so that checks send no ${what}`);
    } else if (options[key] !== off) {
      logger.warn(`flags.openfeature.args.${arg}.${key} is ${JSON.stringify(options[key])}: every check sends ${what} to the vendor; set it to ${JSON.stringify(off)}`);
    }
  }
  return result;
}
