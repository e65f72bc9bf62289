import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { original } from '../helpers/corpus.ts';
import { type ServerProcess, health, rpcClient, startServerProcess, stopProcess, tempDataDir } from '../helpers/server.ts';

describe('read-your-writes across processes', () => {
  let writer: ServerProcess;
  const readers: ServerProcess[] = [];
  let w: ReturnType<typeof rpcClient>;
  let rs: Array<ReturnType<typeof rpcClient>>;
  const dataDir = tempDataDir();

  beforeAll(async () => {
    writer = await startServerProcess('writer', dataDir);
    for (let i = 0; i < 2; i++) readers.push(await startServerProcess('reader', dataDir, { writerUrl: writer.url }));
    w = rpcClient(writer.url);
    rs = readers.map((r) => rpcClient(r.url));
  });
  afterAll(async () => {
    await Promise.all([...readers, writer].map((p) => stopProcess(p)));
  });

  it('a write acknowledged by the writer is seen by the very next query on every reader', async () => {
    await w('createDb', 1);
    for (let id = 1; id <= 12; id++) {
      expect(await w('addImgBlob', 1, id, original(id))).toBe(1);
      for (const r of rs) {
        const results: Array<[number, number]> = await r('queryImgBlob', 1, original(id), 3);
        expect(results[0][0], `reader sees image ${id}`).toBe(id);
        expect(await r('getDbImgCount', 1)).toBe(id);
      }
    }
  });

  it('removals are seen at once', async () => {
    expect(await w('removeImg', 1, 12)).toBe(1);
    for (const r of rs) {
      expect(await r('isImgOnDb', 1, 12)).toBe(false);
      const results: Array<[number, number]> = await r('queryImgBlob', 1, original(12), 20);
      expect(results.map(([id]) => id)).not.toContain(12);
    }
  });

  it('writes sent to a reader are forwarded to the writer', async () => {
    expect(await rs[0]('addImgBlob', 1, 100, original(13))).toBe(1);
    expect(await w('isImgOnDb', 1, 100)).toBe(true);
    expect(await rs[1]('isImgOnDb', 1, 100)).toBe(true);
  });

  it('resetDb and loadAllDbs force a full reload of the space on readers', async () => {
    const before = await rs[0]('getDbImgIdList', 1);
    expect(await w('saveAllDbs')).toBe(1);
    expect(await w('resetDb', 1)).toBe(1);
    for (const r of rs) expect(await r('getDbImgCount', 1)).toBe(0);
    expect(await w('loadAllDbs')).toBe(1);
    for (const r of rs) expect(await r('getDbImgIdList', 1)).toEqual(before);
    const h = await health(readers[0].port);
    expect(h.stale).toBe(false);
    expect(h.images).toBe(before.length);
  });

  it('a space created or removed on the writer appears and disappears on readers', async () => {
    await w('createDb', 7);
    for (const r of rs) expect(await r('getDbList')).toEqual([1, 7]);
    expect(await w('removeDb', 7)).toBe(true);
    for (const r of rs) expect(await r('isValidDb', 7)).toBe(false);
  });
});
