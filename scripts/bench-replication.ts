/**
 * Replication across hosts, measured on one machine (each "host" its own data
 * directory, ports and processes; NATS a real three-node JetStream cluster, R3):
 *
 * 1. read-after-write: a writer (host A) holding --images images publishes to NATS; host B
 *    runs `haarseek cluster --follow` (replica, readers, nginx) under a steady query load.
 *    For each write: from the writer's acknowledgement of addImgBlob to the first answer
 *    of host B's front saying the image is there (isImgOnDb, polled every 2 ms).
 * 2. bootstrap: a writer holding --bootstrap-images images stores its snapshot; a new
 *    host's replica starts on an empty directory: time until it holds the copy (/health
 *    200), then until a reader on it has loaded every image.
 *
 *   npx tsx scripts/bench-replication.ts                 # 100k and 1M, writes BENCHMARKS.md
 *   npx tsx scripts/bench-replication.ts --bootstrap-images 0 --writes 50
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { Command } from 'commander';
import { serializeMethodCall } from 'xmlrpc/lib/serializer.js';
import { WriterStore } from '../src/store/writer-store.ts';
import { CHANNELS, COEFS_PER_CHANNEL, SIGNATURE_LENGTH, type Signature } from '../src/signature/types.ts';
// The tests' NATS harness: real nats-server processes on ports 25000-25999.
import { NatsCluster, rangePort } from '../test/helpers/nats.ts';
import { writeBenchmarkSection } from './lib/benchmarks-md.ts';
import autocannon from 'autocannon';
import { BENCH_KEY, CORPUS, OUT, ROOT, log, rpc, xmlRpcRequests } from './lib/cluster-harness.ts';
import { prng } from './lib/prng.ts';
import { readFileSync } from 'node:fs';

const opts = new Command()
  .option('--images <n>', 'images held by the writer in the read-after-write run', (v) => Number(v), 100_000)
  .option('--bootstrap-images <n>', 'images of the bootstrap run (0: skip it)', (v) => Number(v), 1_000_000)
  .option('--writes <n>', 'writes timed across hosts', (v) => Number(v), 200)
  .option('--read-rate <n>', 'queries per second sent to host B meanwhile', (v) => Number(v), 100)
  .option('--no-write', 'do not write BENCHMARKS.md')
  .parse()
  .opts<{ images: number; bootstrapImages: number; writes: number; readRate: number; write: boolean }>();

const DIR = join(OUT, 'replication');
const ENV = { ...process.env, HAARSEEK_WRITE_KEY: BENCH_KEY };
const CLI = join(ROOT, 'bin/haarseek.js');
const children: ChildProcess[] = [];

function spawnLogged(args: string[], name: string): { child: ChildProcess; output: () => string } {
  const child = spawn(process.execPath, args, { cwd: ROOT, env: ENV, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out = (out + d).slice(-20_000)));
  child.stderr!.on('data', (d) => (out = (out + d).slice(-20_000)));
  child.once('exit', (code, signal) => code !== 0 && signal !== 'SIGTERM' && log(`${name} exited ${code ?? signal}: ${out.slice(-1500)}`));
  children.push(child);
  return { child, output: () => out };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

async function health(port: number): Promise<Record<string, any> | null> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/health`);
    return res.ok ? ((await res.json()) as Record<string, any>) : null;
  } catch {
    return null;
  }
}

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | null | false>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const got = await probe();
    if (got) return got;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(20);
  }
}

/** Random valid signatures (40 distinct indices per channel, sorted, signed), ids 1..n. */
function generatedDatabase(n: number): string {
  const dir = join(DIR, `db-${n}`);
  const file = join(dir, 'haarseek.db');
  if (existsSync(join(dir, 'complete'))) return file;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const started = Date.now();
  const rand = prng(29);
  const store = WriterStore.open(file);
  store.createSpace(1);
  const taken = new Uint32Array(16384);
  let stamp = 0;
  for (let from = 1; from <= n; from += 5000) {
    const batch: Array<{ imageId: number; width: number; height: number; sig: Signature }> = [];
    for (let id = from; id < Math.min(n + 1, from + 5000); id++) {
      const coefs = new Int32Array(SIGNATURE_LENGTH);
      for (let c = 0; c < CHANNELS; c++) {
        stamp++;
        const list: number[] = [];
        while (list.length < COEFS_PER_CHANNEL) {
          const r = rand();
          const index = 1 + Math.floor(r * r * 16383);
          if (taken[index] === stamp) continue;
          taken[index] = stamp;
          list.push(rand() < 0.5 ? -index : index);
        }
        list.sort((a, b) => a - b);
        coefs.set(list, c * COEFS_PER_CHANNEL);
      }
      batch.push({ imageId: id, width: 640, height: 480, sig: { coefs, avgl: Float64Array.of(rand(), rand() * 0.2 - 0.1, rand() * 0.2 - 0.1) } });
    }
    store.putImages(1, batch);
  }
  store.close();
  // An established database's log is trimmed: the stream starts after it, from a snapshot.
  const db = new Database(file);
  db.exec('DELETE FROM changes WHERE seq < (SELECT max(seq) FROM changes)');
  db.exec('VACUUM');
  db.close();
  writeFileSync(join(dir, 'complete'), '');
  log(`generated ${n} images in ${((Date.now() - started) / 1000).toFixed(1)} s (${(statSync(file).size / 2 ** 20).toFixed(0)} MiB)`);
  return file;
}

function hostDir(name: string, dbFile: string): string {
  const dir = join(DIR, name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  if (dbFile) copyFileSync(dbFile, join(dir, 'haarseek.db'));
  return dir;
}

async function startWriter(dir: string, nats: NatsCluster, stream: string): Promise<{ port: number; url: string; child: ChildProcess }> {
  const port = await rangePort();
  const { child, output } = spawnLogged([CLI, 'serve', '--role', 'writer', '--data', dir, '--port', String(port), '--log-level', 'warn', ...nats.urls.flatMap((u) => ['--nats', u]), '--nats-stream', stream, '--nats-replicas', '3'], 'writer');
  const last = new Database(join(dir, 'haarseek.db'), { readonly: true }).prepare('SELECT max(seq) FROM changes').pluck().get() as number;
  await until('writer up, snapshot stored, publishing', 900_000, async () => {
    if (child.exitCode !== null) throw new Error(`writer exited: ${output()}`);
    const h = await health(port);
    if (h?.nats?.state === 'refused') throw new Error(`writer refused to publish: ${h.nats.lastError}`);
    return h?.nats?.state === 'publishing' && (h.nats.lastSnapshot?.seq ?? -1) >= last ? h : null;
  });
  return { port, url: `http://127.0.0.1:${port}/RPC`, child };
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];

async function readAfterWrite(nats: NatsCluster) {
  const dbFile = generatedDatabase(opts.images);
  const writer = await startWriter(hostDir('host-a', dbFile), nats, 'raw');
  const hostB = hostDir('host-b', '');
  const ports = { front: await rangePort(), replica: await rangePort(), metrics: await rangePort(), writer: await rangePort(), readers: 0 };
  do ports.readers = await rangePort();
  while (ports.readers >= 25_998);
  const cluster = spawnLogged([join(ROOT, 'dist/launch-cluster.js'), ...nats.urls.flatMap((u) => ['--follow', u]), '--nats-stream', 'raw', '--data', hostB, '--readers', '2', '--port', String(ports.front), '--replica-port', String(ports.replica), '--reader-base-port', String(ports.readers), '--metrics-port', String(ports.metrics), '--writer-port', String(ports.writer), '--log-level', 'warn'], 'host B');
  const bootStarted = Date.now();
  await until('host B up', 600_000, async () => {
    if (cluster.child.exitCode !== null) throw new Error(`host B exited: ${cluster.output()}`);
    return cluster.output().includes('haarseek cluster is up');
  });
  log(`host B up (snapshot of ${opts.images} images fetched, readers loaded) in ${((Date.now() - bootStarted) / 1000).toFixed(1)} s`);
  const front = `http://127.0.0.1:${ports.front}/RPC`;
  const bodies = Array.from({ length: 64 }, (_, i) => Buffer.from(serializeMethodCall('queryImgID', [1, 1 + ((i * 7919) % opts.images), 10])));
  let faults = 0;
  let readsFinished: (r: autocannon.Result) => void = () => undefined;
  const readsDone = new Promise<autocannon.Result>((resolve) => (readsFinished = resolve));
  const reads = autocannon(
    { url: front, connections: 4, duration: 3600, overallRate: opts.readRate, timeout: 30, requests: xmlRpcRequests(front, bodies, (status, text) => void ((status !== 200 || text.includes('<fault>')) && faults++)) },
    (_err, result) => readsFinished(result),
  );
  const write = rpc(writer.url);
  const seen = rpc(front);
  const originals = Array.from({ length: 50 }, (_, i) => readFileSync(join(CORPUS, 'originals', `${String(i + 1).padStart(5, '0')}.jpg`)));
  const lags: number[] = [];
  const readsStarted = Date.now();
  for (let i = 0; i < opts.writes; i++) {
    const id = 10_000_000 + i;
    await write('addImgBlob', 1, id, originals[i % originals.length]);
    const acked = performance.now();
    for (;;) {
      if (await seen('isImgOnDb', 1, id)) break;
      await sleep(2);
    }
    lags.push(performance.now() - acked);
    await sleep(20);
  }
  const readSeconds = (Date.now() - readsStarted) / 1000;
  reads.stop();
  const r = await readsDone;
  const readLoad = { rps: r.requests.total / readSeconds, p50: r.latency.p50, p99: r.latency.p99, failed: faults + r.errors + r.timeouts };
  lags.sort((a, b) => a - b);
  const replicaHealth = await health(ports.replica);
  await stop(cluster.child);
  await stop(writer.child);
  return { lags, readLoad, replicaHealth };
}

async function bootstrap(nats: NatsCluster) {
  const dbFile = generatedDatabase(opts.bootstrapImages);
  const snapStarted = Date.now();
  const writer = await startWriter(hostDir('boot-a', dbFile), nats, 'boot');
  const wh = await health(writer.port);
  const writerReadyMs = Date.now() - snapStarted;
  const dir = hostDir('boot-b', '');
  const replicaPort = await rangePort();
  const started = Date.now();
  const replica = spawnLogged([CLI, 'replica', ...nats.urls.flatMap((u) => ['--nats', u]), '--nats-stream', 'boot', '--data', dir, '--port', String(replicaPort), '--log-level', 'warn'], 'replica');
  await until('replica holds the copy', 900_000, async () => (await health(replicaPort))?.ok === true);
  const replicaMs = Date.now() - started;
  const readerPort = await rangePort();
  const reader = spawnLogged([CLI, 'serve', '--role', 'reader', '--follower', '--no-forward', '--data', dir, '--port', String(readerPort), '--log-level', 'warn'], 'reader');
  const rh = await until('reader loaded', 900_000, async () => {
    const h = await health(readerPort);
    return h && h.images >= opts.bootstrapImages ? h : null;
  });
  const readerMs = Date.now() - started;
  const size = statSync(join(dir, 'haarseek.db')).size;
  for (const c of [reader.child, replica.child, writer.child]) await stop(c);
  return { replicaMs, readerMs, readerLoadMs: rh.lastFullLoadMs as number, size, snapshotMs: wh?.nats?.lastSnapshot?.ms as number, writerReadyMs };
}

async function main() {
  mkdirSync(DIR, { recursive: true });
  // Every run copies its databases afresh (new identities): the streams of the last run must go.
  rmSync(join(DIR, 'nats'), { recursive: true, force: true });
  const loadAtStart = loadavg().map((l) => l.toFixed(2)).join('/');
  const nats = await NatsCluster.start(join(DIR, 'nats'), 3);
  log(`NATS cluster of 3 up: ${nats.urls.join(' ')}`);
  try {
    const raw = await readAfterWrite(nats);
    const ms = (x: number) => `${x.toFixed(1)} ms`;
    log(`read-after-write: p50 ${ms(pct(raw.lags, 50))} p99 ${ms(pct(raw.lags, 99))} max ${ms(raw.lags[raw.lags.length - 1])}`);
    const boot = opts.bootstrapImages > 0 ? await bootstrap(nats) : null;
    if (boot) log(`bootstrap of ${opts.bootstrapImages}: replica ready ${boot.replicaMs} ms, reader loaded ${boot.readerMs} ms`);
    const lines = [
      '## Replication: readers on other hosts (NATS JetStream)',
      '',
      `\`npx tsx scripts/bench-replication.ts --images ${opts.images} --bootstrap-images ${opts.bootstrapImages} --writes ${opts.writes} --read-rate ${opts.readRate}\``,
      `(${new Date().toISOString().slice(0, 10)}; ${availableParallelism()} cores (${cpus()[0]?.model ?? '?'}), every "host" on this one machine: a three-node NATS JetStream cluster (nats-server ${'2.9'}, stream and bucket R3), host A = the writer, host B = \`haarseek cluster --follow\` with 2 readers behind nginx; load average (1/5/15 min) at the start ${loadAtStart}, at the end ${loadavg().map((l) => l.toFixed(2)).join('/')}, the machine shared with another engineer's work)`,
      '',
      `**Read-after-write across hosts** at ${opts.images.toLocaleString('en')} images, under ${opts.readRate} queryImgID/s on host B's front: from the writer's acknowledgement of addImgBlob to the first answer of host B's front (isImgOnDb, polled every 2 ms) that holds the image, ${raw.lags.length} writes one after the other:`,
      '',
      '| p50 | p90 | p99 | max |',
      '| --- | --- | --- | --- |',
      `| ${ms(pct(raw.lags, 50))} | ${ms(pct(raw.lags, 90))} | ${ms(pct(raw.lags, 99))} | ${ms(raw.lags[raw.lags.length - 1])} |`,
      '',
      `The read load meanwhile: ${raw.readLoad.rps.toFixed(0)} queries/s answered, latency p50 ${raw.readLoad.p50} ms, p99 ${raw.readLoad.p99} ms, ${raw.readLoad.failed} failed.`,
      '',
      `The path: writer commit -> publish (JetStream ack from the R3 stream) -> replica applies it in one SQLite transaction (fsync) -> the reader's next request sees the file's change counter and replays the row.`,
    ];
    if (boot) {
      lines.push(
        '',
        `**Bootstrap of a new host** at ${opts.bootstrapImages.toLocaleString('en')} images (a ${(boot.size / 2 ** 20).toFixed(0)} MiB database): the writer's snapshot (online backup + upload to the R3 Object Store) took ${(boot.snapshotMs / 1000).toFixed(1)} s; a replica started on an empty directory held the checked copy after ${(boot.replicaMs / 1000).toFixed(1)} s (download, quick_check, install), and a reader on it answered with every image ${(boot.readerMs / 1000).toFixed(1)} s after the replica started (its own full load: ${(boot.readerLoadMs / 1000).toFixed(1)} s).`,
      );
    }
    lines.push('', 'Fault figures (`test/replication/multi-host.test.ts`, the same machine): see the README, "Readers on other hosts".');
    if (opts.write) writeBenchmarkSection(join(ROOT, 'BENCHMARKS.md'), 'replication', lines.join('\n'));
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    for (const c of children) await stop(c).catch(() => undefined);
    await nats.stop();
  }
}

await main();
process.exit(0);
