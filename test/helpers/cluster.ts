import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { findNginx } from '../../src/cluster/nginx.ts';
import { TEST_ENV, freePort, freePortRun } from './server.ts';
import { REPO_ROOT } from './paths.ts';

export const NGINX_INSTALLED = findNginx() !== null;

export interface ClusterProcess {
  child: ChildProcess;
  dataDir: string;
  frontUrl: string;
  writerUrl: string;
  readerPorts: number[];
  writerPort: number;
  /** The supervisor's /metrics. */
  metricsPort: number;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts the compiled launch-cluster as `npm start` does, on free ports; resolves once it says it is up. */
export async function startCluster(
  dataDir: string,
  opts: { readers?: number; extraArgs?: string[]; readerBasePort?: number; waitUp?: boolean } = {},
): Promise<ClusterProcess> {
  const readers = opts.readers ?? 2;
  const frontPort = await freePort();
  const writerPort = await freePort();
  const metricsPort = await freePort();
  const readerBasePort = opts.readerBasePort ?? (await freePortRun(readers));
  const args = [
    join(REPO_ROOT, 'dist/launch-cluster.js'),
    '--data', dataDir, '--readers', String(readers), '--port', String(frontPort),
    '--writer-port', String(writerPort), '--metrics-port', String(metricsPort), '--reader-base-port', String(readerBasePort),
    '--log-level', 'info', '--health-interval-ms', '300', ...(opts.extraArgs ?? []),
  ];
  const child = spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: TEST_ENV });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const cluster: ClusterProcess = {
    child,
    dataDir,
    frontUrl: `http://127.0.0.1:${frontPort}/RPC`,
    writerUrl: `http://127.0.0.1:${writerPort}/RPC`,
    readerPorts: Array.from({ length: readers }, (_, i) => readerBasePort + i),
    writerPort,
    metricsPort,
    output: () => out,
    exited,
  };
  if (opts.waitUp !== false) await waitFor(() => out.includes('haarseek cluster is up'), 60_000, () => `cluster did not come up:\n${out}`, child);
  return cluster;
}

export async function waitFor(test: () => boolean | Promise<boolean>, timeoutMs: number, message: () => string, child?: ChildProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await test()) return;
    if (child && child.exitCode !== null) throw new Error(`exited early (${child.exitCode}): ${message()}`);
    await sleep(50);
  }
  throw new Error(message());
}

export async function stopCluster(cluster: ClusterProcess | undefined): Promise<{ code: number | null; signal: NodeJS.Signals | null } | undefined> {
  if (!cluster) return undefined;
  if (cluster.child.exitCode === null && cluster.child.signalCode === null) {
    cluster.child.kill('SIGTERM');
    const timer = setTimeout(() => cluster.child.kill('SIGKILL'), 30_000);
    const result = await cluster.exited;
    clearTimeout(timer);
    return result;
  }
  return cluster.exited;
}

/** Processes whose command line mentions the data directory (our children and nginx). */
export function processesUsing(dataDir: string): string[] {
  const table = execFileSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' });
  return table.split('\n').filter((line) => line.includes(dataDir) && !line.includes('ps -eo'));
}

export async function pidOf(port: number): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}/health`);
  return ((await res.json()) as { pid: number }).pid;
}
