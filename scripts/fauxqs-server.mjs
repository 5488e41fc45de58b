// Starts the fauxqs SQS/S3 emulator for tests and benchmarks, without per-request logging
// (its CLI logs every request, which slows it and fills the log), on loopback only: it has no
// authentication, so it must not be reachable from other machines. startFauxqs() always listens
// on every interface, so its app is built and bound here instead (the same app and stores).
import { buildApp } from 'fauxqs';

const port = Number(process.env.FAUXQS_PORT ?? 14566);
const app = buildApp({ logger: false });
const address = await app.listen({ port, host: '127.0.0.1' });
process.stderr.write(`fauxqs listening on ${address}\n`);
