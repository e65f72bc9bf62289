import { execFileSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { original } from '../helpers/corpus.ts';
import { type ServerProcess, health, rpcClient, startServerProcess, stopProcess, tempDataDir } from '../helpers/server.ts';

describe('kill -9 of the writer loses no acknowledged write', () => {
  const dataDir = tempDataDir();
  const procs: ServerProcess[] = [];
  afterAll(async () => {
    await Promise.all(procs.map((p) => stopProcess(p, 'SIGKILL')));
  });

  it('every acknowledged id is present after a restart, the file opens, readers recover', async () => {
    let writer = await startServerProcess('writer', dataDir);
    procs.push(writer);
    const reader = await startServerProcess('reader', dataDir, { writerUrl: writer.url });
    procs.push(reader);
    await rpcClient(writer.url)('createDb', 1);

    // Four concurrent streams of addImgBlob; the writer dies mid-stream.
    const acknowledged = new Set<number>();
    let nextId = 1;
    const client = rpcClient(writer.url);
    const stream = async () => {
      for (;;) {
        const id = nextId++;
        if (id > 400) return;
        try {
          if ((await client('addImgBlob', 1, id, original(((id - 1) % 318) + 1))) === 1) acknowledged.add(id);
        } catch {
          return;
        }
      }
    };
    const streams = Promise.all([stream(), stream(), stream(), stream()]);
    while (acknowledged.size < 25) await sleep(20);
    writer.child.kill('SIGKILL');
    await streams;
    await writer.exited;
    expect(acknowledged.size).toBeGreaterThanOrEqual(25);

    const check = execFileSync('python3', ['-c', 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); print(c.execute("pragma integrity_check").fetchone()[0])', `${dataDir}/haarseek.db`]);
    expect(check.toString().trim()).toBe('ok');

    writer = await startServerProcess('writer', dataDir, { port: writer.port });
    procs.push(writer);
    const ids = new Set<number>(await rpcClient(writer.url)('getDbImgIdList', 1));
    for (const id of acknowledged) expect(ids.has(id), `acknowledged id ${id}`).toBe(true);

    const r = rpcClient(reader.url);
    expect(new Set(await r('getDbImgIdList', 1))).toEqual(ids);
    await rpcClient(writer.url)('addImgBlob', 1, 1000, original(7));
    expect(await r('isImgOnDb', 1, 1000)).toBe(true);
    expect((await health(reader.port)).stale).toBe(false);
  });
});
