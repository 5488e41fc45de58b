import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

// A minimal flag service for the http checker benchmark, run as its own process so that it does
// not share the checker's event loop: GET /flags/:flag/users/:id and POST /batch, even IDs on.
const enabled = (id: string): boolean => Number(id.replace(/\D/g, '')) % 2 === 0;

const server = createServer((req, res) => {
  const single = /^\/flags\/[^/]+\/users\/([^/]+)$/.exec(req.url ?? '');
  if (single) {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ enabled: enabled(decodeURIComponent(single[1] as string)) }));
    return;
  }
  let body = '';
  req.on('data', (chunk: Buffer) => (body += chunk));
  req.on('end', () => {
    const { userIds } = JSON.parse(body) as { userIds: string[] };
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ results: Object.fromEntries(userIds.map((id) => [id, { enabled: enabled(id) }])) }));
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => process.stdout.write(`${(server.address() as AddressInfo).port}\n`));
