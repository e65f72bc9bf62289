import { ParamError } from '../errors.ts';
import type { RankedResult } from '../index/types.ts';
import type { ScoredResult } from '../service/search.ts';
import type { Service } from '../service/service.ts';
import { apiScore } from '../signature/weights.ts';
import type { ParamSpec } from './params.ts';
import { XmlRpcDouble } from './wire.ts';

/** What a method handler may use beyond the service. */
export interface RpcContext {
  service: Service;
  serverStats(): Record<string, unknown>;
  recentLog(lines: number): string;
  shutdown(): void;
}

/**
 * Who may call a method. Reads are open; writes (images and keywords) and admin calls
 * (spaces, save points, server paths, the process itself, its log) need the write key.
 */
export type Access = 'read' | 'write' | 'admin';

export interface MethodDef {
  params: ParamSpec[];
  access: Access;
  /** Changes the database: a reader forwards it to the writer. */
  mutates: boolean;
  help: string;
  /**
   * What iskdaemon 0.9.5 answered when the image asked about is not in the space (its
   * ordinary "no", which its clients test for: docs/iskdaemon-0.9.5-misses.md); without
   * it a miss is a fault. A missing space stays a fault, as it was in iskdaemon.
   */
  onMissing?: { image: unknown };
  /** Rewrites the raw parameters of an older calling form before they are checked. */
  legacy?(params: unknown[]): unknown[];
  run(ctx: RpcContext, args: any[]): unknown;
}

const dbId: ParamSpec = { name: 'dbId', type: 'int' };
const imageId: ParamSpec = { name: 'id', type: 'id' };
/** Ids a client adds must fit XML-RPC's 32-bit <int>, so every client can send them back. */
const newImageId: ParamSpec = { name: 'id', type: 'newId' };
const numres: ParamSpec = { name: 'numres', type: 'int', default: 12 };
const sketch: ParamSpec = { name: 'sketch', type: 'bool', default: false };
const fast: ParamSpec = { name: 'fast', type: 'bool', default: false };
/** Keyword queries take id 0 to mean "any image having the keywords" (iskdaemon's rule). */
const imageIdOrZero: ParamSpec = { name: 'id', type: 'int' };
const kwJoinType: ParamSpec = { name: 'kwJoinType', type: 'int', default: 1 };
const keywords: ParamSpec = { name: 'keywords', type: 'keywordList' };

/** iskdaemon's result shape: numres+1 of [id, score 0..100], scores always as <double>. */
function results(list: RankedResult[]): Array<[number, XmlRpcDouble]> {
  return list.map(([id, raw]) => [id, new XmlRpcDouble(apiScore(raw))]);
}

/** iskdaemon returns numres+1 results: the query image itself usually comes first. */
/** The same shape for a ranking that reports its own 0..100 score (the server's default ranking). */
function scored(list: ScoredResult[]): Array<[number, XmlRpcDouble]> {
  return list.map(({ id, score }) => [id, new XmlRpcDouble(score)]);
}

function query(service: Service, n: number, sk: boolean, f: boolean) {
  if (n < 1 || n > service.search.maxResults) throw new ParamError(`numres must be between 1 and ${service.search.maxResults}, got ${n}`);
  return { limit: n + 1, sketch: sk, fast: f };
}

function read(params: ParamSpec[], help: string, run: MethodDef['run'], extra: Partial<MethodDef> = {}): MethodDef {
  return { params, access: 'read', mutates: false, help, run, ...extra };
}

function write(params: ParamSpec[], help: string, run: MethodDef['run'], extra: Partial<MethodDef> = {}): MethodDef {
  return { params, access: 'write', mutates: true, help, run, ...extra };
}

function admin(params: ParamSpec[], help: string, run: MethodDef['run'], extra: Partial<MethodDef> = {}): MethodDef {
  return { params, access: 'admin', mutates: true, help, run, ...extra };
}

/**
 * iskdaemon 0.9.2 had queryImgID(dbId, id, numres=12, fast=False), with no sketch
 * parameter: a fourth argument sent as an XML-RPC <boolean> is that fast flag. An
 * <int> there is sketch, as in queryImgBlob.
 */
function queryImgIdLegacy(params: unknown[]): unknown[] {
  return params.length === 4 && typeof params[3] === 'boolean' ? [...params.slice(0, 3), 0, params[3]] : params;
}

const entries: Array<[string, MethodDef]> = [
  ['queryImgID', read([dbId, imageId, numres, sketch, fast],
    'queryImgID(dbId, id, numres=12, sketch=0, fast=False): the numres+1 images most similar to stored image id, as [[id, score 0..100], ...], best first (the image itself first).',
    ({ service }, [db, id, n, sk, f]) => results(service.search.byId(db, id, query(service, n, sk, f))), { legacy: queryImgIdLegacy, onMissing: { image: [] } })],
  ['queryImgBlob', read([dbId, { name: 'data', type: 'blob' }, numres, sketch, fast],
    'queryImgBlob(dbId, data, numres=12, sketch=0, fast=False): the numres+1 stored images most similar to the image bytes given (base64), as [[id, score], ...].',
    async ({ service }, [db, data, n, sk, f]) => scored(await service.search.rankImage(db, data, query(service, n, sk, f))))],
  ['queryImgPath', { ...read([dbId, { name: 'path', type: 'string' }, numres, sketch, fast],
    'queryImgPath(dbId, path, numres=12, sketch=0, fast=False): like queryImgBlob for an image file in an allowed directory (admin: it reads server files).',
    async ({ service }, [db, path, n, sk, f]) => {
      service.search.imageCount(db);
      return scored(await service.search.rankImage(db, await service.files.readImage(path), query(service, n, sk, f)));
    }), access: 'admin' }],
  ['addImg', admin([dbId, newImageId, { name: 'filename', type: 'string' }, { name: 'fileIsUrl', type: 'bool', default: false }],
    'addImg(dbId, id, filename, fileIsUrl=False): adds (or replaces) image id from a file in an allowed directory; returns 1. URLs are refused: send the bytes with addImgBlob.',
    async ({ service }, [db, id, file, isUrl]) => {
      // Fetching URLs on a client's word would make the server a request forwarder (SSRF).
      if (isUrl) throw new ParamError(`addImg does not fetch URLs (${file}): download the image and send its bytes with addImgBlob(dbId, id, data)`);
      await service.files.addImageFile(db, id, file);
      return 1;
    })],
  ['addImgBlob', write([dbId, newImageId, { name: 'data', type: 'blob' }],
    'addImgBlob(dbId, id, data): adds (or replaces) image id from image bytes (base64); returns 1.',
    async ({ service }, [db, id, data]) => (await service.writes.addImage(db, id, data), 1))],
  ['removeImg', write([dbId, imageId], 'removeImg(dbId, id): removes an image and its keywords; returns 1.',
    ({ service }, [db, id]) => (service.writes.removeImage(db, id), 1), { onMissing: { image: 0 } })],
  ['resetDb', admin([dbId], 'resetDb(dbId): removes every image of a database space; returns 1.',
    ({ service }, [db]) => (service.writes.clearSpace(db), 1))],
  ['removeDb', admin([dbId], 'removeDb(dbId): removes a database space; returns true.',
    ({ service }, [db]) => (service.writes.removeSpace(db), true))],
  ['createDb', admin([dbId], 'createDb(dbId): creates a database space; returns dbId.',
    ({ service }, [db]) => (service.writes.createSpace(db), db))],
  ['getDbImgCount', read([dbId], 'getDbImgCount(dbId): number of images in a database space.',
    ({ service }, [db]) => service.search.imageCount(db))],
  ['isImgOnDb', read([dbId, imageId], 'isImgOnDb(dbId, id): whether the image is stored.',
    ({ service }, [db, id]) => service.search.hasImage(db, id))],
  ['getImgDimensions', read([dbId, imageId], 'getImgDimensions(dbId, id): [width, height] of the original image.',
    ({ service }, [db, id]) => service.search.dimensions(db, id), { onMissing: { image: [0, 0] } })],
  ['calcImgAvglDiff', read([dbId, { name: 'id1', type: 'id' }, { name: 'id2', type: 'id' }],
    'calcImgAvglDiff(dbId, id1, id2): weighted difference of the two images\' average colours (lower is closer).',
    ({ service }, [db, a, b]) => new XmlRpcDouble(service.search.avglDiff(db, a, b)), { onMissing: { image: new XmlRpcDouble(0) } })],
  ['calcImgDiff', read([dbId, { name: 'id1', type: 'id' }, { name: 'id2', type: 'id' }],
    'calcImgDiff(dbId, id1, id2): imgSeek\'s raw score of id2 against id1 (lower, i.e. more negative, is closer).',
    ({ service }, [db, a, b]) => new XmlRpcDouble(service.search.diff(db, a, b)), { onMissing: { image: new XmlRpcDouble(0) } })],
  ['getImgAvgl', read([dbId, imageId], 'getImgAvgl(dbId, id): the three average luminance values [Y, I, Q].',
    ({ service }, [db, id]) => service.search.avgl(db, id).map((v) => new XmlRpcDouble(v)), { onMissing: { image: [] } })],
  ['getDbList', read([], 'getDbList(): ids of all database spaces.', ({ service }) => service.search.spaceIds())],
  ['getDbDetailedList', read([], 'getDbDetailedList(): per database space, its statistics.',
    ({ service }) => detailedList(service))],
  ['getDbImgIdList', read([dbId], 'getDbImgIdList(dbId): ids of all images in a database space, ascending.',
    ({ service }, [db]) => service.search.imageIds(db))],
  ['isValidDb', read([dbId], 'isValidDb(dbId): whether the database space exists.',
    ({ service }, [db]) => service.search.hasSpace(db))],
  ['getGlobalServerStats', read([], 'getGlobalServerStats(): server statistics (engine, uptime, counts).',
    (ctx) => ctx.serverStats())],
  ['saveDb', admin([dbId], 'saveDb(dbId): every write is already durable; writes a save point of all spaces (as saveAllDbs); returns 1.',
    ({ service }) => (service.files.saveAll(), 1))],
  ['saveDbAs', admin([dbId, { name: 'path', type: 'string' }], 'saveDbAs(dbId, path): exports one database space to a haarseek file in an allowed directory; returns 1.',
    ({ service }, [db, path]) => (service.files.exportSpace(db, path), 1))],
  ['loadDb', admin([dbId, { name: 'path', type: 'string' }], 'loadDb(dbId, path): replaces a database space with the content of a file written by saveDbAs (haarseek\'s, or iskdaemon\'s own); returns dbId.',
    async ({ service }, [db, path]) => (await service.files.importSpace(db, path), db))],
  ['saveAllDbs', admin([], 'saveAllDbs(): writes a consistent save point of every space beside the database; returns the number of spaces.',
    ({ service }) => service.files.saveAll())],
  ['loadAllDbs', admin([], 'loadAllDbs(): restores every space from the last saveAllDbs save point; returns the number of spaces.',
    ({ service }) => service.files.loadAll())],
  ['saveAllDbsAs', admin([{ name: 'path', type: 'string' }], 'saveAllDbsAs(path): writes a save point of every space to a file in an allowed directory; returns the number of spaces.',
    ({ service }, [path]) => service.files.saveAll(path))],
  ['loadAllDbsAs', admin([{ name: 'path', type: 'string' }], 'loadAllDbsAs(path): restores every space from a file written by saveAllDbsAs (haarseek\'s, or iskdaemon\'s savealldbs file); returns the number of spaces.',
    ({ service }, [path]) => service.files.loadAll(path))],
  ['addDir', admin([dbId, { name: 'path', type: 'string' }, { name: 'recurse', type: 'bool', default: false }, { name: 'fname', type: 'string', default: '' }],
    'addDir(dbId, path, recurse=False, fname=""): adds every image file in an allowed directory whose base name is its numeric id; returns how many were added.',
    ({ service }, [db, path, recurse, fname]) => service.files.addDirectory(db, path, recurse, fname))],
  ['shutdownServer', { ...admin([], 'shutdownServer(): stops the writer (the cluster supervisor starts it again); returns 1.',
    (ctx) => (ctx.shutdown(), 1)) }],
  ['addKeywordImg', write([dbId, imageId, { name: 'hash', type: 'int' }], 'addKeywordImg(dbId, id, keyword): tags an image with an integer keyword; returns true.',
    ({ service }, [db, id, kw]) => (service.writes.addKeywords(db, id, [kw]), true), { onMissing: { image: false } })],
  ['addKeywordsImg', write([dbId, imageId, { name: 'hashes', type: 'intList' }], 'addKeywordsImg(dbId, id, keywords): tags an image with several keywords (array or comma-separated); returns true.',
    ({ service }, [db, id, kws]) => (service.writes.addKeywords(db, id, kws), true), { onMissing: { image: false } })],
  ['removeKeywordImg', write([dbId, imageId, { name: 'hash', type: 'int' }], 'removeKeywordImg(dbId, id, keyword): removes one keyword from an image; returns true.',
    ({ service }, [db, id, kw]) => (service.writes.removeKeywords(db, id, [kw]), true), { onMissing: { image: false } })],
  ['removeAllKeywordImg', write([dbId, imageId], 'removeAllKeywordImg(dbId, id): removes every keyword of an image; returns true.',
    ({ service }, [db, id]) => (service.writes.removeKeywords(db, id, 'all'), true), { onMissing: { image: false } })],
  ['getKeywordsImg', read([dbId, imageId], 'getKeywordsImg(dbId, id): the image\'s keywords, ascending.',
    ({ service }, [db, id]) => service.search.keywordsOf(db, id), { onMissing: { image: [] } })],
  ['queryImgIDKeywords', read([dbId, imageIdOrZero, numres, kwJoinType, keywords],
    'queryImgIDKeywords(dbId, id, numres, kwJoinType, keywords): like queryImgID among images having all (kwJoinType 1) or any (0) of the comma-separated keywords; id 0 lists such images with score 0.',
    ({ service }, args) => keywordQuery(service, args, false), { onMissing: { image: [] } })],
  ['queryImgIDFastKeywords', read([dbId, imageIdOrZero, numres, kwJoinType, keywords],
    'queryImgIDFastKeywords(dbId, id, numres, kwJoinType, keywords): queryImgIDKeywords on average colour only.',
    ({ service }, args) => keywordQuery(service, args, true), { onMissing: { image: [] } })],
  ['getAllImgsByKeywords', read([dbId, numres, kwJoinType, keywords],
    'getAllImgsByKeywords(dbId, numres, kwJoinType, keywords): ids of images having all (1) or any (0) of the keywords, at most numres.',
    ({ service }, [db, n, join, kws]) => service.search.imagesWithKeywords(db, kws, join !== 0, n))],
  ['mostPopularKeywords', read([dbId, { name: 'imgs', type: 'intList' }, { name: 'excludedKwds', type: 'intList' }, { name: 'count', type: 'int' }, { name: 'mode', type: 'int', default: 0 }],
    'mostPopularKeywords(dbId, imgs, excludedKwds, count, mode): the most used keywords among imgs (all images when empty) as [keyword, count, keyword, count, ...].',
    ({ service }, [db, imgs, excluded, count]) => service.search.popularKeywords(db, imgs, excluded, count).flat())],
  ['getIskLog', { ...read([{ name: 'window', type: 'int', default: 30 }], 'getIskLog(window=30): the last log lines of this instance (admin: logs name paths and errors).',
    (ctx, [lines]) => ctx.recentLog(lines)), access: 'admin' }],
];

/** The iskdaemon XML-RPC API, with its parameter names and defaults; a Map, so no prototype name is a method. */
export const METHODS: ReadonlyMap<string, MethodDef> = new Map(entries);

/** id 0 lists the images having the keywords, with score 0 (iskdaemon's rule). */
function keywordQuery(service: Service, [db, id, n, join, kws]: any[], fast: boolean): unknown {
  if (id === 0) return service.search.imagesWithKeywords(db, kws, join !== 0, n).map((img) => [img, new XmlRpcDouble(0)]);
  if (id < 0) throw new ParamError(`parameter 2 (id) must be an image id, or 0 for any image with the keywords; got ${id}`);
  return results(service.search.byId(db, id, { ...query(service, n, false, fast), keywords: kws, keywordsAll: join !== 0 }));
}

function detailedList(service: Service): Record<string, unknown[]> {
  const out: Record<string, unknown[]> = {};
  for (const db of service.search.spaceIds()) {
    const c = service.stats.of(db);
    // iskdaemon's fields: imgCount, queryCount, lastQueryPerMin, queryMinCount,
    // queryMinCur, lastAddPerMin, addMinCount, addMinCur, addCount, addSinceLastSave,
    // lastId, lastSaveTime, fileName.
    out[String(db)] = [service.search.imageCount(db), c.queries, 0, 0, 0, 0, 0, 0, c.adds, c.addsSinceSave, c.lastId, 0, ''];
  }
  return out;
}
