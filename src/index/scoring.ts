import { CHANNELS, COEFS_PER_CHANNEL, type Signature } from '../signature/types.ts';
import { BIN_OF_INDEX, WEIGHTS, apiScore } from '../signature/weights.ts';
import type { RankedResult } from './types.ts';

/** weight[bin0]·|avgl difference| summed over channels: the "fast" part of a score. */
export function avglScore(query: Float64Array, target: Float64Array, sketch = false): number {
  const w = WEIGHTS[sketch ? 1 : 0];
  let score = 0;
  for (let c = 0; c < CHANNELS; c++) score += w[c] * Math.abs(target[c] - query[c]);
  return score;
}

/** imgSeek's raw score of one stored signature for one query, without an index. */
export function rawScore(query: Signature, target: Signature, sketch = false, fast = false): number {
  let score = avglScore(query.avgl, target.avgl, sketch);
  if (fast) return score;
  const w = WEIGHTS[sketch ? 1 : 0];
  for (let c = 0; c < CHANNELS; c++) {
    const base = c * COEFS_PER_CHANNEL;
    const own = new Set(target.coefs.subarray(base, base + COEFS_PER_CHANNEL));
    for (let k = 0; k < COEFS_PER_CHANNEL; k++) {
      const coef = query.coefs[base + k];
      if (own.has(coef)) score -= w[BIN_OF_INDEX[Math.abs(coef)] * CHANNELS + c];
    }
  }
  return score;
}

/** iskdaemon's result shape: [[id, score 0..100], ...], best first. */
export function toIskResults(ranked: RankedResult[]): Array<[number, number]> {
  return ranked.map(([id, raw]) => [id, apiScore(raw)]);
}
