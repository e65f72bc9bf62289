/**
 * Synthetic photos for the query-stage tests: a card (any RGB picture) drawn through a
 * known perspective onto a table with a shading gradient and noise, painted pixel by
 * pixel here so the tests do not depend on the code under test to make their inputs.
 */
import sharp from 'sharp';
import { prng } from '../../scripts/lib/prng.ts';
import type { RgbImage } from '../../src/query-stage/raster.ts';

export interface Pt {
  x: number;
  y: number;
}

/** Solves the 8 unknowns of the homography taking the unit square's corners to quad (Gaussian elimination). */
function unitSquareTo(quad: Pt[]): number[] {
  const src = [[0, 0], [1, 0], [1, 1], [0, 1]];
  const m: number[][] = [];
  for (let k = 0; k < 4; k++) {
    const [u, v] = src[k];
    const { x, y } = quad[k];
    m.push([u, v, 1, 0, 0, 0, -u * x, -v * x, x]);
    m.push([0, 0, 0, u, v, 1, -u * y, -v * y, y]);
  }
  for (let c = 0; c < 8; c++) {
    let p = c;
    for (let r = c + 1; r < 8; r++) if (Math.abs(m[r][c]) > Math.abs(m[p][c])) p = r;
    [m[c], m[p]] = [m[p], m[c]];
    for (let r = 0; r < 8; r++) {
      if (r === c) continue;
      const f = m[r][c] / m[c][c];
      for (let k = c; k < 9; k++) m[r][k] -= f * m[c][k];
    }
  }
  return [...m.map((row, i) => row[8] / row[i]), 1];
}

/** Inverts a 3x3 matrix (row-major). */
function invert3(a: number[]): number[] {
  const [a0, a1, a2, a3, a4, a5, a6, a7, a8] = a;
  const det = a0 * (a4 * a8 - a5 * a7) - a1 * (a3 * a8 - a5 * a6) + a2 * (a3 * a7 - a4 * a6);
  return [
    a4 * a8 - a5 * a7, a2 * a7 - a1 * a8, a1 * a5 - a2 * a4,
    a5 * a6 - a3 * a8, a0 * a8 - a2 * a6, a2 * a3 - a0 * a5,
    a3 * a7 - a4 * a6, a1 * a6 - a0 * a7, a0 * a4 - a1 * a3,
  ].map((v) => v / det);
}

export interface TableScene {
  width: number;
  height: number;
  /** Where the card's corners land: top-left, top-right, bottom-right, bottom-left. */
  quad: Pt[];
  card: RgbImage;
  table?: [number, number, number];
  /** Brightness falls linearly by this share from the left edge to the right one. */
  shadow?: number;
  noise?: number;
  seed?: number;
}

/** Paints the scene: 3x3 supersampled, the card's pixels nearest-sampled. */
export function paintCardOnTable(scene: TableScene): RgbImage {
  const { width, height, quad, card } = scene;
  const table = scene.table ?? [92, 110, 84];
  const shadow = scene.shadow ?? 0.25;
  const noise = scene.noise ?? 4;
  const random = prng(scene.seed ?? 7);
  const inv = invert3(unitSquareTo(quad));
  const out = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const acc = [0, 0, 0];
      for (let sy = 0; sy < 3; sy++) {
        for (let sx = 0; sx < 3; sx++) {
          const px = x + (sx + 0.5) / 3;
          const py = y + (sy + 0.5) / 3;
          const w = inv[6] * px + inv[7] * py + inv[8];
          const u = (inv[0] * px + inv[1] * py + inv[2]) / w;
          const v = (inv[3] * px + inv[4] * py + inv[5]) / w;
          if (u >= 0 && u < 1 && v >= 0 && v < 1) {
            const cx = Math.min(card.width - 1, Math.floor(u * card.width));
            const cy = Math.min(card.height - 1, Math.floor(v * card.height));
            const o = (cy * card.width + cx) * 3;
            for (let c = 0; c < 3; c++) acc[c] += card.data[o + c];
          } else {
            for (let c = 0; c < 3; c++) acc[c] += table[c];
          }
        }
      }
      const shade = 1 - (shadow * x) / width;
      for (let c = 0; c < 3; c++) {
        const v = (acc[c] / 9) * shade + (random() - 0.5) * 2 * noise;
        out[(y * width + x) * 3 + c] = v < 0 ? 0 : v > 255 ? 255 : Math.round(v);
      }
    }
  }
  return { data: out, width, height };
}

/** A plain synthetic card: white with a red border frame and a few black and red blocks. */
export function syntheticCard(width = 200, height = 280): RgbImage {
  const data = new Uint8Array(width * height * 3).fill(250);
  const rect = (x0: number, y0: number, x1: number, y1: number, rgb: number[]) => {
    for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) data.set(rgb, (y * width + x) * 3);
  };
  rect(12, 12, width - 12, 18, [200, 30, 30]);
  rect(12, height - 18, width - 12, height - 12, [200, 30, 30]);
  rect(12, 12, 18, height - 12, [200, 30, 30]);
  rect(width - 18, 12, width - 12, height - 12, [200, 30, 30]);
  rect(40, 50, 90, 110, [20, 20, 20]);
  rect(110, 160, 160, 230, [200, 30, 30]);
  rect(60, 180, 80, 240, [20, 20, 20]);
  return { data, width, height };
}

export async function encodeJpeg(image: RgbImage, quality = 90): Promise<Buffer> {
  return sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } }).jpeg({ quality }).toBuffer();
}

export async function decodeRgb(bytes: Uint8Array): Promise<RgbImage> {
  const { data, info } = await sharp(bytes).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height };
}
