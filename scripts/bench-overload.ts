/**
 * Overload benchmark: a real cluster (2 readers, nginx in front) first measured at its
 * capacity (closed loop), then offered 1x, 2x and 4x that rate (open loop): goodput,
 * latency, busy answers and restarts at each step. Writes bench-out/overload-report.json
 * and the "Overload" section of BENCHMARKS.md.
 *
 *   npx tsx scripts/bench-overload.ts [--seconds 15]
 */
import { writeFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { writeBenchmarkSection } from './lib/benchmarks-md.ts';
import { OUT, ROOT, databaseOf, health, log, originalSignatures, queryBodies, startCluster, stopCluster, xmlRpcRequests } from './lib/cluster-harness.ts';

const SECONDS = Number(process.argv[process.argv.indexOf('--seconds') + 1]) || 15;
const SIZE = 10_000;
const READERS = 2;

interface Step {
  offered: string;
  offeredRate: number | null;
  goodput: number;
  p50: number;
  p99: number;
  answered: number;
  busy: number;
  errors: number;
  timeouts: number;
  restarts: number;
}

/** One load run; busy = HTTP 503 (every reader full) plus fault 9 answers. */
async function run(url: string, bodies: Buffer[], connections: number, overallRate?: number): Promise<Omit<Step, 'offered' | 'offeredRate' | 'restarts'>> {
  let good = 0;
  let busyFaults = 0;
  let otherFaults = 0;
  const requests = xmlRpcRequests(url, bodies, (status, text) => {
    if (status !== 200) return;
    if (!text.includes('<fault>')) good++;
    else if (text.includes('<int>9</int>')) busyFaults++;
    else otherFaults++;
  });
  const result = await autocannon({ url, connections, duration: SECONDS, overallRate, requests, timeout: 30 });
  log(`status codes ${JSON.stringify(result.statusCodeStats)}, good ${good}, busy faults ${busyFaults}, other faults ${otherFaults}`);
  return {
    goodput: good / SECONDS,
    p50: result.latency.p50,
    p99: result.latency.p99,
    answered: result.requests.total,
    busy: (result.statusCodeStats?.['503']?.count ?? 0) + busyFaults,
    errors: result.errors - result.timeouts,
    timeouts: result.timeouts,
  };
}

function restartCount(stderr: string): number {
  return stderr.split('\n').filter((l) => /exited unexpectedly|made no progress|did not become healthy/.test(l)).length;
}

async function main(): Promise<void> {
  const originals = await originalSignatures();
  const db = await databaseOf(SIZE, originals);
  const cluster = await startCluster(db, READERS);
  let stderr = '';
  cluster.child.stderr!.on('data', (d) => (stderr += d));
  const bodies = queryBodies(200);
  const steps: Step[] = [];
  try {
    const pids = await Promise.all(cluster.readerPorts.map(async (p) => (await health(p)).pid as number));
    await run(cluster.front, bodies, 8);
    log('capacity (closed loop, 32 connections)');
    const capacityRun = await run(cluster.front, bodies, 32);
    const capacity = capacityRun.goodput;
    steps.push({ offered: 'capacity (closed loop)', offeredRate: null, ...capacityRun, restarts: restartCount(stderr) });
    for (const factor of [1, 2, 4]) {
      const rate = Math.round(capacity * factor);
      log(`${factor}x: ${rate} req/s offered`);
      // Enough connections that the generator never waits for one: rate x worst latency.
      const result = await run(cluster.front, bodies, Math.min(1500, Math.max(64, rate)), rate);
      steps.push({ offered: `${factor}x`, offeredRate: rate, ...result, restarts: restartCount(stderr) });
    }
    const after = await Promise.all(cluster.readerPorts.map(async (p) => (await health(p)).pid as number));
    if (after.some((pid, i) => pid !== pids[i])) log('a reader was replaced during the run');
  } finally {
    await stopCluster(cluster);
  }
  const capacity = steps[0].goodput;
  const at4x = steps.find((s) => s.offered === '4x')!;
  const report = {
    date: new Date().toISOString().slice(0, 10),
    machine: { cores: availableParallelism(), cpu: cpus()[0]?.model.trim() },
    size: SIZE,
    readers: READERS,
    seconds: SECONDS,
    steps,
    goodputAt4xOfCapacity: at4x.goodput / capacity,
  };
  writeFileSync(join(OUT, 'overload-report.json'), `${JSON.stringify(report, null, 1)}\n`);
  const rows = steps.map((s) => `| ${s.offered} | ${s.offeredRate ?? '—'} | ${s.goodput.toFixed(0)} | ${(s.goodput / capacity * 100).toFixed(0)}% | ${s.p50} | ${s.p99} | ${s.answered} | ${s.busy} | ${s.errors} | ${s.timeouts} | ${s.restarts} |`);
  writeBenchmarkSection(join(ROOT, 'BENCHMARKS.md'), 'overload', `## Overload: goodput past capacity

Command: \`npx tsx scripts/bench-overload.ts --seconds ${SECONDS}\` (${report.date}; ${report.machine.cores} cores, ${report.machine.cpu}).
A cluster of ${READERS} readers behind nginx on ${SIZE.toLocaleString('en')} images; \`queryImgBlob\` with real JPEG queries (decode included), numres 10.
Capacity is the goodput of a closed loop of 32 connections; each step then offers that rate times 1, 2 and 4 as an open loop (autocannon \`overallRate\`, each step ${SECONDS} s).
Goodput counts answers with results; busy counts HTTP 503 from nginx (every reader full) and fault 9; restarts are the supervisor's restarts for any reason but a request (all steps cumulative). The load generator shares the 2 cores.

| offered | req/s offered | goodput req/s | of capacity | p50 ms | p99 ms | answered | busy | errors | timeouts | restarts |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
${rows.join('\n')}

Goodput at 4x: **${(report.goodputAt4xOfCapacity * 100).toFixed(0)}%** of capacity (goal ≥ 90%), ${at4x.restarts} restarts (goal 0).`);
  log(`done: goodput at 4x = ${(report.goodputAt4xOfCapacity * 100).toFixed(0)}% of capacity`);
}

await main();
