import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERRORS } from '../../src/errors.ts';
import { original } from '../helpers/corpus.ts';
import { GOLDEN_DIR } from '../helpers/paths.ts';
import { type ServerProcess, expectFault, rpcClient, startServerProcess, stopProcess, tempDataDir } from '../helpers/server.ts';

const IMPORTS = join(GOLDEN_DIR, 'imports');

describe("iskdaemon's own database files through iskdaemon's own calls (loadDb, loadAllDbsAs)", () => {
  const dataDir = tempDataDir();
  let writer: ServerProcess;
  let reader: ServerProcess;
  beforeAll(async () => {
    for (const f of ['iskdaemon-0.9.5.isk', 'iskdaemon-0.9.5-savedb-space1.isk']) copyFileSync(join(IMPORTS, f), join(dataDir, f));
    writer = await startServerProcess('writer', dataDir);
    reader = await startServerProcess('reader', dataDir, { writerUrl: writer.url });
  });
  afterAll(async () => {
    await stopProcess(reader);
    await stopProcess(writer);
  });

  it('loadAllDbsAs takes a savealldbs file: every space, image, size and keyword, seen by a reader', async () => {
    const r = rpcClient(reader.url);
    expect(await r('addImgBlob', 3, 1, original(1))).toBe(1);
    expect(await r('loadAllDbsAs', join(dataDir, 'iskdaemon-0.9.5.isk'))).toBe(3);
    expect(await r('getDbList')).toEqual([1, 3, 7]);
    expect(await r('getDbImgIdList', 1)).toEqual(Array.from({ length: 12 }, (_, i) => 101 + i));
    expect(await r('getDbImgIdList', 7)).toEqual(Array.from({ length: 12 }, (_, i) => 2001 + i));
    expect(await r('getImgDimensions', 1, 101)).toEqual([640, 480]);
    expect(await r('getImgDimensions', 7, 2001)).toEqual([320, 240]);
    expect(await r('getKeywordsImg', 1, 105)).toEqual([-7, 9, 123456789]);
    expect(await r('getKeywordsImg', 7, 2005)).toEqual([5, 42]);
    // Space 3, not in the file, is kept, as iskdaemon kept it.
    expect(await r('getDbImgCount', 3)).toBe(1);
    // Every image finds itself first.
    for (const id of [101, 106, 112]) expect((await r('queryImgID', 1, id, 3))[0][0]).toBe(id);
  });

  it('loadDb takes a savedb file into the space asked for; a truncated file is refused and changes nothing', async () => {
    const w = rpcClient(writer.url);
    expect(await w('loadDb', 9, join(dataDir, 'iskdaemon-0.9.5-savedb-space1.isk'))).toBe(9);
    expect(await w('getDbImgCount', 9)).toBe(12);
    expect(await w('getImgAvgl', 9, 101)).toEqual(await w('getImgAvgl', 1, 101));
    const bytes = (await import('node:fs')).readFileSync(join(IMPORTS, 'iskdaemon-0.9.5-savedb-space1.isk'));
    (await import('node:fs')).writeFileSync(join(dataDir, 'cut.isk'), bytes.subarray(0, Math.floor(bytes.length / 2)));
    const fault = await expectFault(w('loadDb', 9, join(dataDir, 'cut.isk')), ERRORS.fileError.fault);
    expect(fault.faultString).toMatch(/truncat|ends/i);
    expect(await w('getDbImgCount', 9)).toBe(12);
    expect(await w('addImgBlob', 9, 5, original(5))).toBe(1);
  });
});
