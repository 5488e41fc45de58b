import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { OpenFeature, type Logger as OpenFeatureLogger, type Provider } from '@openfeature/server-sdk';
import { TIMED_OUT, within } from '../concurrency.js';
import { FfError, errorMessage } from '../errors.js';
import type { Logger } from '../logger.js';
import { withAnalyticsOff } from './openfeature-analytics.js';
import { OpenFeatureFlagChecker } from './openfeature-checker.js';
import type { OpenFeatureSettings } from './openfeature-schema.js';

/** How the provider's module is imported (tests pass a fake loader). */
export type ModuleLoader = (specifier: string) => Promise<Record<string, unknown>>;

const importModule: ModuleLoader = (specifier) => import(specifier) as Promise<Record<string, unknown>>;

/** A provider's onClose gets this long at shutdown; shutdown must stay bounded. */
const CLOSE_TIMEOUT_MS = 5_000;

/** Each checker binds its provider to an OpenFeature domain of its own (the SDK's API is a process-wide singleton). */
let domains = 0;

export interface OpenedOpenFeatureChecker {
  checker: OpenFeatureFlagChecker;
  /** Closes the provider (its connections, timers, flushes); bounded in time, safe to call twice. */
  close(): Promise<void>;
}

/**
 * Loads the configured provider package, builds the provider with the configured arguments
 * (per-evaluation analytics off for the providers known to send them), registers it with
 * @openfeature/server-sdk and waits up to `readyTimeoutMs` for it to be ready.
 * A package that cannot be loaded or arguments it refuses are configuration errors (exit 2); a
 * provider that is not ready in time is not: its users are unevaluable until it is (a flag service
 * starting after us must not stop a daemon).
 */
export async function openOpenFeatureChecker(
  settings: OpenFeatureSettings,
  flag: string,
  logger: Logger,
  deps: { load?: ModuleLoader; cwd?: string } = {},
): Promise<OpenedOpenFeatureChecker> {
  const module = await loadModule(settings.package, deps.load ?? importModule, deps.cwd ?? process.cwd());
  const provider = buildProvider(module, { ...settings, args: withAnalyticsOff(settings.package, settings.args, logger) });
  const scoped = logger.child({ module: 'openfeature', provider: provider.metadata.name });
  const domain = `ff-detector-${++domains}`;
  OpenFeature.setLogger(openFeatureLogger(scoped));
  await waitUntilReady(OpenFeature.setProviderAndWait(domain, provider), settings, scoped);
  const client = OpenFeature.getClient(domain, settings.context);
  const flagKey = settings.flagKey ?? flag;
  const checker = new OpenFeatureFlagChecker(client, { ...settings, flagKey, description: `openfeature ${provider.metadata.name} (${settings.package})` }, scoped);
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => (closing ??= closeProvider(provider, scoped));
  return { checker, close };
}

/** A path (./…, ../…, /…) is the operator's own module, relative to the working directory; else an installed package. */
async function loadModule(name: string, load: ModuleLoader, cwd: string): Promise<Record<string, unknown>> {
  const isPath = name.startsWith('.') || path.isAbsolute(name);
  const specifier = isPath ? pathToFileURL(path.resolve(cwd, name)).href : name;
  try {
    return await load(specifier);
  } catch (error) {
    const install = isPath
      ? `check the path (relative to the working directory ${cwd})`
      : `install it beside ff-detector (npm install ${name}, in the folder whose node_modules holds ff-detector)`;
    throw new FfError('CONFIG_INVALID', `flags.openfeature.package: cannot load the OpenFeature provider "${name}" (${errorMessage(error)}): ${install}`, { cause: error });
  }
}

type ProviderClass = (new (...args: unknown[]) => unknown) & Record<string, unknown>;

function buildProvider(module: Record<string, unknown>, settings: OpenFeatureSettings): Provider {
  const exported = pickExport(module, settings);
  let built: unknown;
  try {
    if (settings.factory === null) {
      built = new exported(...settings.args);
    } else {
      const factory = exported[settings.factory];
      if (typeof factory !== 'function') throw new FfError('CONFIG_INVALID', `flags.openfeature.factory: ${settings.package} has no static method "${settings.factory}"`);
      built = (factory as (...args: unknown[]) => unknown).apply(exported, settings.args);
    }
  } catch (error) {
    if (error instanceof FfError) throw error;
    throw new FfError('CONFIG_INVALID', `flags.openfeature.args: the provider from ${settings.package} refused them: ${errorMessage(error)}`, { cause: error });
  }
  if (!isServerProvider(built)) {
    throw new FfError('CONFIG_INVALID', `flags.openfeature.package: what ${settings.package} built is not an OpenFeature server provider (no metadata.name or resolveBooleanEvaluation)`);
  }
  if (built.runsOn === 'client') {
    throw new FfError('CONFIG_INVALID', `flags.openfeature.package: ${settings.package} is a client (browser) provider; use the vendor's server provider`);
  }
  return built;
}

/** The configured export; else the default export if it is a class; else the one export named *Provider. */
function pickExport(module: Record<string, unknown>, settings: OpenFeatureSettings): ProviderClass {
  const names = Object.keys(module).filter((name) => typeof module[name] === 'function');
  const chosen = settings.export ?? (typeof module.default === 'function' ? 'default' : soleProviderExport(names));
  const exported = chosen === undefined ? undefined : module[chosen];
  if (typeof exported === 'function') return exported as ProviderClass;
  const option = settings.export === null ? 'flags.openfeature.export: must be set' : `flags.openfeature.export: ${settings.package} has no export "${settings.export}"`;
  throw new FfError('CONFIG_INVALID', `${option}; its exports: ${names.join(', ') || 'none'}`);
}

function soleProviderExport(names: readonly string[]): string | undefined {
  const providers = names.filter((name) => name.endsWith('Provider'));
  return providers.length === 1 ? providers[0] : undefined;
}

function isServerProvider(value: unknown): value is Provider {
  if (typeof value !== 'object' || value === null) return false;
  const candidate = value as { metadata?: { name?: unknown }; resolveBooleanEvaluation?: unknown };
  return typeof candidate.metadata?.name === 'string' && typeof candidate.resolveBooleanEvaluation === 'function';
}

async function waitUntilReady(ready: Promise<void>, settings: OpenFeatureSettings, logger: Logger): Promise<void> {
  try {
    // A failure after the timeout is the SDK's to record (the provider's status, ERROR or FATAL).
    if ((await within(ready, settings.readyTimeoutMs)) !== TIMED_OUT) logger.info('OpenFeature provider ready');
    else logger.warn(`the OpenFeature provider was not ready within ${settings.readyTimeoutMs} ms (flags.openfeature.readyTimeoutMs): its users are unevaluable until it is`);
  } catch (error) {
    logger.warn({ err: error }, `the OpenFeature provider failed to start (${errorMessage(error)}): its users are unevaluable until it recovers`);
  }
}

async function closeProvider(provider: Provider, logger: Logger): Promise<void> {
  if (!provider.onClose) return;
  try {
    if ((await within(provider.onClose(), CLOSE_TIMEOUT_MS)) === TIMED_OUT) logger.warn(`the OpenFeature provider did not close within ${CLOSE_TIMEOUT_MS} ms; going on`);
  } catch (error) {
    logger.warn({ err: error }, `closing the OpenFeature provider failed: ${errorMessage(error)}`);
  }
}

/** The SDK's and the provider's log lines go to our logger, scoped, instead of the console. */
function openFeatureLogger(logger: Logger): OpenFeatureLogger {
  const line = (level: 'error' | 'warn' | 'info' | 'debug') => (...args: unknown[]): void => logger[level](args.map((arg) => (typeof arg === 'string' ? arg : errorMessage(arg))).join(' '));
  return { error: line('error'), warn: line('warn'), info: line('info'), debug: line('debug') };
}
