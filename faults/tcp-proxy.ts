import net from 'node:net';

/** What the proxy does to the traffic it carries. */
export type TcpFault =
  | { kind: 'pass' }
  /** Every byte is held this long, each direction in order. */
  | { kind: 'latency'; ms: number }
  /** Bytes flow at most this fast, each direction. */
  | { kind: 'bandwidth'; bytesPerSecond: number }
  /** Nothing is forwarded either way and nothing closes: peers wait until their own timeouts. */
  | { kind: 'blackhole' }
  /** Requests reach the server, its answers are dropped: the server acted, the client never hears. */
  | { kind: 'drop-responses' };

/**
 * A TCP proxy on loopback for fault campaigns: `set()` changes what it does to the traffic from the
 * next chunk on; `reset()` destroys every open connection (new ones are accepted). Counts the
 * bytes it forwarded each way, so a campaign can inject a fault part-way through a transfer.
 */
export class FaultyTcpProxy {
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private fault: TcpFault = { kind: 'pass' };
  port = 0;
  bytesToServer = 0;
  bytesToClient = 0;
  /** Called after each chunk forwarded to the client (a campaign's trigger). */
  onResponseBytes: ((total: number) => void) | undefined;

  private constructor(private readonly target: { host: string; port: number }) {
    this.server = net.createServer((client) => this.accept(client));
  }

  static async start(target: { host: string; port: number }): Promise<FaultyTcpProxy> {
    const proxy = new FaultyTcpProxy(target);
    await new Promise<void>((resolve) => proxy.server.listen(0, '127.0.0.1', resolve));
    proxy.port = (proxy.server.address() as net.AddressInfo).port;
    return proxy;
  }

  set(fault: TcpFault): void {
    this.fault = fault;
  }

  /** Drops every open connection, as a server restart or a network reset does. */
  reset(): void {
    for (const socket of this.sockets) socket.destroy();
  }

  async close(): Promise<void> {
    this.reset();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: net.Socket): void {
    const upstream = net.connect(this.target);
    for (const socket of [client, upstream]) {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      socket.on('error', () => undefined);
    }
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    this.relay(client, upstream, 'request');
    this.relay(upstream, client, 'response');
  }

  /**
   * Forwards one direction through the current fault, keeping the order of chunks: a chunk is
   * written at its arrival + the latency, or after the previous one at the bandwidth, never before
   * the chunk ahead of it.
   */
  private relay(from: net.Socket, to: net.Socket, direction: 'request' | 'response'): void {
    let chain = Promise.resolve();
    let lastAt = 0;
    from.on('data', (chunk: Buffer) => {
      const fault = this.fault;
      if (fault.kind === 'blackhole' || (fault.kind === 'drop-responses' && direction === 'response')) return;
      const now = Date.now();
      const at =
        fault.kind === 'latency' ? Math.max(now + fault.ms, lastAt) : fault.kind === 'bandwidth' ? Math.max(now, lastAt) + (chunk.length / fault.bytesPerSecond) * 1000 : Math.max(now, lastAt);
      lastAt = at;
      chain = chain.then(async () => {
        const wait = at - Date.now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        if (to.destroyed) return;
        to.write(chunk);
        if (direction === 'request') this.bytesToServer += chunk.length;
        else {
          this.bytesToClient += chunk.length;
          this.onResponseBytes?.(this.bytesToClient);
        }
      });
    });
  }
}
