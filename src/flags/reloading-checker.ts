import { stat } from 'node:fs/promises';
import { errorMessage } from '../errors.js';
import { parseS3Uri } from '../inputs/object-store.js';
import type { InputDeps } from '../inputs/open-input.js';
import type { Logger } from '../logger.js';
import type { FlagSnapshot } from './snapshot.js';
import type { FlagChecker, FlagResult } from './types.js';

/**
 * The rules checker for a long-running process: `refresh()` reloads the snapshot when any of its
 * sources changed (S3 ETag, or a local file's mtime and size) and keeps serving the previous one
 * when the new one fails to load, so a bad edit never stops detection. The CLI reads the rules
 * once per run instead.
 */
export class ReloadingRulesChecker implements FlagChecker {
  private current: { snapshot: FlagSnapshot; version: string } | undefined;

  constructor(
    private readonly load: () => Promise<FlagSnapshot>,
    private readonly deps: InputDeps,
    private readonly logger: Logger,
  ) {}

  get description(): string {
    return this.current?.snapshot.describe() ?? 'rules (not loaded)';
  }

  /**
   * Loads the first snapshot (errors propagate), then reloads only on change. Returns whether a
   * new snapshot was loaded.
   */
  async refresh(): Promise<boolean> {
    if (!this.current) {
      const snapshot = await this.load();
      this.current = { snapshot, version: await versionOf(snapshot.sources, this.deps) };
      return true;
    }
    try {
      const version = await versionOf(this.current.snapshot.sources, this.deps);
      if (version === this.current.version) return false;
      const snapshot = await this.load();
      this.current = { snapshot, version: await versionOf(snapshot.sources, this.deps) };
      this.logger.info({ sources: snapshot.sources }, `flag rules reloaded: ${snapshot.describe()}`);
      return true;
    } catch (error) {
      this.logger.error({ err: error }, `flag rules could not be reloaded; still using the previous ones: ${errorMessage(error)}`);
      return false;
    }
  }

  /** The rules in use (undefined before the first load). */
  get snapshot(): FlagSnapshot | undefined {
    return this.current?.snapshot;
  }

  async check(userIds: readonly string[]): Promise<FlagResult[]> {
    if (!this.current) await this.refresh();
    return (this.current as { snapshot: FlagSnapshot }).snapshot.evaluateBatch(userIds);
  }
}

/** A fingerprint of every source: S3 ETags, local mtime and size. */
async function versionOf(sources: readonly string[], deps: InputDeps): Promise<string> {
  const parts = await Promise.all(
    sources.map(async (location) => {
      if (location.startsWith('s3://')) return deps.objectStore ? deps.objectStore.etag(parseS3Uri(location)) : '';
      const info = await stat(location);
      return `${info.mtimeMs}:${info.size}`;
    }),
  );
  return parts.join('|');
}
