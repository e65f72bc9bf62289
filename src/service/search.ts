import { ParamError, UnknownImageError } from '../errors.ts';
import { avglScore, rawScore } from '../index/scoring.ts';
import type { RankedResult } from '../index/types.ts';
import type { Signature } from '../signature/types.ts';
import type { StoreQueries } from '../store/queries.ts';
import { rankVerified } from '../query-stage/rank.ts';
import { apiScore } from '../signature/weights.ts';
import type { Ranking, ServiceContext } from './context.ts';
import type { ImageSignature, SignatureMaker } from './signatures.ts';

export interface SearchOptions {
  /** How many results (protocols apply their own rules, e.g. iskdaemon's numres+1). */
  limit: number;
  sketch: boolean;
  fast: boolean;
  /** Only images having all (keywordsAll) or any of these keywords. */
  keywords?: number[];
  keywordsAll?: boolean;
}

/**
 * A stored thumbnail for the check, or none: a reader that cannot read the file right
 * now (locked, answering from its last snapshot) ranks without the check rather than fail.
 */
function thumbnailOrNone(queries: StoreQueries, dbId: number, imageId: number): Uint8Array | undefined {
  try {
    return queries.thumbnail(dbId, imageId);
  } catch {
    return undefined;
  }
}

/** One result in the score its ranking reports (0..100, higher is closer). */
export interface ScoredResult {
  id: number;
  score: number;
}

export interface ImageInfo {
  id: number;
  width: number;
  height: number;
  avgl: [number, number, number];
  keywords: number[];
}

/** Similarity queries (on the in-memory index) and what is stored about images. */
export class SearchService {
  constructor(private readonly ctx: ServiceContext, private readonly signatures: SignatureMaker) {}

  /** Raw imgSeek scores, best (lowest) first. */
  byId(dbId: number, imageId: number, options: SearchOptions): RankedResult[] {
    this.ctx.index(dbId);
    const sig = this.ctx.storedImage(dbId, imageId).sig;
    return this.bySignature(dbId, sig, options);
  }

  async byImage(dbId: number, bytes: Uint8Array, options: SearchOptions): Promise<RankedResult[]> {
    this.ctx.index(dbId);
    const { sig } = await this.signatures.of(bytes);
    return this.bySignature(dbId, sig, options);
  }

  /**
   * An image query in the ranking asked for (the server's default when none): results
   * sorted by the score reported. imgseek: iskdaemon's 0..100 of imgSeek's raw score.
   * verified: src/query-stage/score.ts's 0..100.
   */
  async rankImage(dbId: number, bytes: Uint8Array, options: SearchOptions & { ranking?: Ranking }): Promise<ScoredResult[]> {
    const ranking = options.ranking ?? this.ctx.o.ranking;
    if (ranking === 'imgseek') return (await this.byImage(dbId, bytes, options)).map(([id, raw]) => ({ id, score: apiScore(raw) }));
    this.checkLimit(options.limit);
    const index = this.ctx.index(dbId);
    const allowed = this.allowedFor(dbId, options);
    if (allowed?.size === 0) return [];
    const queries = this.ctx.o.queries();
    const started = performance.now();
    const ranked = await this.signatures.limited(() =>
      rankVerified({
        index,
        signatures: this.ctx.o.engine.signatures,
        limit: options.limit,
        thumbnailOf: (id) => thumbnailOrNone(queries, dbId, id),
        sketch: options.sketch,
        fast: options.fast,
        allowed,
        bytes,
        decodeLimits: this.ctx.o.decodeLimits,
      }),
    );
    this.ctx.o.observe?.('verify', (performance.now() - started) / 1000);
    this.ctx.stats.of(dbId).countQuery();
    return ranked.results.map((r) => ({ id: r.id, score: r.score }));
  }

  bySignature(dbId: number, sig: Signature, options: SearchOptions): RankedResult[] {
    this.checkLimit(options.limit);
    const index = this.ctx.index(dbId);
    const allowed = this.allowedFor(dbId, options);
    if (allowed?.size === 0) return [];
    const ranked = this.ctx.timed('index', () => index.query(sig, { limit: options.limit, sketch: options.sketch, fast: options.fast, allowed }));
    this.ctx.stats.of(dbId).countQuery();
    return ranked;
  }

  /** The signature and size of image bytes (one decode), for doors that rank by their own score (iqdb). */
  async signatureOf(bytes: Uint8Array): Promise<ImageSignature> {
    return this.signatures.of(bytes);
  }

  /** The stored signature of an image. */
  signature(dbId: number, imageId: number): Signature {
    return this.ctx.storedImage(dbId, imageId).sig;
  }

  /** The images a keyword filter leaves (undefined: no filter). */
  private allowedFor(dbId: number, options: SearchOptions): ReadonlySet<number> | undefined {
    if (!options.keywords || options.keywords.length === 0) return undefined;
    return new Set(this.ctx.o.queries().imagesWithKeywords(dbId, options.keywords, options.keywordsAll ?? true, Number.MAX_SAFE_INTEGER));
  }

  /** The default ranking of image queries. */
  get ranking(): Ranking {
    return this.ctx.o.ranking;
  }

  imagesWithKeywords(dbId: number, keywords: number[], all: boolean, limit: number): number[] {
    this.ctx.index(dbId);
    this.checkLimit(limit);
    return this.ctx.o.queries().imagesWithKeywords(dbId, keywords, all, limit);
  }

  /** The most used keywords among imageIds (all images when empty) as [keyword, count] pairs. */
  popularKeywords(dbId: number, imageIds: number[], excluded: number[], count: number): Array<[number, number]> {
    this.ctx.index(dbId);
    this.checkLimit(count);
    return this.ctx.o.queries().keywordCounts(dbId, imageIds, excluded, count);
  }

  keywordsOf(dbId: number, imageId: number): number[] {
    this.ctx.requireImage(dbId, imageId);
    return this.ctx.o.queries().keywordsOf(dbId, imageId);
  }

  imageCount(dbId: number): number {
    return this.ctx.index(dbId).size;
  }

  hasImage(dbId: number, imageId: number): boolean {
    return this.ctx.o.catalog.get(dbId)?.has(imageId) ?? false;
  }

  dimensions(dbId: number, imageId: number): [number, number] {
    const image = this.ctx.storedImage(dbId, imageId);
    return [image.width, image.height];
  }

  avgl(dbId: number, imageId: number): [number, number, number] {
    const avgl = this.ctx.index(dbId).avgl(imageId);
    if (!avgl) throw new UnknownImageError(dbId, imageId);
    return [avgl[0], avgl[1], avgl[2]];
  }

  info(dbId: number, imageId: number): ImageInfo {
    const [width, height] = this.dimensions(dbId, imageId);
    return { id: imageId, width, height, avgl: this.avgl(dbId, imageId), keywords: this.keywordsOf(dbId, imageId) };
  }

  avglDiff(dbId: number, id1: number, id2: number): number {
    return avglScore(Float64Array.from(this.avgl(dbId, id1)), Float64Array.from(this.avgl(dbId, id2)));
  }

  /** imgSeek's raw score of id2 against id1 (lower is closer). */
  diff(dbId: number, id1: number, id2: number): number {
    return rawScore(this.ctx.storedImage(dbId, id1).sig, this.ctx.storedImage(dbId, id2).sig);
  }

  spaceIds(): number[] {
    return this.ctx.o.catalog.ids();
  }

  imageIds(dbId: number): number[] {
    return this.ctx.index(dbId).ids();
  }

  hasSpace(dbId: number): boolean {
    return this.ctx.o.catalog.get(dbId) !== undefined;
  }

  /** The most results a caller may ask for (iskdaemon's numres). */
  get maxResults(): number {
    return this.ctx.o.maxResults;
  }

  /** One over maxResults is allowed: iskdaemon's doors return numres+1 (the image itself first). */
  private checkLimit(limit: number): void {
    if (limit < 1 || limit > this.ctx.o.maxResults + 1) {
      throw new ParamError(`numres must be between 1 and ${this.ctx.o.maxResults}, got ${limit}`);
    }
  }
}
