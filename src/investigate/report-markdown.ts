import type { Report } from './analyze.js';
import type { BucketReport } from './bucket.js';

/** The report for people: what is in there, where the flag and its users live, and the verdict. */
export function renderMarkdown(report: Report, strategy: string): string {
  const lines: string[] = [];
  lines.push(`# Investigation of ${report.source}`, '');
  lines.push(`Target flag: \`${report.flag}\` · ${report.samples} samples · ${report.documents} structured documents · ${report.flagDocuments} about the flag`, '');
  lines.push(`## Verdict for ${strategy}: **${report.verdict.result}**`, '');
  for (const item of report.verdict.evidence) lines.push(`- ${item}`);
  lines.push('');
  if (report.mapping) {
    lines.push('Mapping for the experimental strategy:', '', '```yaml', 'mapping:');
    // JSON is valid YAML: strings quoted, lists and filters as they are.
    for (const [key, value] of Object.entries(report.mapping)) lines.push(`  ${key}: ${JSON.stringify(value)}`);
    lines.push('```', '');
  }
  lines.push('## Encodings', '', '| encoding | samples |', '|---|---|');
  for (const [encoding, count] of Object.entries(report.encodings)) lines.push(`| ${encoding} | ${count} |`);
  if (report.schemaIds.length > 0) lines.push('', `Confluent schema ids: ${report.schemaIds.join(', ')}`);
  lines.push('', `Keys: ${report.keys.distinct} distinct${report.keys.examples.length ? ` (e.g. ${report.keys.examples.map((k) => `\`${k}\``).join(', ')})` : ''}`, '');
  lines.push('## Where things are', '');
  lines.push(`- flag name: ${list(report.flagPaths)}`);
  lines.push(`- per-user lists: ${list(report.userListPaths.map((p) => `${p.path} (${p.percentOfFlagDocuments}%)`))}`);
  if (report.userIdField) {
    const { path, confidence, reason, runnerUp } = report.userIdField;
    lines.push(`- user IDs: \`${path}\`, ${confidence} confidence (${reason})${runnerUp ? `; runner-up \`${runnerUp.path}\` (${runnerUp.reason})` : ''}`);
  }
  if (report.nearMisses.length > 0) lines.push(`- other flags with a similar name (not evidence): ${list(report.nearMisses)}`);
  if (report.malformed.count > 0) lines.push(`- malformed samples: ${report.malformed.count} (${report.malformed.examples.map((m) => `${m.where}: ${m.problem}`).join('; ')})`);
  lines.push(`- percentages: ${list(report.percentagePaths)}`);
  lines.push(`- on/off switches: ${list(report.booleanPaths)}`);
  lines.push(`- rules and segments: ${list(report.rulePaths)}`);
  lines.push(`- timestamps: ${list(report.timestampPaths)}`, '');
  lines.push('## Fields', '', '| path | present % | null % | types | distinct | examples |', '|---|---|---|---|---|---|');
  for (const field of report.fields) {
    const types = Object.entries(field.types).map(([type, n]) => `${type} ${n}`).join(', ');
    lines.push(`| \`${field.path}\` | ${field.presencePercent} | ${field.nullPercent} | ${types} | ${field.distinct} | ${field.examples.map((e) => `\`${e.replaceAll('|', '\\|')}\``).join(' ')} |`);
  }
  return `${lines.join('\n')}\n`;
}

function list(items: string[]): string {
  return items.length === 0 ? 'none found' : items.map((item) => `\`${item}\``).join(', ');
}

/** The bucket report: what the bucket holds, then the content report and strategy C's verdict. */
export function renderBucketMarkdown(report: BucketReport): string {
  const lines = [
    `# Bucket s3://${report.bucket}/${report.prefix}`,
    '',
    `${report.objects} objects, ${report.totalBytes} bytes, last modified ${report.lastModified.oldest ?? '-'} … ${report.lastModified.newest ?? '-'}; ${report.sampledObjects.length} sampled.`,
    '',
    '| key pattern | objects | bytes |',
    '|---|---|---|',
    ...report.keyPatterns.map((p) => `| \`${p.pattern}\` | ${p.objects} | ${p.bytes} |`),
    '',
    `Objects mentioning \`${report.flag}\`: ${report.flagObjects.length === 0 ? 'none sampled' : report.flagObjects.map((key) => `\`${key}\``).join(', ')}`,
    '',
  ];
  return `${lines.join('\n')}\n${renderMarkdown(report, 'strategy C (s3-bucket)')}`;
}
