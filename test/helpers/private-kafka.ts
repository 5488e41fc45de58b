import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, openSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { tempDir } from './files.js';
import { waitFor } from './services.js';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');
/** The broker's jars, fetched by `scripts/services.sh up kafka` (scripts/kafka/pom.xml). */
const LIB = path.join(ROOT, '.cache/kafka/lib');

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

/**
 * A single-node KRaft broker of its own for one test file (PLAINTEXT only, its data in a temporary
 * folder), for faults that would disturb every other file on the shared broker: restarting it.
 * Unlike `scripts/services.sh up kafka`, which formats a fresh cluster at each start, a restart
 * here keeps the data (topics, messages, committed offsets), as a real broker restart does.
 */
export class PrivateKafka {
  private process: ChildProcess | undefined;

  private constructor(
    private readonly dir: string,
    readonly port: number,
  ) {}

  static async start(): Promise<PrivateKafka> {
    if (!existsSync(path.join(LIB, 'kafka_2.13-4.4.0.jar'))) throw new Error(`the Kafka jars are missing from ${LIB}: run scripts/services.sh up kafka`);
    const [port, controllerPort] = [await freePort(), await freePort()];
    const dir = tempDir('ffd-kafka-');
    const properties = [
      'process.roles=broker,controller',
      'node.id=1',
      `controller.quorum.voters=1@127.0.0.1:${controllerPort}`,
      `listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
      `advertised.listeners=PLAINTEXT://127.0.0.1:${port}`,
      'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
      'controller.listener.names=CONTROLLER',
      'inter.broker.listener.name=PLAINTEXT',
      'num.partitions=1',
      'offsets.topic.replication.factor=1',
      'offsets.topic.num.partitions=1',
      'transaction.state.log.replication.factor=1',
      'transaction.state.log.min.isr=1',
      'group.initial.rebalance.delay.ms=0',
      'auto.create.topics.enable=false',
      `log.dirs=${path.join(dir, 'data')}`,
    ];
    writeFileSync(path.join(dir, 'server.properties'), `${properties.join('\n')}\n`);
    const classpath = `${LIB}/*`;
    const { stdout: clusterId } = await run('java', ['-cp', classpath, 'kafka.tools.StorageTool', 'random-uuid']);
    await run('java', ['-cp', classpath, 'kafka.tools.StorageTool', 'format', '-t', clusterId.trim(), '-c', path.join(dir, 'server.properties')]);
    const broker = new PrivateKafka(dir, port);
    await broker.up();
    return broker;
  }

  brokers(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Stops the broker (SIGTERM: a controlled shutdown, as `services.sh down` does) and starts it again on the same data. */
  async restart(): Promise<{ downMs: number; upMs: number }> {
    const started = Date.now();
    await this.down();
    const down = Date.now();
    await this.up();
    return { downMs: down - started, upMs: Date.now() - down };
  }

  async stop(): Promise<void> {
    await this.down('SIGKILL');
  }

  private async up(): Promise<void> {
    const log = openSync(path.join(this.dir, 'kafka.log'), 'a');
    this.process = spawn(
      'java',
      ['-Xms64m', '-Xmx256m', `-Dkafka.logs.dir=${path.join(this.dir, 'logs')}`, `-Dlog4j2.configurationFile=${path.join(ROOT, 'scripts/kafka/log4j2.properties')}`, '-cp', `${LIB}/*`, 'kafka.Kafka', path.join(this.dir, 'server.properties')],
      { stdio: ['ignore', log, log] },
    );
    const ready = path.join(ROOT, 'scripts/kafka/ready.mjs');
    await waitFor(
      async () => {
        if (this.process?.exitCode !== null) throw new Error(`the private broker exited; see ${path.join(this.dir, 'kafka.log')}`);
        return run(process.execPath, [ready, this.brokers()], { cwd: ROOT }).then(
          () => true,
          () => false,
        );
      },
      'the private broker to answer',
      60_000,
    );
  }

  private async down(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.process;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    await exited;
    clearTimeout(timer);
  }
}
