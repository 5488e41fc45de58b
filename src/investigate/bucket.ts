import type { ObjectInfo, ObjectStore } from '../inputs/object-store.js';
import { analyze, type Report, type Sample } from './analyze.js';

export interface KeyPattern {
  pattern: string;
  objects: number;
  bytes: number;
}

export interface BucketReport extends Report {
  bucket: string;
  prefix: string;
  objects: number;
  totalBytes: number;
  lastModified: { oldest: string | null; newest: string | null };
  keyPatterns: KeyPattern[];
  /** Sampled objects whose key or content mentions the target flag. */
  flagObjects: string[];
  sampledObjects: string[];
}

/** Bytes read from one object at most: investigation looks at samples, not archives. */
const MAX_OBJECT_BYTES = 16 * 1024 * 1024;

/**
 * Lists the bucket (at most `maxObjects`), generalises keys into patterns, samples objects (those
 * whose key names the flag first, then a spread of the rest), and analyses their content.
 */
export async function investigateBucket(
  store: ObjectStore,
  options: { bucket: string; prefix: string; maxObjects: number; sampleObjects: number; flag: string; idPattern: RegExp; showValues?: boolean; idValues?: Map<string, string[]> },
): Promise<BucketReport> {
  const objects = await store.list(options.bucket, options.prefix, options.maxObjects);
  const chosen = chooseSamples(objects, options.flag, options.sampleObjects);
  const samples: Array<Sample & { key: string }> = [];
  for (const object of chosen) samples.push({ key: object.key, value: await readCapped(store, options.bucket, object.key), where: `s3://${options.bucket}/${object.key}` });
  const report = analyze(samples, { source: `s3://${options.bucket}/${options.prefix}`, flag: options.flag, idPattern: options.idPattern, showValues: options.showValues ?? false, idValues: options.idValues });
  const times = objects.map((o) => o.lastModified?.getTime()).filter((t): t is number => t !== undefined);
  const patterns = keyPatterns(objects);
  const flagObjects = samples.filter((s) => namesFlag(s.key, options.flag) || report.flagSampleKeys.includes(s.key)).map((s) => s.key);
  return {
    ...report,
    ...withObjects(report, patterns, flagObjects, options.flag),
    bucket: options.bucket,
    prefix: options.prefix,
    objects: objects.length,
    totalBytes: objects.reduce((sum, o) => sum + o.size, 0),
    lastModified: { oldest: times.length ? new Date(Math.min(...times)).toISOString() : null, newest: times.length ? new Date(Math.max(...times)).toISOString() : null },
    keyPatterns: patterns,
    // Named by its key as a whole word (not `…_v2`), or about the flag once decompressed and parsed.
    flagObjects,
    sampledObjects: chosen.map((o) => o.key),
  };
}

/** A dated key: `2026-11-29`, `2026/11/29`, `20261129`, or an epoch in seconds or milliseconds. */
const DATED = /\{n\}[-/]\{n\}[-/]\{n\}|(^|\/)\{n\}\.|snapshot-\{n\}/;

/**
 * Which objects a feed reads: the key pattern of those about the flag; only the newest of dated
 * snapshots; and whether the key alone links them to the flag (their content never names it).
 */
function withObjects(report: Report, patterns: KeyPattern[], flagObjects: string[], flag: string): Pick<Report, 'mapping'> {
  if (!report.mapping && flagObjects.length === 0) return { mapping: null };
  const mapping = report.mapping ?? linkedOnlyMapping();
  const generalised = flagObjects.map((key) => generalise(key));
  const keyPattern = patterns.find((p) => generalised.includes(p.pattern))?.pattern ?? generalised[0] ?? '';
  const linkedByKey = flagObjects.length > 0 && flagObjects.every((key) => namesFlag(key, flag) && !report.flagSampleKeys.includes(key));
  return { mapping: { ...mapping, objects: { keyPattern, newest: DATED.test(keyPattern), linkedByKey } } };
}

/** A bucket whose objects are linked to the flag by their key only: the users are their content. */
function linkedOnlyMapping(): NonNullable<Report['mapping']> {
  return { kind: 'snapshot', flagNamePath: null, usersPath: null, usersSeparator: null, percentagePath: null, enabledPath: null, operationPath: null, addValues: [], removeValues: [], filters: [] };
}

/** The key pattern of one key, as keyPatterns() generalises them. */
function generalise(key: string): string {
  return key
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi, '{uuid}')
    .replace(/\b[0-9a-f]{16,}\b/gi, '{hex}')
    .replace(/\d+/g, '{n}');
}

/** The key names the flag as a whole word: `flags/consumer_graph_ingestion.json`, not `…_v2.json`. */
export function namesFlag(key: string, flag: string): boolean {
  const escaped = flag.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`(^|[^A-Za-z0-9_])${escaped}([^A-Za-z0-9_]|$)`).test(key);
}

function chooseSamples(objects: ObjectInfo[], flag: string, count: number): ObjectInfo[] {
  const named = objects.filter((o) => namesFlag(o.key, flag));
  const others = objects.filter((o) => !namesFlag(o.key, flag));
  const step = Math.max(1, Math.floor(others.length / Math.max(1, count - named.length)));
  return [...named, ...others.filter((_, i) => i % step === 0)].slice(0, count);
}

async function readCapped(store: ObjectStore, bucket: string, key: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of await store.open({ bucket, key })) {
    chunks.push(chunk);
    size += chunk.length;
    if (size >= MAX_OBJECT_BYTES) break;
  }
  return Buffer.concat(chunks);
}

/**
 * Keys generalised into patterns: numbers become {n}, UUIDs {uuid}, long hex {hex}; in a folder
 * holding objects of several names with one extension, the file name becomes {name}.
 */
export function keyPatterns(objects: ObjectInfo[]): KeyPattern[] {
  const generalised = objects.map((o) => ({ ...o, pattern: generalise(o.key) }));
  const names = new Map<string, Set<string>>();
  for (const { pattern } of generalised) {
    const group = folderAndExtension(pattern);
    names.set(group, (names.get(group) ?? new Set()).add(pattern));
  }
  const patterns = new Map<string, KeyPattern>();
  for (const object of generalised) {
    const group = folderAndExtension(object.pattern);
    const pattern = (names.get(group)?.size ?? 0) > 1 ? group.replace('\u0000', '{name}') : object.pattern;
    const entry = patterns.get(pattern) ?? { pattern, objects: 0, bytes: 0 };
    entry.objects++;
    entry.bytes += object.size;
    patterns.set(pattern, entry);
  }
  return [...patterns.values()].sort((a, b) => b.objects - a.objects);
}

/** `flags/x.json` → `flags/\0.json`: the folder and extension with a placeholder for the name. */
function folderAndExtension(key: string): string {
  const slash = key.lastIndexOf('/');
  const file = key.slice(slash + 1);
  const dot = file.indexOf('.');
  return `${key.slice(0, slash + 1)}\u0000${dot === -1 ? '' : file.slice(dot)}`;
}
