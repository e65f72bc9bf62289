import { readdirSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Engine } from '../engine.ts';
import { FileError, ParamError, ReadOnlyError, UnknownImageError, UnknownSpaceError } from '../errors.ts';
import { decodeToRgb128, type DecodeLimits } from '../image/decode.ts';
import { ImageError } from '../image/errors.ts';
import type { IndexCatalog } from '../index/catalog.ts';
import { avglScore, rawScore, toIskResults } from '../index/scoring.ts';
import type { ImageIndex } from '../index/types.ts';
import type { Signature } from '../signature/types.ts';
import type { StoreQueries } from '../store/queries.ts';
import type { WriterStore } from '../store/writer-store.ts';
import { Limiter } from './limiter.ts';
import { confinePath } from './paths.ts';
import { SpaceStats } from './space-stats.ts';

export interface ServiceOptions {
  engine: Engine;
  catalog: IndexCatalog;
  /** The store to read keywords, sizes and signatures from (the writer's or a reader's). */
  queries: () => StoreQueries;
  /** Present on the writer only. */
  writer?: WriterStore;
  decodeLimits: DecodeLimits;
  maxConcurrentDecodes: number;
  allowedDirs: string[];
  /** Where saveAllDbs writes and loadAllDbs reads the save point. */
  savepointPath: string;
  maxResults: number;
}

export type IskResults = Array<[number, number]>;

/** Files per transaction in addDir. */
const ADD_DIR_BATCH = 64;
const IMAGE_FILE = /\.(jpe?g|png|gif|webp|avif|tiff?|bmp|svg)$/i;

/**
 * What every XML-RPC method does, independent of the wire format. Similarity queries
 * run on the in-memory index; sizes, keywords and stored signatures come from SQLite.
 */
export class ImageService {
  readonly stats = new SpaceStats();
  private readonly decodes: Limiter;

  constructor(private readonly o: ServiceOptions) {
    this.decodes = new Limiter(o.maxConcurrentDecodes);
  }

  get engineName(): string {
    return this.o.engine.name;
  }

  async signatureOf(bytes: Uint8Array): Promise<{ sig: Signature; width: number; height: number }> {
    const decoded = await this.decodes.run(() => decodeToRgb128(bytes, this.o.decodeLimits));
    return { sig: this.o.engine.signatures.signatureFromRgb(decoded.rgb), width: decoded.width, height: decoded.height };
  }

  // --- queries -------------------------------------------------------------------

  queryImgID(dbId: number, imageId: number, numres: number, sketch: boolean, fast: boolean, allowed?: ReadonlySet<number>): IskResults {
    const sig = this.storedImage(dbId, imageId).sig;
    return this.query(dbId, sig, numres, sketch, fast, allowed);
  }

  async queryImgBlob(dbId: number, bytes: Uint8Array, numres: number, sketch: boolean, fast: boolean): Promise<IskResults> {
    this.index(dbId);
    const { sig } = await this.signatureOf(bytes);
    return this.query(dbId, sig, numres, sketch, fast);
  }

  async queryImgPath(dbId: number, path: string, numres: number, sketch: boolean, fast: boolean): Promise<IskResults> {
    return this.queryImgBlob(dbId, await this.readAllowedFile(path), numres, sketch, fast);
  }

  /** iskdaemon asks for numres+1 results: the query image itself usually comes first. */
  private query(dbId: number, sig: Signature, numres: number, sketch: boolean, fast: boolean, allowed?: ReadonlySet<number>): IskResults {
    this.checkNumres(numres);
    const ranked = this.index(dbId).query(sig, { limit: numres + 1, sketch, fast, allowed });
    this.stats.of(dbId).countQuery();
    return toIskResults(ranked);
  }

  queryImgIDKeywords(dbId: number, imageId: number, numres: number, all: boolean, keywords: number[], fast: boolean): IskResults {
    this.index(dbId);
    if (imageId === 0) return this.getAllImgsByKeywords(dbId, numres, all, keywords).map((id) => [id, 0]);
    if (imageId < 0) throw new ParamError(`parameter 2 (id) must be an image id, or 0 for any image with the keywords; got ${imageId}`);
    const matching = keywords.length === 0 ? undefined : new Set(this.o.queries().imagesWithKeywords(dbId, keywords, all, Number.MAX_SAFE_INTEGER));
    if (matching !== undefined && matching.size === 0) return [];
    return this.queryImgID(dbId, imageId, numres, false, fast, matching);
  }

  getAllImgsByKeywords(dbId: number, numres: number, all: boolean, keywords: number[]): number[] {
    this.index(dbId);
    this.checkNumres(numres);
    return this.o.queries().imagesWithKeywords(dbId, keywords, all, numres);
  }

  mostPopularKeywords(dbId: number, imageIds: number[], excluded: number[], count: number): number[] {
    this.index(dbId);
    this.checkNumres(count);
    return this.o.queries().keywordCounts(dbId, imageIds, excluded, count).flat();
  }

  getKeywordsImg(dbId: number, imageId: number): number[] {
    this.requireImage(dbId, imageId);
    return this.o.queries().keywordsOf(dbId, imageId);
  }

  getDbImgCount(dbId: number): number {
    return this.index(dbId).size;
  }

  isImgOnDb(dbId: number, imageId: number): boolean {
    return this.o.catalog.get(dbId)?.has(imageId) ?? false;
  }

  getImgDimensions(dbId: number, imageId: number): [number, number] {
    const image = this.storedImage(dbId, imageId);
    return [image.width, image.height];
  }

  getImgAvgl(dbId: number, imageId: number): number[] {
    const avgl = this.index(dbId).avgl(imageId);
    if (!avgl) throw new UnknownImageError(dbId, imageId);
    return Array.from(avgl);
  }

  calcImgAvglDiff(dbId: number, id1: number, id2: number): number {
    return avglScore(Float64Array.from(this.getImgAvgl(dbId, id1)), Float64Array.from(this.getImgAvgl(dbId, id2)));
  }

  calcImgDiff(dbId: number, id1: number, id2: number): number {
    return rawScore(this.storedImage(dbId, id1).sig, this.storedImage(dbId, id2).sig);
  }

  getDbList(): number[] {
    return this.o.catalog.ids();
  }

  getDbImgIdList(dbId: number): number[] {
    return this.index(dbId).ids();
  }

  isValidDb(dbId: number): boolean {
    return this.o.catalog.get(dbId) !== undefined;
  }

  // --- writes (writer only) ----------------------------------------------------

  createDb(dbId: number): number {
    this.store().createSpace(dbId);
    this.o.catalog.ensure(dbId);
    return dbId;
  }

  resetDb(dbId: number): number {
    this.index(dbId);
    this.store().clearSpace(dbId, false);
    this.o.catalog.load(dbId, []);
    return 1;
  }

  removeDb(dbId: number): boolean {
    this.index(dbId);
    this.store().clearSpace(dbId, true);
    this.o.catalog.drop(dbId);
    this.stats.forget(dbId);
    return true;
  }

  async addImgBlob(dbId: number, imageId: number, bytes: Uint8Array): Promise<number> {
    const store = this.store();
    const { sig, width, height } = await this.signatureOf(bytes);
    store.putImage(dbId, imageId, width, height, sig);
    this.o.catalog.ensure(dbId).add(imageId, sig);
    this.stats.of(dbId).countAdd(imageId);
    return 1;
  }

  async addImg(dbId: number, imageId: number, path: string): Promise<number> {
    this.store();
    return this.addImgBlob(dbId, imageId, await this.readAllowedFile(path));
  }

  /**
   * Adds every image file under path (recursing when asked) whose name contains the
   * optional fname filter; a file's id is its numeric base name. Files without a numeric
   * name, and files that do not decode, are skipped (the count tells how many were added).
   * Decodes run in parallel and are committed in batches: the bulk ingestion path.
   * Returns how many were added.
   */
  async addDir(dbId: number, path: string, recurse: boolean, nameFilter: string): Promise<number> {
    const store = this.store();
    const root = confinePath(path, this.o.allowedDirs, true);
    const files = listImageFiles(root, recurse).filter(({ name, id }) => id !== null && (!nameFilter || name.includes(nameFilter)));
    let added = 0;
    for (let start = 0; start < files.length; start += ADD_DIR_BATCH) {
      const batch = files.slice(start, start + ADD_DIR_BATCH);
      const settled = await Promise.allSettled(batch.map(async ({ file, id }) => ({ imageId: id!, ...(await this.signatureOf(await readFile(file))) })));
      const decoded = [];
      for (const result of settled) {
        if (result.status === 'fulfilled') decoded.push(result.value);
        else if (!(result.reason instanceof ImageError)) throw result.reason;
      }
      added += store.putImages(dbId, decoded);
      const index = this.o.catalog.ensure(dbId);
      for (const image of decoded) {
        index.add(image.imageId, image.sig);
        this.stats.of(dbId).countAdd(image.imageId);
      }
    }
    return added;
  }

  removeImg(dbId: number, imageId: number): number {
    this.requireImage(dbId, imageId);
    this.store().removeImage(dbId, imageId);
    this.o.catalog.get(dbId)?.remove(imageId);
    return 1;
  }

  addKeywords(dbId: number, imageId: number, keywords: number[]): boolean {
    this.requireImage(dbId, imageId);
    this.store().addKeywords(dbId, imageId, keywords);
    return true;
  }

  removeKeywords(dbId: number, imageId: number, keywords: number[] | 'all'): boolean {
    this.requireImage(dbId, imageId);
    this.store().removeKeywords(dbId, imageId, keywords);
    return true;
  }

  saveAllDbs(path = this.o.savepointPath): number {
    this.store().saveAllTo(path === this.o.savepointPath ? path : confinePath(path, this.o.allowedDirs, false));
    return this.o.catalog.ids().length;
  }

  loadAllDbs(path = this.o.savepointPath): number {
    const file = path === this.o.savepointPath ? path : confinePath(path, this.o.allowedDirs, true);
    const store = this.store();
    try {
      statSync(file);
    } catch {
      throw new FileError(`no save point at ${file}: call saveAllDbs first`);
    }
    store.restoreFrom(file, 'all');
    this.o.catalog.reloadFrom(store);
    return this.o.catalog.ids().length;
  }

  saveDbAs(dbId: number, path: string): number {
    this.index(dbId);
    this.store().saveSpaceTo(dbId, confinePath(path, this.o.allowedDirs, false));
    return 1;
  }

  loadDb(dbId: number, path: string): number {
    const store = this.store();
    store.restoreFrom(confinePath(path, this.o.allowedDirs, true), dbId);
    this.o.catalog.reloadFrom(store, new Set([dbId]));
    return dbId;
  }

  // --- helpers -------------------------------------------------------------------

  index(dbId: number): ImageIndex {
    const index = this.o.catalog.get(dbId);
    if (!index) throw new UnknownSpaceError(dbId);
    return index;
  }

  private requireImage(dbId: number, imageId: number): void {
    if (!this.index(dbId).has(imageId)) throw new UnknownImageError(dbId, imageId);
  }

  private storedImage(dbId: number, imageId: number) {
    this.requireImage(dbId, imageId);
    const image = this.o.queries().image(dbId, imageId);
    if (!image) throw new UnknownImageError(dbId, imageId);
    return image;
  }

  private checkNumres(numres: number): void {
    if (numres < 1 || numres > this.o.maxResults) {
      throw new ParamError(`numres must be between 1 and ${this.o.maxResults}, got ${numres}`);
    }
  }

  private store(): WriterStore {
    if (!this.o.writer) throw new ReadOnlyError('this instance is read-only');
    return this.o.writer;
  }

  private async readAllowedFile(path: string): Promise<Uint8Array> {
    const file = confinePath(path, this.o.allowedDirs, true);
    const size = statSync(file).size;
    if (size > this.o.decodeLimits.maxInputBytes) {
      throw new ImageError('too-large', `${path} is ${size} bytes; the limit is ${this.o.decodeLimits.maxInputBytes} bytes`);
    }
    return readFile(file);
  }
}

function listImageFiles(root: string, recurse: boolean): Array<{ file: string; name: string; id: number | null }> {
  const out: Array<{ file: string; name: string; id: number | null }> = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const full = join(dir, entry.name);
      if (entry.isDirectory()) {
        if (recurse) walk(full);
      } else if (entry.isFile() && IMAGE_FILE.test(entry.name)) {
        const id = Number(entry.name.replace(/\.[^.]*$/, ''));
        out.push({ file: full, name: entry.name, id: Number.isSafeInteger(id) && id >= 1 ? id : null });
      }
    }
  };
  if (statSync(root).isDirectory()) walk(root);
  else throw new FileError(`${root} is not a directory`);
  return out;
}
