import type { Ranking } from '../service/context.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { BulkError } from './errors.ts';
import { IdSet } from './ids.ts';

/** An error answer of the JSON API (`{error: {code, fault, message}}`), or what stood for one. */
export interface ApiError {
  status: number;
  code: string;
  message: string;
}

export type ApiAnswer<T> = { ok: true; value: T } | { ok: false; error: ApiError };

/** Answers worth another try: busy, the writer unreachable from a reader, a proxy's gateway errors. */
const RETRY_STATUS = new Set([502, 503, 504]);
const RETRIES = 5;

/**
 * The few calls `haarseek add` and `haarseek query` make to a running server (the
 * front, a reader or the writer): the JSON API at /api/v1, and XML-RPC's
 * getDbImgIdList for the ids a space holds (one call, not one per file).
 */
export class ServerClient {
  readonly base: URL;
  private readonly authorization: string | undefined;

  /**
   * url: the server's base URL (`http://host:31128`); a path of /RPC, /RPC2 or /api/v1
   * is taken off, and a key in the URL (`http://client:KEY@host`) is used when no key is given.
   */
  constructor(url: string, key?: string) {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      throw new BulkError(`--server ${JSON.stringify(url)} is not a URL (e.g. http://127.0.0.1:31128)`);
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new BulkError(`--server must be an http:// or https:// URL, not ${u.protocol}`);
    const fromUrl = u.password ? decodeURIComponent(u.password) : u.username ? decodeURIComponent(u.username) : undefined;
    u.username = '';
    u.password = '';
    u.pathname = u.pathname.replace(/\/+$/, '').replace(/\/(RPC2?|api\/v1)$/i, '');
    u.search = '';
    u.hash = '';
    this.base = u;
    const k = key ?? fromUrl;
    this.authorization = k ? `Basic ${Buffer.from(`haarseek-add:${k}`).toString('base64')}` : undefined;
  }

  get hasKey(): boolean {
    return this.authorization !== undefined;
  }

  /** The base URL as printed (no key). */
  get origin(): string {
    return this.base.href.replace(/\/$/, '');
  }

  /**
   * Whether the server takes the key, without changing anything: a PUT of an image with
   * no body is refused for the missing key (401) before the body is even read, and
   * otherwise answered 400 (no image), on the writer and through a reader alike.
   */
  async checkWriteKey(space: number): Promise<void> {
    const answer = await this.call('PUT', `/api/v1/spaces/${space}/images/1`, new Uint8Array(0), 'application/octet-stream', false);
    if (!answer.ok && answer.error.status === 401) throw keyRefused(this.origin);
    if (!answer.ok && answer.error.status === 404) {
      throw new BulkError(`${this.origin} has no route PUT /api/v1/spaces/:space/images/:id (HTTP 404): is it a haarseek server with the JSON API?`);
    }
  }

  /** Stores an image's bytes under an id (PUT /api/v1/spaces/:space/images/:id). */
  putImage(space: number, id: number, bytes: Uint8Array): Promise<ApiAnswer<{ id: number; width: number; height: number }>> {
    return this.call('PUT', `/api/v1/spaces/${space}/images/${id}`, bytes, 'application/octet-stream', true);
  }

  /** Ranked ids and scores for an image (POST /api/v1/spaces/:space/search). */
  search(space: number, bytes: Uint8Array, numres: number, ranking: Ranking): Promise<ApiAnswer<{ results: Array<{ id: number; score: number }> }>> {
    return this.call('POST', `/api/v1/spaces/${space}/search?numres=${numres}&ranking=${ranking}`, bytes, 'application/octet-stream', true);
  }

  /**
   * Every id the space holds (empty when the space does not exist), from XML-RPC
   * getDbImgIdList, read as it streams in: ascending, 8 bytes an id.
   */
  async imageIds(space: number): Promise<IdSet> {
    const body = `<?xml version="1.0"?><methodCall><methodName>getDbImgIdList</methodName><params><param><value><int>${space}</int></value></param></params></methodCall>`;
    const res = await this.fetch(new URL('RPC', `${this.origin}/`), { method: 'POST', headers: { 'content-type': 'text/xml' }, body });
    if (!res.ok || !res.body) throw new BulkError(`${this.origin}/RPC answered getDbImgIdList(${space}) with HTTP ${res.status}: is it a haarseek server?`);
    let ids = new Float64Array(4096);
    let n = 0;
    let carry = '';
    let faultText: string | null = null;
    let seen = 0;
    const decoder = new TextDecoder();
    const numbers = /<(?:int|i4|i8)>\s*(-?\d+)\s*<\//g;
    for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
      const text = carry + decoder.decode(chunk, { stream: true });
      if (faultText !== null || (seen < 512 && text.includes('<fault>'))) {
        faultText = (faultText ?? '') + text; // a fault answer is a few hundred bytes
        carry = '';
        continue;
      }
      seen += text.length;
      let last = 0;
      numbers.lastIndex = 0;
      for (let m = numbers.exec(text); m; m = numbers.exec(text)) {
        if (n === ids.length) {
          const grown = new Float64Array(ids.length * 2);
          grown.set(ids);
          ids = grown;
        }
        ids[n++] = Number(m[1]);
        last = numbers.lastIndex;
      }
      // What follows the last number may be the start of one cut by the chunk's end.
      carry = text.slice(Math.max(last, text.length - 256));
    }
    if (faultText !== null) {
      const code = /<name>faultCode<\/name>\s*<value>\s*<(?:int|i4)>\s*(-?\d+)/.exec(faultText)?.[1];
      if (code === '1') return new IdSet(); // no such space yet: it holds no id
      const message = /<name>faultString<\/name>\s*<value>\s*(?:<string>)?([^<]*)/.exec(faultText)?.[1];
      throw new BulkError(`${this.origin}/RPC answered getDbImgIdList(${space}) with fault ${code ?? '?'}${message ? `: ${message}` : ''}`);
    }
    return new IdSet(ids.subarray(0, n).slice().sort());
  }

  private async call<T>(method: string, path: string, body: Uint8Array, type: string, retry: boolean): Promise<ApiAnswer<T>> {
    const url = new URL(path.replace(/^\//, ''), `${this.origin}/`);
    const headers: Record<string, string> = { 'content-type': type, accept: 'application/json' };
    if (this.authorization) headers.authorization = this.authorization;
    for (let attempt = 0; ; attempt++) {
      const res = await this.fetch(url, { method, headers, body: body as Uint8Array<ArrayBuffer> });
      const text = await res.text();
      if (res.ok) return { ok: true, value: JSON.parse(text) as T };
      const error = apiError(res.status, text);
      if (!retry || !RETRY_STATUS.has(res.status) || attempt >= RETRIES) return { ok: false, error };
      await sleep(200 * 2 ** attempt);
    }
  }

  /** fetch, with a failure to connect told as one line. */
  private async fetch(url: URL, init: RequestInit): Promise<Response> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await fetch(url, init);
      } catch (err) {
        const cause = (err as { cause?: { code?: string; message?: string } }).cause;
        // A kept-alive connection closed under the request: once more on a new one.
        if (cause?.code === 'ECONNRESET' && attempt < 2) continue;
        throw new BulkError(`cannot reach the server at ${this.origin}: ${cause?.code ?? cause?.message ?? (err as Error).message}`);
      }
    }
  }
}

function apiError(status: number, text: string): ApiError {
  try {
    const parsed = JSON.parse(text) as { error?: { code?: string; message?: string } };
    if (parsed.error?.message) return { status, code: parsed.error.code ?? 'http', message: parsed.error.message };
  } catch {
    // not JSON: nginx's own error page, or another program
  }
  return { status, code: 'http', message: `HTTP ${status}${text ? `: ${text.replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 120)}` : ''}` };
}

export function keyRefused(origin: string): BulkError {
  return new BulkError(`${origin} refused the write key (HTTP 401); give the server's key with --key KEY or HAARSEEK_WRITE_KEY`);
}
