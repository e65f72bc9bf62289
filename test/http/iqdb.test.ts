import { execFile } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IQDB_HASH_LENGTH, parseIqdbHash, toIqdbHash } from '../../src/iqdb/hash.ts';
import { iqdbQuery } from '../../src/iqdb/score.ts';
import type { Signature } from '../../src/signature/types.ts';
import { originalPath } from '../helpers/corpus.ts';
import { CORPUS_DIR } from '../helpers/paths.ts';
import { TEST_WRITE_KEY, type ServerProcess, rpcClient, startServerProcess, stopProcess, tempDataDir } from '../helpers/server.ts';

/**
 * iqdb's routes driven with curl exactly as Danbooru's IqdbClient sends them (a
 * multipart `file` part; `limit` and `hash` in the query string), through a reader that
 * relays the writes to the writer. Shapes as src/iqdb/README.md writes them down.
 */
const run = promisify(execFile);
const IQDB_SPACE = 5;
const MAX_BODY = 1024 * 1024;
const CURL = '/usr/bin/curl';

let writer: ServerProcess;
let reader: ServerProcess;
let base: string;
let scratch: string;

interface CurlAnswer {
  status: number;
  contentType: string;
  text: string;
  body: any;
}

/** Runs curl with the arguments given; the last output line is the status and content type. */
async function curl(...args: string[]): Promise<CurlAnswer> {
  const { stdout } = await run(CURL, ['-sS', '-w', '\n%{http_code} %{content_type}', ...args], { maxBuffer: 16 * 1024 * 1024 });
  const cut = stdout.lastIndexOf('\n');
  const [code, ...type] = stdout.slice(cut + 1).split(' ');
  const text = stdout.slice(0, cut);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: Number(code), contentType: type.join(' '), text, body };
}

const KEY = ['-u', `x:${TEST_WRITE_KEY}`];

function expectIqdbError(answer: CurlAnswer, status: number, exception: RegExp, code: string): void {
  expect(answer.status, answer.text).toBe(status);
  expect(answer.contentType).toMatch(/^application\/json/);
  expect(Object.keys(answer.body)).toEqual(['backtrace', 'error', 'exception', 'message']);
  expect(answer.body.exception).toMatch(exception);
  expect(answer.body.backtrace).toBe('');
  expect(answer.body.message.length).toBeGreaterThan(10);
  expect(answer.body.error).toEqual({ code, fault: expect.any(Number), message: answer.body.message });
}

function expectSignatureJson(sig: any): void {
  expect(Object.keys(sig)).toEqual(['avglf', 'sig']);
  expect(sig.avglf).toHaveLength(3);
  expect(sig.sig).toHaveLength(3);
  for (const channel of sig.sig) {
    expect(channel).toHaveLength(40);
    expect([...channel].sort((a: number, b: number) => a - b)).toEqual(channel);
  }
}

/** The Signature an iqdb answer describes, checked against its own hash. */
function signatureOf(answer: { hash: string; signature: { avglf: number[]; sig: number[][] } }): Signature {
  const sig: Signature = { avgl: Float64Array.from(answer.signature.avglf), coefs: Int32Array.from(answer.signature.sig.flat()) };
  expect(toIqdbHash(sig)).toBe(answer.hash);
  return sig;
}

const POSTS = [1, 2, 3, 4, 5, 6, 7, 8].map((n) => ({ postId: 100 + n, original: n }));
const stored = new Map<number, Signature>();

beforeAll(async () => {
  if (!existsSync(CURL)) throw new Error(`${CURL} is needed for the iqdb test (apt-get install curl)`);
  const data = tempDataDir('haarseek-iqdb-');
  scratch = data;
  const common = ['--iqdb-space', String(IQDB_SPACE), '--max-body-bytes', String(MAX_BODY)];
  writer = await startServerProcess('writer', data, { extraArgs: common });
  reader = await startServerProcess('reader', data, { writerUrl: writer.url, extraArgs: common });
  base = `http://127.0.0.1:${reader.port}`;
});

afterAll(async () => {
  await stopProcess(reader);
  await stopProcess(writer);
});

describe('iqdb routes with curl, through a reader', () => {
  it('GET /status of an empty server: {"images": 0}', async () => {
    const answer = await curl(`${base}/status`);
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({ images: 0 });
  });

  it('POST /images/:id with -F file=@x.jpg and the key as basic auth adds the post; iqdb\'s shape, 4-space JSON', async () => {
    for (const { postId, original } of POSTS) {
      const answer = await curl(...KEY, '-F', `file=@${originalPath(original)}`, `${base}/images/${postId}`);
      expect(answer.status, answer.text).toBe(200);
      expect(answer.contentType).toMatch(/^application\/json/);
      expect(answer.text.startsWith('{\n    "hash": "iqdb_')).toBe(true);
      expect(Object.keys(answer.body)).toEqual(['hash', 'post_id', 'signature']);
      expect(answer.body.post_id).toBe(postId);
      expect(answer.body.hash).toHaveLength(IQDB_HASH_LENGTH);
      expect(answer.body.hash).toMatch(/^iqdb_[0-9a-f]{528}$/);
      expectSignatureJson(answer.body.signature);
      stored.set(postId, signatureOf(answer.body));
    }
    // The writer stored them in the configured space.
    expect(await rpcClient(writer.url)('getDbImgCount', IQDB_SPACE)).toBe(POSTS.length);
    expect((await curl(`${base}/status`)).body).toEqual({ images: POSTS.length });
  });

  it('POST /query?limit=N -F file=@q.jpg: best first, iqdb\'s match shape, the same image scoring 100', async () => {
    const answer = await curl('-X', 'POST', `${base}/query?limit=5`, '-F', `file=@${originalPath(3)}`);
    expect(answer.status, answer.text).toBe(200);
    expect(answer.contentType).toMatch(/^application\/json/);
    expect(answer.text.startsWith('[\n    {\n        "hash"')).toBe(true);
    expect(answer.body).toHaveLength(5);
    for (const match of answer.body) {
      expect(Object.keys(match)).toEqual(['hash', 'post_id', 'score', 'signature']);
      expectSignatureJson(match.signature);
      // The matched post's stored signature, not the query's.
      expect(signatureOf(match)).toEqual(stored.get(match.post_id));
    }
    expect(answer.body[0].post_id).toBe(103);
    expect(answer.body[0].score).toBeCloseTo(100, 3);
    const scores = answer.body.map((m: { score: number }) => m.score);
    expect([...scores].sort((a, b) => b - a)).toEqual(scores);

    // A distorted copy still finds its original first; no limit means iqdb's 10 (all 8 here).
    const distorted = join(CORPUS_DIR, 'queries', '00006_half_q40.jpg');
    const found = await curl('-X', 'POST', `${base}/query`, '-F', `file=@${distorted}`);
    expect(found.status).toBe(200);
    expect(found.body).toHaveLength(POSTS.length);
    expect(found.body[0].post_id).toBe(106);
  });

  it('POST /query?hash=...: exactly iqdb\'s answer (post ids and float32 scores) for the stored signatures', async () => {
    const all = [...stored].map(([postId, signature]) => ({ postId, signature }));
    for (const postId of [101, 104, 108]) {
      const hash = toIqdbHash(stored.get(postId)!);
      const answer = await curl('-X', 'POST', `${base}/query?limit=6&hash=${hash}`);
      expect(answer.status, answer.text).toBe(200);
      const expected = iqdbQuery(parseIqdbHash(hash), all, 6);
      expect(answer.body.map((m: { post_id: number; score: number }) => ({ postId: m.post_id, score: m.score }))).toEqual(expected);
    }
    // hash and limit in an urlencoded body, as cpp-httplib reads them too.
    const hash = toIqdbHash(stored.get(102)!);
    const form = await curl('-X', 'POST', `${base}/query`, '--data-urlencode', `hash=${hash}`, '-d', 'limit=3');
    expect(form.status, form.text).toBe(200);
    expect(form.body.map((m: { post_id: number }) => m.post_id)).toEqual(iqdbQuery(parseIqdbHash(hash), all, 3).map((m) => m.postId));
  });

  it('DELETE /images/:id removes the post and answers {"post_id"}; again is still 200, as in iqdb', async () => {
    const first = await curl(...KEY, '-X', 'DELETE', `${base}/images/108`);
    expect(first.status, first.text).toBe(200);
    expect(first.body).toEqual({ post_id: 108 });
    const again = await curl(...KEY, '-X', 'DELETE', `${base}/images/108`);
    expect(again.status).toBe(200);
    expect(again.body).toEqual({ post_id: 108 });
    expect((await curl(`${base}/status`)).body).toEqual({ images: POSTS.length - 1 });
    const answer = await curl('-X', 'POST', `${base}/query?limit=10`, '-F', `file=@${originalPath(8)}`);
    expect(answer.body.map((m: { post_id: number }) => m.post_id)).not.toContain(108);
  });
});

describe('iqdb routes: access and bad input', () => {
  it('writes without the key are 401 in iqdb\'s error shape; nothing changes', async () => {
    expectIqdbError(await curl('-F', `file=@${originalPath(1)}`, `${base}/images/150`), 401, /unauthorized/, 'unauthorized');
    expectIqdbError(await curl('-u', 'x:wrong', '-F', `file=@${originalPath(1)}`, `${base}/images/150`), 401, /unauthorized/, 'unauthorized');
    expectIqdbError(await curl('-X', 'DELETE', `${base}/images/101`), 401, /unauthorized/, 'unauthorized');
    expect((await curl(`${base}/status`)).body).toEqual({ images: POSTS.length - 1 });
  });

  it('POST /images/:id: no file part, not an image, bad id, too large', async () => {
    const noFile = await curl(...KEY, '-F', `image=@${originalPath(1)}`, `${base}/images/150`);
    expectIqdbError(noFile, 400, /^iqdb::param_error$/, 'invalidParams');
    expect(noFile.body.message).toMatch(/requires a `file` param/);
    expectIqdbError(await curl(...KEY, '--data-binary', `@${originalPath(1)}`, '-H', 'content-type: image/jpeg', `${base}/images/150`), 400, /^iqdb::param_error$/, 'invalidParams');
    const junk = join(scratch, 'junk.jpg');
    writeFileSync(junk, 'not a jpeg at all, only some text');
    expectIqdbError(await curl(...KEY, '-F', `file=@${junk}`, `${base}/images/150`), 415, /^iqdb::image_error$/, 'undecodableImage');
    for (const id of ['abc', '0', '1.5', String(2n ** 53n + 1n)]) {
      expectIqdbError(await curl(...KEY, '-F', `file=@${originalPath(1)}`, `${base}/images/${id}`), 400, /^iqdb::param_error$/, 'invalidParams');
    }
    const big = join(scratch, 'big.jpg');
    writeFileSync(big, Buffer.alloc(MAX_BODY + 1000, 1));
    expectIqdbError(await curl(...KEY, '-F', `file=@${big}`, `${base}/images/150`), 413, /^iqdb::image_error$/, 'payloadTooLarge');
    expect((await curl(`${base}/status`)).body).toEqual({ images: POSTS.length - 1 });
  });

  it('POST /query: neither file nor hash, a bad hash, a bad limit, a broken multipart body, not an image', async () => {
    const none = await curl('-X', 'POST', `${base}/query`);
    expectIqdbError(none, 400, /^iqdb::param_error$/, 'invalidParams');
    expect(none.body.message).toMatch(/requires a `file` or `hash` param/);
    expectIqdbError(await curl('-X', 'POST', `${base}/query`, '-F', `other=@${originalPath(1)}`), 400, /^iqdb::param_error$/, 'invalidParams');
    const badHash = await curl('-X', 'POST', `${base}/query?hash=iqdb_1234`);
    expectIqdbError(badHash, 400, /^iqdb::param_error$/, 'invalidParams');
    expect(badHash.body.message).toMatch(/invalid iqdb hash/);
    for (const limit of ['0', '-1', 'abc', '10abc', '100000']) {
      expectIqdbError(await curl('-X', 'POST', `${base}/query?limit=${limit}`, '-F', `file=@${originalPath(1)}`), 400, /^iqdb::param_error$/, 'invalidParams');
    }
    expectIqdbError(
      await curl('-X', 'POST', `${base}/query`, '-H', 'content-type: multipart/form-data; boundary=QQ', '--data-binary', '--QQ\r\nContent-Disposition: form-data; name="file"\r\n\r\nno end'),
      400, /^iqdb::param_error$/, 'parseError',
    );
    const junk = join(scratch, 'junk.jpg');
    expectIqdbError(await curl('-X', 'POST', `${base}/query`, '-F', `file=@${junk}`), 415, /^iqdb::image_error$/, 'undecodableImage');
  });
});
