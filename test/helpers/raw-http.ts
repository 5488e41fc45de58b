import net from 'node:net';

/**
 * Sends raw bytes to an HTTP server and resolves with the status code of the first response, or
 * 'closed' when the server closed the connection without one. For requests no HTTP client can
 * send (malformed request lines, bad headers, truncated bodies).
 */
export function rawRequest(port: number, bytes: string | Buffer, options: { timeoutMs?: number; endAfterWrite?: boolean } = {}): Promise<number | 'closed' | 'timeout'> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let received = '';
    const finish = (result: number | 'closed' | 'timeout'): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => finish('timeout'), options.timeoutMs ?? 5000);
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1');
      const match = /^HTTP\/1\.[01] (\d{3})/.exec(received);
      if (match) finish(Number(match[1]));
    });
    socket.on('close', () => finish('closed'));
    socket.write(bytes, () => {
      if (options.endAfterWrite) socket.end();
    });
  });
}
