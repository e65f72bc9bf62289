/**
 * iqdb's similarity score, exactly as danbooru/iqdb src/imgdb.cpp:118-184
 * (IQDB::queryFromSignature) computes it. See README.md here for the derivation.
 *
 * - All arithmetic is float32 (types.h: `using Score = float`): stored avgl values are
 *   kept as float (imgdb.cpp:84-86), the weights are float (imglib.h weights[6][3]).
 * - raw(image) = Σ_c w[0][c]·|avgl_img[c] − avgl_q[c]|  −  Σ w[bin(coef)][c] over the
 *   query's coefficients whose bucket holds the image (photo weights only, no sketch).
 * - Grayscale rule (haar_signature.cpp:100-106): |avgl[1]| + |avgl[2]| < 0.006 means one
 *   colour. A grayscale query scores on Y only (avgl and coefficients, :131, :138); a
 *   grayscale stored image sits in the Y buckets only (:57), so it never matches I/Q.
 * - scale = −Σ w[bin(coef)][c] over the query's coefficients whose bucket is NOT empty
 *   (:143-148), so the score depends on what the database holds, not on 38.70.
 * - score = raw · 100 · (1 / scale) (:170-176): a self-match scores 100, lower is worse,
 *   and the score can be negative.
 */
import { CHANNELS, COEFS_PER_CHANNEL, type Signature } from '../signature/types.ts';
import { BIN_OF_INDEX, WEIGHTS } from '../signature/weights.ts';

const f32 = Math.fround;
/** iqdb uses the photo table only (imglib.h); WEIGHTS holds the float32 values. */
const W = WEIGHTS[0];
const GRAYSCALE_LIMIT = 6.0 / 1000;

/** Does iqdb treat this signature as grayscale (one colour channel)? */
export function iqdbIsGrayscale(avgl: ArrayLike<number>): boolean {
  return Math.abs(avgl[1]) + Math.abs(avgl[2]) < GRAYSCALE_LIMIT;
}

/** How many channels iqdb indexes and scores for this signature: 1 or 3. */
export function iqdbColorCount(sig: Signature): 1 | 3 {
  return iqdbIsGrayscale(sig.avgl) ? 1 : 3;
}

/** Is iqdb's bucket for (channel, signed coefficient) non-empty in the database queried? */
export type BucketProbe = (channel: number, coef: number) => boolean;

/** Every bucket the query touches holds at least one image (e.g. the query is stored). */
export const ALL_BUCKETS_FILLED: BucketProbe = () => true;

function weightOf(coef: number, channel: number): number {
  return W[BIN_OF_INDEX[Math.abs(coef)] * CHANNELS + channel];
}

/**
 * iqdb's normalisation for one query: minus the float32 sum of the weights of the
 * query's coefficients whose bucket is not empty (0 when none is). `filled` says which
 * buckets hold images; by default all do.
 */
export function iqdbScale(query: Signature, filled: BucketProbe = ALL_BUCKETS_FILLED): number {
  let scale = 0;
  const colors = iqdbColorCount(query);
  for (let c = 0; c < colors; c++) {
    for (let b = 0; b < COEFS_PER_CHANNEL; b++) {
      const coef = query.coefs[c * COEFS_PER_CHANNEL + b];
      if (filled(c, coef)) scale = f32(scale - weightOf(coef, c));
    }
  }
  return scale;
}

/** iqdb's score from a raw score and the query's scale (from iqdbScale). */
export function iqdbScoreFromScale(raw: number, scale: number): number {
  const factor = scale !== 0 ? f32(1 / scale) : 0;
  return f32(f32(f32(raw) * 100) * factor);
}

/**
 * iqdb's score for a raw score of the given query: raw · 100 / scale. Exact (bit for bit)
 * when `raw` is iqdbRawScore's; haarseek's float64 imgSeek raw score of a colour query
 * against a colour image gives the same number to ~1e-5.
 */
export function iqdbScore(raw: number, query: Signature, filled: BucketProbe = ALL_BUCKETS_FILLED): number {
  return iqdbScoreFromScale(raw, iqdbScale(query, filled));
}

/** The same for many raw scores of one query (the scale is computed once). */
export function iqdbScores(raws: ArrayLike<number>, query: Signature, filled: BucketProbe = ALL_BUCKETS_FILLED): Float64Array {
  const scale = iqdbScale(query, filled);
  return Float64Array.from(raws, (raw) => iqdbScoreFromScale(raw, scale));
}

/** iqdb's float32 raw score of one stored signature for a query (lower is more similar). */
export function iqdbRawScore(query: Signature, stored: Signature): number {
  const colors = iqdbColorCount(query);
  let score = 0;
  for (let c = 0; c < colors; c++) {
    score = f32(score + f32(W[c] * Math.abs(f32(f32(stored.avgl[c]) - f32(query.avgl[c])))));
  }
  const storedColors = iqdbColorCount(stored);
  for (let c = 0; c < Math.min(colors, storedColors); c++) {
    const own = stored.coefs.subarray(c * COEFS_PER_CHANNEL, (c + 1) * COEFS_PER_CHANNEL);
    for (let b = 0; b < COEFS_PER_CHANNEL; b++) {
      const coef = query.coefs[c * COEFS_PER_CHANNEL + b];
      if (own.includes(coef)) score = f32(score - weightOf(coef, c));
    }
  }
  return score;
}

/**
 * iqdb treats an image whose float32 Y average is exactly 0 as deleted (imgdb.cpp:105-107
 * isDeleted, :159, :164): a pure black image is stored but never returned.
 */
export function iqdbSkipsAsDeleted(stored: Signature): boolean {
  return f32(stored.avgl[0]) === 0;
}

/** Which (channel, coefficient) buckets a set of stored signatures fills, as iqdb indexes them. */
export function iqdbBuckets(stored: Iterable<Signature>): BucketProbe {
  const keys = new Set<number>();
  for (const sig of stored) {
    const colors = iqdbColorCount(sig);
    for (let c = 0; c < colors; c++) {
      for (let b = 0; b < COEFS_PER_CHANNEL; b++) keys.add(c * 65536 + sig.coefs[c * COEFS_PER_CHANNEL + b] + 32768);
    }
  }
  return (channel, coef) => keys.has(channel * 65536 + coef + 32768);
}

export interface IqdbMatch {
  postId: number;
  score: number;
}

/**
 * A reference of iqdb's whole query over a small list of stored images: the `limit`
 * lowest raw scores, best first, with iqdb's scores. Ties (equal raw scores) keep the
 * list's order; iqdb's std::priority_queue may order them differently. Meant for tests
 * and for checking an index against iqdb, not for serving (it scores every image).
 */
export function iqdbQuery(
  query: Signature,
  stored: ReadonlyArray<{ postId: number; signature: Signature }>,
  limit: number,
): IqdbMatch[] {
  const scale = iqdbScale(
    query,
    iqdbBuckets(stored.map((s) => s.signature)),
  );
  return stored
    .filter((s) => !iqdbSkipsAsDeleted(s.signature))
    .map((s, order) => ({ postId: s.postId, raw: iqdbRawScore(query, s.signature), order }))
    .sort((a, b) => a.raw - b.raw || a.order - b.order)
    .slice(0, Math.max(0, limit))
    .map(({ postId, raw }) => ({ postId, score: iqdbScoreFromScale(raw, scale) }));
}
