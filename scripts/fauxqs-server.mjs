// Starts the fauxqs SQS/S3 emulator for tests and benchmarks, without per-request logging
// (its CLI logs every request, which slows it and fills the log).
import { startFauxqs } from 'fauxqs';

const port = Number(process.env.FAUXQS_PORT ?? 14566);
await startFauxqs({ port, logger: false });
process.stderr.write(`fauxqs listening on ${port}\n`);
