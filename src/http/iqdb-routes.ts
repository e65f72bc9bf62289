import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { type HaarseekError, ParamError } from '../errors.ts';
import { IQDB_EXCEPTIONS, iqdbAddResponse, iqdbDeleteResponse, iqdbErrorResponse, iqdbJson, iqdbQueryMatch, iqdbStatusResponse } from '../iqdb/api.ts';
import { parseIqdbHash } from '../iqdb/hash.ts';
import { CHANNELS, COEFS_PER_CHANNEL } from '../signature/types.ts';
import { AUTH_CHALLENGE } from './access.ts';
import { type DoorContext, readHooks, writeHooks } from './context.ts';
import { jsonErrorBody } from './errors.ts';
import { FILE_PART, formParts, rawBody } from './image-body.ts';
import { rankLikeIqdb } from './iqdb-rank.ts';
import * as S from './schemas.ts';

/** iqdb's default `limit` (server.cpp:119-124). */
const DEFAULT_LIMIT = 10;

const coefList = { type: 'array', items: { type: 'integer' }, minItems: COEFS_PER_CHANNEL, maxItems: COEFS_PER_CHANNEL } as const;
const signatureJson = {
  type: 'object',
  properties: {
    avglf: { type: 'array', items: { type: 'number' }, minItems: CHANNELS, maxItems: CHANNELS },
    sig: { type: 'array', items: coefList, minItems: CHANNELS, maxItems: CHANNELS },
  },
} as const;
const hash = { type: 'string', description: 'iqdb\'s 533-character signature hash' } as const;
const iqdbError = {
  type: 'object',
  description: 'iqdb\'s error body, plus haarseek\'s error object; the status is the error table\'s (iqdb answers 500 to everything)',
  properties: { exception: { type: 'string' }, message: { type: 'string' }, backtrace: { type: 'string' }, error: S.errorSchema.properties.error },
} as const;
const iqdbResponses = (ok: object, description: string) => ({ 200: { description, ...ok }, '4xx': iqdbError, '5xx': iqdbError });
const postParams = { type: 'object', required: ['id'], properties: { id: S.imageId } } as const;

type PostReq = FastifyRequest<{ Params: { id: number } }>;

/**
 * danbooru/iqdb's HTTP routes with iqdb's JSON shapes (src/iqdb/README.md), on the
 * space --iqdb-space: a client written for iqdb (Danbooru's IqdbClient) works unchanged.
 * Adding and removing need the write key, as every write does.
 */
export async function iqdbRoutes(app: FastifyInstance, ctx: DoorContext): Promise<void> {
  const { service } = ctx;
  const space = ctx.config.iqdbSpace;
  const write = writeHooks(ctx, 'write');

  app.setErrorHandler(async (err, req, reply) => {
    const { error } = ctx.reportError(err, req, 'iqdb');
    if (error.code === 'unauthorized') reply.header('www-authenticate', AUTH_CHALLENGE);
    const iqdb = iqdbErrorResponse(iqdbException(error), error.message);
    // Keys in iqdb's (alphabetical) order; haarseek's error object among them.
    return sendIqdb(reply.code(error.httpStatus), { backtrace: iqdb.backtrace, ...jsonErrorBody(error), exception: iqdb.exception, message: iqdb.message });
  });

  app.post('/images/:id', {
    ...write,
    config: { docBody: { description: 'multipart/form-data with the image as the part named file', content: { 'multipart/form-data': { schema: { type: 'object', required: ['file'], properties: { file: { type: 'string', format: 'binary' } } } } } } },
    schema: {
      summary: 'iqdb: add or replace post id (multipart part file); write',
      tags: ['iqdb'],
      params: postParams,
      response: iqdbResponses({ type: 'object', properties: { hash, post_id: S.imageId, signature: signatureJson } }, 'the stored signature'),
    },
  }, async (req: PostReq, reply) => {
    const file = formParts(req)?.find((p) => p.name === FILE_PART);
    if (!file) throw new ParamError('`POST /images/:id` requires a `file` param (a multipart/form-data part named file)');
    const { id } = req.params;
    await service.writes.addImage(space, id, file.data);
    return sendIqdb(reply, iqdbAddResponse(id, service.search.signature(space, id)));
  });

  app.delete('/images/:id', {
    ...write,
    schema: {
      summary: 'iqdb: remove post id (200 also when it was not there); write',
      tags: ['iqdb'],
      params: postParams,
      response: iqdbResponses({ type: 'object', properties: { post_id: S.imageId } }, 'removed, or was not there'),
    },
  }, async (req: PostReq, reply) => {
    const { id } = req.params;
    if (service.search.hasImage(space, id)) service.writes.removeImage(space, id);
    return sendIqdb(reply, iqdbDeleteResponse(id));
  });

  app.post('/query', {
    ...readHooks(ctx),
    config: {
      docBody: {
        description: 'the image as a multipart/form-data part named file, or hash and limit as an urlencoded form',
        content: {
          'multipart/form-data': { schema: { type: 'object', properties: { file: { type: 'string', format: 'binary' } } } },
          'application/x-www-form-urlencoded': { schema: { type: 'object', properties: { hash, limit: { type: 'string' } } } },
        },
      },
    },
    schema: {
      summary: 'iqdb: the posts most similar to an image (file) or a signature (hash)',
      tags: ['iqdb'],
      querystring: { type: 'object', properties: { limit: { type: 'string', description: `how many results (default ${DEFAULT_LIMIT})` }, hash } },
      response: iqdbResponses({ type: 'array', items: { type: 'object', properties: { hash, post_id: S.imageId, score: { type: 'number', description: 'iqdb\'s float32 score; 100 for the same image' }, signature: signatureJson } } }, 'best first'),
    },
  }, async (req: FastifyRequest<{ Querystring: { limit?: string; hash?: string } }>, reply) => {
    const form = urlencodedForm(req);
    const limit = parseLimit(form?.get('limit') ?? req.query.limit, service.search.maxResults);
    const hashText = form?.get('hash') ?? req.query.hash;
    let query;
    if (hashText !== undefined && hashText !== null) query = parseIqdbHash(hashText);
    else {
      const file = formParts(req)?.find((p) => p.name === FILE_PART);
      if (!file) throw new ParamError('`POST /query` requires a `file` or `hash` param (a multipart/form-data part named file, or hash in the query string)');
      query = (await service.search.signatureOf(file.data)).sig;
    }
    const ranked = rankLikeIqdb(service, space, query, limit);
    return sendIqdb(reply, ranked.map((m) => iqdbQueryMatch(m.postId, m.score, m.signature)));
  });

  app.get('/status', {
    ...readHooks(ctx),
    schema: { summary: 'iqdb: how many images the iqdb space holds', tags: ['iqdb'], response: iqdbResponses({ type: 'object', properties: { images: { type: 'integer' } } }, 'the count') },
  }, async (_req, reply) => sendIqdb(reply, iqdbStatusResponse(service.search.hasSpace(space) ? service.search.imageCount(space) : 0)));
}

/** iqdb writes its JSON with json::dump(4); so do we. */
function sendIqdb(reply: FastifyReply, body: unknown): FastifyReply {
  return reply.type('application/json').send(iqdbJson(body));
}

/** iqdb reads parameters from an urlencoded body too (cpp-httplib); those win over the query string. */
function urlencodedForm(req: FastifyRequest): URLSearchParams | null {
  if (!/^\s*application\/x-www-form-urlencoded\s*(;|$)/i.test(req.headers['content-type'] ?? '')) return null;
  return new URLSearchParams(rawBody(req).toString('utf8'));
}

function parseLimit(text: string | undefined, max: number): number {
  if (text === undefined) return DEFAULT_LIMIT;
  const limit = /^\s*\d{1,10}\s*$/.test(text) ? Number(text) : Number.NaN;
  if (!(limit >= 1 && limit <= max)) throw new ParamError(`limit must be a whole number from 1 to ${max}, got ${JSON.stringify(text.slice(0, 40))}`);
  return limit;
}

/** The C++ exception type iqdb would have named for an error of this kind. */
function iqdbException(error: HaarseekError): string {
  switch (error.code) {
    case 'invalidParams':
    case 'parseError':
      return IQDB_EXCEPTIONS.param;
    case 'undecodableImage':
    case 'payloadTooLarge':
      return IQDB_EXCEPTIONS.image;
    default:
      return `haarseek::${error.code}`;
  }
}
