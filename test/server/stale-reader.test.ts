import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { original } from '../helpers/corpus.ts';
import { type ServerProcess, health, rpcClient, startServerProcess, stopProcess, tempDataDir } from '../helpers/server.ts';

/** Holds an exclusive SQLite lock on the file from another process until stdin closes. */
function holdExclusiveLock(dbPath: string): Promise<ChildProcess> {
  const child = spawn('python3', ['-c', [
    'import sqlite3, sys',
    'c = sqlite3.connect(sys.argv[1], isolation_level=None)',
    'c.execute("BEGIN EXCLUSIVE")',
    'print("locked", flush=True)',
    'sys.stdin.read()',
    'c.execute("COMMIT")',
  ].join('\n'), dbPath], { stdio: ['pipe', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.stdout!.once('data', () => resolve(child));
    child.once('exit', (code) => reject(new Error(`lock holder exited ${code}`)));
  });
}

describe('a reader whose refresh cannot read the database', () => {
  const dataDir = tempDataDir();
  const procs: ServerProcess[] = [];
  afterAll(async () => {
    await Promise.all(procs.map((p) => stopProcess(p)));
  });

  it('answers from its last snapshot while the file is locked, reports stale, and catches up after', async () => {
    const writer = await startServerProcess('writer', dataDir);
    const reader = await startServerProcess('reader', dataDir, { writerUrl: writer.url, extraArgs: ['--refresh-retry-ms', '300'] });
    procs.push(writer, reader);
    const w = rpcClient(writer.url);
    const r = rpcClient(reader.url);
    await w('createDb', 1);
    await w('addImgBlob', 1, 1, original(1));
    expect(await r('getDbImgCount', 1)).toBe(1);

    // A commit the reader has not seen yet, then a lock that keeps it from reading it.
    await w('addImgBlob', 1, 2, original(2));
    const locker = await holdExclusiveLock(join(dataDir, 'haarseek.db'));
    try {
      const started = Date.now();
      expect(await r('getDbImgCount', 1)).toBe(1);
      expect(Date.now() - started).toBeLessThan(5_000);
      const results: Array<[number, number]> = await r('queryImgBlob', 1, original(1), 3);
      expect(results[0][0]).toBe(1);
      const h = await health(reader.port);
      expect(h.stale).toBe(true);
      expect(h.lastError).toMatch(/lock|busy/i);
    } finally {
      locker.stdin!.end();
      await new Promise((resolve) => locker.once('exit', resolve));
    }
    expect(await r('getDbImgCount', 1)).toBe(2);
    expect((await health(reader.port)).stale).toBe(false);
  });

  it('a reader started before the database exists waits for it and then serves', async () => {
    const emptyDir = tempDataDir();
    const reader = await startServerProcess('reader', emptyDir, { extraArgs: ['--refresh-retry-ms', '100'], waitHealthy: false });
    procs.push(reader);
    // Wait until it listens (however slow the machine), then it must say "not ready".
    let res: Response | null = null;
    for (const deadline = Date.now() + 60_000; !res && Date.now() < deadline; ) {
      res = await fetch(`http://127.0.0.1:${reader.port}/health`).catch(() => null);
      if (!res) await sleep(100);
    }
    expect(res?.status).toBe(503);
    const writer = await startServerProcess('writer', emptyDir);
    procs.push(writer);
    await rpcClient(writer.url)('createDb', 3);
    expect(await rpcClient(reader.url)('getDbList')).toEqual([3]);
    expect((await health(reader.port)).ok).toBe(true);
  });
});
