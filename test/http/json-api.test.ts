import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { original } from '../helpers/corpus.ts';
import { REPO_ROOT } from '../helpers/paths.ts';
import { AUTH_HEADER, TEST_WRITE_KEY, type ServerProcess, rpcClient, startServerProcess, stopProcess, tempDataDir } from '../helpers/server.ts';

/**
 * The JSON API (/api/v1) through a reader, as a client of the front sees it: reads are
 * answered by the reader, writes are relayed to the writer with the caller's key.
 */
const MAX_BODY = 1024 * 1024;
const TEMPLATE = 'http://images.example/{id}.jpg';
const VERSION = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

let writer: ServerProcess;
let reader: ServerProcess;

interface Answer {
  status: number;
  body: any;
  headers: Headers;
}

async function call(path: string, init: { method?: string; body?: Uint8Array | string | FormData; headers?: Record<string, string>; key?: string | null } = {}): Promise<Answer> {
  const headers: Record<string, string> = { ...init.headers };
  const key = init.key === undefined ? AUTH_HEADER : init.key;
  if (key) headers.authorization = key;
  const body = typeof init.body === 'string' || init.body instanceof FormData || init.body === undefined ? init.body : new Uint8Array(init.body);
  const res = await fetch(`http://127.0.0.1:${reader.port}${path}`, { method: init.method ?? 'GET', body, headers });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: the test says what it expected
  }
  return { status: res.status, body: parsed, headers: res.headers };
}

const jpeg = { 'content-type': 'image/jpeg' };
const json = { 'content-type': 'application/json' };

function expectError(answer: Answer, status: number, code: string): void {
  expect(answer.status, JSON.stringify(answer.body)).toBe(status);
  expect(answer.body.error.code).toBe(code);
  expect(typeof answer.body.error.fault).toBe('number');
  expect(answer.body.error.message.length).toBeGreaterThan(10);
}

beforeAll(async () => {
  const data = tempDataDir('haarseek-http-');
  const common = ['--max-body-bytes', String(MAX_BODY)];
  writer = await startServerProcess('writer', data, { extraArgs: common });
  reader = await startServerProcess('reader', data, { writerUrl: writer.url, extraArgs: [...common, '--image-url-template', TEMPLATE] });
});

afterAll(async () => {
  await stopProcess(reader);
  await stopProcess(writer);
});

describe('JSON API through a reader', () => {
  it('adds images (raw body and multipart) through the reader, which relays them to the writer', async () => {
    for (const n of [1, 2, 3, 4, 5, 6]) {
      const answer = await call(`/api/v1/spaces/3/images/${n}`, { method: 'PUT', body: original(n), headers: jpeg });
      expect(answer.status, JSON.stringify(answer.body)).toBe(200);
      expect(answer.body).toEqual({ id: n, width: expect.any(Number), height: expect.any(Number) });
    }
    const form = new FormData();
    form.append('file', new Blob([new Uint8Array(original(7))], { type: 'image/jpeg' }), '00007.jpg');
    const multipart = await call('/api/v1/spaces/3/images/7', { method: 'PUT', body: form });
    expect(multipart.status, JSON.stringify(multipart.body)).toBe(200);
    expect(multipart.body.id).toBe(7);
    // The largest id the JSON API takes: 2^53.
    const big = await call(`/api/v1/spaces/3/images/${2 ** 53}`, { method: 'PUT', body: original(8), headers: jpeg });
    expect(big.status, JSON.stringify(big.body)).toBe(200);
    expect(big.body.id).toBe(2 ** 53);
    // The writer has them, and so has the reader on its next read.
    const rpc = rpcClient(writer.url);
    expect(await rpc('getDbImgCount', 3)).toBe(8);
    const info = await call('/api/v1/spaces/3/images/2');
    expect(info.status).toBe(200);
    expect(info.body).toEqual({ id: 2, width: expect.any(Number), height: expect.any(Number), avgl: [expect.any(Number), expect.any(Number), expect.any(Number)], keywords: [] });
  });

  it('searches with raw bytes and with a multipart file part: numres results, best first, iskdaemon scores', async () => {
    // The server's default ranking is the verified one; ranking=imgseek gives imgSeek's own scores.
    const verified = await call('/api/v1/spaces/3/search?numres=3', { method: 'POST', body: original(4), headers: jpeg, key: null });
    expect(verified.status, JSON.stringify(verified.body)).toBe(200);
    expect(verified.body.ranking).toBe('verified');
    expect(verified.body.results[0].id).toBe(4);
    const raw = await call('/api/v1/spaces/3/search?numres=3&ranking=imgseek', { method: 'POST', body: original(4), headers: jpeg, key: null });
    expect(raw.status, JSON.stringify(raw.body)).toBe(200);
    expect(raw.body.space).toBe(3);
    expect(raw.body.ranking).toBe('imgseek');
    expect(raw.body.results).toHaveLength(3);
    expect(raw.body.results[0]).toEqual({ id: 4, score: 100 });
    const scores = raw.body.results.map((r: { score: number }) => r.score);
    expect([...scores].sort((a, b) => b - a)).toEqual(scores);
    for (const s of scores) expect(s >= 0 && s <= 100).toBe(true);
    expect(typeof raw.body.tookMs).toBe('number');

    const form = new FormData();
    form.append('note', 'fields beside the file are ignored');
    form.append('file', new Blob([new Uint8Array(original(4))]), 'q.jpg');
    const multipart = await call('/api/v1/spaces/3/search?numres=3&ranking=imgseek', { method: 'POST', body: form, key: null });
    expect(multipart.status).toBe(200);
    expect(multipart.body.results).toEqual(raw.body.results);

    // Defaults: numres 10, but the space holds 8.
    const all = await call('/api/v1/spaces/3/search', { method: 'POST', body: original(4), headers: { 'content-type': 'application/octet-stream' }, key: null });
    expect(all.body.results).toHaveLength(8);
  });

  it('finds images similar to a stored one, leaving the image itself out', async () => {
    const answer = await call('/api/v1/spaces/3/images/4/similar?numres=3', { key: null });
    expect(answer.status, JSON.stringify(answer.body)).toBe(200);
    expect(answer.body.results).toHaveLength(3);
    expect(answer.body.results.map((r: { id: number }) => r.id)).not.toContain(4);
    const fast = await call('/api/v1/spaces/3/images/4/similar?numres=2&fast=1&sketch=0', { key: null });
    expect(fast.status).toBe(200);
    expect(fast.body.results).toHaveLength(2);
  });

  it('keeps keywords: PUT adds, GET lists, DELETE removes those given or all; searches filter by them', async () => {
    const put = await call('/api/v1/spaces/3/images/5/keywords', { method: 'PUT', body: JSON.stringify({ keywords: [30, 10] }), headers: json });
    expect(put.status, JSON.stringify(put.body)).toBe(200);
    expect(put.body).toEqual({ id: 5, keywords: [10, 30] });
    await call('/api/v1/spaces/3/images/6/keywords', { method: 'PUT', body: JSON.stringify({ keywords: [10] }), headers: json });
    expect((await call('/api/v1/spaces/3/images/5/keywords', { key: null })).body).toEqual({ id: 5, keywords: [10, 30] });

    const both = await call('/api/v1/spaces/3/search?numres=5&keywords=10,30&kwJoin=and', { method: 'POST', body: original(4), headers: jpeg, key: null });
    expect(both.body.results.map((r: { id: number }) => r.id)).toEqual([5]);
    const either = await call('/api/v1/spaces/3/search?numres=5&keywords=10,30&kwJoin=or', { method: 'POST', body: original(4), headers: jpeg, key: null });
    expect(either.body.results.map((r: { id: number }) => r.id).sort()).toEqual([5, 6]);

    const removeOne = await call('/api/v1/spaces/3/images/5/keywords', { method: 'DELETE', body: JSON.stringify({ keywords: [30] }), headers: json });
    expect(removeOne.body).toEqual({ id: 5, keywords: [10] });
    const removeAll = await call('/api/v1/spaces/3/images/5/keywords', { method: 'DELETE' });
    expect(removeAll.body).toEqual({ id: 5, keywords: [] });
    expect((await call('/api/v1/spaces/3/images/5')).body.keywords).toEqual([]);
  });

  it('creates, lists and removes spaces (admin), and removes images', async () => {
    expect((await call('/api/v1/spaces/9', { method: 'PUT' })).body).toEqual({ id: 9 });
    expect((await call('/api/v1/spaces', { key: null })).body).toEqual({ spaces: [{ id: 3, images: 8 }, { id: 9, images: 0 }] });
    expect((await call('/api/v1/spaces/9', { method: 'DELETE' })).body).toEqual({ id: 9, removed: true });
    expectError(await call('/api/v1/spaces/9', { method: 'DELETE' }), 404, 'unknownSpace');

    expect((await call(`/api/v1/spaces/3/images/${2 ** 53}`, { method: 'DELETE' })).body).toEqual({ id: 2 ** 53, removed: true });
    expectError(await call(`/api/v1/spaces/3/images/${2 ** 53}`, { method: 'DELETE' }), 404, 'unknownImage');
    expect((await call('/api/v1/spaces', { key: null })).body).toEqual({ spaces: [{ id: 3, images: 7 }] });
  });

  it('reports status and stats', async () => {
    const status = await call('/api/v1/status', { key: null });
    expect(status.status).toBe(200);
    expect(status.body).toEqual({
      role: 'reader',
      engine: expect.stringMatching(/^(native|ts)$/),
      pid: reader.child.pid,
      version: VERSION,
      ranking: 'verified',
      imageUrlTemplate: TEMPLATE,
      spaces: [{ id: 3, images: 7 }],
      stale: false,
      snapshotAgeMs: expect.any(Number),
    });
    const onWriter = await (await fetch(`http://127.0.0.1:${writer.port}/api/v1/status`)).json();
    expect(onWriter).toMatchObject({ role: 'writer', imageUrlTemplate: null, snapshotAgeMs: 0 });

    const stats = await call('/api/v1/stats', { key: null });
    expect(stats.status).toBe(200);
    expect(stats.body.process).toMatchObject({ role: 'reader', pid: reader.child.pid, images: 7 });
    expect(stats.body.spaces).toEqual([{ id: 3, images: 7, queries: expect.any(Number), adds: 0, addsSinceSave: 0, lastId: 0 }]);
    expect(stats.body.spaces[0].queries).toBeGreaterThanOrEqual(5);
  });
});

describe('JSON API: access', () => {
  const writes: Array<[string, string, Record<string, unknown>]> = [
    ['PUT', '/api/v1/spaces/3/images/50', { body: original(1), headers: jpeg }],
    ['DELETE', '/api/v1/spaces/3/images/1', {}],
    ['PUT', '/api/v1/spaces/3/images/1/keywords', { body: '{"keywords":[1]}', headers: json }],
    ['DELETE', '/api/v1/spaces/3/images/1/keywords', {}],
    ['PUT', '/api/v1/spaces/12', {}],
    ['DELETE', '/api/v1/spaces/3', {}],
  ];

  it.each(writes)('%s %s without the key is 401, with a wrong key too, and nothing changes', async (method, path, init) => {
    for (const key of [null, `Basic ${Buffer.from(`client:wrong-${TEST_WRITE_KEY}`).toString('base64')}`, 'Bearer nope']) {
      const answer = await call(path, { ...init, method, key });
      expectError(answer, 401, 'unauthorized');
      expect(answer.headers.get('www-authenticate')).toMatch(/^Basic /);
    }
    expect((await call('/api/v1/spaces', { key: null })).body).toEqual({ spaces: [{ id: 3, images: 7 }] });
    expect((await call('/api/v1/spaces/3/images/1')).status).toBe(200);
  });

  it('takes the key as a Bearer token too', async () => {
    const answer = await call('/api/v1/spaces/3/images/1/keywords', { method: 'PUT', body: '{"keywords":[77]}', headers: json, key: `Bearer ${TEST_WRITE_KEY}` });
    expect(answer.status, JSON.stringify(answer.body)).toBe(200);
    expect(answer.body.keywords).toEqual([77]);
  });
});

describe('JSON API: bad input', () => {
  it('refuses a body that is not JSON, or JSON of the wrong shape, on the keyword routes', async () => {
    const path = '/api/v1/spaces/3/images/1/keywords';
    const put = (body: string, headers: Record<string, string> = json) => call(path, { method: 'PUT', body, headers });
    expectError(await put('{"keywords": [1, 2'), 400, 'parseError');
    expectError(await put('{"keywords": ["a"]}'), 400, 'invalidParams');
    expectError(await put('{"words": [1]}'), 400, 'invalidParams');
    expectError(await put('[1, 2]'), 400, 'invalidParams');
    expectError(await put('{"keywords": [1]}', { 'content-type': 'text/plain' }), 400, 'invalidParams');
    expectError(await call(path, { method: 'PUT' }), 400, 'invalidParams');
    expectError(await call(path, { method: 'DELETE', body: 'nope', headers: json }), 400, 'parseError');
  });

  it('refuses bad path ids and query parameters with 400 and a message naming them', async () => {
    const search = (query: string) => call(`/api/v1/spaces/3/search?${query}`, { method: 'POST', body: original(1), headers: jpeg, key: null });
    for (const query of ['numres=0', 'numres=1001', 'numres=abc', 'numres=1.5', 'sketch=2', 'fast=yes', 'keywords=a,b', 'kwJoin=xor', 'ranking=best']) {
      const answer = await search(query);
      expectError(answer, 400, 'invalidParams');
    }
    expect((await search('numres=abc')).body.error.message).toMatch(/numres/);
    expectError(await search('ranking=VERIFIED'), 400, 'invalidParams');
    for (const path of ['/api/v1/spaces/3/images/0', '/api/v1/spaces/3/images/-1', '/api/v1/spaces/3/images/abc', '/api/v1/spaces/3/images/1e3', `/api/v1/spaces/3/images/${2n ** 53n + 1n}`, '/api/v1/spaces/x/images/1', '/api/v1/spaces/-3/images/1']) {
      expectError(await call(path, { key: null }), 400, 'invalidParams');
    }
    expect((await call(`/api/v1/spaces/3/images/${2n ** 53n + 1n}`, { key: null })).body.error.message).toMatch(/2\^53/);
  });

  it('refuses a body over the limit with 413', async () => {
    const huge = new Uint8Array(MAX_BODY + 4096);
    expectError(await call('/api/v1/spaces/3/search', { method: 'POST', body: huge, headers: jpeg, key: null }), 413, 'payloadTooLarge');
    expectError(await call('/api/v1/spaces/3/images/60', { method: 'PUT', body: huge, headers: jpeg }), 413, 'payloadTooLarge');
  });

  it('refuses bytes that are no image with 415, on the reader and (relayed) on the writer', async () => {
    const junk = Buffer.from('this is not an image at all, just text');
    expectError(await call('/api/v1/spaces/3/search', { method: 'POST', body: junk, headers: jpeg, key: null }), 415, 'undecodableImage');
    expectError(await call('/api/v1/spaces/3/images/61', { method: 'PUT', body: junk, headers: jpeg }), 415, 'undecodableImage');
    expectError(await call('/api/v1/spaces/3/images/61', { method: 'PUT', body: original(1).subarray(0, 200), headers: jpeg }), 415, 'undecodableImage');
    expect((await call('/api/v1/spaces/3/images/61', { key: null })).status).toBe(404);
  });

  it('refuses a request without an image, and a malformed or file-less multipart body, with 400', async () => {
    expectError(await call('/api/v1/spaces/3/search', { method: 'POST', key: null }), 400, 'invalidParams');
    const noFile = new FormData();
    noFile.append('image', new Blob([new Uint8Array(original(1))]), 'x.jpg');
    const answer = await call('/api/v1/spaces/3/search', { method: 'POST', body: noFile, key: null });
    expectError(answer, 400, 'invalidParams');
    expect(answer.body.error.message).toMatch(/"file"/);
    const broken = '--XYZ\r\nContent-Disposition: form-data; name="file"\r\n\r\nbytes without the closing boundary';
    expectError(await call('/api/v1/spaces/3/search', { method: 'POST', body: broken, headers: { 'content-type': 'multipart/form-data; boundary=XYZ' }, key: null }), 400, 'parseError');
    expectError(await call('/api/v1/spaces/3/search', { method: 'POST', body: 'x', headers: { 'content-type': 'multipart/form-data' }, key: null }), 400, 'parseError');
  });

  it('answers 404 for unknown spaces, images and routes', async () => {
    expectError(await call('/api/v1/spaces/77/search', { method: 'POST', body: original(1), headers: jpeg, key: null }), 404, 'unknownSpace');
    expectError(await call('/api/v1/spaces/77/images/1', { key: null }), 404, 'unknownSpace');
    expectError(await call('/api/v1/spaces/3/images/999', { key: null }), 404, 'unknownImage');
    expectError(await call('/api/v1/spaces/3/images/999/similar', { key: null }), 404, 'unknownImage');
    expectError(await call('/api/v1/spaces/3/images/999/keywords', { key: null }), 404, 'unknownImage');
    expectError(await call('/api/v1/spaces/3/images/999', { method: 'DELETE' }), 404, 'unknownImage');
    expectError(await call('/api/v1/nothing/here', { key: null }), 404, 'methodNotFound');
    expectError(await call('/api/v1/spaces/3/search', { key: null }), 404, 'methodNotFound');
  });
});

describe('OpenAPI document and the page', () => {
  it('lists every route of the JSON API with its schemas', async () => {
    const answer = await call('/api/v1/openapi.json', { key: null });
    expect(answer.status).toBe(200);
    const doc = answer.body;
    expect(doc.openapi).toMatch(/^3\./);
    expect(doc.info.version).toBe(VERSION);
    const routes = Object.entries(doc.paths as Record<string, Record<string, any>>).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`));
    const expected = [
      'GET /api/v1/status',
      'GET /api/v1/stats',
      'GET /api/v1/spaces',
      'PUT /api/v1/spaces/{space}',
      'DELETE /api/v1/spaces/{space}',
      'POST /api/v1/spaces/{space}/search',
      'GET /api/v1/spaces/{space}/images/{id}/similar',
      'PUT /api/v1/spaces/{space}/images/{id}',
      'GET /api/v1/spaces/{space}/images/{id}',
      'DELETE /api/v1/spaces/{space}/images/{id}',
      'GET /api/v1/spaces/{space}/images/{id}/keywords',
      'PUT /api/v1/spaces/{space}/images/{id}/keywords',
      'DELETE /api/v1/spaces/{space}/images/{id}/keywords',
      'POST /images/{id}',
      'DELETE /images/{id}',
      'POST /query',
      'GET /status',
    ];
    expect(routes.sort()).toEqual([...expected].sort());
    for (const [path, ops] of Object.entries(doc.paths as Record<string, Record<string, any>>)) {
      for (const [method, op] of Object.entries(ops)) {
        expect(op.responses['200'], `${method} ${path}`).toBeDefined();
        expect(op.responses['200'].content['application/json'].schema, `${method} ${path}`).toBeDefined();
      }
    }
    const search = doc.paths['/api/v1/spaces/{space}/search'].post;
    expect(Object.keys(search.requestBody.content)).toContain('multipart/form-data');
    expect(search.parameters.map((p: { name: string }) => p.name).sort()).toEqual(['fast', 'keywords', 'kwJoin', 'numres', 'ranking', 'sketch', 'space']);
    expect(search.security).toBeUndefined();
    expect(doc.paths['/api/v1/spaces/{space}/images/{id}'].put.security).toEqual([{ writeKey: [] }]);
    expect(doc.paths['/api/v1/spaces/{space}'].delete.security).toEqual([{ writeKey: [] }]);
    const keywords = doc.paths['/api/v1/spaces/{space}/images/{id}/keywords'];
    expect(keywords.put.requestBody.required).toBe(true);
    expect(keywords.delete.requestBody.required).toBe(false);
    expect(keywords.put.requestBody.content['application/json'].schema.required).toEqual(['keywords']);
    expect(doc.components.schemas.Error.properties.error.required).toEqual(['code', 'fault', 'message']);
    expect(doc.paths['/api/v1/spaces/{space}/images/{id}'].get.responses['4XX'].content['application/json'].schema.$ref).toBe('#/components/schemas/Error');
  });

  it('serves the search page by GET on / and its assets, while POST / stays XML-RPC', async () => {
    const page = await fetch(`http://127.0.0.1:${reader.port}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await page.text()).toContain('id="search-form"');
    for (const [asset, type] of [['/app.js', /javascript/], ['/style.css', /^text\/css/], ['/index.html', /^text\/html/]] as const) {
      const res = await fetch(`http://127.0.0.1:${reader.port}${asset}`);
      expect(res.status, asset).toBe(200);
      expect(res.headers.get('content-type')).toMatch(type);
      await res.arrayBuffer();
    }
    expect((await fetch(`http://127.0.0.1:${reader.port}/nothing.js`)).status).toBe(404);
    expect(await rpcClient(`http://127.0.0.1:${reader.port}/`, null)('getDbImgCount', 3)).toBe(7);
  });
});

describe('JSON API: the writer is gone', () => {
  it('a relayed write answers 502 writerUnreachable; reads go on', async () => {
    await stopProcess(writer);
    expectError(await call('/api/v1/spaces/3/images/70', { method: 'PUT', body: original(1), headers: jpeg }), 502, 'writerUnreachable');
    expect((await call('/api/v1/spaces/3/images/1', { key: null })).status).toBe(200);
  });
});
