import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { original } from '../helpers/corpus.ts';
import { NatsCluster, type ReplicaProcess, rangePort, startReplica, until } from '../helpers/nats.ts';
import { type ServerProcess, health, rpcClient, startServerProcess, stopProcess, tempDataDir, expectFault } from '../helpers/server.ts';
import { WriterStore } from '../../src/store/writer-store.ts';
import { changeLines, contents, inspect, lastSeq } from './helpers.ts';

/**
 * Hosts on one machine: each "host" is its own data directory, ports and processes.
 * NATS is a real three-node JetStream cluster (R3); the writer, replicas and readers
 * are real `haarseek` processes, killed with real signals.
 */
describe('readers on other hosts: the change log through a three-node NATS JetStream cluster', () => {
  const root = tempDataDir('haarseek-multihost-');
  let nats: NatsCluster;
  const writerDir = join(root, 'host-a');
  const replicaDir = join(root, 'host-b');
  let writer: ServerProcess;
  let replica: ReplicaProcess;
  let reader: ServerProcess;
  const stream = 'mh';
  const startWriter = async () =>
    startServerProcess('writer', writerDir, {
      port: await rangePort(),
      extraArgs: [...nats.urls.flatMap((u) => ['--nats', u]), '--nats-stream', stream, '--nats-replicas', '3', '--nats-snapshot-interval-s', '3600'],
    });
  const startHostBReader = async () => startServerProcess('reader', replicaDir, { port: await rangePort(), extraArgs: ['--follower', '--no-forward'] });
  /** Until the replica's file holds the writer's whole log. */
  const caughtUp = async (what: string, timeoutMs = 60_000) => {
    const target = lastSeq(writerDir);
    await until(async () => (await health(replica.port).catch(() => ({ appliedSeq: -1 }))).appliedSeq >= target, timeoutMs, () => `${what}: replica did not reach ${target}:\n${replica.output().slice(-3000)}\nwriter:\n${writer.output().slice(-3000)}`);
    return target;
  };

  beforeAll(async () => {
    mkdirSync(writerDir, { recursive: true });
    nats = await NatsCluster.start(root, 3);
    writer = await startWriter();
  });

  afterAll(async () => {
    await stopProcess(reader);
    if (replica) {
      replica.child.kill('SIGTERM');
      await replica.exited;
    }
    await stopProcess(writer);
    await nats?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  it('a new host fetches a snapshot, then every change arrives in order with the writer\'s sequence numbers; its reader answers', async () => {
    const w = rpcClient(writer.url);
    await w('addImgBlob', 1, 1, original(1));
    // A small bound: the replica writes index segments for host B's readers within this test.
    replica = await startReplica(replicaDir, nats.urls, { stream, extraArgs: ['--segment-delta-max', '2'] });
    reader = await startHostBReader();
    const r = rpcClient(reader.url);
    const ackAt: number[] = [];
    const seen: number[] = [];
    for (const id of [2, 3, 4]) {
      await w('addImgBlob', 1, id, original(id));
      const acked = Date.now();
      await until(async () => ((await r('getDbImgIdList', 1)) as number[]).includes(id), 30_000, () => `image ${id} never reached host B:\n${replica.output().slice(-2000)}`);
      ackAt.push(acked);
      seen.push(Date.now() - acked);
    }
    process.stdout.write(`read-after-write across hosts (ack -> remote reader answers): ${seen.join(', ')} ms\n`);
    await w('addKeywordsImg', 1, 2, '5,6');
    await w('removeImg', 1, 3);
    await w('createDb', 7);
    await w('addImgBlob', 7, 70, original(7));
    await w('resetDb', 7);
    await caughtUp('keywords, removal, spaces');
    expect(await r('getKeywordsImg', 1, 2)).toEqual([5, 6]);
    expect(await r('getDbImgIdList', 1)).toEqual([1, 2, 4]);
    expect(await r('getDbList')).toEqual([1, 7]);
    expect(await r('getDbImgCount', 7)).toBe(0);
    // Same rows, same change log, number for number, from the first change the replica applied.
    expect(contents(replicaDir)).toBe(contents(writerDir));
    const firstApplied = changeLines(replicaDir, 0).map((l) => Number(l.split(' ')[0])).find((s) => s > 1) ?? 1;
    expect(changeLines(replicaDir, firstApplied)).toEqual(changeLines(writerDir, firstApplied));
    const h = await health(reader.port);
    expect(h.stale).toBe(false);
    await until(async () => (await health(reader.port)).replica.appliedSeq === lastSeq(writerDir), 10_000, () => 'the reader never saw the replica\'s position');
    // Writes on host B are refused, saying where they go.
    const fault = await expectFault(r('addImgBlob', 1, 9, original(9)), 5);
    expect(fault.faultString).toMatch(/follows a writer on another host/);
    // Host B's reader serves from the segment set its replica wrote, with the same answers.
    const expected = await w('queryImgID', 1, 2, 5);
    await until(async () => (await health(reader.port)).segments.seq !== null, 60_000, () => `no segment set on host B:\n${replica.output().slice(-2000)}`);
    expect(replica.output()).toMatch(/index segments written/);
    expect(await r('queryImgID', 1, 2, 5)).toEqual(expected);
  });

  it('kill -9 of one NATS node of three under write load: no acknowledged write is missing on the replica', async () => {
    const w = rpcClient(writer.url);
    const acked: Array<[number, number]> = [];
    let killedAt = 0;
    let failures = 0;
    const worker = async (lane: number) => {
      for (let k = 0; k < 60; k++) {
        const image = [1, 2, 4][k % 3];
        const kw = 1000 + lane * 100 + k;
        try {
          await w('addKeywordImg', 1, image, kw);
          acked.push([image, kw]);
        } catch {
          failures++;
        }
        if (acked.length === 60 && !killedAt) {
          killedAt = Date.now();
          await nats.kill(0, 'SIGKILL');
        }
      }
    };
    await Promise.all([0, 1, 2, 3].map(worker));
    expect(killedAt).toBeGreaterThan(0);
    const target = await caughtUp('after a NATS node was killed', 100_000);
    const caughtMs = Date.now() - killedAt;
    const present = contents(replicaDir);
    const missing = acked.filter(([image, kw]) => !present.includes(`[1,${image},${kw}]`));
    process.stdout.write(`NATS node killed under load: ${acked.length} writes acknowledged, ${failures} failed, ${missing.length} missing on the replica; caught up to change ${target} ${caughtMs} ms after the kill\n`);
    expect(failures).toBe(0);
    expect(missing).toEqual([]);
    expect(contents(replicaDir)).toBe(contents(writerDir));
    await nats.restart(0);
    await nats.waitReady();
  }, 150_000);

  it('kill -9 of the replica mid-apply: it resumes after its last applied change, nothing applied twice or skipped', async () => {
    // Offline rows (as `haarseek add --data` writes them while no writer runs): the writer re-sends them when it starts.
    await stopProcess(writer);
    const store = WriterStore.open(join(writerDir, 'haarseek.db'));
    const sig = { coefs: Int32Array.from({ length: 120 }, (_, k) => (k % 3 === 0 ? -1 : 1) * (k + 1)), avgl: Float64Array.of(0.5, 0.01, -0.01) };
    for (let batch = 0; batch < 60; batch++) {
      store.putImages(3, Array.from({ length: 500 }, (_, k) => ({ imageId: 1 + batch * 500 + k, width: 10, height: 10, sig })));
    }
    store.close();
    const before = (await health(replica.port)).appliedSeq as number;
    writer = await startWriter();
    // Live writes on top of the re-sent backlog: the replica is killed while it applies a flow of changes.
    const w = rpcClient(writer.url);
    let loading = true;
    const load = (async () => {
      let k = 0;
      while (loading) await w('addKeywordImg', 1, 4, 9000 + k++);
      return k;
    })();
    await until(async () => (await health(replica.port)).appliedSeq > before, 60_000, () => 'the replica applied nothing');
    replica.child.kill('SIGKILL');
    await replica.exited;
    const appliedAtKill = inspect(replicaDir, (db) => Number(db.prepare("SELECT value FROM replication WHERE key = 'applied_seq'").pluck().get()));
    await new Promise((resolve) => setTimeout(resolve, 500));
    replica = await startReplica(replicaDir, nats.urls, { stream });
    expect(replica.output()).toContain(`"appliedSeq":${appliedAtKill}`);
    loading = false;
    const written = await load;
    const target = lastSeq(writerDir);
    process.stdout.write(`replica killed at applied change ${appliedAtKill}; the log went on to ${target} (${written} live writes meanwhile)\n`);
    expect(appliedAtKill).toBeLessThan(target);
    await caughtUp('after the replica was killed', 100_000);
    // The writer may have trimmed rows its index segments cover; the rows both still hold must be the same.
    const from = Math.max(before + 1, inspect(writerDir, (db) => db.prepare('SELECT min(seq) FROM changes').pluck().get() as number));
    expect(changeLines(replicaDir, from)).toEqual(changeLines(writerDir, from));
    expect(contents(replicaDir)).toBe(contents(writerDir));
    expect(inspect(replicaDir, (db) => db.prepare('SELECT count(*) FROM images WHERE db_id = 3').pluck().get())).toBe(30_000);
  }, 150_000);

  const log = (what: string) => process.stdout.write(`${new Date().toISOString()} ${what}\n`);

  it('NATS down: the writer commits and answers at once; a replica started meanwhile serves its last state marked stale; all is published when NATS returns', async () => {
    await stopProcess(reader);
    replica.child.kill('SIGTERM');
    await replica.exited;
    for (let i = 0; i < 3; i++) await nats.kill(i, 'SIGKILL');
    const w = rpcClient(writer.url);
    const latencies: number[] = [];
    for (let k = 0; k < 20; k++) {
      const t = Date.now();
      await w('addKeywordImg', 1, 4, 5000 + k);
      latencies.push(Date.now() - t);
    }
    await w('addImgBlob', 1, 11, original(11));
    const backlog = (await health(writer.port)).nats;
    expect(backlog.backlog).toBeGreaterThanOrEqual(21);
    // Host B restarts while NATS is down: its readers serve what it holds, marked stale.
    replica = await startReplica(replicaDir, nats.urls, { stream });
    reader = await startHostBReader();
    const r = rpcClient(reader.url);
    expect(await r('getDbImgIdList', 1)).toEqual([1, 2, 4]);
    await until(async () => (await health(reader.port)).stale === true, 30_000, () => 'the reader of a replica without NATS is not stale');
    const metrics = await (await fetch(`http://127.0.0.1:${reader.port}/metrics`)).text();
    expect(metrics).toMatch(/haarseek_replica_stale\{[^}]*\} 1/);
    process.stdout.write(`writes with NATS down: ${latencies.length} acknowledged, slowest ${Math.max(...latencies)} ms; backlog ${backlog.backlog} changes\n`);
    const back = Date.now();
    for (let i = 0; i < 3; i++) await nats.restart(i);
    log('nats restarted');
    await nats.waitReady();
    log('nats ready');
    await caughtUp('after NATS came back', 90_000);
    log('caught up');
    await until(async () => ((await r('getDbImgIdList', 1)) as number[]).includes(11), 30_000, () => 'image 11 never reached host B');
    await until(async () => (await health(reader.port)).stale === false, 30_000, () => 'the reader stayed stale after NATS returned');
    process.stdout.write(`NATS back: host B current ${Date.now() - back} ms after the restart of the NATS nodes\n`);
    expect(contents(replicaDir)).toBe(contents(writerDir));
    await until(async () => (await health(writer.port)).nats.backlog === 0, 30_000, () => `the writer still counts a backlog: ${writer.output().slice(-2000)}`);
  }, 180_000);
});
