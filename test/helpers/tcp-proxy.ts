import net from 'node:net';

/**
 * A TCP proxy in front of a real server, to make it unreachable mid-test: `cut()` drops every
 * connection and refuses new ones; `restore()` lets traffic through again.
 */
export class TcpProxy {
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private blocked = false;
  private stalled = false;
  port = 0;
  /** Bytes received on stalled connections: a request is hanging once this is above 0. */
  stalledBytes = 0;

  constructor(private readonly target: { host: string; port: number }) {
    this.server = net.createServer((client) => {
      if (this.blocked) return client.destroy();
      if (this.stalled) {
        // Accept and hold the connection, answering nothing: a peer that hangs.
        this.sockets.add(client);
        client.on('close', () => this.sockets.delete(client));
        client.on('error', () => undefined);
        client.on('data', (chunk: Buffer) => (this.stalledBytes += chunk.length));
        return;
      }
      const upstream = net.connect(this.target);
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.on('close', () => this.sockets.delete(socket));
        socket.on('error', () => undefined);
      }
      client.pipe(upstream);
      upstream.pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
  }

  static async start(targetUrl: string): Promise<TcpProxy> {
    const url = new URL(targetUrl);
    const proxy = new TcpProxy({ host: url.hostname, port: Number(url.port) });
    await new Promise<void>((resolve) => proxy.server.listen(0, '127.0.0.1', resolve));
    proxy.port = (proxy.server.address() as net.AddressInfo).port;
    return proxy;
  }

  /** The target URL with host and port replaced by the proxy's. */
  url(targetUrl: string): string {
    const url = new URL(targetUrl);
    url.hostname = '127.0.0.1';
    url.port = String(this.port);
    return url.toString().replace(/\/$/, '');
  }

  cut(): void {
    this.blocked = true;
    for (const socket of this.sockets) socket.destroy();
  }

  /** New connections are accepted and never answered; existing ones are dropped. */
  stall(): void {
    this.stalled = true;
    for (const socket of this.sockets) socket.destroy();
  }

  restore(): void {
    this.blocked = false;
    this.stalled = false;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
