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
  const confirmed = matches.filter((match) => match.known + match.loaded > 0).sort((a, b) => share(b) - share(a) || a.path.localeCompare(b.path));
  const evidence = confirmed.map((match) => `${match.known} known and ${match.loaded} loaded users among ${match.sampled} sampled IDs at ${match.path}`);
  const best = confirmed[0];
  if (!best) return { ...report, knownIdMatches: matches, verdict: { ...report.verdict, evidence: [...report.verdict.evidence, ...evidence] } };
  // Values that are users the detector or the worker knows settle the question, UUIDs included.
  const previous = report.userIdField;
  const runnerUp = previous && previous.path !== best.path ? { path: previous.path, reason: previous.reason } : (previous?.runnerUp ?? null);
  const userIdField = { path: best.path, confidence: 'high' as const, reason: `${best.known + best.loaded} of ${best.sampled} sampled values are users the known set or loaded_users holds`, runnerUp };
  const mapping = report.mapping ? { ...report.mapping, usersPath: best.path } : null;
  // A field of confirmed users in most documents about the flag enumerates them: feasible.
  const presence = report.fields.find((field) => field.path === best.path || `${field.path}[*]` === best.path)?.presencePercent ?? 0;
  const feasible = report.verdict.result === 'unclear' && report.flagDocuments > 0 && presence >= 50;
  const verdict = {
    result: feasible ? ('feasible' as const) : report.verdict.result,
    evidence: [...report.verdict.evidence, ...evidence, ...(feasible ? [`users confirmed by the known set at ${best.path}, present in ${presence}% of the documents`] : [])],
  };
  return { ...report, userIdField, mapping, knownIdMatches: matches, verdict };
}

function share(match: KnownIdMatch): number {
  return (match.known + match.loaded) / Math.max(1, match.sampled);
}
