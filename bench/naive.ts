import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { Valkey } from 'iovalkey';
import { loadFlagRules } from '../src/flags/load-rules.js';
import { silentLogger } from '../src/logger.js';
import { DEFAULT_ID_PATTERN } from '../src/config/schema.js';
import { FLAG } from './fixtures.js';

/**
 * The same work done the obvious way: read a line, validate, evaluate the flag, then one awaited
 * SISMEMBER and one awaited EXISTS per user. Measured on the first `sample` candidates.
 */
export async function runNaive(options: { valkeyUrl: string; knownSetKey: string; candidatesFile: string; rulesFile: string; sample: number }): Promise<number> {
  const idPattern = new RegExp(DEFAULT_ID_PATTERN);
  const snapshot = await loadFlagRules({ location: options.rulesFile, expectedFlag: FLAG, idPattern, logger: silentLogger() });
  const valkey = new Valkey(options.valkeyUrl);
  const lines = createInterface({ input: createReadStream(options.candidatesFile), crlfDelay: Infinity });
  let processed = 0;
  let toSend = 0;
  const started = performance.now();
  for await (const line of lines) {
    const id = line.trim();
    if (!idPattern.test(id)) continue;
    const result = snapshot.evaluate(id);
    const known = (await valkey.sismember(options.knownSetKey, id)) === 1;
    const loaded = (await valkey.exists(`bench:loaded:${id}`)) === 1;
    if (result === 'enabled' && !known && !loaded) toSend++;
    if (++processed >= options.sample) break;
  }
  const seconds = (performance.now() - started) / 1000;
  lines.close();
  await valkey.quit();
  if (toSend === 0) throw new Error('naive bench found nothing to send: fixtures are wrong');
  return processed / seconds;
}
