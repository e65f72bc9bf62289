import type { Ranking } from '../service/context.ts';
import type { ScoredResult } from '../service/search.ts';
import type { FastifyInstance } from 'fastify';
import { MethodNotFoundError, ParamError } from '../errors.ts';
import type { SearchOptions } from '../service/search.ts';
import { apiScore } from '../signature/weights.ts';
import { type DoorContext, parseJsonBody, readHooks, writeHooks } from './context.ts';
import { imageFromRequest } from './image-body.ts';
import * as S from './schemas.ts';
import { VERSION } from './version.ts';

interface SearchQuery {
  numres: number;
  sketch: 0 | 1;
  fast: 0 | 1;
  keywords?: string;
  kwJoin: 'and' | 'or';
  ranking?: Ranking;
}
interface SpaceRoute {
  Params: { space: number };
}
interface ImageRoute {
  Params: { space: number; id: number };
}
interface KeywordsRoute extends ImageRoute {
  Body: { keywords: number[] } | undefined;
}

/**
 * The JSON API, registered under /api/v1: the same service as XML-RPC, in JSON shapes,
 * every route described by the schemas in schemas.ts (and so in /api/v1/openapi.json).
 * Errors are `{ error: { code, fault, message } }` with the error table's HTTP status.
 */
export async function jsonApi(app: FastifyInstance, ctx: DoorContext): Promise<void> {
  const { service } = ctx;
  const read = readHooks(ctx);
  const write = writeHooks(ctx, 'write');
  const admin = writeHooks(ctx, 'admin');
  const searchQuery = S.searchQuery(ctx.config.maxResults);

  app.setNotFoundHandler(async (req) => {
    throw new MethodNotFoundError(`there is no route ${req.method} ${req.url.split('?')[0]}; the routes are listed in /api/v1/openapi.json`);
  });

  app.get('/status', {
    ...read,
    schema: { summary: 'This process: role, engine, version, spaces and freshness', tags: ['server'], response: S.responses(S.statusAnswer, 'status') },
  }, async () => ({
    role: ctx.config.role,
    engine: service.engineName,
    pid: process.pid,
    version: VERSION,
    ranking: service.search.ranking,
    imageUrlTemplate: ctx.config.imageUrlTemplate,
    spaces: spaces(ctx),
    ...ctx.freshness(),
  }));

  app.get('/stats', {
    ...read,
    schema: { summary: 'Per-space counters and process figures of this process', tags: ['server'], response: S.responses(S.statsAnswer, 'statistics') },
  }, async () => {
    const p = ctx.processStats();
    const memory = process.memoryUsage();
    return {
      process: {
        role: ctx.config.role,
        engine: service.engineName,
        pid: process.pid,
        port: ctx.config.port,
        uptimeSeconds: Math.round(process.uptime()),
        rssBytes: memory.rss,
        heapUsedBytes: memory.heapUsed,
        indexBytes: typeof p.indexBytes === 'number' ? p.indexBytes : undefined,
        images: spaces(ctx).reduce((n, s) => n + s.images, 0),
      },
      spaces: service.search.spaceIds().map((id) => {
        const c = service.stats.of(id);
        return { id, images: service.search.imageCount(id), queries: c.queries, adds: c.adds, addsSinceSave: c.addsSinceSave, lastId: c.lastId };
      }),
    };
  });

  app.get('/spaces', {
    ...read,
    schema: { summary: 'Database spaces and their image counts', tags: ['spaces'], response: S.responses(S.spaceList, 'the spaces, ascending') },
  }, async () => ({ spaces: spaces(ctx) }));

  app.put<SpaceRoute>('/spaces/:space', {
    ...admin,
    schema: { summary: 'Create a space (nothing happens when it exists); admin', tags: ['spaces'], params: S.spaceParams, response: S.responses({ type: 'object', required: ['id'], properties: { id: S.spaceId } }, 'the space exists') },
  }, async (req) => {
    service.writes.createSpace(req.params.space);
    return { id: req.params.space };
  });

  app.delete<SpaceRoute>('/spaces/:space', {
    ...admin,
    schema: { summary: 'Remove a space and all its images; admin', tags: ['spaces'], params: S.spaceParams, response: S.responses({ type: 'object', required: ['id', 'removed'], properties: { id: S.spaceId, removed: { type: 'boolean', const: true } } }, 'the space is gone') },
  }, async (req) => {
    service.writes.removeSpace(req.params.space);
    return { id: req.params.space, removed: true };
  });

  app.post<{ Params: { space: number }; Querystring: SearchQuery }>('/spaces/:space/search', {
    ...read,
    config: { docBody: imageBodyDoc('the image to search with') },
    schema: {
      summary: 'Images most similar to the image sent (raw bytes, or a multipart/form-data part named file)',
      tags: ['search'],
      params: S.spaceParams,
      querystring: searchQuery,
      response: S.responses(S.searchAnswer, 'numres results, best first'),
    },
  }, async (req) => {
    const started = performance.now();
    const { space } = req.params;
    const options = searchOptions(req.query, req.query.numres);
    const ranking = req.query.ranking ?? service.search.ranking;
    const results = await service.search.rankImage(space, imageFromRequest(req), { ...options, ranking });
    return searchAnswer(space, ranking, results, started);
  });

  app.get<{ Params: { space: number; id: number }; Querystring: SearchQuery }>('/spaces/:space/images/:id/similar', {
    ...read,
    schema: {
      summary: 'Images most similar to a stored image (the image itself left out)',
      tags: ['search'],
      params: S.imageParams,
      querystring: searchQuery,
      response: S.responses(S.searchAnswer, 'numres results, best first'),
    },
  }, async (req) => {
    const started = performance.now();
    const { space, id } = req.params;
    const { numres } = req.query;
    // One more than asked for, so numres remain once the image itself is left out. A
    // stored image is its own exact query: the imgSeek ranking, whatever was asked.
    const ranked = service.search.byId(space, id, searchOptions(req.query, numres + 1));
    const results = ranked.filter(([other]) => other !== id).slice(0, numres).map(([other, raw]) => ({ id: other, score: apiScore(raw) }));
    return searchAnswer(space, 'imgseek', results, started);
  });

  app.put<ImageRoute>('/spaces/:space/images/:id', {
    ...write,
    config: { docBody: imageBodyDoc('the image') },
    schema: { summary: 'Add or replace an image (the space is created when missing); write', tags: ['images'], params: S.imageParams, response: S.responses(S.addedImage, 'stored') },
  }, async (req) => service.writes.addImage(req.params.space, req.params.id, imageFromRequest(req)));

  app.get<ImageRoute>('/spaces/:space/images/:id', {
    ...read,
    schema: { summary: 'What is stored about an image', tags: ['images'], params: S.imageParams, response: S.responses(S.imageInfo, 'the image') },
  }, async (req) => service.search.info(req.params.space, req.params.id));

  app.delete<ImageRoute>('/spaces/:space/images/:id', {
    ...write,
    schema: { summary: 'Remove an image and its keywords; write', tags: ['images'], params: S.imageParams, response: S.responses(S.removedImage, 'removed') },
  }, async (req) => {
    service.writes.removeImage(req.params.space, req.params.id);
    return { id: req.params.id, removed: true };
  });

  app.get<ImageRoute>('/spaces/:space/images/:id/keywords', {
    ...read,
    schema: { summary: 'An image\'s keywords', tags: ['keywords'], params: S.imageParams, response: S.responses(S.imageKeywords, 'the keywords, ascending') },
  }, async (req) => ({ id: req.params.id, keywords: service.search.keywordsOf(req.params.space, req.params.id) }));

  app.put<KeywordsRoute>('/spaces/:space/images/:id/keywords', {
    ...write,
    preValidation: [...write.preValidation, parseJsonBody],
    schema: {
      summary: 'Tag an image with keywords (those it has stay); write',
      tags: ['keywords'],
      params: S.imageParams,
      body: S.keywordsBody,
      response: S.responses(S.imageKeywords, 'the image\'s keywords now'),
    },
  }, async (req) => {
    const { space, id } = req.params;
    if (!req.body) throw new ParamError('send the keywords as a JSON body: {"keywords": [1, 2]}');
    service.writes.addKeywords(space, id, req.body.keywords);
    return { id, keywords: service.search.keywordsOf(space, id) };
  });

  app.delete<KeywordsRoute>('/spaces/:space/images/:id/keywords', {
    ...write,
    preValidation: [...write.preValidation, parseJsonBody],
    schema: {
      summary: 'Remove the keywords given in the body, or all of them when there is no body; write',
      tags: ['keywords'],
      params: S.imageParams,
      body: S.keywordsBody,
      response: S.responses(S.imageKeywords, 'the image\'s keywords now'),
    },
  }, async (req) => {
    const { space, id } = req.params;
    service.writes.removeKeywords(space, id, req.body ? req.body.keywords : 'all');
    return { id, keywords: service.search.keywordsOf(space, id) };
  });

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}

function spaces(ctx: DoorContext): Array<{ id: number; images: number }> {
  return ctx.service.search.spaceIds().map((id) => ({ id, images: ctx.service.search.imageCount(id) }));
}

function searchOptions(q: SearchQuery, limit: number): SearchOptions {
  const keywords = q.keywords?.split(',').map((k) => Number(k.trim()));
  return { limit, sketch: q.sketch === 1, fast: q.fast === 1, keywords, keywordsAll: q.kwJoin !== 'or' };
}

function searchAnswer(space: number, ranking: Ranking, results: ScoredResult[], started: number) {
  return {
    space,
    ranking,
    results,
    tookMs: Math.round((performance.now() - started) * 100) / 100,
  };
}

/** The request body of an image route, for the OpenAPI document (the body itself is read by imageFromRequest). */
function imageBodyDoc(what: string) {
  return {
    description: `${what}: its bytes as the body (any image type sharp decodes), or a multipart/form-data body with a part named file`,
    content: {
      'application/octet-stream': { schema: { type: 'string', format: 'binary' } },
      'image/*': { schema: { type: 'string', format: 'binary' } },
      'multipart/form-data': { schema: { type: 'object', required: ['file'], properties: { file: { type: 'string', format: 'binary' } } } },
    },
  };
}
