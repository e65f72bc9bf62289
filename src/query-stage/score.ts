/**
 * The verified ranking's score. Two pieces of evidence per candidate:
 *
 *  - H, the imgSeek score of the best query variant: -100·raw/38.7 (imgSeek's API score
 *    before it is clamped to 0..100);
 *  - c, the thumbnail check: NCC at the best alignment, turned into evidence
 *    g(c) = -ln(1 + ε - c). g rises steeply as c nears 1, where look-alikes (two cards of
 *    one deck) differ: c 0.5 -> 0.7, 0.9 -> 2.3, 0.95 -> 2.9, 0.99 -> 4.2, 1 -> 5.3.
 *
 * Combined: S = H + K·g(c). The list is sorted by S; the score reported (0..100) is
 * 100·σ((S - MID) / WIDTH), monotone in S, so the list is sorted by what it reports.
 * On the dev sets a candidate at 50 is as likely as not the same picture, one at 90+
 * almost surely is; elsewhere read it as a confidence, not a calibrated probability.
 *
 * Candidates whose check did not run are not penalised: in the checked window (no
 * thumbnail stored, or a flat image the NCC cannot judge) they get the best g of the
 * candidates checked for the same query, as if their check had passed as well as the
 * best one; beyond the window they get the worst g, which keeps them below every
 * checked candidate and in imgSeek order among themselves. With no check at all, S = H.
 */

/** Weight of the check against imgSeek's score (one unit of g is worth 40 score points). */
export const CHECK_WEIGHT = 40;
/** ε of g(c): caps g at -ln ε ≈ 5.3 for a perfect correlation. */
const EPSILON = 0.005;
/** Centre and width of the logistic that maps S to the reported 0..100. */
const MID = 200;
const WIDTH = 20;

/** H: imgSeek's API score of a raw score, without the clamp to 0..100. */
export function haarEvidence(raw: number): number {
  return (-100 * raw) / 38.7;
}

/** g(c): the check's evidence for an NCC value c in -1..1. */
export function checkEvidence(ncc: number): number {
  return -Math.log(Math.max(0, 1 - ncc) + EPSILON);
}

/** S from its two parts (g already chosen for unchecked candidates). */
export function combinedScore(raw: number, evidence: number): number {
  return haarEvidence(raw) + CHECK_WEIGHT * evidence;
}

/** The 0..100 score reported for S. */
export function reportedScore(s: number): number {
  return 100 / (1 + Math.exp(-(s - MID) / WIDTH));
}
