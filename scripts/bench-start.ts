/**
 * Start-up benchmark: how long `haarseek --help` takes, and how long a reader of an
 * empty database takes from its spawn to its first /health 200 (what a restarted
 * reader costs in availability). Medians of N runs; writes the "Start" section of
 * BENCHMARKS.md with --write.
 *
 *   npx tsx scripts/bench-start.ts [--runs 7] [--write]
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { writeBenchmarkSection } from './lib/benchmarks-md.ts';
import { BENCH_KEY, ROOT, log } from './lib/cluster-harness.ts';

const RUNS = Number(process.argv[process.argv.indexOf('--runs') + 1]) || 7;
const CLI = join(ROOT, 'bin/haarseek.js');
const env = { ...process.env, HAARSEEK_WRITE_KEY: BENCH_KEY };
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function helpMs(): number {
  const t0 = performance.now();
  spawnSync(process.execPath, [CLI, '--help'], { stdio: 'ignore' });
  return performance.now() - t0;
}

async function readerStartMs(data: string, writerPort: number, port: number): Promise<number> {
  const t0 = performance.now();
  const reader = spawn(process.execPath, [CLI, 'serve', '--role', 'reader', '--data', data, '--port', String(port), '--writer-url', `http://127.0.0.1:${writerPort}/RPC`, '--log-level', 'warn'], { env, stdio: 'ignore' });
  while (!(await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.ok).catch(() => false))) await sleep(5);
  const ms = performance.now() - t0;
  reader.kill('SIGKILL');
  await new Promise((resolve) => reader.once('exit', resolve));
  return ms;
}

const data = mkdtempSync(join(tmpdir(), 'haarseek-bench-start-'));
const writerPort = 23_801;
const writer = spawn(process.execPath, [CLI, 'serve', '--data', data, '--port', String(writerPort), '--log-level', 'warn'], { env, stdio: 'ignore' });
try {
  while (!(await fetch(`http://127.0.0.1:${writerPort}/health`).then((r) => r.ok).catch(() => false))) await sleep(20);
  const load = loadavg()[0];
  const help = Array.from({ length: RUNS }, helpMs);
  const starts: number[] = [];
  for (let i = 0; i < RUNS; i++) starts.push(await readerStartMs(data, writerPort, 23_802));
  const row = (xs: number[]) => `${median(xs).toFixed(0)} | ${Math.min(...xs).toFixed(0)}-${Math.max(...xs).toFixed(0)}`;
  const section = `## Start

Command: \`npx tsx scripts/bench-start.ts --runs ${RUNS} --write\` (${new Date().toISOString().slice(0, 10)}; ${availableParallelism()} cores, ${cpus()[0]?.model.trim()}; load average ${load.toFixed(1)} at the start).
Processes run the compiled dist/ (no TypeScript transpiling at start). Medians of ${RUNS} runs.

| measure | median ms | range ms |
| --- | ---: | ---: |
| \`haarseek --help\` | ${row(help)} |
| a reader of an empty database: spawn to its first /health 200 | ${row(starts)} |`;
  log(`--help ${median(help).toFixed(0)} ms, reader start ${median(starts).toFixed(0)} ms`);
  if (process.argv.includes('--write')) writeBenchmarkSection(join(ROOT, 'BENCHMARKS.md'), 'start', section);
  else process.stdout.write(`${section}\n`);
} finally {
  writer.kill('SIGTERM');
  await new Promise((resolve) => writer.once('exit', resolve));
  rmSync(data, { recursive: true, force: true });
}
