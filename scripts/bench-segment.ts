/**
 * Index segment benchmark (issue 16): the mapped segment reader against today's
 * in-memory native index, in the same processes.
 *
 *   npx tsx scripts/bench-segment.ts [--quick] [--write] [--cache DIR]
 *
 * At 1M images (200k with --quick): top-10 query p50/p99 of the in-memory native index
 * and of the segment (same queries, interleaved, order rotating so neither always meets
 * warm caches; every answer compared, ids and float64 scores), segment bytes, the time
 * to write a segment and to open one (map, check, first answer; then with a delta of
 * changes replayed), and PSS (/proc/PID/smaps_rollup) of 1 and 4 reader processes
 * mapping one segment against 1 and 4 holding private in-memory indexes. --write puts
 * the results in the "Segment" section of BENCHMARKS.md.
 */
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Engine, nativeEngine, tsEngine } from '../src/engine.ts';
import { LayeredIndex } from '../src/index/layered-index.ts';
import type { SegmentAddon } from '../src/index/native-segment.ts';
import { writeSegment } from '../src/index/segment-writer.ts';
import type { ImageIndex, SignatureBatch } from '../src/index/types.ts';
import { loadNativeAddon } from '../src/signature/native-loader.ts';
import { CHANNELS, SIGNATURE_LENGTH } from '../src/signature/types.ts';
import { benchSignatureSets } from './lib/bench-signature-cache.ts';
import { writeBenchmarkSection } from './lib/benchmarks-md.ts';
import { prng } from './lib/prng.ts';
import type { SignatureSet } from './lib/variant-signatures.ts';

const SCRIPT = fileURLToPath(import.meta.url);
const ROOT = join(SCRIPT, '..', '..');
const BATCH = 4096;

const percentile = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
};
const median = (xs: number[]) => percentile(xs, 50);
const fmt = (x: number | undefined, digits = 2) => (x !== undefined && Number.isFinite(x) ? x.toFixed(digits) : 'n/a');

// ---- the work directory: images as flat files, the segment, queries ----

/** Image k has id k + 1; avgl and int16 coefficients as the store holds them. */
function writeImages(dir: string, set: SignatureSet, n: number): void {
  writeFileSync(join(dir, 'images.avgl'), set.avgls.subarray(0, n * CHANNELS));
  writeFileSync(join(dir, 'images.coefs'), Int16Array.from(set.coefs.subarray(0, n * SIGNATURE_LENGTH)));
}

/** The images, batch by batch, read from the files (a reader's snapshot load, without SQLite). */
function* readImages(dir: string, n: number): Generator<SignatureBatch> {
  const avglFd = openSync(join(dir, 'images.avgl'), 'r');
  const coefFd = openSync(join(dir, 'images.coefs'), 'r');
  const batch: SignatureBatch = { count: 0, ids: new Float64Array(BATCH), avgl: new Float64Array(BATCH * CHANNELS), coefs: new Int16Array(BATCH * SIGNATURE_LENGTH) };
  try {
    for (let from = 0; from < n; from += BATCH) {
      const count = Math.min(BATCH, n - from);
      for (let k = 0; k < count; k++) batch.ids[k] = from + k + 1;
      readSync(avglFd, new Uint8Array(batch.avgl.buffer, 0, count * CHANNELS * 8), 0, count * CHANNELS * 8, from * CHANNELS * 8);
      readSync(coefFd, new Uint8Array(batch.coefs.buffer, 0, count * SIGNATURE_LENGTH * 2), 0, count * SIGNATURE_LENGTH * 2, from * SIGNATURE_LENGTH * 2);
      batch.count = count;
      yield batch;
    }
  } finally {
    closeSync(avglFd);
    closeSync(coefFd);
  }
}

function readQueries(dir: string): Array<{ coefs: Int32Array; avgl: Float64Array }> {
  const coefs = new Int32Array(new Uint8Array(readFileSync(join(dir, 'query.coefs'))).buffer);
  const avgl = new Float64Array(new Uint8Array(readFileSync(join(dir, 'query.avgl'))).buffer);
  return Array.from({ length: avgl.length / CHANNELS }, (_, q) => ({
    coefs: coefs.subarray(q * SIGNATURE_LENGTH, (q + 1) * SIGNATURE_LENGTH),
    avgl: avgl.subarray(q * CHANNELS, (q + 1) * CHANNELS),
  }));
}

function buildMemoryIndex(engine: Engine, dir: string, n: number): ImageIndex {
  const index = engine.createIndex();
  for (const batch of readImages(dir, n)) index.addBatch(batch);
  index.trim();
  return index;
}

const segmentFile = (dir: string) => join(dir, 'space-1.hseg');
const addon = () => (loadNativeAddon() as { addon: SegmentAddon }).addon;

// ---- children ----

interface QueryRun {
  memP50: number;
  memP99: number;
  segP50: number;
  segP99: number;
  memCpuP50: number;
  segCpuP50: number;
  compared: number;
  kernel: string;
  bounded: number;
  exact: number;
  candidates: number;
  scored: number;
}

/** Child: the in-memory native index and the mapped segment, same queries, interleaved. */
function queryChild(dir: string, n: number, queries: number): QueryRun {
  const engine = nativeEngine();
  const qs = readQueries(dir);
  const memory = buildMemoryIndex(engine, dir, n);
  const segment = engine.openSegment(segmentFile(dir));
  const opts = { limit: 10 };
  for (let q = 0; q < 10; q++) {
    memory.query(qs[q % qs.length], opts);
    segment.query(qs[q % qs.length], opts);
  }
  const before = addon().segmentQueryCounts!();
  const wall: Record<'mem' | 'seg', number[]> = { mem: [], seg: [] };
  const cpu: Record<'mem' | 'seg', number[]> = { mem: [], seg: [] };
  let compared = 0;
  for (let q = 0; q < queries; q++) {
    const sig = qs[q % qs.length];
    const order = q % 2 === 0 ? (['mem', 'seg'] as const) : (['seg', 'mem'] as const);
    const answers: string[] = [];
    for (const which of order) {
      const index = which === 'mem' ? memory : segment;
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      const got = index.query(sig, opts);
      wall[which].push(performance.now() - t0);
      const c = process.cpuUsage(c0);
      cpu[which].push((c.user + c.system) / 1000);
      answers.push(JSON.stringify(got));
    }
    if (answers[0] !== answers[1]) throw new Error(`query ${q}: the segment answered differently from the in-memory index`);
    compared++;
  }
  const after = addon().segmentQueryCounts!();
  return {
    memP50: median(wall.mem),
    memP99: percentile(wall.mem, 99),
    segP50: median(wall.seg),
    segP99: percentile(wall.seg, 99),
    memCpuP50: median(cpu.mem),
    segCpuP50: median(cpu.seg),
    compared,
    kernel: addon().segmentKernel!(),
    bounded: after.bounded - before.bounded,
    exact: after.exact - before.exact,
    candidates: (after.candidates - before.candidates) / Math.max(1, after.bounded - before.bounded),
    scored: (after.scored - before.scored) / Math.max(1, after.bounded - before.bounded),
  };
}

/** Child: the TypeScript reader of the same file (read into memory). */
function tsQueryChild(dir: string, queries: number): { openMs: number; p50: number; memoryBytes: number } {
  const qs = readQueries(dir);
  const t0 = performance.now();
  const segment = tsEngine().openSegment(segmentFile(dir));
  const openMs = performance.now() - t0;
  // First passes decode the dense lists a query uses; time the steady state.
  for (let q = 0; q < Math.min(qs.length, 40); q++) segment.query(qs[q], { limit: 10 });
  const times: number[] = [];
  for (let q = 0; q < queries; q++) {
    const t = performance.now();
    segment.query(qs[q % qs.length], { limit: 10 });
    times.push(performance.now() - t);
  }
  return { openMs, p50: median(times), memoryBytes: segment.memoryBytes() };
}

interface OpenRun {
  openMs: number;
  openNoVerifyMs: number;
  firstAnswerMs: number;
  replayMs: number;
  changes: number;
  readyWithDeltaMs: number;
}

/** Child: a reader starting from a segment: map and check, first answer; then with a delta replayed. */
function openChild(dir: string, n: number, changes: number): OpenRun {
  const engine = nativeEngine();
  const qs = readQueries(dir);
  const t0 = performance.now();
  const segment = engine.openSegment(segmentFile(dir));
  const openMs = performance.now() - t0;
  segment.query(qs[0], { limit: 10 });
  const firstAnswerMs = performance.now() - t0;
  segment.close();
  const t1 = performance.now();
  engine.openSegment(segmentFile(dir), { verify: false }).close();
  const openNoVerifyMs = performance.now() - t1;
  // The changes since the segment: replacements (other images' signatures), new ids, removals.
  const random = prng(99);
  const donors: Array<{ coefs: Int32Array; avgl: Float64Array }> = [];
  for (const batch of readImages(dir, Math.min(n, 8 * BATCH))) {
    for (let k = 0; k < batch.count && donors.length < changes; k++) {
      donors.push({ coefs: Int32Array.from(batch.coefs.subarray(k * SIGNATURE_LENGTH, (k + 1) * SIGNATURE_LENGTH)), avgl: batch.avgl.slice(k * CHANNELS, (k + 1) * CHANNELS) });
    }
  }
  const ops = Array.from({ length: changes }, (_, i) => ({ roll: random(), id: 1 + Math.floor(random() * n * 1.01), sig: donors[i % donors.length] }));
  const t2 = performance.now();
  const layered = new LayeredIndex(engine.openSegment(segmentFile(dir)), engine.createIndex());
  const t3 = performance.now();
  for (const op of ops) {
    if (op.roll < 0.8) layered.add(op.id, op.sig);
    else layered.remove(op.id);
  }
  const replayMs = performance.now() - t3;
  layered.query(qs[1], { limit: 10 });
  const readyWithDeltaMs = performance.now() - t2;
  layered.clear();
  return { openMs, openNoVerifyMs, firstAnswerMs, replayMs, changes, readyWithDeltaMs };
}

type ReaderMode = 'segment' | 'private' | 'idle';

/**
 * A reader process for the PSS figures, as plain JavaScript over the compiled engine
 * (dist/, what bin/haarseek.js runs): a tsx child would add the TypeScript loader's
 * ~30 MB to every process. It opens the segment, or builds a private in-memory index
 * from the image files, or holds an empty index (idle), answers 20 queries, says
 * "ready" and waits for its stdin to close.
 */
const READER_SOURCE = `
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
const [engineModule, dir, mode, count] = process.argv.slice(2);
const n = Number(count);
const { nativeEngine } = await import(engineModule.endsWith('.ts') ? engineModule : pathToFileURL(engineModule).href);
const engine = nativeEngine();
const coefs = new Int32Array(new Uint8Array(readFileSync(join(dir, 'query.coefs'))).buffer);
const avgl = new Float64Array(new Uint8Array(readFileSync(join(dir, 'query.avgl'))).buffer);
const queries = Array.from({ length: avgl.length / 3 }, (_, q) => ({ coefs: coefs.subarray(q * 120, q * 120 + 120), avgl: avgl.subarray(q * 3, q * 3 + 3) }));
let index;
if (mode === 'segment') index = engine.openSegment(join(dir, 'space-1.hseg'));
else {
  index = engine.createIndex();
  if (mode === 'private') {
    const a = openSync(join(dir, 'images.avgl'), 'r');
    const c = openSync(join(dir, 'images.coefs'), 'r');
    const batch = { count: 0, ids: new Float64Array(4096), avgl: new Float64Array(4096 * 3), coefs: new Int16Array(4096 * 120) };
    for (let from = 0; from < n; from += 4096) {
      const k = Math.min(4096, n - from);
      for (let i = 0; i < k; i++) batch.ids[i] = from + i + 1;
      readSync(a, new Uint8Array(batch.avgl.buffer, 0, k * 24), 0, k * 24, from * 24);
      readSync(c, new Uint8Array(batch.coefs.buffer, 0, k * 240), 0, k * 240, from * 240);
      batch.count = k;
      index.addBatch(batch);
    }
    index.trim();
    closeSync(a);
    closeSync(c);
  }
}
for (let q = 0; q < 20; q++) index.query(queries[q % queries.length], { limit: 10 });
globalThis.gc?.();
process.stdout.write('ready\\n');
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
`;

/** The compiled engine when dist/ has the segment reader, else the TypeScript source through tsx. */
function readerEngine(): { module: string; tsx: boolean } {
  const compiled = join(ROOT, 'dist/src/engine.js');
  const segment = join(ROOT, 'dist/src/index/native-segment.js');
  if (existsSync(compiled) && existsSync(segment) && statSync(segment).mtimeMs >= statSync(join(ROOT, 'src/index/native-segment.ts')).mtimeMs) {
    return { module: compiled, tsx: false };
  }
  return { module: join(ROOT, 'src/engine.ts'), tsx: true };
}

// ---- parent ----

function runChild<T>(args: string[]): T {
  const out = execFileSync(process.execPath, ['--expose-gc', '--import', 'tsx', SCRIPT, '--child', ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 1 << 20,
  });
  return JSON.parse(out.trim().split('\n').at(-1)!) as T;
}

function pssKb(pid: number): { pss: number; rss: number } {
  const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
  return { pss: field('Pss'), rss: field('Rss') };
}

/** Starts `count` reader children, waits until all hold their index, reads their PSS, stops them. */
async function readersPss(dir: string, mode: ReaderMode, n: number, count: number): Promise<{ totalPssMb: number; perReaderRssMb: number }> {
  const script = join(dir, 'reader.mjs');
  if (!existsSync(script)) writeFileSync(script, READER_SOURCE);
  const engine = readerEngine();
  const children = Array.from({ length: count }, () =>
    spawn(process.execPath, ['--expose-gc', ...(engine.tsx ? ['--import', 'tsx'] : []), script, engine.module, dir, mode, String(n)], {
      cwd: ROOT,
      stdio: ['pipe', 'pipe', 'inherit'],
    }),
  );
  try {
    await Promise.all(
      children.map(
        (child) =>
          new Promise<void>((resolve, reject) => {
            let out = '';
            child.stdout.on('data', (d) => {
              out += d;
              if (out.includes('ready')) resolve();
            });
            child.on('exit', (code) => reject(new Error(`reader child exited (${code}) before it was ready`)));
          }),
      ),
    );
    const figures = children.map((child) => pssKb(child.pid!));
    return {
      totalPssMb: figures.reduce((a, f) => a + f.pss, 0) / 1024,
      perReaderRssMb: median(figures.map((f) => f.rss)) / 1024,
    };
  } finally {
    for (const child of children) child.stdin.end();
    await Promise.all(children.map((child) => new Promise((resolve) => (child.exitCode !== null ? resolve(null) : child.on('exit', resolve)))));
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const childAt = args.indexOf('--child');
  if (childAt >= 0) {
    const [kind, dir, a, b] = args.slice(childAt + 1);
    const result = kind === 'query' ? queryChild(dir, Number(a), Number(b)) : kind === 'ts-query' ? tsQueryChild(dir, Number(a)) : openChild(dir, Number(a), Number(b));
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return;
  }
  const quick = args.includes('--quick');
  const cacheAt = args.indexOf('--cache');
  const cache = cacheAt >= 0 ? args[cacheAt + 1] : join(tmpdir(), 'haarseek-bench-signatures');
  const plan = quick
    ? { n: 200_000, imageVariants: 2_000, queries: 60, repeats: 1, tsQueries: 10, changes: 2_000, opens: 2 }
    : { n: 1_000_000, imageVariants: 10_000, queries: 300, repeats: 3, tsQueries: 40, changes: 10_000, opens: 5 };
  const load = loadNativeAddon();
  if (!load.ok || typeof (load.addon as SegmentAddon).NativeSegment !== 'function') {
    throw new Error(`the segment benchmark needs the native addon with its segment reader: ${load.ok ? 'stale build' : load.reason}`);
  }
  const started = Date.now();
  const log = (msg: string) => console.error(`[${((Date.now() - started) / 1000).toFixed(0)}s] ${msg}`);
  const { index: set, queries } = await benchSignatureSets(cache, plan.n, plan.imageVariants, log);
  const dir = mkdtempSync(join(tmpdir(), 'haarseek-bench-segment-'));
  try {
    writeImages(dir, set, plan.n);
    writeFileSync(join(dir, 'query.coefs'), queries.coefs);
    writeFileSync(join(dir, 'query.avgl'), queries.avgls);
    log(`writing the ${plan.n.toLocaleString('en')}-image segment`);
    const w0 = performance.now();
    const written = writeSegment(segmentFile(dir), readImages(dir, plan.n), { seq: 1, dbId: 1 });
    const writeMs = performance.now() - w0;
    const segmentBytes = statSync(segmentFile(dir)).size;

    const runs: QueryRun[] = [];
    for (let rep = 1; rep <= plan.repeats; rep++) {
      log(`queries: in-memory native index vs segment (run ${rep} of ${plan.repeats})`);
      runs.push(runChild<QueryRun>(['query', dir, String(plan.n), String(plan.queries)]));
    }
    log('TypeScript reader');
    const ts = runChild<{ openMs: number; p50: number; memoryBytes: number }>(['ts-query', dir, String(plan.tsQueries)]);
    const opens: OpenRun[] = [];
    for (let rep = 1; rep <= plan.opens; rep++) {
      log(`reader start from the segment (run ${rep} of ${plan.opens})`);
      opens.push(runChild<OpenRun>(['open', dir, String(plan.n), String(plan.changes)]));
    }
    log('PSS: 1 and 4 readers mapping the segment');
    const seg1 = await readersPss(dir, 'segment', plan.n, 1);
    const seg4 = await readersPss(dir, 'segment', plan.n, 4);
    log('PSS: 1 and 4 readers with private in-memory indexes');
    const priv1 = await readersPss(dir, 'private', plan.n, 1);
    const priv4 = await readersPss(dir, 'private', plan.n, 4);
    log('PSS: 1 and 4 idle reader processes (baseline)');
    const idle = await readersPss(dir, 'idle', 0, 1);
    const idle4 = await readersPss(dir, 'idle', 0, 4);

    const med = (key: keyof QueryRun) => median(runs.map((r) => r[key] as number));
    const medOpen = (key: keyof OpenRun) => median(opens.map((r) => r[key] as number));
    const label = plan.n >= 1e6 ? `${plan.n / 1e6}M` : `${plan.n / 1e3}k`;
    const perMillion = (bytes: number) => (bytes / plan.n) * 1e6;
    const ratio = med('segP50') / med('memP50');
    const cpuRatio = med('segCpuP50') / med('memCpuP50');
    const pssRatio = seg4.totalPssMb / seg1.totalPssMb;
    const indexPssRatio = (seg4.totalPssMb - idle4.totalPssMb) / (seg1.totalPssMb - idle.totalPssMb);
    const privateIndexPssRatio = (priv4.totalPssMb - idle4.totalPssMb) / (priv1.totalPssMb - idle.totalPssMb);
    const rows: Array<[string, string]> = [
      [`query top-10 p50 at ${label}, in-memory native index (today), ms`, fmt(med('memP50'))],
      [`query top-10 p50 at ${label}, segment (mapped), ms`, fmt(med('segP50'))],
      ['segment / in-memory, p50 wall time', `${fmt(ratio, 3)}x`],
      ['segment / in-memory, p50 CPU time', `${fmt(cpuRatio, 3)}x`],
      [`query top-10 p99 at ${label}, in-memory / segment, ms`, `${fmt(med('memP99'))} / ${fmt(med('segP99'))}`],
      [`query top-10 p50 at ${label}, TypeScript reader of the segment, ms`, fmt(ts.p50, 1)],
      ['segment file bytes per 1M images, MB', fmt(perMillion(segmentBytes) / 1e6, 1)],
      [`writing the ${label} segment from batches (TypeScript writer), s`, fmt(writeMs / 1000, 1)],
      [`opening the ${label} segment: map + checksum + structure checks, ms`, fmt(medOpen('openMs'), 0)],
      [`opening without the body checksum, ms`, fmt(medOpen('openNoVerifyMs'), 0)],
      ['reader start to first answer (open + one query), ms', fmt(medOpen('firstAnswerMs'), 0)],
      [`reader start with ${plan.changes.toLocaleString('en')} changes replayed into the delta, to first answer, ms`, fmt(medOpen('readyWithDeltaMs'), 0)],
      ['TypeScript reader: reading and checking the file, ms', fmt(ts.openMs, 0)],
      ['PSS, 1 reader mapping the segment, MB', fmt(seg1.totalPssMb, 0)],
      ['PSS, 4 readers mapping the segment (total), MB', fmt(seg4.totalPssMb, 0)],
      ['PSS, 1 reader with a private in-memory index, MB', fmt(priv1.totalPssMb, 0)],
      ['PSS, 4 readers with private in-memory indexes (total), MB', fmt(priv4.totalPssMb, 0)],
      ['PSS, 1 / 4 idle reader processes (node, engine, no images), MB', `${fmt(idle.totalPssMb, 0)} / ${fmt(idle4.totalPssMb, 0)}`],
      ['index PSS (readers minus as many idle ones), 4 readers / 1 reader: segment', `${fmt(indexPssRatio, 2)}x`],
      ['index PSS (readers minus as many idle ones), 4 readers / 1 reader: private indexes', `${fmt(privateIndexPssRatio, 2)}x`],
    ];
    const table = ['| measure | value |', '|---|---:|', ...rows.map(([a, b]) => `| ${a} | ${b} |`)].join('\n');
    const goals: Array<[string, boolean]> = [
      [`${label} top-10 query p50, segment <= 0.35x the in-memory index (goal): ${fmt(ratio, 3)}x`, ratio <= 0.35],
      [`${label} top-10 query p50, segment <= 0.7x the in-memory index (floor): ${fmt(ratio, 3)}x`, ratio <= 0.7],
      [`index bytes per 1M <= 250 MB (goal): ${fmt(perMillion(segmentBytes) / 1e6, 1)} MB`, perMillion(segmentBytes) <= 250e6],
      [`index bytes per 1M <= 350 MB (floor): ${fmt(perMillion(segmentBytes) / 1e6, 1)} MB`, perMillion(segmentBytes) <= 350e6],
      [`4 readers' total PSS <= 1.5x one reader's: ${fmt(pssRatio, 2)}x (the index's part alone: ${fmt(indexPssRatio, 2)}x; private indexes: ${fmt(priv4.totalPssMb / priv1.totalPssMb, 2)}x)`, pssRatio <= 1.5],
      [`a reader with a segment answers within 1 s of its start (open + ${plan.changes.toLocaleString('en')}-change delta + first query): ${fmt(medOpen('readyWithDeltaMs'), 0)} ms`, medOpen('readyWithDeltaMs') <= 1000],
    ];
    const section = `## Segment

Command: \`npx tsx scripts/bench-segment.ts${quick ? ' --quick' : ''} --write\` (${new Date().toISOString().slice(0, 10)}).
Machine: ${cpus().length} cores (${cpus()[0]?.model.trim()}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, segment kernel ${runs[0]?.kernel}; a shared, noisy machine, so figures are medians of interleaved runs.

${table}

Goals and floors (issue 16):
${goals.map(([what, ok]) => `- ${ok ? 'PASS' : 'FAIL'} — ${what}`).join('\n')}

Notes:
- Every one of the ${runs.reduce((a, r) => a + r.compared, 0).toLocaleString('en')} timed queries was answered by both indexes and compared: same ids, same order, same float64 scores.
- The segment (${written.count.toLocaleString('en')} images, ${fmt(segmentBytes / 1e6, 1)} MB) keeps postings in chunks of 65,536 images as 16-bit local ids, and lists holding 4,096 or more of a chunk's images as 8 KB bitmaps; ids, the three avgl arrays and a directory of 98,305 offsets per chunk sit beside them.
- A top-10 query over the whole segment runs "bounded" (${fmt(med('bounded'), 0)} of ${plan.queries} timed queries per run; the rest fell back to the exact walk): one pass adds, per image, the weights of its matching lists in 16-bit fixed point rounded up (no avgl read; 32 images per AVX-512 instruction), so avgl term minus that sum is a lower bound of each score; images are then scored exactly, in the exact walk's order of operations, in order of that bound until it passes the 10th best exact score (on average ${fmt(med('candidates'), 0)} candidates, ${fmt(med('scored'), 0)} scored exactly). The exact walk (used for large limits, filters and small segments) scores every image block by block with AVX-512 masked subtractions over the bitmaps.
- PSS is what the kernel charges each process for the pages it maps, shared pages split between the processes mapping them: the segment file's pages are the page cache's, so four readers pay for one copy; private indexes are paid four times. Reader processes run the compiled engine (dist/, as bin/haarseek.js does${readerEngine().tsx ? '; dist/ was missing or stale, so this run used tsx, which adds ~30 MB per process' : ''}); the idle rows are the same processes with an empty index, the baseline every reader pays.
- Reader start: \`engine.openSegment\` maps the file (MAP_POPULATE), checks the header, the CRC-32 of the body and the structure a query relies on; then a LayeredIndex takes the changes since the segment's sequence (here ${plan.changes.toLocaleString('en')}: 80% adds or replacements, 20% removals) into its private delta.

How it was measured:
- Data: the first ${plan.n.toLocaleString('en')} signatures of \`scripts/lib/variant-signatures.ts\` (seed 1, ${plan.imageVariants.toLocaleString('en')} from images; the same set as the Engine section), ids 1..N; queries: 200 fresh image variants (seed 2), none of them in the index.
- Queries: per child process (${plan.repeats} of them) both indexes are built (the in-memory one with addBatch + trim, as a reader's load does), 10 warm-up queries, then ${plan.queries} queries each answered by both, the order alternating per query; wall time with performance.now(), CPU time with process.cpuUsage(). Figures are medians over the child runs.
- Open: ${plan.opens} fresh child processes, each timing openSegment of the file (in the page cache, as beside its writer), the first answer, an open without the body checksum, and a LayeredIndex over a fresh open with the delta replayed then one query.
- PSS: Pss from /proc/PID/smaps_rollup of each reader process after it opened (or built) its index and answered 20 queries.
`;
    console.log(section);
    if (args.includes('--write')) {
      writeBenchmarkSection(join(ROOT, 'BENCHMARKS.md'), 'segment', section);
      log('wrote the Segment section of BENCHMARKS.md');
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  if (!existsSync(cache)) log(`note: ${cache} was not kept`);
}

await main();
