import type { Service } from '../service/service.ts';
import type { Signature } from '../signature/types.ts';
import { iqdbQuery, iqdbRawScore, iqdbScale, iqdbScoreFromScale, iqdbSkipsAsDeleted } from '../iqdb/score.ts';

/** At least this many candidates are re-scored, and four times the limit when that is more. */
const MIN_CANDIDATES = 200;

export interface IqdbRanked {
  postId: number;
  score: number;
  signature: Signature;
}

/**
 * iqdb's answer to a query on one space: the `limit` images with the lowest iqdb raw
 * score, best first, with iqdb's float32 score. The index ranks by imgSeek's float64
 * score, which differs from iqdb's for grayscale images, so it only proposes
 * candidates: a generous set (4x the limit, at least 200) is re-scored with iqdb's own
 * functions (src/iqdb/score.ts) and sorted by that.
 *
 * iqdb normalises by the weights of the query's coefficients whose buckets hold an image.
 * When the whole space fits in the candidate set every image is scored and the buckets
 * are known: the answer is iqdb's, bit for bit. In a larger space every bucket a query
 * touches is taken as filled, which is exact whenever each of the query's coefficients
 * occurs in some stored image — true for any space of realistic size.
 */
export function rankLikeIqdb(service: Service, space: number, query: Signature, limit: number): IqdbRanked[] {
  if (!service.search.hasSpace(space)) return [];
  const wanted = Math.min(Math.max(limit * 4, MIN_CANDIDATES), service.search.maxResults + 1);
  const size = service.search.imageCount(space);
  const complete = size <= wanted;
  const ids = complete ? service.search.imageIds(space) : service.search.bySignature(space, query, { limit: wanted, sketch: false, fast: false }).map(([id]) => id);
  const stored = ids.map((postId) => ({ postId, signature: service.search.signature(space, postId) }));
  const byId = new Map(stored.map((s) => [s.postId, s.signature]));
  if (complete) {
    service.stats.of(space).countQuery();
    return iqdbQuery(query, stored, limit).map((m) => ({ ...m, signature: byId.get(m.postId)! }));
  }
  const scale = iqdbScale(query);
  return stored
    .filter((s) => !iqdbSkipsAsDeleted(s.signature))
    .map((s) => ({ ...s, raw: iqdbRawScore(query, s.signature) }))
    .sort((a, b) => a.raw - b.raw || a.postId - b.postId)
    .slice(0, limit)
    .map((s) => ({ postId: s.postId, score: iqdbScoreFromScale(s.raw, scale), signature: s.signature }));
}
