import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { type HaarseekError, ParamError, ProtocolError, ReadOnlyError } from '../errors.ts';
import { MAX_ID } from '../rpc/params.ts';
import type { ServerConfig } from '../server/config.ts';
import type { Service } from '../service/service.ts';
import { type Access, requireWriteKey } from './access.ts';
import { type RelayedAnswer, sendRelayed } from './relay.ts';

/** What the HTTP doors need from the process that serves them. */
export interface HttpDoorsOptions {
  config: ServerConfig;
  service: Service;
  log: Logger;
  /** A reader brings its index up to date with the database; called before every read. */
  ensureFresh(): Promise<void>;
  /** How current this process's snapshot is (a writer is always current). */
  freshness(): { stale: boolean; snapshotAgeMs: number | null };
  /** This process's figures (getGlobalServerStats' source), for /api/v1/stats. */
  processStats(): Record<string, unknown>;
  /** Optional per-call measurement: called when a call arrives, its result when it is answered. */
  startCall?(door: 'json' | 'iqdb'): (route: string, outcome: string) => void;
}

/** The options plus what is derived from them once: the relay of writes, the error report. */
export interface DoorContext extends HttpDoorsOptions {
  /** Reader: relays a write to the writer (absent on the writer, and with --no-forward). */
  relay?: (req: FastifyRequest, body: Buffer | undefined) => Promise<RelayedAnswer>;
  /** Maps anything thrown to the error table, logs it, and notes the outcome; the door answers in its own shape. */
  reportError(err: unknown, req: FastifyRequest, door: 'json' | 'iqdb'): { error: HaarseekError; internal: boolean };
}

/**
 * The hooks of a write or admin route: the key is checked before the body is read; on
 * a reader the raw request then goes to the writer, whose answer is the answer (so the
 * writer alone validates and applies it), or is refused when forwarding is off.
 */
export function writeHooks(ctx: DoorContext, access: Exclude<Access, 'read'>) {
  const relay = async (req: FastifyRequest, reply: FastifyReply) => {
    if (ctx.config.role !== 'reader') return;
    if (!ctx.relay) {
      throw new ReadOnlyError(`this reader does not accept writes${ctx.config.writerUrl ? `; send them to the writer at ${new URL(ctx.config.writerUrl).origin}` : ''}`);
    }
    const answer = await ctx.relay(req, Buffer.isBuffer(req.body) ? req.body : undefined);
    return sendRelayed(reply, answer);
  };
  return { onRequest: requireWriteKey(ctx.config.writeKey, access), preValidation: [relay] };
}

/** A read route's hook: a reader answers from a snapshot no older than the database. */
export function readHooks(ctx: DoorContext) {
  return { preHandler: async () => ctx.ensureFresh() };
}

/**
 * Path ids must be written as plain decimal digits and be exact: the schema alone would
 * let "1e3" through as 1000 and round 2^53+1 down to 2^53.
 */
export async function checkPathIds(req: FastifyRequest): Promise<void> {
  const params = req.params as Record<string, unknown> | undefined;
  if (!params) return;
  for (const name of ['space', 'id'] as const) {
    const value = params[name];
    if (typeof value !== 'string') continue;
    if (!/^\d{1,16}$/.test(value) || BigInt(value) > BigInt(MAX_ID)) {
      const what = name === 'space' ? 'space id' : 'image id';
      throw new ParamError(`the ${what} in the path must be a whole number from ${name === 'space' ? 0 : 1} to 2^53, got ${JSON.stringify(value.slice(0, 40))}`);
    }
  }
}

/**
 * Turns a JSON request body (a Buffer, as every body arrives) into a value for the schema
 * to check; an empty body stays undefined. Runs after the relay, so readers pass bytes on.
 */
export async function parseJsonBody(req: FastifyRequest): Promise<void> {
  if (!Buffer.isBuffer(req.body)) return;
  if (req.body.length === 0) {
    req.body = undefined;
    return;
  }
  const type = req.headers['content-type'] ?? '';
  if (!/^\s*application\/json\s*(;|$)/i.test(type)) {
    throw new ParamError(`the body must be JSON sent with Content-Type: application/json (got ${type ? JSON.stringify(type) : 'no Content-Type'})`);
  }
  try {
    req.body = JSON.parse(req.body.toString('utf8'));
  } catch (err) {
    throw new ProtocolError(`the body is not valid JSON: ${(err as Error).message}`);
  }
}
