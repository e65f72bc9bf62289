/**
 * The thumbnail check: how well a stored thumbnail matches a view of the query once the
 * two are aligned. A view is the query (as sent, mirrored, or the rectified card) drawn
 * in grey a little beyond its own frame; the alignment is a similarity transform
 * (scale, rotation, shift) searched so that a cropped, rotated or imperfectly rectified
 * query still lines up with the whole stored image. The measure is the normalised
 * cross-correlation (NCC) over the pixels both images cover.
 */
import { shrinkGrey, type GreyImage } from './raster.ts';
import { composeAffine, warpGrey, type Homography } from './warp.ts';

/** A query view ready for the check. */
export interface CheckView {
  /** The view rendered over [-VIEW_MARGIN, 1 + VIEW_MARGIN]² of its unit square at VIEW_DENSITY pixels per thumbnail pixel; NaN where the photo has no pixels. */
  readonly grey: GreyImage;
  /** The same at half the density, for the coarse search against half-size thumbnails. */
  readonly coarse: GreyImage;
  /** Width / height of the view's content in the photo's own pixels (keeps rotations rigid). */
  readonly aspect: number;
}

/** A stored thumbnail ready for the check, at full and half size. */
export interface CheckThumb {
  readonly full: GreyImage;
  readonly coarse: GreyImage;
}

/** How far beyond its frame a view is drawn, as a fraction of each side. */
const VIEW_MARGIN = 0.25;
/** View pixels per thumbnail pixel. */
const VIEW_DENSITY = 2;

/** Similarity transform from thumbnail to view: zoom, rotation (degrees), shift (fractions of the height). */
export interface Alignment {
  zoom: number;
  degrees: number;
  dx: number;
  dy: number;
}

export interface CheckResult {
  /** NCC at the best alignment, -1..1; NaN when the check cannot tell (a flat image, too little overlap). */
  ncc: number;
  alignment: Alignment;
}

/**
 * Draws a view for the check: `map` takes the view's unit square to the photo's pixels
 * (see warp.ts), `grey` is the photo in grey, thumbWidth x thumbHeight the stored
 * thumbnails' size.
 */
export function makeView(grey: GreyImage, map: Homography, aspect: number, thumbWidth: number, thumbHeight: number): CheckView {
  const span = 1 + 2 * VIEW_MARGIN;
  const ext = composeAffine(map, [span, 0, -VIEW_MARGIN, 0, span, -VIEW_MARGIN]);
  const w = 2 * Math.round(thumbWidth * VIEW_DENSITY * span / 2);
  const h = 2 * Math.round(thumbHeight * VIEW_DENSITY * span / 2);
  const full = warpGrey(grey, ext, w, h);
  return { grey: full, coarse: halve(full), aspect };
}

/**
 * makeView for a view that is the whole photo (no warp): `grey` covers exactly the
 * view's unit square and is shrunk to the view's density, then framed with NaN.
 */
export function makeWholeView(grey: GreyImage, aspect: number, thumbWidth: number, thumbHeight: number, mirrored: boolean): CheckView {
  const span = 1 + 2 * VIEW_MARGIN;
  const w = 2 * Math.round((thumbWidth * VIEW_DENSITY * span) / 2);
  const h = 2 * Math.round((thumbHeight * VIEW_DENSITY * span) / 2);
  const innerW = Math.round(w / span);
  const innerH = Math.round(h / span);
  const inner = shrinkGrey(grey, innerW, innerH);
  const full = new Float32Array(w * h).fill(Number.NaN);
  const x0 = Math.round((w - innerW) / 2);
  const y0 = Math.round((h - innerH) / 2);
  for (let y = 0; y < innerH; y++) {
    for (let x = 0; x < innerW; x++) full[(y0 + y) * w + x0 + x] = inner.data[y * innerW + (mirrored ? innerW - 1 - x : x)];
  }
  const view = { data: full, width: w, height: h };
  return { grey: view, coarse: halve(view), aspect };
}

/** A stored thumbnail (grey bytes) prepared for the check. */
export function checkThumb(thumb: GreyImage): CheckThumb {
  return { full: thumb, coarse: halve(thumb) };
}

/** 2x2 box shrink (NaN when any of the four is NaN); odd last rows/columns are dropped. */
function halve(img: GreyImage): GreyImage {
  const w = img.width >> 1;
  const h = img.height >> 1;
  const out = new Float32Array(w * h);
  const d = img.data;
  const W = img.width;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const o = 2 * y * W + 2 * x;
      out[y * w + x] = (d[o] + d[o + 1] + d[o + W] + d[o + W + 1]) * 0.25;
    }
  }
  return { data: out, width: w, height: h };
}

/** Smallest share of the thumbnail the view must cover for an NCC to count. */
const MIN_OVERLAP = 0.6;

/**
 * NCC of the thumbnail with the view under one alignment: each thumbnail pixel against
 * the bilinear sample of the view where the alignment puts it.
 */
export function nccAt(g: GreyImage, aspect: number, thumb: GreyImage, a: Alignment): number {
  return sampleAligned(g, aspect, thumb, a, undefined);
}

/**
 * NCC at one alignment after dropping the TRIM share of pixels that fit worst (a
 * linear fit of view against thumbnail, largest residuals out): a watermark, a caption
 * or a glare spot does not decide the check.
 */
export function trimmedNccAt(g: GreyImage, aspect: number, thumb: GreyImage, a: Alignment): number {
  const pairs = { a: new Float32Array(thumb.width * thumb.height), b: new Float32Array(thumb.width * thumb.height), n: 0 };
  const whole = sampleAligned(g, aspect, thumb, a, pairs);
  const n = pairs.n;
  if (!(whole === whole) || n === 0) return whole;
  let sa = 0, sb = 0, saa = 0, sab = 0;
  for (let k = 0; k < n; k++) {
    sa += pairs.a[k];
    sb += pairs.b[k];
    saa += pairs.a[k] * pairs.a[k];
    sab += pairs.a[k] * pairs.b[k];
  }
  const slope = (n * sab - sa * sb) / (n * saa - sa * sa);
  const icept = (sb - slope * sa) / n;
  const res = new Float32Array(n);
  for (let k = 0; k < n; k++) res[k] = Math.abs(pairs.b[k] - slope * pairs.a[k] - icept);
  const cut = [...res].sort((x, y) => x - y)[Math.floor(n * (1 - TRIM))];
  let m = 0;
  sa = 0; sb = 0; saa = 0; sab = 0;
  let sbb = 0;
  for (let k = 0; k < n; k++) {
    if (res[k] > cut) continue;
    const x = pairs.a[k];
    const y = pairs.b[k];
    m++;
    sa += x;
    sb += y;
    saa += x * x;
    sbb += y * y;
    sab += x * y;
  }
  return nccOf(m, sa, sb, saa, sbb, sab, 0);
}

/** Share of the compared pixels trimmedNccAt leaves out. */
const TRIM = 0.1;

/** NCC from running sums; NaN (no evidence) for too few pixels or a flat side. */
function nccOf(n: number, sa: number, sb: number, saa: number, sbb: number, sab: number, minN: number): number {
  if (n < minN || n < 8) return Number.NaN;
  const va = n * saa - sa * sa;
  const vb = n * sbb - sb * sb;
  // Flat images (blank, one colour, fine texture only) carry no evidence either way.
  if (va <= n * n * FLAT_VARIANCE || vb <= n * n * FLAT_VARIANCE) return Number.NaN;
  return (n * sab - sa * sb) / Math.sqrt(va * vb);
}

/** Below this grey-level variance (standard deviation 2) an image counts as flat. */
const FLAT_VARIANCE = 4;

/** Samples the view under the alignment for every thumbnail pixel; returns the NCC, optionally keeping the pairs. */
function sampleAligned(g: GreyImage, aspect: number, thumb: GreyImage, a: Alignment, keep: { a: Float32Array; b: Float32Array; n: number } | undefined): number {
  const { width: tw, height: th, data: t } = thumb;
  const gw = g.width;
  const gh = g.height;
  const gd = g.data;
  // Thumbnail pixel (i, j) -> physical offset p = ((u-.5)·aspect, v-.5) -> q = z·R·p + d
  // -> view pixel (fx, fy): an affine map, so walked by increments.
  const span = 1 + 2 * VIEW_MARGIN;
  const rad = (a.degrees * Math.PI) / 180;
  const cs = Math.cos(rad) * a.zoom;
  const sn = Math.sin(rad) * a.zoom;
  const kx = gw / span;
  const ky = gh / span;
  // fx = (((cs·px - sn·py + dx) / aspect + 0.5) + margin)·kx - 0.5, px = ((i+.5)/tw - .5)·aspect,
  // py = (j+.5)/th - .5; fy likewise: affine in (i, j).
  const px0 = (0.5 / tw - 0.5) * aspect;
  const py0 = 0.5 / th - 0.5;
  const x00 = ((cs * px0 - sn * py0 + a.dx) / aspect + 0.5 + VIEW_MARGIN) * kx - 0.5;
  const y00 = (sn * px0 + cs * py0 + a.dy + 0.5 + VIEW_MARGIN) * ky - 0.5;
  const x10 = x00 + (cs / tw) * kx;
  const y10 = y00 + ((sn * aspect) / tw) * ky;
  const x01 = x00 + ((-sn / th) / aspect) * kx;
  const y01 = y00 + (cs / th) * ky;
  const dxi = x10 - x00;
  const dyi = y10 - y00;
  const dxj = x01 - x00;
  const dyj = y01 - y00;
  const maxX = gw - 1;
  const maxY = gh - 1;
  const keeping = keep !== undefined;
  let n = 0;
  let sa = 0;
  let sb = 0;
  let saa = 0;
  let sbb = 0;
  let sab = 0;
  for (let j = 0; j < th; j++) {
    let fx = x00 + j * dxj;
    let fy = y00 + j * dyj;
    const row = j * tw;
    for (let i = 0; i < tw; i++, fx += dxi, fy += dyi) {
      if (!(fx >= 0 && fy >= 0 && fx < maxX && fy < maxY)) continue;
      const x0 = fx | 0;
      const y0 = fy | 0;
      const tx = fx - x0;
      const ty = fy - y0;
      const o = y0 * gw + x0;
      const top = gd[o] + (gd[o + 1] - gd[o]) * tx;
      const bottom = gd[o + gw] + (gd[o + gw + 1] - gd[o + gw]) * tx;
      const b = top + (bottom - top) * ty;
      if (b !== b) continue;
      const av = t[row + i];
      if (keeping) {
        keep.a[n] = av;
        keep.b[n] = b;
      }
      n++;
      sa += av;
      sb += b;
      saa += av * av;
      sbb += b * b;
      sab += av * b;
    }
  }
  if (keeping) keep.n = n;
  return nccOf(n, sa, sb, saa, sbb, sab, MIN_OVERLAP * tw * th);
}

/** Alignments the search starts from: as is, the crops and rotations queries usually carry. */
const STARTS: Alignment[] = [
  { zoom: 1, degrees: 0, dx: 0, dy: 0 },
  { zoom: 1 / 0.95, degrees: 0, dx: 0, dy: 0 },
  { zoom: 1 / 0.9, degrees: 3, dx: 0, dy: 0 },
  { zoom: 1 / 0.9, degrees: -3, dx: 0, dy: 0 },
];
/** Coarse pattern-search steps (the fine stage uses half and a quarter of them). */
const STEPS = { zoom: 0.03, degrees: 1.5, dx: 0.02, dy: 0.02 };
/** How far an alignment may go: zoom 0.8-1.25, ±8°, shifts up to 12% of the height. */
const LIMITS = { zoomMin: 0.8, zoomMax: 1.25, degrees: 8, shift: 0.12 };

/**
 * The best NCC over alignments. Coarse (half-size thumbnail): the best of the starting
 * alignments, then a pattern search (each parameter stepped up and down, steps halved
 * when nothing improves). Fine (full size): each parameter's optimum estimated from a
 * parabola through three samples, twice, with smaller steps the second time.
 */
export function checkThumbnail(view: CheckView, thumb: CheckThumb): CheckResult {
  let best = STARTS[0];
  let bestNcc = -2;
  for (const s of STARTS) {
    const v = nccAt(view.coarse, view.aspect, thumb.coarse, s);
    if (v > bestNcc) {
      bestNcc = v;
      best = s;
    }
  }
  if (!(bestNcc > -2)) return { ncc: Number.NaN, alignment: best };
  ({ best } = patternSearch(view.coarse, view.aspect, thumb.coarse, best, bestNcc, 1, 2));
  let fine = { best, ncc: nccAt(view.grey, view.aspect, thumb.full, best) };
  fine = parabolicStep(view.grey, view.aspect, thumb.full, fine.best, fine.ncc, 0.5);
  fine = parabolicStep(view.grey, view.aspect, thumb.full, fine.best, fine.ncc, 0.25);
  return { ncc: fine.ncc, alignment: fine.best };
}

const KEYS = ['zoom', 'degrees', 'dx', 'dy'] as const;

/**
 * One refinement: for each parameter, NCC at ±h (h = scale·STEPS) gives a parabola whose
 * vertex (kept within ±h) is that parameter's new value; all four move at once, and
 * the best alignment seen is kept.
 */
function parabolicStep(g: GreyImage, aspect: number, thumb: GreyImage, start: Alignment, startNcc: number, scale: number): { best: Alignment; ncc: number } {
  let best = start;
  let bestNcc = startNcc === startNcc ? startNcc : -2;
  const moved: Alignment = { ...start };
  for (const key of KEYS) {
    const h = STEPS[key] * scale;
    const lo = { ...start, [key]: start[key] - h };
    const hi = { ...start, [key]: start[key] + h };
    const fl = withinLimits(lo) ? nccAt(g, aspect, thumb, lo) : Number.NaN;
    const fh = withinLimits(hi) ? nccAt(g, aspect, thumb, hi) : Number.NaN;
    if (fl > bestNcc) {
      bestNcc = fl;
      best = lo;
    }
    if (fh > bestNcc) {
      bestNcc = fh;
      best = hi;
    }
    const curve = fl - 2 * startNcc + fh;
    if (curve < 0) moved[key] = start[key] + Math.max(-1, Math.min(1, (0.5 * (fl - fh)) / curve)) * h;
  }
  if (withinLimits(moved)) {
    const v = nccAt(g, aspect, thumb, moved);
    if (v > bestNcc) {
      bestNcc = v;
      best = moved;
    }
  }
  return { best, ncc: bestNcc > -2 ? bestNcc : Number.NaN };
}

/** Coarse NCC at the starting alignments only: a cheap first look (used to pick views). */
export function quickCheck(view: CheckView, thumb: CheckThumb): number {
  let best = Number.NaN;
  for (const s of STARTS) {
    const v = nccAt(view.coarse, view.aspect, thumb.coarse, s);
    if (v > best || !(best === best)) best = v;
  }
  return best;
}

function patternSearch(g: GreyImage, aspect: number, thumb: GreyImage, start: Alignment, startNcc: number, scale: number, rounds: number): { best: Alignment; ncc: number } {
  let best = start;
  let bestNcc = startNcc;
  for (let round = 0; round < rounds; round++) {
    let improved = true;
    while (improved) {
      improved = false;
      for (const key of ['zoom', 'degrees', 'dx', 'dy'] as const) {
        for (const dir of [1, -1]) {
          const cand = { ...best, [key]: best[key] + dir * STEPS[key] * scale };
          if (!withinLimits(cand)) continue;
          const v = nccAt(g, aspect, thumb, cand);
          if (v > bestNcc + 1e-6) {
            bestNcc = v;
            best = cand;
            improved = true;
          }
        }
      }
    }
    scale /= 2;
  }
  return { best, ncc: bestNcc };
}

function withinLimits(a: Alignment): boolean {
  return (
    a.zoom >= LIMITS.zoomMin &&
    a.zoom <= LIMITS.zoomMax &&
    Math.abs(a.degrees) <= LIMITS.degrees &&
    Math.abs(a.dx) <= LIMITS.shift &&
    Math.abs(a.dy) <= LIMITS.shift
  );
}
