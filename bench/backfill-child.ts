import { benchBackfillThroughput } from './backfill.js';

// Runs the sender-vs-plain-loop comparison in a process of its own, so that neither side pays for
// the garbage earlier benchmark steps left in the parent's heap. Arguments: endpoint users concurrency.
const [endpoint, users, concurrency] = process.argv.slice(2) as [string, string, string];
process.stdout.write(`${JSON.stringify(await benchBackfillThroughput(endpoint, Number(users), Number(concurrency)))}\n`);
