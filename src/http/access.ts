import type { FastifyRequest } from 'fastify';
import { UnauthorizedError } from '../errors.ts';
import { carriesKey } from '../server/write-key.ts';

/**
 * Who may call a route, as on the XML-RPC door: reads are open; writes (images,
 * keywords) and admin calls (spaces) need the write key.
 */
export type Access = 'read' | 'write' | 'admin';

/** The challenge a 401 carries, so HTTP clients know to send Basic credentials. */
export const AUTH_CHALLENGE = 'Basic realm="haarseek", charset="UTF-8"';

/**
 * An onRequest hook refusing a call without the write key, before its body is read. The
 * key travels as HTTP Basic auth (the key as password, any user name) or as a Bearer token.
 */
export function requireWriteKey(writeKey: string, access: Exclude<Access, 'read'>) {
  return async (req: FastifyRequest): Promise<void> => {
    if (carriesKey(req.headers.authorization, writeKey)) return;
    throw new UnauthorizedError(
      `${req.method} ${req.routeOptions.url ?? req.url} is ${access === 'admin' ? 'an admin' : 'a write'} call and needs the write key: send it as HTTP Basic auth (the key as password, e.g. curl -u client:KEY) or as "Authorization: Bearer KEY"`,
    );
  };
}
