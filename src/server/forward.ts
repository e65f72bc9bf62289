import { request } from 'node:http';
import type { Logger } from 'pino';
import { WriterUnreachableError } from '../errors.ts';

/**
 * Relays a write call's raw body, with the caller's credentials, to the writer and
 * returns its raw answer. node:http writes the Buffer as it is: no copy of a 50 MB upload
 * on the event loop (fetch copies a body twice).
 */
export function writeForwarder(writerUrl: string, timeoutMs: number, log: Logger): (body: Buffer, authorization: string | undefined) => Promise<Buffer> {
  const url = new URL(writerUrl);
  return (body, authorization) =>
    new Promise((resolve, reject) => {
      const headers: Record<string, string | number> = { 'content-type': 'text/xml', 'content-length': body.length };
      if (authorization) headers.authorization = authorization;
      const fail = (why: string) => {
        log.warn({ writerUrl, why }, 'a forwarded write did not get through to the writer');
        reject(new WriterUnreachableError('the writer did not answer; retry shortly'));
      };
      const req = request({ hostname: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers, timeout: timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          if (res.statusCode === 200) resolve(Buffer.concat(chunks));
          else fail(`HTTP ${res.statusCode}`);
        });
        res.on('error', (err) => fail(err.message));
      });
      req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      req.on('error', (err) => fail(err.message));
      req.end(body);
    });
}
