import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERRORS } from '../../src/errors.ts';
import { original, originalPath } from '../helpers/corpus.ts';
import { type ServerProcess, expectFault, postRaw, rpcClient, startServerProcess, stopProcess, tempDataDir } from '../helpers/server.ts';

describe('iskdaemon API through a reader (writes forwarded)', () => {
  const dataDir = tempDataDir();
  let writer: ServerProcess;
  let reader: ServerProcess;
  let r: ReturnType<typeof rpcClient>;

  beforeAll(async () => {
    writer = await startServerProcess('writer', dataDir);
    reader = await startServerProcess('reader', dataDir, { writerUrl: writer.url });
    r = rpcClient(reader.url);
    for (let id = 1; id <= 6; id++) await r('addImgBlob', 1, id, original(id));
  });
  afterAll(async () => {
    await stopProcess(reader);
    await stopProcess(writer);
  });

  it('queries return numres+1 [id, score] pairs, best first, the image itself first at 100', async () => {
    const results: Array<[number, number]> = await r('queryImgID', 1, 3, 4);
    expect(results).toHaveLength(5);
    expect(results[0]).toEqual([3, 100]);
    for (let k = 1; k < results.length; k++) expect(results[k][1]).toBeLessThanOrEqual(results[k - 1][1]);
    const { text } = await postRaw(reader.url, `<?xml version="1.0"?><methodCall><methodName>queryImgID</methodName><params><param><value><int>1</int></value></param><param><value><int>3</int></value></param></params></methodCall>`);
    expect(text).toContain('<double>100</double>');
    const fast: Array<[number, number]> = await r('queryImgID', 1, 3, 2, 0, true);
    expect(fast[0][0]).toBe(3);
    const sketch: Array<[number, number]> = await r('queryImgID', 1, 3, 2, 1);
    expect(sketch[0][0]).toBe(3);
    // iskdaemon 0.9.2's form queryImgID(dbId, id, numres, fast): a <boolean> fourth argument is fast.
    expect(await r('queryImgID', 1, 3, 2, true)).toEqual(fast);
    expect(fast).not.toEqual(sketch);
  });

  it('image facts: dimensions, avgl, diffs', async () => {
    expect(await r('getImgDimensions', 1, 1)).toEqual([512, 512]);
    const avgl: number[] = await r('getImgAvgl', 1, 1);
    expect(avgl).toHaveLength(3);
    expect(await r('calcImgAvglDiff', 1, 1, 1)).toBe(0);
    expect(await r('calcImgDiff', 1, 1, 1)).toBeLessThan(-30);
    expect(await r('calcImgDiff', 1, 1, 2)).toBeGreaterThan(await r('calcImgDiff', 1, 1, 1));
  });

  it('keywords: add, list, AND/OR queries, popularity, removal', async () => {
    expect(await r('addKeywordImg', 1, 1, 10)).toBe(true);
    expect(await r('addKeywordsImg', 1, 2, '10,20')).toBe(true);
    expect(await r('addKeywordsImg', 1, 3, [20, 30])).toBe(true);
    expect(await r('getKeywordsImg', 1, 2)).toEqual([10, 20]);
    expect(await r('getAllImgsByKeywords', 1, 10, 1, '10,20')).toEqual([2]);
    expect(await r('getAllImgsByKeywords', 1, 10, 0, '10,20')).toEqual([1, 2, 3]);
    expect(await r('mostPopularKeywords', 1, '', '', 5, 0)).toEqual([10, 2, 20, 2, 30, 1]);
    expect(await r('mostPopularKeywords', 1, '1,2', '10', 5, 0)).toEqual([20, 1]);
    const among: Array<[number, number]> = await r('queryImgIDKeywords', 1, 2, 10, 0, '20');
    expect(among.map(([id]) => id).sort()).toEqual([2, 3]);
    const fast: Array<[number, number]> = await r('queryImgIDFastKeywords', 1, 1, 10, 1, '10');
    expect(fast.map(([id]) => id).sort()).toEqual([1, 2]);
    expect(await r('removeKeywordImg', 1, 2, 10)).toBe(true);
    expect(await r('getKeywordsImg', 1, 2)).toEqual([20]);
    expect(await r('removeAllKeywordImg', 1, 3)).toBe(true);
    expect(await r('getKeywordsImg', 1, 3)).toEqual([]);
  });

  it("a missing image gets iskdaemon 0.9.5's plain answers, not faults; a missing space stays a fault", async () => {
    // docs/iskdaemon-0.9.5-misses.md: what iskdaemon's C++ returned for an unknown id.
    expect(await r('queryImgID', 1, 999)).toEqual([]);
    expect(await r('queryImgID', 1, 999, 5, true)).toEqual([]);
    expect(await r('removeImg', 1, 999)).toBe(0);
    expect(await r('isImgOnDb', 1, 999)).toBe(false);
    expect(await r('getImgDimensions', 1, 999)).toEqual([0, 0]);
    expect(await r('calcImgAvglDiff', 1, 1, 999)).toBe(0);
    expect(await r('calcImgDiff', 1, 999, 1)).toBe(0);
    expect(await r('getImgAvgl', 1, 999)).toEqual([]);
    expect(await r('addKeywordImg', 1, 999, 1)).toBe(false);
    expect(await r('addKeywordsImg', 1, 999, '1,2')).toBe(false);
    expect(await r('removeKeywordImg', 1, 999, 1)).toBe(false);
    expect(await r('removeAllKeywordImg', 1, 999)).toBe(false);
    expect(await r('getKeywordsImg', 1, 999)).toEqual([]);
    expect(await r('queryImgIDKeywords', 1, 999, 10, 1, '10')).toEqual([]);
    expect(await r('queryImgIDFastKeywords', 1, 999, 10, 1, '10')).toEqual([]);
    // The answer is a real <double> 0.0 where iskdaemon sent one.
    const { text } = await postRaw(reader.url, '<?xml version="1.0"?><methodCall><methodName>calcImgDiff</methodName><params><param><value><int>1</int></value></param><param><value><int>999</int></value></param><param><value><int>1</int></value></param></params></methodCall>');
    expect(text).toContain('<double>0</double>');
    for (const call of [['queryImgID', 77, 1], ['removeImg', 77, 1], ['getImgDimensions', 77, 1], ['addKeywordImg', 77, 1, 1], ['getKeywordsImg', 77, 1]] as const) {
      await expectFault(r(call[0], ...call.slice(1)), ERRORS.unknownSpace.fault);
    }
  });

  it('paths: addImg, queryImgPath and addDir inside the data directory', async () => {
    const dir = join(dataDir, 'incoming');
    mkdirSync(join(dir, 'nested'), { recursive: true });
    copyFileSync(originalPath(20), join(dir, '20.jpg'));
    copyFileSync(originalPath(21), join(dir, '21.jpg'));
    copyFileSync(originalPath(22), join(dir, 'nested', '22.jpg'));
    writeFileSync(join(dir, '23.jpg'), 'not an image');
    copyFileSync(originalPath(24), join(dir, 'cat.jpg'));
    expect(await r('addDir', 2, dir, false)).toBe(2);
    expect(await r('getDbImgIdList', 2)).toEqual([20, 21]);
    expect(await r('addDir', 2, dir, true)).toBe(3);
    expect(await r('getDbImgIdList', 2)).toEqual([20, 21, 22]);
    expect(await r('addImg', 2, 99, join(dir, 'cat.jpg'))).toBe(1);
    const results: Array<[number, number]> = await r('queryImgPath', 2, join(dir, 'cat.jpg'), 1);
    expect(results[0][0]).toBe(99);
  });

  it('save points: add 4, saveAllDbs, resetDb -> 0, loadAllDbs -> 4', async () => {
    await r('createDb', 5);
    for (let id = 1; id <= 4; id++) await r('addImgBlob', 5, id, original(30 + id));
    await r('saveAllDbs');
    await r('resetDb', 5);
    expect(await r('getDbImgCount', 5)).toBe(0);
    await r('loadAllDbs');
    expect(await r('getDbImgCount', 5)).toBe(4);
  });

  it('one space exported with saveDbAs and imported with loadDb under another id', async () => {
    const file = join(dataDir, 'space1.db');
    expect(await r('saveDbAs', 1, file)).toBe(1);
    expect(await r('loadDb', 9, file)).toBe(9);
    expect(await r('getDbImgIdList', 9)).toEqual(await r('getDbImgIdList', 1));
    expect(await r('getKeywordsImg', 9, 1)).toEqual([10]);
    const all = join(dataDir, 'all.db');
    const spaces = await r('saveAllDbsAs', all);
    await r('removeDb', 9);
    expect(await r('loadAllDbsAs', all)).toBe(spaces);
    expect(await r('isValidDb', 9)).toBe(true);
  });

  it('lists, stats, log, introspection and multicall', async () => {
    expect(await r('getDbList')).toEqual(expect.arrayContaining([1, 2, 5]));
    const detailed = await r('getDbDetailedList');
    expect(detailed['1'][0]).toBe(await r('getDbImgCount', 1));
    const stats = await r('getGlobalServerStats');
    expect(stats.role).toBe('reader');
    expect(['ts', 'native']).toContain(stats.engine);
    expect(typeof (await r('getIskLog', 5))).toBe('string');
    const methods: string[] = await r('system.listMethods');
    expect(methods).toEqual(expect.arrayContaining(['queryImgBlob', 'addImgBlob', 'system.multicall', 'mostPopularKeywords']));
    expect(await r('system.methodHelp', 'queryImgID')).toContain('numres=12');
    const multi = await r('system.multicall', [
      { methodName: 'getDbImgCount', params: [1] },
      { methodName: 'getDbImgCount', params: [12345] },
      { methodName: 'isValidDb', params: [1] },
    ]);
    expect(multi[0]).toEqual([await r('getDbImgCount', 1)]);
    expect(multi[1].faultCode).toBe(ERRORS.unknownSpace.fault);
    expect(multi[2]).toEqual([true]);
  });

  it("getDbDetailedList's adds-since-last-save goes back to 0 after saveAllDbs (it never did)", async () => {
    // Adds are counted by the process that stores them: the writer.
    const w = rpcClient(writer.url);
    expect(await w('addImgBlob', 1, 7, original(7))).toBe(1);
    const before = (await w('getDbDetailedList'))['1'];
    expect(before[8]).toBeGreaterThanOrEqual(7); // addCount
    expect(before[9]).toBeGreaterThanOrEqual(1); // addSinceLastSave
    expect(before[10]).toBe(7); // lastId
    expect(await w('saveAllDbs')).toBeGreaterThanOrEqual(1);
    const after = (await w('getDbDetailedList'))['1'];
    expect(after[8]).toBe(before[8]);
    expect(after[9]).toBe(0);
    expect(await w('addImgBlob', 1, 8, original(8))).toBe(1);
    expect((await w('getDbDetailedList'))['1'][9]).toBe(1);
  });

  it('removeImg then count; removeDb', async () => {
    const before = await r('getDbImgCount', 1);
    expect(await r('removeImg', 1, 6)).toBe(1);
    expect(await r('getDbImgCount', 1)).toBe(before - 1);
    expect(await r('removeImg', 1, 6)).toBe(0);
    expect(await r('removeDb', 2)).toBe(true);
    expect(await r('isValidDb', 2)).toBe(false);
  });
});
