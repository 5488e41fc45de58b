import type { KnownUsers } from '../state/types.js';
import type { KnownIdMatch, Report } from './analyze.js';

/**
 * Confirms ID-looking fields by looking their sampled values up in the known set and
 * `loaded_users`: a field whose values are users the detector or the worker already knows is a
 * user-ID field beyond doubt. Adds the matches and a line of evidence to the report.
 */
export async function matchKnownIds(report: Report, idValues: Map<string, string[]>, users: KnownUsers): Promise<Report> {
  const matches: KnownIdMatch[] = [];
  for (const [path, values] of idValues) {
    const [known, loaded] = await Promise.all([users.areKnown(values), users.areLoaded(values)]);
    matches.push({ path, sampled: values.length, known: known.filter(Boolean).length, loaded: loaded.filter(Boolean).length });
  }
  const confirmed = matches.filter((match) => match.known + match.loaded > 0);
  const evidence = confirmed.map((match) => `${match.known} known and ${match.loaded} loaded users among ${match.sampled} sampled IDs at ${match.path}`);
  return { ...report, knownIdMatches: matches, verdict: { ...report.verdict, evidence: [...report.verdict.evidence, ...evidence] } };
}
