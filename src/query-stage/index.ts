/**
 * The query stage (issue 17): between decoding and the index, for the verified ranking.
 *
 *   decode-query  the query decoded once (the same 128x128 RGB ingest makes)
 *   rectify       a card photographed on a table: found, its sides fitted, warped back
 *   variants      the query as sent, mirrored, zoomed out, rotated back, rectified
 *   thumbnail     the 32x48 grey thumbnail stored per image at ingest
 *   check         stored thumbnail against a query view: aligned NCC
 *   views         the query views the check looks through
 *   score         what the verified score means
 *   rank          the cascade: plain query, rectified card, all variants; merge; check
 *   raster, warp, geometry   pixel, resampling and plane-geometry helpers
 */
export { decodeQuery, queryFromRgb128, type QueryImage } from './decode-query.ts';
export {
  DEFAULT_CHECK_DEPTH,
  mergeBest,
  queryBestOf,
  rankQuery,
  rankStored,
  rankVerified,
  type MergedResult,
  type MultiQuery,
  type RankOptions,
  type VerifiedRanking,
  type VerifiedResult,
} from './rank.ts';
export { findCard, rectifyCard, type CardDetection } from './rectify.ts';
export { checkEvidence, combinedScore, haarEvidence, reportedScore, CHECK_WEIGHT } from './score.ts';
export { THUMB_BYTES, THUMB_HEIGHT, THUMB_WIDTH, thumbnailOf } from './thumbnail.ts';
export { extraVariants, plainVariant, type QueryVariant, type VariantKind } from './variants.ts';
