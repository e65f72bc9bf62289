import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERRORS } from '../../src/errors.ts';
import { original } from '../helpers/corpus.ts';
import { type ServerProcess, expectFault, health, postRaw, rpcClient, startServerProcess, stopProcess, tempDataDir } from '../helpers/server.ts';

const call = (method: string, params: string) => `<?xml version="1.0"?><methodCall><methodName>${method}</methodName><params>${params}</params></methodCall>`;
const int = (n: number | string) => `<param><value><int>${n}</int></value></param>`;

describe('bad input gets a clear fault; the process stays up and nothing stored is lost', () => {
  let writer: ServerProcess;
  let reader: ServerProcess;
  let w: ReturnType<typeof rpcClient>;
  let r: ReturnType<typeof rpcClient>;
  const dataDir = tempDataDir();
  const outside = tempDataDir('haarseek-outside-');

  beforeAll(async () => {
    const limits = ['--max-body-bytes', String(2 * 1024 * 1024), '--max-pixels', String(4_000_000)];
    writer = await startServerProcess('writer', dataDir, { extraArgs: limits });
    reader = await startServerProcess('reader', dataDir, { writerUrl: writer.url, extraArgs: limits });
    w = rpcClient(writer.url);
    r = rpcClient(reader.url);
    await w('createDb', 1);
    for (let id = 1; id <= 3; id++) await w('addImgBlob', 1, id, original(id));
  });
  afterAll(async () => {
    // Nothing stored was lost and both processes are still up.
    expect(await r('getDbImgIdList', 1)).toEqual([1, 2, 3]);
    expect((await health(writer.port)).ok).toBe(true);
    expect((await health(reader.port)).ok).toBe(true);
    await stopProcess(reader);
    await stopProcess(writer);
  });

  for (const target of ['writer', 'reader'] as const) {
    const url = () => (target === 'writer' ? writer.url : reader.url);

    it(`${target}: malformed XML`, async () => {
      for (const body of ['<methodCall><methodName>getDbList', 'not xml at all', '', '<a></b>']) {
        const { status, text } = await postRaw(url(), body);
        expect(status).toBe(200);
        expect(text, body).toContain(`<int>${ERRORS.parseError.fault}</int>`);
      }
    });

    it(`${target}: entity expansion and external entities are refused`, async () => {
      const laughs = `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><methodCall><methodName>getDbImgCount</methodName><params><param><value><string>&lol2;</string></value></param></params></methodCall>`;
      const external = `<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><methodCall><methodName>queryImgPath</methodName><params>${int(1)}<param><value><string>&xxe;</string></value></param></params></methodCall>`;
      for (const body of [laughs, external]) {
        const { text } = await postRaw(url(), body);
        expect(text).toContain(`<int>${ERRORS.parseError.fault}</int>`);
        expect(text).toContain('DOCTYPE');
        expect(text).not.toContain('root:');
      }
    });

    it(`${target}: unknown method, wrong parameter counts and types`, async () => {
      const c = rpcClient(url());
      await expectFault(c('noSuchMethod', 1), ERRORS.methodNotFound.fault);
      await expectFault(c('getDbImgCount'), ERRORS.invalidParams.fault);
      await expectFault(c('getDbImgCount', 1, 2), ERRORS.invalidParams.fault);
      await expectFault(c('getDbImgCount', 'one'), ERRORS.invalidParams.fault);
      await expectFault(c('queryImgID', 1, [1, 2]), ERRORS.invalidParams.fault);
      await expectFault(c('queryImgID', 1, 1, 12, 'maybe'), ERRORS.invalidParams.fault);
      await expectFault(c('getDbImgCount', 99), ERRORS.unknownSpace.fault);
      expect(await c('queryImgID', 1, 999)).toEqual([]);
    });

    it(`${target}: numres 0, negative and huge; ids out of range`, async () => {
      const c = rpcClient(url());
      for (const n of [0, -5, 1_000_000]) await expectFault(c('queryImgID', 1, 1, n), ERRORS.invalidParams.fault);
      for (const id of [0, -1]) await expectFault(c('queryImgID', 1, id), ERRORS.invalidParams.fault);
      const { text } = await postRaw(url(), call('isImgOnDb', int(1) + `<param><value><i8>9007199254740993</i8></value></param>`));
      expect(text).toContain(`<int>${ERRORS.invalidParams.fault}</int>`);
      const big = await postRaw(url(), call('isImgOnDb', int(1) + `<param><value><i8>9007199254740992</i8></value></param>`));
      expect(big.text).toContain('<boolean>0</boolean>');
    });

    it(`${target}: invalid base64, empty, corrupt, truncated and bomb images`, async () => {
      const c = rpcClient(url());
      await expectFault(c('queryImgBlob', 1, 'this is not base64!'), ERRORS.invalidParams.fault);
      await expectFault(c('queryImgBlob', 1, 'abc'), ERRORS.invalidParams.fault);
      await expectFault(c('queryImgBlob', 1, Buffer.alloc(0)), ERRORS.undecodableImage.fault);
      await expectFault(c('queryImgBlob', 1, Buffer.from('GIF89a not really')), ERRORS.undecodableImage.fault);
      await expectFault(c('queryImgBlob', 1, original(4).subarray(0, 3000)), ERRORS.undecodableImage.fault);
      const bomb = await sharp({ create: { width: 10_000, height: 10_000, channels: 3, background: '#808080' } }).png({ compressionLevel: 9 }).toBuffer();
      expect(bomb.length).toBeLessThan(2 * 1024 * 1024);
      const fault = await expectFault(c('queryImgBlob', 1, bomb), ERRORS.payloadTooLarge.fault);
      expect(fault.faultString).toContain('pixels');
    });

    it(`${target}: a request over the body limit`, async () => {
      const c = rpcClient(url());
      await expectFault(c('queryImgBlob', 1, Buffer.alloc(3 * 1024 * 1024, 1)), ERRORS.payloadTooLarge.fault);
    });

    it(`${target}: paths outside the allowed directories`, async () => {
      const c = rpcClient(url());
      writeFileSync(join(outside, 'x.jpg'), original(5));
      mkdirSync(join(dataDir, 'sub'), { recursive: true });
      try {
        symlinkSync(join(outside, 'x.jpg'), join(dataDir, 'sub', 'link.jpg'));
      } catch {
        // already made by the other role's run
      }
      await expectFault(c('queryImgPath', 1, join(outside, 'x.jpg')), ERRORS.pathNotAllowed.fault);
      await expectFault(c('queryImgPath', 1, join(dataDir, '..', 'x.jpg')), ERRORS.pathNotAllowed.fault);
      await expectFault(c('queryImgPath', 1, '/etc/passwd'), ERRORS.pathNotAllowed.fault);
      await expectFault(c('queryImgPath', 1, join(dataDir, 'sub', 'link.jpg')), ERRORS.pathNotAllowed.fault);
      await expectFault(c('addImg', 1, 50, join(outside, 'x.jpg')), ERRORS.pathNotAllowed.fault);
      await expectFault(c('addDir', 1, outside, true), ERRORS.pathNotAllowed.fault);
      await expectFault(c('saveDbAs', 1, join(outside, 'space.db')), ERRORS.pathNotAllowed.fault);
      await expectFault(c('loadDb', 1, '/etc/passwd'), ERRORS.pathNotAllowed.fault);
      await expectFault(c('saveAllDbsAs', '../../escape.db'), ERRORS.pathNotAllowed.fault);
      await expectFault(c('queryImgPath', 1, join(dataDir, 'missing.jpg')), ERRORS.fileError.fault);
      const byUrl = await expectFault(c('addImg', 1, 51, 'http://example.com/x.jpg', true), ERRORS.invalidParams.fault);
      expect(byUrl.faultString).toContain('addImgBlob');
      expect(await c('isImgOnDb', 1, 51)).toBe(false);
    });

    it(`${target}: loading a file that is not a haarseek database`, async () => {
      const c = rpcClient(url());
      writeFileSync(join(dataDir, 'garbage.db'), 'definitely not sqlite');
      await expectFault(c('loadDb', 1, join(dataDir, 'garbage.db')), ERRORS.fileError.fault);
      await expectFault(c('loadAllDbsAs', join(dataDir, 'garbage.db')), ERRORS.fileError.fault);
    });

    it(`${target}: loading a saved space whose stored signatures are damaged`, async () => {
      const c = rpcClient(url());
      const file = join(dataDir, `damaged-${target}.db`);
      expect(await c('saveDbAs', 1, file)).toBe(1);
      const db = new Database(file);
      db.prepare("UPDATE images SET sig = x'0102' WHERE image_id = 2").run();
      db.close();
      const damaged = await expectFault(c('loadDb', 1, file), ERRORS.fileError.fault);
      expect(damaged.faultString).toContain('damaged');
      expect(await c('getDbImgIdList', 1)).toEqual([1, 2, 3]);
      expect((await c('queryImgBlob', 1, original(2), 1))[0][0]).toBe(2);
    });
  }

  it('a reader started with --no-forward refuses writes with a fault naming the writer', async () => {
    const noForward = await startServerProcess('reader', dataDir, { writerUrl: writer.url, extraArgs: ['--no-forward'] });
    try {
      const c = rpcClient(noForward.url);
      const fault = await expectFault(c('addImgBlob', 1, 9, original(9)), ERRORS.readOnly.fault);
      expect(fault.faultString).toContain(writer.url);
      expect(await c('getDbImgCount', 1)).toBe(3);
    } finally {
      await stopProcess(noForward);
    }
  });

  it('a reader whose writer is down answers writes with a writer-unreachable fault', async () => {
    const orphan = await startServerProcess('reader', dataDir, { writerUrl: 'http://127.0.0.1:9/RPC' });
    try {
      const c = rpcClient(orphan.url);
      await expectFault(c('addImgBlob', 1, 9, original(9)), ERRORS.writerUnreachable.fault);
      expect(await c('getDbImgCount', 1)).toBe(3);
    } finally {
      await stopProcess(orphan);
    }
  });
});
