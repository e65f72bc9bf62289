/**
 * The verified ranking: query variants searched in the index, the best raw score per
 * image kept, then the thumbnail check re-ranks the best candidates (see score.ts for
 * what the score means).
 *
 * A cascade keeps the cost near one plain query for most queries:
 *  1. the plain query alone (exactly the imgSeek ranking's query); its first
 *     PLAIN_WINDOW candidates are checked through the plain view. The ranking stops
 *     when the best is clearly verified: a score of at least ACCEPT_SCORE, an NCC of at
 *     least ACCEPT_NCC once the worst-fitting tenth of its pixels is left out, and S
 *     ahead of the other checked candidates' by ACCEPT_MARGIN.
 *  2. a card photographed on a table (findCard): its rectified variants are searched,
 *     merged in, and the first `checkDepth` candidates checked through every view
 *     (plain, mirrored, rectified); same stopping rule.
 *  3. the other variants (mirrored, zoomed out, rotated back both ways) are searched,
 *     merged in and the window checked again (checks already made are reused).
 * With `cascade: false` every step runs. Merging keeps each image's best raw score over
 * all the variants searched so far.
 */
import { DEFAULT_DECODE_LIMITS, type DecodeLimits } from '../image/decode.ts';
import type { ImageIndex, QueryOptions, RankedResult } from '../index/types.ts';
import type { Signature, SignatureEngine } from '../signature/types.ts';
import { checkThumb, checkThumbnail, quickCheck, trimmedNccAt, type CheckThumb } from './check.ts';
import { decodeQuery, queryFromThumbnail, type QueryImage } from './decode-query.ts';
import { findCard } from './rectify.ts';
import { checkEvidence, combinedScore, reportedScore } from './score.ts';
import { thumbnailImage } from './thumbnail.ts';
import { cardVariants, geometricVariants, plainVariant, type QueryVariant, type VariantKind } from './variants.ts';
import { QueryViews, type ViewKind } from './views.ts';
import type { Quad } from './warp.ts';

/** Candidates checked after the plain query (stage 1). */
const PLAIN_WINDOW = 3;
/** Stage 1 stops when the best candidate's trimmed NCC reaches this... */
const ACCEPT_NCC = 0.9;
/**
 * ...its reported score reaches this (a low bar: it keeps the cascade from stopping on a
 * look-alike card whose trimmed NCC passes while its plain NCC and score do not)...
 */
const ACCEPT_SCORE = 10;
/** ...and its S leads the other checked candidates' by this much. */
const ACCEPT_MARGIN = 60;
/** Candidates checked after the variants (stage 2), unless the caller says otherwise. */
export const DEFAULT_CHECK_DEPTH = 15;

/**
 * Searches several signatures and keeps, per image, the best (lowest) raw score and
 * which signature gave it. An engine that can do this in one pass over the index
 * provides it; `queryBestOf` is the reference semantics.
 */
export type MultiQuery = (sigs: readonly Signature[], options: QueryOptions) => MergedResult[];

/** [image id, best raw score, index of the signature that gave it (the first on a tie)]. */
export type MergedResult = [id: number, raw: number, variant: number];

export interface RankOptions {
  index: ImageIndex;
  signatures: SignatureEngine;
  /** Results wanted. */
  limit: number;
  /** The stored thumbnail of an image, or undefined when it has none (imported databases). */
  thumbnailOf: (id: number) => Uint8Array | undefined;
  sketch?: boolean;
  fast?: boolean;
  allowed?: ReadonlySet<number>;
  /** Candidates the check re-ranks after the variants (default DEFAULT_CHECK_DEPTH). */
  checkDepth?: number;
  /** Stop after the plain query when it is clearly verified (default true). */
  cascade?: boolean;
  /** One-pass search of several signatures (default: queryBestOf on `index`). */
  multiQuery?: MultiQuery;
}

export interface VerifiedResult {
  id: number;
  /** The reported score, 0..100, what the list is sorted by (see score.ts). */
  score: number;
  /** S, the combined evidence the reported score is a monotone function of. */
  combined: number;
  /** The best imgSeek raw score over the variants searched. */
  raw: number;
  /** The variant that gave `raw`. */
  variant: VariantKind;
  /** NCC of the thumbnail check, when it ran and could tell. */
  check?: number;
  /** The query view the check matched best. */
  view?: ViewKind;
}

export interface VerifiedRanking {
  results: VerifiedResult[];
  /** Where the cascade stopped: after the plain query, after the rectified card, or after all variants. */
  stage: 'plain' | 'card' | 'variants';
  /** The variants searched. */
  variants: VariantKind[];
  /** The card's corners in the query's 128x128 pixels, when one was found. */
  card?: Quad;
}

/** Decodes the query once and ranks it. Throws ImageError for bytes that are not an image. */
export async function rankVerified(options: RankOptions & { bytes: Uint8Array; decodeLimits?: DecodeLimits }): Promise<VerifiedRanking> {
  const query = await decodeQuery(options.bytes, options.decodeLimits ?? DEFAULT_DECODE_LIMITS);
  return await rankQuery(query, options);
}

/** The reference MultiQuery: one index query per signature, merged. */
export function queryBestOf(index: ImageIndex, sigs: readonly Signature[], options: QueryOptions): MergedResult[] {
  return mergeBest(sigs.map((sig) => index.query(sig, options)), options.limit);
}

/**
 * Best raw per id over several result lists (each best first), sorted by raw then id,
 * cut to `limit`. Merging each list's top `limit` gives exactly the top `limit` of the
 * best-per-id ranking: an id missing from a list is beaten there by `limit` others.
 */
export function mergeBest(lists: readonly RankedResult[][], limit: number): MergedResult[] {
  const best = new Map<number, MergedResult>();
  lists.forEach((list, variant) => {
    for (const [id, raw] of list) {
      const seen = best.get(id);
      if (!seen || raw < seen[1]) best.set(id, [id, raw, variant]);
    }
  });
  return [...best.values()].sort((a, b) => a[1] - b[1] || a[0] - b[0]).slice(0, limit);
}

/**
 * Ranks an already decoded query. Between its steps it yields to the event loop, so a
 * query that needs every variant (a few index walks and some milliseconds of pixel
 * work) never holds the process for long at a time.
 */
export async function rankQuery(query: QueryImage, options: RankOptions): Promise<VerifiedRanking> {
  const limit = Math.max(0, Math.floor(options.limit));
  const depth = Math.max(1, options.checkDepth ?? DEFAULT_CHECK_DEPTH);
  const { index, signatures } = options;
  if (limit === 0 || index.size === 0) return { results: [], stage: 'plain', variants: ['plain'] };
  const qopts: QueryOptions = { limit: Math.max(limit, depth), sketch: options.sketch, fast: options.fast, allowed: options.allowed };
  const cascade = options.cascade !== false;
  const checker = new Checker(query, options.thumbnailOf);

  // 1. The query as sent.
  const plain = plainVariant(query);
  const kinds: VariantKind[] = [plain.kind];
  let merged: MergedResult[] = index.query(signatures.signatureFromRgb(plain.rgb), qopts).map(([id, raw]) => [id, raw, 0]);
  if (cascade) {
    const window = Math.min(PLAIN_WINDOW, depth);
    const ranked = verify(merged, kinds, window, checker, false);
    if (clearlyVerified(ranked, window, checker)) return { results: ranked.slice(0, limit), stage: 'plain', variants: [...kinds] };
  }

  /** Searches more variants and merges their results into `merged` (variant numbers follow `kinds`). */
  const search = async (variants: QueryVariant[]): Promise<void> => {
    if (variants.length === 0) return;
    const first = kinds.length;
    kinds.push(...variants.map((v) => v.kind));
    const sigs = variants.map((v) => signatures.signatureFromRgb(v.rgb));
    let found: MergedResult[];
    if (options.multiQuery) {
      await yieldToEventLoop();
      found = options.multiQuery(sigs, qopts);
    } else {
      const lists: RankedResult[][] = [];
      for (const sig of sigs) {
        await yieldToEventLoop();
        lists.push(index.query(sig, qopts));
      }
      found = mergeBest(lists, qopts.limit);
    }
    merged = mergeMerged(merged, found.map(([id, raw, v]): MergedResult => [id, raw, first + v]), qopts.limit);
    await yieldToEventLoop();
  };

  // 2. A photographed card: its rectified variants first.
  await yieldToEventLoop();
  const card = findCard(query.rgb, query.aspect);
  checker.views.setCard(card);
  if (card) {
    await search(cardVariants(query, card));
    if (cascade) {
      const ranked = verify(merged, kinds, depth, checker, true);
      if (clearlyVerified(ranked, depth, checker)) return { results: ranked.slice(0, limit), stage: 'card', variants: [...kinds], card: card.quad };
    }
  }

  // 3. Everything else: mirrored, zoomed out, rotated back.
  await search(geometricVariants(query));
  const ranked = verify(merged, kinds, depth, checker, true);
  return { results: ranked.slice(0, limit), stage: 'variants', variants: [...kinds], card: card?.quad };
}

/**
 * The verified ranking for a query by stored image (queryImgID): no pixels, so no
 * variants; the stored signature's results, re-ranked by checking the candidates'
 * thumbnails against the image's own (drawn as its view). Without a stored thumbnail
 * every check is skipped and this is the imgSeek order with verified scores.
 */
export function rankStored(options: Omit<RankOptions, 'cascade' | 'multiQuery'> & { signature: Signature; thumbnail: Uint8Array | undefined; aspect: number }): VerifiedRanking {
  const limit = Math.max(0, Math.floor(options.limit));
  const depth = Math.max(1, options.checkDepth ?? DEFAULT_CHECK_DEPTH);
  if (limit === 0 || options.index.size === 0) return { results: [], stage: 'plain', variants: ['plain'] };
  const qopts: QueryOptions = { limit: Math.max(limit, depth), sketch: options.sketch, fast: options.fast, allowed: options.allowed };
  const results: MergedResult[] = options.index.query(options.signature, qopts).map(([id, raw]) => [id, raw, 0]);
  const own = options.thumbnail ? thumbnailImage(options.thumbnail) : undefined;
  const checker = own ? new Checker(queryFromThumbnail(own, options.aspect), options.thumbnailOf) : undefined;
  const ranked = checker ? verify(results, ['plain'], depth, checker, false) : verify(results, ['plain'], 0, undefined, false);
  return { results: ranked.slice(0, limit), stage: 'plain', variants: ['plain'] };
}

/** mergeBest for two merged lists; on equal raw scores the first list's entry stays. */
export function mergeMerged(a: readonly MergedResult[], b: readonly MergedResult[], limit: number): MergedResult[] {
  const best = new Map<number, MergedResult>();
  for (const r of a) best.set(r[0], r);
  for (const r of b) {
    const seen = best.get(r[0]);
    if (!seen || r[1] < seen[1]) best.set(r[0], r);
  }
  return [...best.values()].sort((x, y) => x[1] - y[1] || x[0] - y[0]).slice(0, limit);
}

function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Checks the first `window` candidates and sorts all of them by S (see score.ts). */
function verify(candidates: MergedResult[], kinds: VariantKind[], window: number, checker: Checker | undefined, allViews: boolean): VerifiedResult[] {
  const checks = checker ? candidates.slice(0, window).map(([id]) => checker.check(id, allViews)) : [];
  let gMax = Number.NEGATIVE_INFINITY;
  let gMin = Number.POSITIVE_INFINITY;
  for (const c of checks) {
    if (!c) continue;
    const g = checkEvidence(c.ncc);
    gMax = Math.max(gMax, g);
    gMin = Math.min(gMin, g);
  }
  if (gMax === Number.NEGATIVE_INFINITY) gMax = gMin = 0;
  const out = candidates.map(([id, raw, variant], k): VerifiedResult => {
    const c = k < window ? checks[k] : undefined;
    const g = c ? checkEvidence(c.ncc) : k < window ? gMax : gMin;
    const combined = combinedScore(raw, g);
    const result: VerifiedResult = { id, score: reportedScore(combined), combined, raw, variant: kinds[variant] };
    if (c) {
      result.check = c.ncc;
      result.view = c.view;
    }
    return result;
  });
  return out.sort((a, b) => b.combined - a.combined || a.id - b.id);
}

/** Stage 1's stopping rule: the best is verified and clearly ahead of the other checked ones. */
function clearlyVerified(ranked: VerifiedResult[], window: number, checker: Checker): boolean {
  const top = ranked[0];
  if (!top || top.check === undefined || top.score < ACCEPT_SCORE) return false;
  const trimmed = checker.trimmed(top.id, top.view ?? 'plain');
  if (!(trimmed >= ACCEPT_NCC)) return false;
  const second = ranked.slice(1, window).reduce((m, r) => Math.max(m, r.combined), Number.NEGATIVE_INFINITY);
  return top.combined - second >= ACCEPT_MARGIN;
}

interface Check {
  ncc: number;
  view: ViewKind;
  alignment: Parameters<typeof trimmedNccAt>[3];
}

/** Runs and remembers the checks of one query: thumbnails fetched once, views drawn once. */
class Checker {
  readonly views: QueryViews;
  private readonly thumbs = new Map<number, CheckThumb | null>();
  private readonly full = new Map<string, Check | null>();

  constructor(query: QueryImage, private readonly thumbnailOf: (id: number) => Uint8Array | undefined) {
    this.views = new QueryViews(query);
  }

  /**
   * The check of one candidate: a quick look through every view, the full aligned check
   * through the one that looked best. Undefined when it cannot run or cannot tell.
   */
  check(id: number, allViews: boolean): Check | undefined {
    const thumb = this.thumb(id);
    if (!thumb) return undefined;
    const kinds = this.views.kinds(allViews);
    let kind = kinds[0];
    if (kinds.length > 1) {
      let best = Number.NEGATIVE_INFINITY;
      for (const k of kinds) {
        const q = quickCheck(this.views.view(k), thumb);
        if (q > best) {
          best = q;
          kind = k;
        }
      }
      if (best === Number.NEGATIVE_INFINITY) return undefined;
    }
    return this.fullCheck(id, kind, thumb);
  }

  /** The trimmed NCC of a candidate already checked through a view, at its alignment. */
  trimmed(id: number, kind: ViewKind): number {
    const c = this.full.get(`${id}:${kind}`);
    const thumb = this.thumb(id);
    if (!c || !thumb) return Number.NaN;
    const v = this.views.view(kind);
    return trimmedNccAt(v.grey, v.aspect, thumb.full, c.alignment);
  }

  private fullCheck(id: number, kind: ViewKind, thumb: CheckThumb): Check | undefined {
    const key = `${id}:${kind}`;
    const known = this.full.get(key);
    if (known !== undefined) return known ?? undefined;
    const r = checkThumbnail(this.views.view(kind), thumb);
    const c = r.ncc === r.ncc ? { ncc: r.ncc, view: kind, alignment: r.alignment } : null;
    this.full.set(key, c);
    return c ?? undefined;
  }

  private thumb(id: number): CheckThumb | undefined {
    let t = this.thumbs.get(id);
    if (t === undefined) {
      const bytes = this.thumbnailOf(id);
      const img = bytes ? thumbnailImage(bytes) : undefined;
      t = img ? checkThumb(img) : null;
      this.thumbs.set(id, t);
    }
    return t ?? undefined;
  }
}
