import { ParamError } from '../errors.ts';
import type { ImageService, IskResults } from '../server/image-service.ts';
import type { ParamSpec } from './params.ts';
import { XmlRpcDouble } from './wire.ts';

/** What a method handler may use beyond the image service. */
export interface RpcContext {
  service: ImageService;
  serverStats(): Record<string, unknown>;
  recentLog(lines: number): string;
  shutdown(): void;
}

export interface MethodDef {
  params: ParamSpec[];
  /** Write methods change the database: readers forward them to the writer. */
  write: boolean;
  help: string;
  /** Rewrites the raw parameters of an older calling form before they are checked. */
  legacy?(params: unknown[]): unknown[];
  run(ctx: RpcContext, args: any[]): unknown;
}

const dbId: ParamSpec = { name: 'dbId', type: 'int' };
const imageId: ParamSpec = { name: 'id', type: 'id' };
const numres: ParamSpec = { name: 'numres', type: 'int', default: 12 };
const sketch: ParamSpec = { name: 'sketch', type: 'bool', default: false };
const fast: ParamSpec = { name: 'fast', type: 'bool', default: false };
/** Keyword queries take id 0 to mean "any image having the keywords" (iskdaemon's rule). */
const imageIdOrZero: ParamSpec = { name: 'id', type: 'int' };
const kwJoinType: ParamSpec = { name: 'kwJoinType', type: 'int', default: 1 };
const keywords: ParamSpec = { name: 'keywords', type: 'keywordList' };

/** Scores always go out as <double>, as iskdaemon's did, even when whole. */
function results(list: IskResults): Array<[number, XmlRpcDouble]> {
  return list.map(([id, score]) => [id, new XmlRpcDouble(score)]);
}

function read(params: ParamSpec[], help: string, run: MethodDef['run'], legacy?: MethodDef['legacy']): MethodDef {
  return { params, write: false, help, run, legacy };
}

/**
 * iskdaemon 0.9.2 had queryImgID(dbId, id, numres=12, fast=False), with no sketch
 * parameter: a fourth argument sent as an XML-RPC <boolean> is that fast flag. An
 * <int> there is sketch, as in queryImgBlob.
 */
function queryImgIdLegacy(params: unknown[]): unknown[] {
  return params.length === 4 && typeof params[3] === 'boolean' ? [...params.slice(0, 3), 0, params[3]] : params;
}

function write(params: ParamSpec[], help: string, run: MethodDef['run']): MethodDef {
  return { params, write: true, help, run };
}

/** The iskdaemon XML-RPC API, with its parameter names and defaults. */
export const METHODS: Record<string, MethodDef> = {
  queryImgID: read([dbId, imageId, numres, sketch, fast],
    'queryImgID(dbId, id, numres=12, sketch=0, fast=False): the numres+1 images most similar to stored image id, as [[id, score 0..100], ...], best first (the image itself first).',
    ({ service }, [db, id, n, sk, f]) => results(service.queryImgID(db, id, n, sk, f)), queryImgIdLegacy),
  queryImgBlob: read([dbId, { name: 'data', type: 'blob' }, numres, sketch, fast],
    'queryImgBlob(dbId, data, numres=12, sketch=0, fast=False): the numres+1 stored images most similar to the image bytes given (base64), as [[id, score], ...].',
    async ({ service }, [db, data, n, sk, f]) => results(await service.queryImgBlob(db, data, n, sk, f))),
  queryImgPath: read([dbId, { name: 'path', type: 'string' }, numres, sketch, fast],
    'queryImgPath(dbId, path, numres=12, sketch=0, fast=False): like queryImgBlob for an image file in an allowed directory.',
    async ({ service }, [db, path, n, sk, f]) => results(await service.queryImgPath(db, path, n, sk, f))),
  addImg: write([dbId, imageId, { name: 'filename', type: 'string' }, { name: 'fileIsUrl', type: 'bool', default: false }],
    'addImg(dbId, id, filename, fileIsUrl=False): adds (or replaces) image id from a file in an allowed directory; returns 1. URLs are refused: send the bytes with addImgBlob.',
    ({ service }, [db, id, file, isUrl]) => {
      // Fetching URLs on a client's word would make the server a request forwarder (SSRF).
      if (isUrl) throw new ParamError(`addImg does not fetch URLs (${file}): download the image and send its bytes with addImgBlob(dbId, id, data)`);
      return service.addImg(db, id, file);
    }),
  addImgBlob: write([dbId, imageId, { name: 'data', type: 'blob' }],
    'addImgBlob(dbId, id, data): adds (or replaces) image id from image bytes (base64); returns 1.',
    ({ service }, [db, id, data]) => service.addImgBlob(db, id, data)),
  removeImg: write([dbId, imageId], 'removeImg(dbId, id): removes an image and its keywords; returns 1.',
    ({ service }, [db, id]) => service.removeImg(db, id)),
  resetDb: write([dbId], 'resetDb(dbId): removes every image of a database space; returns 1.',
    ({ service }, [db]) => service.resetDb(db)),
  removeDb: write([dbId], 'removeDb(dbId): removes a database space; returns true.',
    ({ service }, [db]) => service.removeDb(db)),
  createDb: write([dbId], 'createDb(dbId): creates a database space; returns dbId.',
    ({ service }, [db]) => service.createDb(db)),
  getDbImgCount: read([dbId], 'getDbImgCount(dbId): number of images in a database space.',
    ({ service }, [db]) => service.getDbImgCount(db)),
  isImgOnDb: read([dbId, imageId], 'isImgOnDb(dbId, id): whether the image is stored.',
    ({ service }, [db, id]) => service.isImgOnDb(db, id)),
  getImgDimensions: read([dbId, imageId], 'getImgDimensions(dbId, id): [width, height] of the original image.',
    ({ service }, [db, id]) => service.getImgDimensions(db, id)),
  calcImgAvglDiff: read([dbId, { name: 'id1', type: 'id' }, { name: 'id2', type: 'id' }],
    'calcImgAvglDiff(dbId, id1, id2): weighted difference of the two images\' average colours (lower is closer).',
    ({ service }, [db, a, b]) => new XmlRpcDouble(service.calcImgAvglDiff(db, a, b))),
  calcImgDiff: read([dbId, { name: 'id1', type: 'id' }, { name: 'id2', type: 'id' }],
    'calcImgDiff(dbId, id1, id2): imgSeek\'s raw score of id2 against id1 (lower, i.e. more negative, is closer).',
    ({ service }, [db, a, b]) => new XmlRpcDouble(service.calcImgDiff(db, a, b))),
  getImgAvgl: read([dbId, imageId], 'getImgAvgl(dbId, id): the three average luminance values [Y, I, Q].',
    ({ service }, [db, id]) => service.getImgAvgl(db, id).map((v) => new XmlRpcDouble(v))),
  getDbList: read([], 'getDbList(): ids of all database spaces.', ({ service }) => service.getDbList()),
  getDbDetailedList: read([], 'getDbDetailedList(): per database space, its statistics.',
    ({ service }) => detailedList(service)),
  getDbImgIdList: read([dbId], 'getDbImgIdList(dbId): ids of all images in a database space, ascending.',
    ({ service }, [db]) => service.getDbImgIdList(db)),
  isValidDb: read([dbId], 'isValidDb(dbId): whether the database space exists.',
    ({ service }, [db]) => service.isValidDb(db)),
  getGlobalServerStats: read([], 'getGlobalServerStats(): server statistics (engine, uptime, counts).',
    (ctx) => ctx.serverStats()),
  saveDb: write([dbId], 'saveDb(dbId): every write is already durable; writes a save point of all spaces (as saveAllDbs); returns 1.',
    ({ service }) => (service.saveAllDbs(), 1)),
  saveDbAs: write([dbId, { name: 'path', type: 'string' }], 'saveDbAs(dbId, path): exports one database space to a haarseek file in an allowed directory; returns 1.',
    ({ service }, [db, path]) => service.saveDbAs(db, path)),
  loadDb: write([dbId, { name: 'path', type: 'string' }], 'loadDb(dbId, path): replaces a database space with the content of a file written by saveDbAs; returns dbId.',
    ({ service }, [db, path]) => service.loadDb(db, path)),
  saveAllDbs: write([], 'saveAllDbs(): writes a consistent save point of every space beside the database; returns the number of spaces.',
    ({ service }) => service.saveAllDbs()),
  loadAllDbs: write([], 'loadAllDbs(): restores every space from the last saveAllDbs save point; returns the number of spaces.',
    ({ service }) => service.loadAllDbs()),
  saveAllDbsAs: write([{ name: 'path', type: 'string' }], 'saveAllDbsAs(path): writes a save point of every space to a file in an allowed directory; returns the number of spaces.',
    ({ service }, [path]) => service.saveAllDbs(path)),
  loadAllDbsAs: write([{ name: 'path', type: 'string' }], 'loadAllDbsAs(path): restores every space from a file written by saveAllDbsAs; returns the number of spaces.',
    ({ service }, [path]) => service.loadAllDbs(path)),
  addDir: write([dbId, { name: 'path', type: 'string' }, { name: 'recurse', type: 'bool', default: false }, { name: 'fname', type: 'string', default: '' }],
    'addDir(dbId, path, recurse=False, fname=""): adds every image file in an allowed directory whose base name is its numeric id; returns how many were added.',
    ({ service }, [db, path, recurse, fname]) => service.addDir(db, path, recurse, fname)),
  shutdownServer: write([], 'shutdownServer(): stops the writer (the cluster supervisor restarts it); returns 1.',
    (ctx) => (ctx.shutdown(), 1)),
  addKeywordImg: write([dbId, imageId, { name: 'hash', type: 'int' }], 'addKeywordImg(dbId, id, keyword): tags an image with an integer keyword; returns true.',
    ({ service }, [db, id, kw]) => service.addKeywords(db, id, [kw])),
  addKeywordsImg: write([dbId, imageId, { name: 'hashes', type: 'intList' }], 'addKeywordsImg(dbId, id, keywords): tags an image with several keywords (array or comma-separated); returns true.',
    ({ service }, [db, id, kws]) => service.addKeywords(db, id, kws)),
  removeKeywordImg: write([dbId, imageId, { name: 'hash', type: 'int' }], 'removeKeywordImg(dbId, id, keyword): removes one keyword from an image; returns true.',
    ({ service }, [db, id, kw]) => service.removeKeywords(db, id, [kw])),
  removeAllKeywordImg: write([dbId, imageId], 'removeAllKeywordImg(dbId, id): removes every keyword of an image; returns true.',
    ({ service }, [db, id]) => service.removeKeywords(db, id, 'all')),
  getKeywordsImg: read([dbId, imageId], 'getKeywordsImg(dbId, id): the image\'s keywords, ascending.',
    ({ service }, [db, id]) => service.getKeywordsImg(db, id)),
  queryImgIDKeywords: read([dbId, imageIdOrZero, numres, kwJoinType, keywords],
    'queryImgIDKeywords(dbId, id, numres, kwJoinType, keywords): like queryImgID among images having all (kwJoinType 1) or any (0) of the comma-separated keywords; id 0 lists such images with score 0.',
    ({ service }, [db, id, n, join, kws]) => results(service.queryImgIDKeywords(db, id, n, join !== 0, kws, false))),
  queryImgIDFastKeywords: read([dbId, imageIdOrZero, numres, kwJoinType, keywords],
    'queryImgIDFastKeywords(dbId, id, numres, kwJoinType, keywords): queryImgIDKeywords on average colour only.',
    ({ service }, [db, id, n, join, kws]) => results(service.queryImgIDKeywords(db, id, n, join !== 0, kws, true))),
  getAllImgsByKeywords: read([dbId, numres, kwJoinType, keywords],
    'getAllImgsByKeywords(dbId, numres, kwJoinType, keywords): ids of images having all (1) or any (0) of the keywords, at most numres.',
    ({ service }, [db, n, join, kws]) => service.getAllImgsByKeywords(db, n, join !== 0, kws)),
  mostPopularKeywords: read([dbId, { name: 'imgs', type: 'intList' }, { name: 'excludedKwds', type: 'intList' }, { name: 'count', type: 'int' }, { name: 'mode', type: 'int', default: 0 }],
    'mostPopularKeywords(dbId, imgs, excludedKwds, count, mode): the most used keywords among imgs (all images when empty) as [keyword, count, keyword, count, ...].',
    ({ service }, [db, imgs, excluded, count]) => service.mostPopularKeywords(db, imgs, excluded, count)),
  getIskLog: read([{ name: 'window', type: 'int', default: 30 }], 'getIskLog(window=30): the last log lines of this instance.',
    (ctx, [lines]) => ctx.recentLog(lines)),
};

function detailedList(service: ImageService): Record<string, unknown[]> {
  const out: Record<string, unknown[]> = {};
  for (const db of service.getDbList()) {
    const c = service.stats.of(db);
    // iskdaemon's fields: imgCount, queryCount, lastQueryPerMin, queryMinCount,
    // queryMinCur, lastAddPerMin, addMinCount, addMinCur, addCount, addSinceLastSave,
    // lastId, lastSaveTime, fileName.
    out[String(db)] = [service.getDbImgCount(db), c.queries, 0, 0, 0, 0, 0, 0, c.adds, c.addsSinceSave, c.lastId, 0, ''];
  }
  return out;
}
