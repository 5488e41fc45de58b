import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { tempDir } from './files.js';
import { waitFor } from './services.js';
import { slotOf } from '../../src/state/valkey/slot.js';

const run = promisify(execFile);

interface Node {
  port: number;
  process: ChildProcess;
}

/**
 * A Valkey cluster of its own for one test (three primaries, three replicas on loopback), for the
 * faults that would disturb other tests on the shared cluster: killing a primary, resharding.
 * Node timeout 2 s, so a replica takes over within a few seconds.
 */
export class PrivateCluster {
  private readonly killed = new Set<number>();

  private constructor(
    private readonly nodes: Node[],
    private readonly tlsArgs: string[],
  ) {}

  /** With `tls`, every node (and the cluster bus, and replication) speaks TLS only. */
  static async start(basePort: number, tls?: { cert: string; key: string }): Promise<PrivateCluster> {
    const tlsArgs = tls ? ['--tls', '--cacert', tls.cert] : [];
    const dir = tempDir('ffd-cluster-');
    const nodes: Node[] = [];
    for (let port = basePort; port < basePort + 6; port++) {
      const nodeDir = path.join(dir, String(port));
      mkdirSync(nodeDir);
      const listen = tls
        ? ['--port', '0', '--tls-port', String(port), '--tls-cert-file', tls.cert, '--tls-key-file', tls.key, '--tls-ca-cert-file', tls.cert, '--tls-auth-clients', 'no', '--tls-cluster', 'yes', '--tls-replication', 'yes']
        : ['--port', String(port)];
      const child = spawn(
        'valkey-server',
        [...listen, '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--cluster-enabled', 'yes', '--cluster-node-timeout', '2000', '--cluster-replica-validity-factor', '0', '--dir', nodeDir],
        { stdio: 'ignore' },
      );
      nodes.push({ port, process: child });
    }
    const cluster = new PrivateCluster(nodes, tlsArgs);
    for (const node of nodes) await waitFor(async () => (await cluster.cli(node.port, 'PING').catch(() => '')) === 'PONG', `node ${node.port} to start`);
    await run('valkey-cli', [...tlsArgs, '--cluster', 'create', ...nodes.map((node) => `127.0.0.1:${node.port}`), '--cluster-replicas', '1', '--cluster-yes']);
    await cluster.waitUntilHealthy();
    return cluster;
  }

  /** A seed URL on a node that is alive (a killed one cannot seed a new client). */
  url(): string {
    return `redis://127.0.0.1:${this.alive()[0]?.port}`;
  }

  async cli(port: number, ...args: string[]): Promise<string> {
    return (await run('valkey-cli', [...this.tlsArgs, '-p', String(port), ...args])).stdout.trim();
  }

  /** Every slot served, and every replica in sync with its primary (else a failover loses data). */
  async waitUntilHealthy(): Promise<void> {
    await waitFor(async () => {
      const port = this.alive()[0]?.port as number;
      const info = await this.cli(port, 'CLUSTER', 'INFO').catch(() => '');
      if (!info.includes('cluster_state:ok') || !info.includes('cluster_slots_ok:16384')) return false;
      for (const node of this.alive()) {
        const replication = await this.cli(node.port, 'INFO', 'replication').catch(() => '');
        if (replication.includes('role:slave') && !replication.includes('master_link_status:up')) return false;
      }
      return true;
    }, 'the cluster to serve every slot with its replicas in sync', 30_000);
  }

  /** The port of the primary serving `key`. */
  async primaryOf(key: string): Promise<number> {
    const port = this.alive()[0]?.port as number;
    const slot = Number(await this.cli(port, 'CLUSTER', 'KEYSLOT', key));
    const nodes = (await this.cli(port, 'CLUSTER', 'NODES')).split('\n');
    for (const line of nodes) {
      const [, address, flags, , , , , , ...ranges] = line.split(' ');
      if (!flags?.includes('master') || flags.includes('fail')) continue;
      for (const range of ranges) {
        const [from, to = from] = range.split('-').map(Number);
        if (from !== undefined && to !== undefined && slot >= from && slot <= to) return Number(address?.split(':')[1]?.split('@')[0]);
      }
    }
    throw new Error(`no primary serves ${key} (slot ${slot})`);
  }

  async nodeId(port: number): Promise<string> {
    return this.cli(port, 'CLUSTER', 'MYID');
  }

  /** SIGKILL of one node: its replica is promoted after the node timeout. */
  kill(port: number): void {
    this.killed.add(port);
    this.nodes.find((node) => node.port === port)?.process.kill('SIGKILL');
  }

  /** Moves `slots` slots (lowest first) from one primary to another, live. */
  async reshard(fromPort: number, toPort: number, slots: number): Promise<void> {
    const [from, to] = [await this.nodeId(fromPort), await this.nodeId(toPort)];
    await run('valkey-cli', [...this.tlsArgs, '--cluster', 'reshard', `127.0.0.1:${fromPort}`, '--cluster-from', from, '--cluster-to', to, '--cluster-slots', String(slots), '--cluster-yes']);
  }

  async primaries(): Promise<number[]> {
    const port = this.alive()[0]?.port as number;
    return (await this.cli(port, 'CLUSTER', 'NODES'))
      .split('\n')
      .filter((line) => line.includes('master') && !line.includes('fail'))
      .map((line) => Number(line.split(' ')[1]?.split(':')[1]?.split('@')[0]));
  }

  stop(): void {
    for (const node of this.nodes) node.process.kill('SIGKILL');
  }

  private alive(): Node[] {
    return this.nodes.filter((node) => !this.killed.has(node.port) && node.process.exitCode === null);
  }
}

/** A hash tag whose keys all fall in `slot`. */
export function tagInSlot(slot: number, prefix = 'ffd'): string {
  for (let i = 0; ; i++) if (slotOf(`${prefix}${i}`) === slot) return `{${prefix}${i}}`;
}
