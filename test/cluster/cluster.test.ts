import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { original, originalPath } from '../helpers/corpus.ts';
import { REPO_ROOT } from '../helpers/paths.ts';
import { type ClusterProcess, NGINX_INSTALLED, pidOf, processesUsing, startCluster, stopCluster, waitFor } from '../helpers/cluster.ts';
import { isFree, keyedUrl, rpcClient, tempDataDir } from '../helpers/server.ts';

const run = promisify(execFile);

/** The CPU list every thread of a process may run on (one entry per distinct list). */
function cpusAllowed(pid: number): string[] {
  const lists = readdirSync(`/proc/${pid}/task`).map((tid) => {
    const status = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
    return /^Cpus_allowed_list:\s*(\S+)/m.exec(status)![1];
  });
  return [...new Set(lists)];
}

async function freeEphemeralPort(from: number): Promise<number> {
  for (let port = from + 1000; port < from + 2000; port++) if (await isFree(port)) return port;
  throw new Error('no free port in the ephemeral range');
}

if (!NGINX_INSTALLED) process.stdout.write('cluster tests skipped: nginx not installed\n');

describe.skipIf(!NGINX_INSTALLED)('the cluster behind nginx', () => {
  const clusters: ClusterProcess[] = [];
  afterAll(async () => {
    await Promise.all(clusters.map((c) => stopCluster(c)));
  });

  it('answers the iskdaemon calls through the front, writes forwarded to the writer; a second cluster on the same data refuses', async () => {
    const cluster = await startCluster(tempDataDir());
    clusters.push(cluster);
    const front = rpcClient(cluster.frontUrl);
    expect(await front('createDb', 2)).toBe(2);
    for (let id = 1; id <= 5; id++) expect(await front('addImgBlob', 2, id, original(id))).toBe(1);
    expect(await front('getDbImgCount', 2)).toBe(5);
    const results: Array<[number, number]> = await front('queryImgBlob', 2, original(3), 2);
    expect(results[0][0]).toBe(3);
    expect(await front('getDbImgIdList', 2)).toEqual([1, 2, 3, 4, 5]);
    // Round robin: consecutive calls reach both readers.
    const ports = new Set<number>();
    for (let i = 0; i < 6; i++) ports.add((await front('getGlobalServerStats')).port);
    expect([...ports].sort()).toEqual(cluster.readerPorts);

    // The whole iskdaemon scenario, with Python's client, through the front.
    const images = join(cluster.dataDir, 'images');
    mkdirSync(images);
    for (let n = 50; n < 56; n++) copyFileSync(originalPath(n), join(images, `${n}.jpg`));
    const scenario = await run('python3', [join(REPO_ROOT, 'test/e2e/iskdaemon_scenario.py'), '--url', keyedUrl(cluster.frontUrl), '--images', images]).catch((err) => err);
    const checks = String(scenario.stdout).trim().split('\n').map((l) => JSON.parse(l));
    expect(checks.filter((c) => c.ok === false)).toEqual([]);
    expect(checks.length).toBeGreaterThan(40);

    const second = await startCluster(cluster.dataDir, { waitUp: false });
    const { code } = await second.exited;
    expect(code).toBe(2);
    expect(second.output()).toContain('another haarseek cluster is running');
  });

  it('a cluster started again on its database starts the readers first: the front serves the stored images, the writer follows', async () => {
    const dataDir = tempDataDir();
    const first = await startCluster(dataDir);
    const before = rpcClient(first.frontUrl);
    for (let id = 1; id <= 4; id++) await before('addImgBlob', 1, id, original(id));
    await stopCluster(first);
    const again = await startCluster(dataDir, { waitUp: false });
    clusters.push(again);
    const front = rpcClient(again.frontUrl);
    await waitFor(async () => {
      try {
        return (await front('getDbImgCount', 1)) === 4;
      } catch {
        return false;
      }
    }, 60_000, () => `the front did not serve the stored images:\n${again.output()}`);
    await waitFor(() => again.output().includes('cluster ready'), 60_000, () => `the writer did not follow:\n${again.output()}`);
    const started = [...again.output().matchAll(/"instance":"(writer|reader-\d)"[^\n]*"msg":"started"/g)].map((m) => m[1]);
    expect(started.indexOf('writer'), started.join(' ')).toBeGreaterThan(started.indexOf('reader-1'));
    expect(await front('addImgBlob', 1, 5, original(5))).toBe(1);
    expect(await front('getDbImgCount', 1)).toBe(5);
  });

  it('kill -9 of a reader under steady load through nginx: no failed request, the reader is back within seconds', async () => {
    const cluster = await startCluster(tempDataDir());
    clusters.push(cluster);
    const front = rpcClient(cluster.frontUrl);
    for (let id = 1; id <= 20; id++) await front('addImgBlob', 1, id, original(id));
    let failed = 0;
    const errors: string[] = [];
    let done = 0;
    let running = true;
    const client = async () => {
      while (running) {
        try {
          const results: Array<[number, number]> = await front('queryImgID', 1, (done % 20) + 1, 3);
          if (results.length !== 4) failed++;
        } catch (err) {
          failed++;
          errors.push(String(err));
        }
        done++;
      }
    };
    const clients = Promise.all([client(), client(), client(), client()]);
    await sleep(1000);
    const victimPort = cluster.readerPorts[0];
    const victimPid = await pidOf(victimPort);
    const killedAt = Date.now();
    process.kill(victimPid, 'SIGKILL');
    await waitFor(async () => {
      try {
        return (await pidOf(victimPort)) !== victimPid;
      } catch {
        return false;
      }
    }, 20_000, () => 'reader did not come back');
    const recoveryMs = Date.now() - killedAt;
    await sleep(1500);
    running = false;
    await clients;
    process.stdout.write(`reader kill -9 under load: ${done} requests, ${failed} failed, reader back in ${recoveryMs} ms\n`);
    expect(errors).toEqual([]);
    expect(failed).toBe(0);
    expect(done).toBeGreaterThan(50);
    expect(recoveryMs).toBeLessThan(10_000);
    expect(cluster.output()).toMatch(/reader-1.*exited unexpectedly/);
  });

  it('kill -9 of the writer during ingestion: restarted, every acknowledged image present, readers see new writes', async () => {
    const cluster = await startCluster(tempDataDir());
    clusters.push(cluster);
    const writer = rpcClient(cluster.writerUrl);
    const front = rpcClient(cluster.frontUrl);
    await writer('createDb', 1);
    const acknowledged = new Set<number>();
    let nextId = 1;
    let stop = false;
    const ingest = async () => {
      while (!stop) {
        const id = nextId++;
        try {
          if ((await writer('addImgBlob', 1, id, original(((id - 1) % 318) + 1))) === 1) acknowledged.add(id);
        } catch {
          await sleep(100);
        }
      }
    };
    const streams = Promise.all([ingest(), ingest()]);
    await waitFor(() => acknowledged.size >= 15, 30_000, () => 'no ingestion progress');
    const writerPid = await pidOf(cluster.writerPort);
    process.kill(writerPid, 'SIGKILL');
    const killedAt = Date.now();
    await waitFor(async () => {
      try {
        return (await pidOf(cluster.writerPort)) !== writerPid;
      } catch {
        return false;
      }
    }, 20_000, () => 'writer did not come back');
    const writerBackMs = Date.now() - killedAt;
    const before = acknowledged.size;
    await waitFor(() => acknowledged.size >= before + 10, 30_000, () => 'no ingestion after the restart');
    stop = true;
    await streams;
    const stored = new Set<number>(await front('getDbImgIdList', 1));
    for (const id of acknowledged) expect(stored.has(id), `acknowledged id ${id}`).toBe(true);
    process.stdout.write(`writer kill -9 during ingestion: ${acknowledged.size} acknowledged, all stored; writer back in ${writerBackMs} ms\n`);
    expect(await front('addImgBlob', 1, 100_000, original(9))).toBe(1);
    expect(await front('isImgOnDb', 1, 100_000)).toBe(true);
  });

  it('a reader that cannot start is retried with backoff, then given up loudly; the rest keeps serving', async () => {
    const dataDir = tempDataDir();
    // Occupy the second reader's port with a service that drops every connection:
    // a real reason for a process to die at start.
    const blocker = createServer((socket) => socket.destroy());
    const probe = await startCluster(tempDataDir(), { readers: 1, waitUp: true });
    const base = probe.readerPorts[0] + 1;
    await stopCluster(probe);
    await new Promise<void>((resolve) => blocker.listen(base + 1, '127.0.0.1', resolve));
    try {
      const cluster = await startCluster(dataDir, { readers: 2, readerBasePort: base, waitUp: false, extraArgs: ['--crash-loop-limit', '3'] });
      clusters.push(cluster);
      await waitFor(() => cluster.output().includes('CRASH LOOP'), 30_000, () => `no crash-loop report:\n${cluster.output()}`);
      const restarts = cluster.output().match(/reader-2.*exited unexpectedly; restarting after backoff/g) ?? [];
      expect(restarts.length).toBe(3);
      const delays = [...cluster.output().matchAll(/"instance":"reader-2"[^\n]*"restartInMs":(\d+)/g)].map((m) => Number(m[1]));
      // The first restart is at once (a killed reader comes back within its start time), then the backoff doubles.
      expect(delays).toEqual([0, 250, 500]);
      const front = rpcClient(cluster.frontUrl);
      await front('createDb', 4).catch((e) => { throw new Error(`${e}\n${cluster.output()}`); });
      expect(await front('getDbList')).toEqual([4]);
      expect(cluster.child.exitCode).toBeNull();
    } finally {
      blocker.close();
    }
  });

  it('--pin-readers: each reader, all its threads, on a CPU of its own, again after a kill -9; the cluster serves', async () => {
    const cluster = await startCluster(tempDataDir(), { extraArgs: ['--pin-readers'] });
    clusters.push(cluster);
    const front = rpcClient(cluster.frontUrl);
    for (let id = 1; id <= 3; id++) expect(await front('addImgBlob', 1, id, original(id))).toBe(1);
    expect((await front('queryImgBlob', 1, original(2), 1))[0][0]).toBe(2);
    const cpus = Math.min(cluster.readerPorts.length, availableParallelism());
    const allowed = async (port: number) => cpusAllowed(await pidOf(port));
    for (let i = 0; i < cpus; i++) expect(await allowed(cluster.readerPorts[i])).toEqual([String(i)]);

    const pid = await pidOf(cluster.readerPorts[0]);
    process.kill(pid, 'SIGKILL');
    await waitFor(async () => (await pidOf(cluster.readerPorts[0]).catch(() => pid)) !== pid, 20_000, () => `reader not restarted:\n${cluster.output()}`);
    expect(await allowed(cluster.readerPorts[0])).toEqual(['0']);
  });

  it('warns when its ports lie inside the ephemeral port range', async () => {
    const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    const port = await freeEphemeralPort(low);
    const cluster = await startCluster(tempDataDir(), { readers: 1, extraArgs: ['--no-nginx', '--writer-port', String(port)], waitUp: false });
    clusters.push(cluster);
    await waitFor(() => cluster.output().includes('ephemeral port range'), 20_000, () => `no warning:\n${cluster.output()}`, cluster.child);
    expect(cluster.output()).toContain(String(port));
  });

  it('SIGTERM: the supervisor exits 0 and leaves no process behind', async () => {
    const cluster = await startCluster(tempDataDir());
    expect(processesUsing(cluster.dataDir).length).toBeGreaterThanOrEqual(4);
    const result = await stopCluster(cluster);
    expect(result).toEqual({ code: 0, signal: null });
    await sleep(300);
    expect(processesUsing(cluster.dataDir)).toEqual([]);
  });
});
