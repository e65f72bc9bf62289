import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CLI, TEST_ENV, isFree } from './server.ts';

/** Every port the replication tests open (NATS and haarseek) comes from this range. */
const RANGE = { from: 25_000, to: 25_999 };
const taken = new Set<number>();

/** A free port of the replication tests' range, never handed out twice in one run. */
export async function rangePort(): Promise<number> {
  for (let attempt = 0; attempt < 500; attempt++) {
    const port = RANGE.from + Math.floor(Math.random() * (RANGE.to - RANGE.from));
    if (taken.has(port)) continue;
    taken.add(port);
    if (await isFree(port)) return port;
  }
  throw new Error('no free port in 25000-25999');
}

export const NATS_SERVER = process.env.NATS_SERVER ?? '/usr/sbin/nats-server';

interface NatsNode {
  name: string;
  clientPort: number;
  clusterPort: number;
  monitorPort: number;
  storeDir: string;
  child: ChildProcess | null;
  output: string;
}

/** Real nats-server processes with JetStream: one node, or a cluster of three on loopback. */
export class NatsCluster {
  private constructor(readonly nodes: NatsNode[], private readonly routes: string) {}

  static async start(dir: string, size: 1 | 3): Promise<NatsCluster> {
    const nodes: NatsNode[] = [];
    for (let i = 0; i < size; i++) {
      nodes.push({ name: `n${i + 1}`, clientPort: await rangePort(), clusterPort: await rangePort(), monitorPort: await rangePort(), storeDir: join(dir, `nats-n${i + 1}`), child: null, output: '' });
    }
    const cluster = new NatsCluster(nodes, nodes.map((n) => `nats://127.0.0.1:${n.clusterPort}`).join(','));
    for (let i = 0; i < size; i++) cluster.spawn(i);
    await cluster.waitReady();
    return cluster;
  }

  get urls(): string[] {
    return this.nodes.map((n) => `nats://127.0.0.1:${n.clientPort}`);
  }

  private spawn(i: number): void {
    const n = this.nodes[i];
    mkdirSync(n.storeDir, { recursive: true });
    const args = ['-js', '-sd', n.storeDir, '-a', '127.0.0.1', '-p', String(n.clientPort), '-m', String(n.monitorPort), '--server_name', n.name];
    if (this.nodes.length > 1) args.push('--cluster_name', 'haarseek-test', '--cluster', `nats://127.0.0.1:${n.clusterPort}`, '--routes', this.routes);
    const child = spawn(NATS_SERVER, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    n.output = '';
    child.stdout!.on('data', (d) => (n.output += d));
    child.stderr!.on('data', (d) => (n.output += d));
    n.child = child;
  }

  /** Every running node answers /healthz (JetStream ready, a meta leader elected). */
  async waitReady(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (const n of this.nodes) {
      if (!n.child) continue;
      for (;;) {
        try {
          const res = await fetch(`http://127.0.0.1:${n.monitorPort}/healthz`);
          if (res.ok) break;
        } catch {
          // not listening yet
        }
        if (Date.now() > deadline) throw new Error(`nats ${n.name} not ready after ${timeoutMs} ms:\n${n.output.slice(-2000)}`);
        await sleep(100);
      }
    }
  }

  async kill(i: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.nodes[i].child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill(signal);
    await exited;
    this.nodes[i].child = null;
  }

  async restart(i: number): Promise<void> {
    this.spawn(i);
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((_, i) => this.kill(i, 'SIGTERM')));
  }
}

export interface ReplicaProcess {
  port: number;
  child: ChildProcess;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Spawns `haarseek replica`; waitHealthy: until /health answers 200 (it holds a local copy). */
export async function startReplica(dataDir: string, urls: string[], opts: { stream?: string; port?: number; waitHealthy?: boolean; extraArgs?: string[] } = {}): Promise<ReplicaProcess> {
  const port = opts.port ?? (await rangePort());
  const args = [CLI, 'replica', ...urls.flatMap((u) => ['--nats', u]), '--data', dataDir, '--port', String(port), '--log-level', 'info'];
  if (opts.stream) args.push('--nats-stream', opts.stream);
  args.push(...(opts.extraArgs ?? []));
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: TEST_ENV });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const proc = { port, child, output: () => out, exited };
  if (opts.waitHealthy !== false) {
    await until(async () => {
      if (child.exitCode !== null) throw new Error(`replica exited ${child.exitCode}: ${out}`);
      const res = await fetch(`http://127.0.0.1:${port}/health`).catch(() => null);
      return res?.ok === true;
    }, 60_000, () => `replica not healthy: ${out.slice(-3000)}`);
  }
  return proc;
}

/** Polls until test() holds, every 50 ms, within a generous bound (a loaded 2-core box). */
export async function until(test: () => boolean | Promise<boolean>, timeoutMs: number, message: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await test()) return;
    if (Date.now() > deadline) throw new Error(message());
    await sleep(50);
  }
}
