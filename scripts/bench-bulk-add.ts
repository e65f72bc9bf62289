/**
 * Bulk add benchmark: `haarseek add` of 1-megapixel JPEGs, images per second.
 *
 *   npx tsx scripts/bench-bulk-add.ts [--images 300] [--repeats 3] [--write]
 *
 * Makes the JPEGs once (corpus originals resized to ~1 MP with sharp, quality 85, in
 * /tmp/haarseek-bench-bulk/), then runs the real CLI (bin/haarseek.js, the compiled
 * dist/) into a fresh data directory (--data) and through a fresh writer (--server),
 * with --jobs 1 and 2, and once more over the same files to time a resume that skips
 * them all. Each figure is the median of the repeats; the rate is the CLI's own
 * (added / seconds of the run, process start excluded). --write puts the results in
 * the "Bulk add" section of BENCHMARKS.md.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { loadNativeAddon } from '../src/signature/native-loader.ts';
import { writeBenchmarkSection } from './lib/benchmarks-md.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(ROOT, 'bin/haarseek.js');
const SHARED = process.env.HAARSEEK_SHARED ?? resolve(ROOT, '../shared');
const ORIGINALS = join(SHARED, 'corpus/dev/originals');
const WORK = join(tmpdir(), 'haarseek-bench-bulk');
const KEY = 'bench-bulk-key';
const execFileAsync = promisify(execFile);

const args = process.argv.slice(2);
const flag = (name: string, fallback: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const IMAGES = flag('--images', 300);
const REPEATS = flag('--repeats', 3);
const JOBS = [1, 2];

const log = (msg: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

/** The 1-MP JPEGs, named 1.jpg .. N.jpg (made once, kept between runs). */
async function makeImages(): Promise<{ dir: string; bytes: number }> {
  const dir = join(WORK, `images-${IMAGES}`);
  const count = () => (existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.jpg')).length : 0);
  if (count() !== IMAGES) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const originals = readdirSync(ORIGINALS).filter((f) => f.endsWith('.jpg')).sort();
    log(`making ${IMAGES} 1-MP JPEGs in ${dir}`);
    for (let i = 0; i < IMAGES; i++) {
      const src = join(ORIGINALS, originals[i % originals.length]);
      const meta = await sharp(src).metadata();
      const scale = Math.sqrt(1_000_000 / (meta.width! * meta.height!));
      await sharp(src)
        .resize(Math.round(meta.width! * scale), Math.round(meta.height! * scale), { kernel: 'lanczos3' })
        // A little noise per copy, so repeats of an original are different files.
        .modulate({ brightness: 1 + ((i % 7) - 3) / 100 })
        .jpeg({ quality: 85 })
        .toFile(join(dir, `${i + 1}.jpg`));
    }
  }
  const bytes = readdirSync(dir).reduce((n, f) => n + statSync(join(dir, f)).size, 0);
  return { dir, bytes };
}

interface Run {
  added: number;
  skipped: number;
  failed: number;
  seconds: number;
  rate: number;
  wall: number;
  /** CPU seconds (user + sys) of the add process and its workers, plus the writer's with --server. */
  cpu: number;
}

/** GNU time reports a child's CPU; without it the CPU column is left out. */
const TIME = existsSync('/usr/bin/time') ? '/usr/bin/time' : null;

/** CPU seconds a running process has used (Linux /proc), for the writer. */
function cpuOf(pid: number | undefined): number {
  if (pid === undefined || !existsSync(`/proc/${pid}/stat`)) return 0;
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
}

async function add(extra: string[], writerPid?: number): Promise<Run> {
  const cpuFile = join(WORK, 'cpu.txt');
  const command = [CLI, 'add', '--space', '1', '--json', '--no-progress', ...extra];
  const writerBefore = cpuOf(writerPid);
  const started = performance.now();
  const { stdout } = await (TIME
    ? execFileAsync(TIME, ['-f', '%U %S', '-o', cpuFile, process.execPath, ...command], { env: { ...process.env, HAARSEEK_WRITE_KEY: KEY }, maxBuffer: 64 * 1024 * 1024 })
    : execFileAsync(process.execPath, command, { env: { ...process.env, HAARSEEK_WRITE_KEY: KEY }, maxBuffer: 64 * 1024 * 1024 })
  ).catch((err) => {
    throw new Error(`haarseek add ${extra.join(' ')} failed: ${err.stderr || err.message}`);
  });
  const wall = (performance.now() - started) / 1000;
  const own = TIME ? readFileSync(cpuFile, 'utf8').trim().split('\n').at(-1)!.split(' ').reduce((n, x) => n + Number(x), 0) : Number.NaN;
  const s = JSON.parse(stdout) as { added: number; skipped: number; failed: number; seconds: number };
  return { added: s.added, skipped: s.skipped, failed: s.failed, seconds: s.seconds, rate: s.added / s.seconds, wall, cpu: own + cpuOf(writerPid) - writerBefore };
}

async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

async function startWriter(dataDir: string): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const child = spawn(process.execPath, [CLI, 'serve', '--role', 'writer', '--data', dataDir, '--port', String(port), '--log-level', 'warn'], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, HAARSEEK_WRITE_KEY: KEY },
  });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 300; i++) {
    if (child.exitCode !== null) throw new Error(`the writer exited with ${child.exitCode}`);
    try {
      if ((await fetch(`${url}/health`)).ok) return { url, child };
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  throw new Error('the writer did not start');
}

async function stopWriter(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

interface Row {
  target: 'data' | 'server';
  jobs: number;
  first: Run;
  resume: Run;
}

async function measure(target: 'data' | 'server', jobs: number, images: string): Promise<Row> {
  const firsts: Run[] = [];
  const resumes: Run[] = [];
  for (let r = 0; r < REPEATS; r++) {
    const dataDir = mkdtempSync(join(WORK, 'data-'));
    const writer = target === 'server' ? await startWriter(dataDir) : null;
    try {
      const where = writer ? ['--server', writer.url] : ['--data', dataDir];
      const first = await add([...where, '--jobs', String(jobs), images], writer?.child.pid);
      if (first.added !== IMAGES) throw new Error(`expected ${IMAGES} added, got ${JSON.stringify(first)}`);
      const resume = await add([...where, '--jobs', String(jobs), images], writer?.child.pid);
      if (resume.skipped !== IMAGES) throw new Error(`expected ${IMAGES} skipped on resume, got ${JSON.stringify(resume)}`);
      firsts.push(first);
      resumes.push(resume);
      log(`${target} --jobs ${jobs}: ${first.rate.toFixed(1)} images/s (${first.seconds.toFixed(2)} s, ${first.wall.toFixed(2)} s wall, ${((1000 * first.cpu) / IMAGES).toFixed(1)} CPU ms/image); resume ${resume.seconds.toFixed(2)} s`);
    } finally {
      if (writer) await stopWriter(writer.child);
      rmSync(dataDir, { recursive: true, force: true });
    }
  }
  const pick = (runs: Run[]): Run => {
    const m = median(runs.map((x) => x.seconds));
    return runs.find((x) => x.seconds === m)!;
  };
  return { target, jobs, first: pick(firsts), resume: pick(resumes) };
}

async function main(): Promise<void> {
  mkdirSync(WORK, { recursive: true });
  const { dir, bytes } = await makeImages();
  const rows: Row[] = [];
  const load = loadavg()[0];
  // What `haarseek add` will load (HAARSEEK_ENGINE forces one); read once, before the runs.
  const engine = process.env.HAARSEEK_ENGINE?.trim() || (loadNativeAddon().ok ? 'native' : 'ts');
  for (const target of ['data', 'server'] as const) {
    for (const jobs of JOBS) rows.push(await measure(target, jobs, dir));
  }
  const cpuMs = (r: Run) => (Number.isFinite(r.cpu) ? ((1000 * r.cpu) / IMAGES).toFixed(1) : 'n/a');
  const table = rows
    .map((r) => `| ${r.target === 'data' ? '`--data DIR`' : '`--server URL` (a writer)'} | ${r.jobs} | ${r.first.rate.toFixed(0)} | ${r.first.seconds.toFixed(2)} | ${r.first.wall.toFixed(2)} | ${cpuMs(r.first)} | ${r.resume.seconds.toFixed(2)} |`)
    .join('\n');
  const section = `## Bulk add

Command: \`npx tsx scripts/bench-bulk-add.ts --images ${IMAGES} --repeats ${REPEATS} --write\` (${new Date().toISOString().slice(0, 10)}).
Machine: ${cpus().length} cores (${cpus()[0]?.model.trim()}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${engine} engine; load average ${load.toFixed(1)} at the start (a shared machine: medians of ${REPEATS}).

\`haarseek add --space 1 DIR\` of ${IMAGES} JPEGs of ~1 megapixel (${(bytes / IMAGES / 1024).toFixed(0)} KB each on average, corpus originals resized with sharp), into an empty space; then the same command again, which finds every id present and skips all (a resumed run).

| target | --jobs | images/s | run, s | wall with process start, s | CPU ms per image | resume (all ${IMAGES} skipped), s |
|---|---:|---:|---:|---:|---:|---:|
${table}

- \`--data\`: decodes in --jobs worker threads (sharp with one libvips thread each, plus the signature), commits batches of up to 500 images per transaction with the change log; the run includes starting the workers.
- \`--server\`: --jobs PUT /api/v1/spaces/1/images/:id requests in flight to one writer, which decodes (up to its --max-concurrent-decodes, default the cores) and commits each image as its own fsynced transaction.
- CPU ms per image: user + system time of the add process (its decode workers included) and, with --server, of the writer during the run, over ${IMAGES}: the cost of an image whatever else the machine runs.
- A resume reads the space's ids once (SQLite in chunks of 500, or getDbImgIdList from the server) and decodes nothing.
${load >= cpus().length ? `- The load average (${load.toFixed(1)}) was at or above the core count: other work held the cores, so a second job found none free and the images/s of --jobs 2 say little; the CPU per image is the figure that carries over to an idle machine.\n` : ''}`;
  process.stdout.write(`${section}\n`);
  if (args.includes('--write')) {
    writeBenchmarkSection(join(ROOT, 'BENCHMARKS.md'), 'bulk-add', section);
    log('wrote the "Bulk add" section of BENCHMARKS.md');
  }
}

await main();
