/**
 * Geometric resampling: a projective map (homography) from an output image's unit
 * square to source pixel coordinates, and the antialiased sampler that draws an output
 * image through it. Zooming out, rotating back and rectifying a photographed card are
 * all one call to warpRgb with a different map.
 */
import { clampByte, type GreyImage, type RgbImage } from './raster.ts';

/**
 * Row-major 3x3 matrix H taking output coordinates (u, v) in [0,1]² (u across, v down)
 * to source pixel coordinates: x = (h0·u + h1·v + h2) / w, y = (h3·u + h4·v + h5) / w,
 * w = h6·u + h7·v + h8. Pixel centres sit at +0.5 in both spaces.
 */
export type Homography = Float64Array;

/** A point in source pixel coordinates. */
export interface Point {
  x: number;
  y: number;
}

/** Corners in order top-left, top-right, bottom-right, bottom-left. */
export type Quad = [Point, Point, Point, Point];

export function applyHomography(h: Homography, u: number, v: number): Point {
  const w = h[6] * u + h[7] * v + h[8];
  return { x: (h[0] * u + h[1] * v + h[2]) / w, y: (h[3] * u + h[4] * v + h[5]) / w };
}

/** The map of the whole source image, stretched to the output (what a plain resize does). */
export function identityMap(width: number, height: number): Homography {
  return Float64Array.of(width, 0, 0, 0, height, 0, 0, 0, 1);
}

/**
 * The whole source shrunk to `zoom` of each output side, centred, rotated by `degrees`
 * (positive = clockwise on screen) about the centre in the source's own pixel geometry
 * (so a rotation stays a rotation whatever the aspect ratio). zoom < 1 zooms out (the
 * output shows a margin of fill colour); rotating back a query turned by +3° is
 * degrees = -3.
 */
export function similarityMap(width: number, height: number, zoom: number, degrees: number): Homography {
  // Output (u, v) -> centred physical offset (du·W, dv·H) / zoom -> rotate -> source.
  const t = (degrees * Math.PI) / 180;
  const c = Math.cos(t) / zoom;
  const s = Math.sin(t) / zoom;
  // Rotating the picture clockwise by t on screen means sampling the source at the
  // output offset rotated counter-clockwise: src = R(-t)·d.
  const a = c * width;
  const b = s * height;
  const d = -s * width;
  const e = c * height;
  return Float64Array.of(a, b, width / 2 - (a + b) / 2, d, e, height / 2 - (d + e) / 2, 0, 0, 1);
}

/**
 * The homography taking the unit square's corners (0,0) (1,0) (1,1) (0,1) to the quad's
 * corners (Heckbert's square-to-quad construction). Undefined for degenerate quads.
 */
export function squareToQuad(q: Quad): Homography {
  const [p0, p1, p2, p3] = q;
  const sx = p0.x - p1.x + p2.x - p3.x;
  const sy = p0.y - p1.y + p2.y - p3.y;
  if (Math.abs(sx) < 1e-12 && Math.abs(sy) < 1e-12) {
    return Float64Array.of(p1.x - p0.x, p3.x - p0.x, p0.x, p1.y - p0.y, p3.y - p0.y, p0.y, 0, 0, 1);
  }
  const dx1 = p1.x - p2.x;
  const dx2 = p3.x - p2.x;
  const dy1 = p1.y - p2.y;
  const dy2 = p3.y - p2.y;
  const den = dx1 * dy2 - dx2 * dy1;
  const g = (sx * dy2 - dx2 * sy) / den;
  const h = (dx1 * sy - sx * dy1) / den;
  return Float64Array.of(
    p1.x - p0.x + g * p1.x,
    p3.x - p0.x + h * p3.x,
    p0.x,
    p1.y - p0.y + g * p1.y,
    p3.y - p0.y + h * p3.y,
    p0.y,
    g,
    h,
    1,
  );
}

/** H ∘ A for an affine map A of the output square (u,v) -> (a0 u + a1 v + a2, a3 u + a4 v + a5). */
export function composeAffine(h: Homography, a: ArrayLike<number>): Homography {
  const out = new Float64Array(9);
  for (let r = 0; r < 3; r++) {
    const h0 = h[r * 3];
    const h1 = h[r * 3 + 1];
    const h2 = h[r * 3 + 2];
    out[r * 3] = h0 * a[0] + h1 * a[3];
    out[r * 3 + 1] = h0 * a[1] + h1 * a[4];
    out[r * 3 + 2] = h0 * a[2] + h1 * a[5] + h2;
  }
  return out;
}

/**
 * Draws an outW x outH RGB image through `map`. Each output pixel averages n x n
 * bilinear samples (n from the shrink factor, at most 4), so shrinking does not alias;
 * samples that fall outside the source take the fill colour.
 */
export function warpRgb(src: RgbImage, map: Homography, outW: number, outH: number, fill: readonly number[]): RgbImage {
  const { data, width, height } = src;
  const out = new Uint8Array(outW * outH * 3);
  const n = subsamples(map, width, height, outW, outH);
  const inv = 1 / (n * n);
  const [h0, h1, h2, h3, h4, h5, h6, h7, h8] = map;
  const fr = fill[0];
  const fg = fill[1];
  const fb = fill[2];
  const maxX = width - 0.5;
  const maxY = height - 0.5;
  const stride = width * 3;
  for (let y = 0; y < outH; y++) {
    for (let x = 0; x < outW; x++) {
      let r = 0;
      let g = 0;
      let b = 0;
      for (let sy = 0; sy < n; sy++) {
        const v = (y + (sy + 0.5) / n) / outH;
        for (let sx = 0; sx < n; sx++) {
          const u = (x + (sx + 0.5) / n) / outW;
          const w = h6 * u + h7 * v + h8;
          const px = (h0 * u + h1 * v + h2) / w;
          const py = (h3 * u + h4 * v + h5) / w;
          if (!(px >= 0 && py >= 0 && px <= width && py <= height)) {
            r += fr;
            g += fg;
            b += fb;
            continue;
          }
          // Bilinear between pixel centres, clamped at the borders.
          const fx = px < 0.5 ? 0 : px > maxX ? width - 1 : px - 0.5;
          const fy = py < 0.5 ? 0 : py > maxY ? height - 1 : py - 0.5;
          const x0 = fx | 0;
          const y0 = fy | 0;
          const tx = fx - x0;
          const ty = fy - y0;
          const p00 = y0 * stride + x0 * 3;
          const dx = x0 + 1 < width ? 3 : 0;
          const dy = y0 + 1 < height ? stride : 0;
          const w00 = (1 - tx) * (1 - ty);
          const w01 = tx * (1 - ty);
          const w10 = (1 - tx) * ty;
          const w11 = tx * ty;
          r += data[p00] * w00 + data[p00 + dx] * w01 + data[p00 + dy] * w10 + data[p00 + dy + dx] * w11;
          g += data[p00 + 1] * w00 + data[p00 + dx + 1] * w01 + data[p00 + dy + 1] * w10 + data[p00 + dy + dx + 1] * w11;
          b += data[p00 + 2] * w00 + data[p00 + dx + 2] * w01 + data[p00 + dy + 2] * w10 + data[p00 + dy + dx + 2] * w11;
        }
      }
      const o = (y * outW + x) * 3;
      out[o] = clampByte(r * inv);
      out[o + 1] = clampByte(g * inv);
      out[o + 2] = clampByte(b * inv);
    }
  }
  return { data: out, width: outW, height: outH };
}

/** Subsamples per output side: the map's shrink factor, rounded (up from a quarter over), 1..4. */
function subsamples(map: Homography, width: number, height: number, outW: number, outH: number): number {
  const a = applyHomography(map, 0, 0);
  const b = applyHomography(map, 1, 0);
  const c = applyHomography(map, 0, 1);
  const across = Math.hypot(b.x - a.x, b.y - a.y) / outW;
  const down = Math.hypot(c.x - a.x, c.y - a.y) / outH;
  const factor = Math.max(across, down);
  if (!Number.isFinite(factor)) return 1;
  return Math.max(1, Math.min(4, Math.ceil(factor - 0.25)));
}

/**
 * warpRgb for one grey channel, except that output pixels whose centre falls outside
 * the source are NaN (unknown) instead of a fill colour.
 */
export function warpGrey(src: GreyImage, map: Homography, outW: number, outH: number): GreyImage {
  const { data, width, height } = src;
  const out = new Float32Array(outW * outH);
  const n = subsamples(map, width, height, outW, outH);
  const [h0, h1, h2, h3, h4, h5, h6, h7, h8] = map;
  const maxX = width - 0.5;
  const maxY = height - 0.5;
  for (let y = 0; y < outH; y++) {
    for (let x = 0; x < outW; x++) {
      const uc = (x + 0.5) / outW;
      const vc = (y + 0.5) / outH;
      const wc = h6 * uc + h7 * vc + h8;
      const cx = (h0 * uc + h1 * vc + h2) / wc;
      const cy = (h3 * uc + h4 * vc + h5) / wc;
      if (!(cx >= 0 && cy >= 0 && cx <= width && cy <= height)) {
        out[y * outW + x] = Number.NaN;
        continue;
      }
      let acc = 0;
      let count = 0;
      for (let sy = 0; sy < n; sy++) {
        const v = (y + (sy + 0.5) / n) / outH;
        for (let sx = 0; sx < n; sx++) {
          const u = (x + (sx + 0.5) / n) / outW;
          const w = h6 * u + h7 * v + h8;
          const px = (h0 * u + h1 * v + h2) / w;
          const py = (h3 * u + h4 * v + h5) / w;
          if (!(px >= 0 && py >= 0 && px <= width && py <= height)) continue;
          const fx = px < 0.5 ? 0 : px > maxX ? width - 1 : px - 0.5;
          const fy = py < 0.5 ? 0 : py > maxY ? height - 1 : py - 0.5;
          const x0 = fx | 0;
          const y0 = fy | 0;
          const tx = fx - x0;
          const ty = fy - y0;
          const o = y0 * width + x0;
          const dx = x0 + 1 < width ? 1 : 0;
          const dy = y0 + 1 < height ? width : 0;
          const top = data[o] + (data[o + dx] - data[o]) * tx;
          const bottom = data[o + dy] + (data[o + dy + dx] - data[o + dy]) * tx;
          acc += top + (bottom - top) * ty;
          count++;
        }
      }
      out[y * outW + x] = count > 0 ? acc / count : Number.NaN;
    }
  }
  return { data: out, width: outW, height: outH };
}
