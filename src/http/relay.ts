import { request } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { WriterUnreachableError } from '../errors.ts';
import { AUTH_CHALLENGE } from './access.ts';

/** What the writer answered: relayed to the caller as it is. */
export interface RelayedAnswer {
  status: number;
  contentType: string | undefined;
  body: Buffer;
}

/** Request headers a relayed call keeps; everything else (host, connection, nginx's marks) is the reader's business. */
const KEPT_HEADERS = ['content-type', 'authorization', 'accept'] as const;

/**
 * A reader's relay of an HTTP write to the writer: the same method, path and query, the
 * caller's Content-Type and Authorization, the raw body; the writer's status and body
 * come back unchanged (as XML-RPC writes are forwarded in src/server/forward.ts).
 * node:http sends the body Buffer as it is, without copying it.
 */
export function writerRelay(writerUrl: string, timeoutMs: number, log: Logger): (req: FastifyRequest, body: Buffer | undefined) => Promise<RelayedAnswer> {
  const writer = new URL(writerUrl);
  return (req, body) =>
    new Promise((resolve, reject) => {
      const headers: Record<string, string | number> = { 'content-length': body?.length ?? 0 };
      for (const name of KEPT_HEADERS) {
        const value = req.headers[name];
        if (typeof value === 'string') headers[name] = value;
      }
      const fail = (why: string) => {
        log.warn({ writer: writer.origin, method: req.method, path: req.url, why }, 'a relayed write did not get through to the writer');
        reject(new WriterUnreachableError(`the writer at ${writer.origin} did not answer; retry shortly`));
      };
      const relayed = request(
        { hostname: writer.hostname, port: writer.port, path: req.url, method: req.method, headers, timeout: timeoutMs },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 502, contentType: res.headers['content-type'], body: Buffer.concat(chunks) }));
          res.on('error', (err) => fail(err.message));
        },
      );
      relayed.on('timeout', () => relayed.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      relayed.on('error', (err) => fail(err.message));
      relayed.end(body);
    });
}

export function sendRelayed(reply: FastifyReply, answer: RelayedAnswer): FastifyReply {
  if (answer.contentType) reply.type(answer.contentType);
  if (answer.status === 401) reply.header('www-authenticate', AUTH_CHALLENGE);
  return reply.code(answer.status).send(answer.body);
}
