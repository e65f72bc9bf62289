import { IMAGE_SIDE, PIXELS } from './types.ts';

/** imgSeek's weight tables, [bin][Y, I, Q], as the float32 values its C++ uses. */
const PHOTO = [
  [5.0, 19.21, 34.37],
  [0.83, 1.26, 0.36],
  [1.01, 0.44, 0.45],
  [0.52, 0.53, 0.14],
  [0.47, 0.28, 0.18],
  [0.3, 0.14, 0.27],
];
const SKETCH = [
  [4.04, 15.14, 22.62],
  [0.78, 0.92, 0.4],
  [0.46, 0.53, 0.63],
  [0.42, 0.26, 0.25],
  [0.41, 0.14, 0.15],
  [0.32, 0.07, 0.38],
];

export const BINS = 6;

function flatten(table: number[][]): Float64Array {
  return Float64Array.from(table.flat(), (w) => Math.fround(w));
}

/** weights[sketch][bin * 3 + channel], float32 values widened to float64. */
export const WEIGHTS: readonly [Float64Array, Float64Array] = [flatten(PHOTO), flatten(SKETCH)];

/** bin of coefficient index i: min(max(row, col), 5). */
export const BIN_OF_INDEX: Uint8Array = (() => {
  const bins = new Uint8Array(PIXELS);
  for (let i = 0; i < PIXELS; i++) {
    bins[i] = Math.min(Math.max(Math.floor(i / IMAGE_SIDE), i % IMAGE_SIDE), BINS - 1);
  }
  return bins;
})();

/**
 * imgSeek's API score: raw scores are negative for similar images; -38.70 (about the
 * self-match of a typical photo) maps to 100.
 */
export function apiScore(raw: number): number {
  const score = (-100 * raw) / 38.7;
  return score < 0 ? 0 : score > 100 ? 100 : score;
}
