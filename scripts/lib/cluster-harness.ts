/**
 * What the cluster benchmarks share: the corpus, benchmark databases (cached under
 * bench-out/), real clusters behind nginx started with a write key, and autocannon load.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import xmlrpc from 'xmlrpc';
import { serializeMethodCall } from 'xmlrpc/lib/serializer.js';
import { loadEngine } from '../../src/engine.ts';
import { decodeToRgb128 } from '../../src/image/decode.ts';
import type { Signature } from '../../src/signature/types.ts';
import { WriterStore } from '../../src/store/writer-store.ts';
import { corpusFiles, loadCorpusSources, variantSignatures } from './variant-signatures.ts';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const SHARED = process.env.HAARSEEK_SHARED ?? resolve(ROOT, '../shared');
export const CORPUS = join(SHARED, 'corpus/dev');
export const OUT = join(ROOT, 'bench-out');
export const HOST = '127.0.0.1';
export const DB_ID = 1;
export const DISTRACTOR_BASE_ID = 1_000_000;
/** The write key benchmark clusters run with. */
export const BENCH_KEY = 'bench-key';

export const log = (msg: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

export function csv(file: string): string[][] {
  return readFileSync(join(CORPUS, file), 'utf8').trim().split('\n').slice(1).map((l) => l.split(','));
}

export const engine = loadEngine();

/** The originals' signatures as addImgBlob would store them (ids 1..318). */
export async function originalSignatures(): Promise<Array<{ imageId: number; width: number; height: number; sig: Signature }>> {
  const out = [];
  for (const [id, file] of csv('manifest.csv')) {
    const decoded = await decodeToRgb128(readFileSync(join(CORPUS, file)));
    out.push({ imageId: Number(id), width: decoded.width, height: decoded.height, sig: engine.signatures.signatureFromRgb(decoded.rgb) });
  }
  return out;
}

export const originsFile = (dbFile: string) => join(dirname(dbFile), 'distractor-origins.bin');

/**
 * A database file of `size` images: the 318 corpus originals plus distractors made
 * from them (image-level crops, shifts, recolourings and mixes for the first 5,000,
 * signature-level perturbations of those beyond), and beside it the id of the original
 * each distractor was made from. Cached under bench-out/.
 */
export async function databaseOf(size: number, originals: Awaited<ReturnType<typeof originalSignatures>>): Promise<string> {
  const dir = join(OUT, `db-${size}`);
  const file = join(dir, 'haarseek.db');
  const done = join(dir, 'complete');
  if (existsSync(done) && existsSync(originsFile(file))) return file;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const started = Date.now();
  const store = WriterStore.open(file);
  store.createSpace(DB_ID);
  store.putImages(DB_ID, originals);
  const distractors = size - originals.length;
  if (distractors > 0) {
    const sources = await loadCorpusSources(join(CORPUS, 'originals'));
    const originalIds = corpusFiles(join(CORPUS, 'originals')).map((f) => Number(f.replace(/\.\w+$/, '')));
    // The set starts with the originals themselves; the distractors are what follows.
    const first = sources.length;
    const set = await variantSignatures({ count: first + distractors, imageVariants: first + Math.min(distractors, 5000), engine: engine.signatures, seed: 7, sources });
    const origins = new Int32Array(distractors);
    for (let start = 0; start < distractors; start += 5000) {
      const batch = [];
      for (let i = start; i < Math.min(distractors, start + 5000); i++) {
        batch.push({ imageId: DISTRACTOR_BASE_ID + i, width: 512, height: 512, sig: set.at(first + i) });
        origins[i] = originalIds[set.origin[first + i]];
      }
      store.putImages(DB_ID, batch);
    }
    writeFileSync(originsFile(file), origins);
  } else {
    writeFileSync(originsFile(file), new Int32Array(0));
  }
  store.close();
  writeFileSync(done, '');
  log(`built ${size}-image database in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return file;
}

// ---------------------------------------------------------------- cluster

export interface Cluster {
  child: ChildProcess;
  dataDir: string;
  front: string;
  writer: string;
  writerPort: number;
  readerPorts: number[];
}

// Below the ephemeral port range (32768 and up), whose ports outgoing connections take.
let nextPortBlock = 22_000 + (process.pid % 50) * 100;

export async function startCluster(dbFile: string, readers: number, extra: string[] = []): Promise<Cluster> {
  const dataDir = join(OUT, `run-${process.pid}-${nextPortBlock}`);
  rmSync(dataDir, { recursive: true, force: true });
  mkdirSync(dataDir, { recursive: true });
  copyFileSync(dbFile, join(dataDir, 'haarseek.db'));
  const frontPort = nextPortBlock;
  const writerPort = nextPortBlock + 1;
  const readerBase = nextPortBlock + 10;
  nextPortBlock += 20;
  const child = spawn(
    process.execPath,
    [join(ROOT, 'dist/launch-cluster.js'), '--data', dataDir, '--readers', String(readers), '--port', String(frontPort),
      '--writer-port', String(writerPort), '--reader-base-port', String(readerBase), '--log-level', 'warn', '--allow-dir', OUT, ...extra],
    { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, HAARSEEK_WRITE_KEY: BENCH_KEY } },
  );
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  const deadline = Date.now() + 180_000;
  while (!err.includes('haarseek cluster is up')) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`cluster did not start: ${err}`);
    await sleep(100);
  }
  return {
    child,
    dataDir,
    front: `http://${HOST}:${frontPort}/RPC`,
    writer: `http://${HOST}:${writerPort}/RPC`,
    writerPort,
    readerPorts: Array.from({ length: readers }, (_, i) => readerBase + i),
  };
}

export async function stopCluster(cluster: Cluster): Promise<void> {
  if (cluster.child.exitCode === null) {
    const exited = new Promise((r) => cluster.child.once('exit', r));
    cluster.child.kill('SIGTERM');
    const timer = setTimeout(() => cluster.child.kill('SIGKILL'), 30_000);
    await exited;
    clearTimeout(timer);
  }
  rmSync(cluster.dataDir, { recursive: true, force: true });
}

export async function health(port: number): Promise<Record<string, any>> {
  return (await (await fetch(`http://${HOST}:${port}/health`)).json()) as Record<string, any>;
}

export function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024;
}

/** CPU seconds (user + system) a process has used so far. */
export function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

export function nginxPids(dataDir: string): number[] {
  const table = execFileSync('ps', ['-eo', 'pid,ppid,args'], { encoding: 'utf8' }).trim().split('\n').slice(1);
  const rows = table.map((l) => l.trim().split(/\s+/)).map(([pid, ppid, ...args]) => ({ pid: Number(pid), ppid: Number(ppid), args: args.join(' ') }));
  const masters = rows.filter((r) => r.args.startsWith('nginx: master') && r.args.includes(dataDir)).map((r) => r.pid);
  return [...masters, ...rows.filter((r) => masters.includes(r.ppid)).map((r) => r.pid)];
}

export function rpc(url: string): (method: string, ...params: unknown[]) => Promise<any> {
  const client = xmlrpc.createClient({ url, basic_auth: { user: 'bench', pass: BENCH_KEY } });
  return (method, ...params) => new Promise((res, rej) => client.methodCall(method, params, (e: unknown, v: unknown) => (e ? rej(e) : res(v))));
}


export const queryFiles = csv('truth.csv').filter(([, d]) => d !== 'flip').map(([q]) => join(CORPUS, q));

export function queryBodies(count: number): Buffer[] {
  const step = Math.max(1, Math.floor(queryFiles.length / count));
  return queryFiles.filter((_, i) => i % step === 0).slice(0, count).map((f) => Buffer.from(serializeMethodCall('queryImgBlob', [DB_ID, readFileSync(f), 10])));
}

export interface LoadResult {
  requestsPerSec: number;
  p50: number;
  p99: number;
  requests: number;
  failed: number;
}

/** autocannon requests posting each XML-RPC body in turn; onResponse sees every answer. */
export function xmlRpcRequests(url: string, bodies: Buffer[], onResponse: (status: number, text: string) => void) {
  return bodies.map((body) => ({ method: 'POST' as const, path: new URL(url).pathname, headers: { 'content-type': 'text/xml' }, body, onResponse }));
}

export async function load(url: string, bodies: Buffer[], opts: { seconds: number; connections: number; overallRate?: number }): Promise<LoadResult> {
  let faults = 0;
  const requests = xmlRpcRequests(url, bodies, (status, text) => {
    if (status === 200 && text.includes('<fault>')) faults++;
  });
  const result = await autocannon({
    url,
    connections: opts.connections,
    duration: opts.seconds,
    overallRate: opts.overallRate,
    requests,
    timeout: 30,
  });
  return {
    requestsPerSec: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    requests: result.requests.total,
    failed: faults + result.non2xx + result.errors + result.timeouts,
  };
}

