import fc from 'fast-check';
import { rng } from '../helpers/index-behaviour.ts';

const SIDE = 128;

export type ImageKind = 'noise' | 'gradient' | 'radial' | 'blocks' | 'flat' | 'stripes' | 'lowres' | 'mixed';
export interface ImageSpec {
  kind: ImageKind;
  seed: number;
}

/**
 * A deterministic 128x128 RGB image of the given kind. Beside noise, the smooth and
 * blocky kinds produce many zero and equal-magnitude coefficients: the cases where a
 * tie at the 40th place decides the signature.
 */
export function synthesizeImage({ kind, seed }: ImageSpec): Uint8Array {
  const r = rng(seed);
  const out = new Uint8Array(SIDE * SIDE * 3);
  const colour = () => [Math.floor(r() * 256), Math.floor(r() * 256), Math.floor(r() * 256)];
  const put = (x: number, y: number, c: number, v: number) => {
    out[(y * SIDE + x) * 3 + c] = v < 0 ? 0 : v > 255 ? 255 : Math.round(v);
  };
  switch (kind) {
    case 'noise':
      for (let i = 0; i < out.length; i++) out[i] = Math.floor(r() * 256);
      break;
    case 'flat': {
      const c = colour();
      for (let y = 0; y < SIDE; y++) for (let x = 0; x < SIDE; x++) for (let k = 0; k < 3; k++) put(x, y, k, c[k]);
      break;
    }
    case 'gradient': {
      const a = colour(), b = colour();
      const angle = r() * Math.PI * 2;
      const dx = Math.cos(angle), dy = Math.sin(angle);
      for (let y = 0; y < SIDE; y++) {
        for (let x = 0; x < SIDE; x++) {
          const t = Math.min(1, Math.max(0, 0.5 + ((x - 64) * dx + (y - 64) * dy) / 128));
          for (let k = 0; k < 3; k++) put(x, y, k, a[k] + (b[k] - a[k]) * t);
        }
      }
      break;
    }
    case 'radial': {
      const a = colour(), b = colour();
      const cx = r() * SIDE, cy = r() * SIDE, radius = 20 + r() * 100;
      for (let y = 0; y < SIDE; y++) {
        for (let x = 0; x < SIDE; x++) {
          const t = Math.min(1, Math.hypot(x - cx, y - cy) / radius);
          for (let k = 0; k < 3; k++) put(x, y, k, a[k] + (b[k] - a[k]) * t);
        }
      }
      break;
    }
    case 'blocks': {
      const bg = colour();
      for (let y = 0; y < SIDE; y++) for (let x = 0; x < SIDE; x++) for (let k = 0; k < 3; k++) put(x, y, k, bg[k]);
      const n = 1 + Math.floor(r() * 12);
      for (let b = 0; b < n; b++) {
        const c = colour();
        // Power-of-two aligned blocks sometimes, so whole Haar levels cancel exactly.
        const aligned = r() < 0.5;
        const size = aligned ? 1 << (2 + Math.floor(r() * 5)) : 1 + Math.floor(r() * 80);
        const x0 = aligned ? Math.floor((r() * SIDE) / size) * size : Math.floor(r() * SIDE);
        const y0 = aligned ? Math.floor((r() * SIDE) / size) * size : Math.floor(r() * SIDE);
        for (let y = y0; y < Math.min(SIDE, y0 + size); y++) for (let x = x0; x < Math.min(SIDE, x0 + size); x++) for (let k = 0; k < 3; k++) put(x, y, k, c[k]);
      }
      break;
    }
    case 'stripes': {
      const a = colour(), b = colour();
      const period = 1 << Math.floor(r() * 7);
      const vertical = r() < 0.5, checker = r() < 0.3;
      for (let y = 0; y < SIDE; y++) {
        for (let x = 0; x < SIDE; x++) {
          const on = checker ? (Math.floor(x / period) + Math.floor(y / period)) % 2 : Math.floor((vertical ? x : y) / period) % 2;
          const c = on ? a : b;
          for (let k = 0; k < 3; k++) put(x, y, k, c[k]);
        }
      }
      break;
    }
    case 'lowres': {
      const cells = 1 << (1 + Math.floor(r() * 4));
      const grid = Array.from({ length: cells * cells }, colour);
      const step = SIDE / cells;
      for (let y = 0; y < SIDE; y++) for (let x = 0; x < SIDE; x++) for (let k = 0; k < 3; k++) put(x, y, k, grid[Math.floor(y / step) * cells + Math.floor(x / step)][k]);
      break;
    }
    case 'mixed': {
      const a = colour(), b = colour();
      const amp = r() * 40;
      for (let y = 0; y < SIDE; y++) {
        for (let x = 0; x < SIDE; x++) {
          const t = (x + y) / (2 * SIDE);
          for (let k = 0; k < 3; k++) put(x, y, k, a[k] + (b[k] - a[k]) * t + (r() - 0.5) * amp);
        }
      }
      break;
    }
  }
  return out;
}

export const imageKinds: ImageKind[] = ['noise', 'gradient', 'radial', 'blocks', 'flat', 'stripes', 'lowres', 'mixed'];

export const imageSpec: fc.Arbitrary<ImageSpec> = fc.record({
  kind: fc.constantFrom(...imageKinds),
  seed: fc.integer({ min: 0, max: 0x7fffffff }),
});
