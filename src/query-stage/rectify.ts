/**
 * Rectification of a photographed card: find the card against the table, fit its four
 * sides, and warp it back to the catalogue's rectangle with the table's shading divided
 * out. No feature detector: the table is whatever looks like the frame's border.
 *
 *  1. Model the table colour as a plane per channel fitted (robustly) to the outer ring
 *     of the frame, so a shadow gradient across the table is part of the model.
 *  2. Pixels far from that model (beyond the ring's own noise) are "card"; keep the
 *     largest 4-connected blob.
 *  3. Convex hull of the blob -> the largest quadrilateral inside it -> refit each side
 *     as a line through the blob's boundary points near it (skipping rounded corners)
 *     -> corners where the lines meet.
 *  4. Accept the quad only when it is card-like: convex, near-right angles, filling its
 *     hull, big enough, and not the whole frame (then the plain query already is it).
 */
import { convexHull, cornerAngle, fitLine, intersect, largestInscribedQuad, orderQuad, polygonArea, segmentDistance, type Line } from './geometry.ts';
import type { RgbImage } from './raster.ts';
import { applyHomography, squareToQuad, warpRgb, type Homography, type Point, type Quad } from './warp.ts';

/** Depth of the frame ring the table is modelled from, as a fraction of the short side. */
const RING_FRACTION = 0.03;
/** A pixel is "card" when its colour is this many ring-noise deviations from the table model... */
const NOISE_DEVIATIONS = 5;
/** ...and at least this far (RGB Euclidean distance). */
const MIN_COLOUR_DISTANCE = 28;
/** The card's quad covers at least this fraction of the frame. */
const MIN_AREA_FRACTION = 0.12;
/** The blob's hull is at most this much larger than the quad inside it (a quadrilateral shape). */
const MAX_HULL_EXCESS = 0.08;
/** Share of the frame's outermost pixels the blob may cover (a card lies on the table, inside the picture). */
const MAX_FRAME_CONTACT = 0.08;
/** Interior angles of the quad stay within this many degrees of 90. */
const MAX_ANGLE_SKEW = 25;
/** Corners all closer to the frame's corners than this (fraction of the side): the card is the frame. */
const WHOLE_FRAME = 0.015;

/** A plane per channel: value(x, y) = k[0] + k[1]·x + k[2]·y (x, y in pixels of the image it was fitted on). */
export type ColourPlane = [Float64Array, Float64Array, Float64Array];

export interface CardDetection {
  /** Corners in the searched image's pixel coordinates, top-left first, clockwise. */
  quad: Quad;
  /** The table's colour model, in the same coordinates. */
  table: ColourPlane;
}

/**
 * Looks for a card-shaped quadrilateral standing out from the frame's border colour.
 * `aspect` is the photo's true width / height when `image` is a stretched copy (the
 * query's 128x128): the shape tests (right angles) are made in true proportions.
 * Returns undefined when there is none (a photo, a card filling the frame, a blank or
 * tiny image).
 */
export function findCard(image: RgbImage, aspect = image.width / image.height): CardDetection | undefined {
  const { width, height } = image;
  if (width < 16 || height < 16 || !(aspect > 0)) return undefined;
  const ring = Math.max(2, Math.round(Math.min(width, height) * RING_FRACTION));
  const table = fitTablePlane(image, ring);
  if (!table) return undefined;
  const mask = cardMask(image, table.plane, table.threshold);
  const blob = largestBlob(mask, width, height);
  if (blob.size < width * height * MIN_AREA_FRACTION) return undefined;
  if (frameContact(blob.labels, blob.label, width, height) > MAX_FRAME_CONTACT) return undefined;

  const boundary = blobBoundary(blob.labels, blob.label, width, height);
  const hull = convexHull(boundary);
  if (hull.length < 4) return undefined;
  const inner = largestInscribedQuad(hull);
  if (!inner) return undefined;
  const rough = orderQuad(inner);
  if (polygonArea(rough) < polygonArea(hull) * (1 - MAX_HULL_EXCESS)) return undefined;
  const quad = refineSides(rough, boundary) ?? rough;
  const xScale = (aspect * height) / width;
  if (!cardLike(quad, xScale, width, height)) return undefined;
  return { quad, table: table.plane };
}

/**
 * The card warped to an outW x outH rectangle, each pixel divided by the table's
 * brightness at its place in the photo relative to the brightness at the card's
 * centre (the shadow gradient removed, the overall exposure kept).
 */
export function rectifyCard(image: RgbImage, card: CardDetection, outW: number, outH: number): RgbImage {
  const map = squareToQuad(card.quad);
  const warped = warpRgb(image, map, outW, outH, [255, 255, 255]);
  divideShading(warped, map, card.table);
  return warped;
}

function luma(plane: ColourPlane, x: number, y: number): number {
  const v = (c: number) => plane[c][0] + plane[c][1] * x + plane[c][2] * y;
  return 0.299 * v(0) + 0.587 * v(1) + 0.114 * v(2);
}

function divideShading(img: RgbImage, map: Homography, table: ColourPlane): void {
  const centre = applyHomography(map, 0.5, 0.5);
  const ref = luma(table, centre.x, centre.y);
  if (!(ref > 8)) return;
  const { data, width, height } = img;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const p = applyHomography(map, (x + 0.5) / width, (y + 0.5) / height);
      const l = luma(table, p.x, p.y);
      const gain = l > 8 ? Math.max(0.5, Math.min(2, ref / l)) : 1;
      const o = (y * width + x) * 3;
      for (let c = 0; c < 3; c++) {
        const v = data[o + c] * gain;
        data[o + c] = v >= 255 ? 255 : v + 0.5;
      }
    }
  }
}

/**
 * Fits value = k0 + k1·x + k2·y per channel to the ring of `depth` pixels around the
 * frame, drops the pixels that fit worst (a card touching the edge) and fits again.
 * Returns the plane and the colour distance beyond which a pixel is not table.
 */
function fitTablePlane(img: RgbImage, depth: number): { plane: ColourPlane; threshold: number } | undefined {
  const { data, width, height } = img;
  const xs: number[] = [];
  const ys: number[] = [];
  for (let y = 0; y < height; y++) {
    const inner = y >= depth && y < height - depth;
    for (let x = 0; x < width; x++) {
      if (inner && x >= depth && x < width - depth) {
        x = width - depth - 1;
        continue;
      }
      xs.push(x + 0.5);
      ys.push(y + 0.5);
    }
  }
  let use = xs.map((_, i) => i);
  let plane: ColourPlane | undefined;
  let dist: number[] = [];
  for (let round = 0; round < 3; round++) {
    plane = fitPlanes(data, width, xs, ys, use);
    if (!plane) return undefined;
    const p = plane;
    dist = xs.map((x, i) => colourDistance(data, (Math.floor(ys[i]) * width + Math.floor(x)) * 3, p, x, ys[i]));
    const sorted = [...dist].sort((a, b) => a - b);
    const cut = sorted[Math.floor(sorted.length * 0.7)];
    use = use.filter((i) => dist[i] <= cut + 1e-9);
    if (use.length < 12) return undefined;
  }
  const kept = use.map((i) => dist[i]).sort((a, b) => a - b);
  // Robust spread of the table's own pixels (noise, texture) from the best 70%.
  const spread = kept[Math.floor(kept.length * 0.9)] ?? 0;
  return { plane: plane!, threshold: Math.max(MIN_COLOUR_DISTANCE, NOISE_DEVIATIONS * spread * 0.5) };
}

function colourDistance(data: Uint8Array, p: number, plane: ColourPlane, x: number, y: number): number {
  let s = 0;
  for (let c = 0; c < 3; c++) {
    const d = data[p + c] - (plane[c][0] + plane[c][1] * x + plane[c][2] * y);
    s += d * d;
  }
  return Math.sqrt(s);
}

/** Least-squares planes for the three channels over the chosen samples. */
function fitPlanes(data: Uint8Array, width: number, xs: number[], ys: number[], use: number[]): ColourPlane | undefined {
  // Normal equations of [1 x y]; the same 3x3 matrix for each channel.
  let n = 0, sx = 0, sy = 0, sxx = 0, sxy = 0, syy = 0;
  const b = [new Float64Array(3), new Float64Array(3), new Float64Array(3)];
  for (const i of use) {
    const x = xs[i];
    const y = ys[i];
    n++;
    sx += x;
    sy += y;
    sxx += x * x;
    sxy += x * y;
    syy += y * y;
    const p = (Math.floor(y) * width + Math.floor(x)) * 3;
    for (let c = 0; c < 3; c++) {
      const v = data[p + c];
      b[c][0] += v;
      b[c][1] += v * x;
      b[c][2] += v * y;
    }
  }
  const m = [n, sx, sy, sx, sxx, sxy, sy, sxy, syy];
  const det = m[0] * (m[4] * m[8] - m[5] * m[7]) - m[1] * (m[3] * m[8] - m[5] * m[6]) + m[2] * (m[3] * m[7] - m[4] * m[6]);
  if (!(Math.abs(det) > 1e-9)) return undefined;
  const inv = [
    m[4] * m[8] - m[5] * m[7], m[2] * m[7] - m[1] * m[8], m[1] * m[5] - m[2] * m[4],
    m[5] * m[6] - m[3] * m[8], m[0] * m[8] - m[2] * m[6], m[2] * m[3] - m[0] * m[5],
    m[3] * m[7] - m[4] * m[6], m[1] * m[6] - m[0] * m[7], m[0] * m[4] - m[1] * m[3],
  ].map((v) => v / det);
  return b.map((r) => Float64Array.of(
    inv[0] * r[0] + inv[1] * r[1] + inv[2] * r[2],
    inv[3] * r[0] + inv[4] * r[1] + inv[5] * r[2],
    inv[6] * r[0] + inv[7] * r[1] + inv[8] * r[2],
  )) as ColourPlane;
}

function cardMask(img: RgbImage, plane: ColourPlane, threshold: number): Uint8Array {
  const { data, width, height } = img;
  const mask = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const p = y * width + x;
      if (colourDistance(data, p * 3, plane, x + 0.5, y + 0.5) > threshold) mask[p] = 1;
    }
  }
  return mask;
}

/** The largest 4-connected component of the mask: labels per pixel, its label and size. */
function largestBlob(mask: Uint8Array, width: number, height: number): { labels: Int32Array; label: number; size: number } {
  const labels = new Int32Array(width * height);
  const stack = new Int32Array(width * height);
  let next = 0;
  let bestLabel = 0;
  let bestSize = 0;
  for (let start = 0; start < mask.length; start++) {
    if (!mask[start] || labels[start]) continue;
    const label = ++next;
    let top = 0;
    stack[top++] = start;
    labels[start] = label;
    let size = 0;
    while (top > 0) {
      const p = stack[--top];
      size++;
      const x = p % width;
      if (x > 0 && mask[p - 1] && !labels[p - 1]) { labels[p - 1] = label; stack[top++] = p - 1; }
      if (x < width - 1 && mask[p + 1] && !labels[p + 1]) { labels[p + 1] = label; stack[top++] = p + 1; }
      if (p >= width && mask[p - width] && !labels[p - width]) { labels[p - width] = label; stack[top++] = p - width; }
      if (p + width < mask.length && mask[p + width] && !labels[p + width]) { labels[p + width] = label; stack[top++] = p + width; }
    }
    if (size > bestSize) {
      bestSize = size;
      bestLabel = label;
    }
  }
  return { labels, label: bestLabel, size: bestSize };
}

/** Share of the frame's outermost ring of pixels that belongs to the blob. */
function frameContact(labels: Int32Array, label: number, width: number, height: number): number {
  let hits = 0;
  for (let x = 0; x < width; x++) {
    if (labels[x] === label) hits++;
    if (labels[(height - 1) * width + x] === label) hits++;
  }
  for (let y = 1; y < height - 1; y++) {
    if (labels[y * width] === label) hits++;
    if (labels[y * width + width - 1] === label) hits++;
  }
  return hits / (2 * width + 2 * (height - 2));
}

/**
 * Outer boundary points of a blob: for every row its leftmost and rightmost pixel
 * edges, for every column its topmost and bottommost (pixel edges, not centres).
 */
function blobBoundary(labels: Int32Array, label: number, width: number, height: number): Point[] {
  const points: Point[] = [];
  const top = new Int32Array(width).fill(-1);
  const bottom = new Int32Array(width).fill(-1);
  for (let y = 0; y < height; y++) {
    let left = -1;
    let right = -1;
    for (let x = 0; x < width; x++) {
      if (labels[y * width + x] !== label) continue;
      if (left < 0) left = x;
      right = x;
      if (top[x] < 0) top[x] = y;
      bottom[x] = y;
    }
    if (left >= 0) {
      points.push({ x: left, y: y + 0.5 });
      points.push({ x: right + 1, y: y + 0.5 });
    }
  }
  for (let x = 0; x < width; x++) {
    if (top[x] < 0) continue;
    points.push({ x: x + 0.5, y: top[x] });
    points.push({ x: x + 0.5, y: bottom[x] + 1 });
  }
  return points;
}

/**
 * Refits each side of a rough quad as a line through the boundary points close to it,
 * leaving out the ends of the side (rounded corners); the corners become the
 * intersections of neighbouring lines. Undefined when a side has too few points or
 * does not look straight.
 */
function refineSides(rough: Quad, boundary: Point[]): Quad | undefined {
  const lines: Line[] = [];
  for (let s = 0; s < 4; s++) {
    const a = rough[s];
    const b = rough[(s + 1) % 4];
    const len = Math.hypot(b.x - a.x, b.y - a.y);
    const tol = Math.max(2, len * 0.04);
    const near = boundary.filter((p) => {
      const { d, t } = segmentDistance(p, a, b);
      return d <= tol && t > 0.12 && t < 0.88;
    });
    if (near.length < Math.max(6, len * 0.3)) return undefined;
    let fit = fitLine(near);
    if (!fit) return undefined;
    // One trimming round: drop points far from the first fit (blob noise, a thumb).
    const f = fit.line;
    const close = near.filter((p) => Math.abs(f.a * p.x + f.b * p.y - f.c) <= Math.max(1, 2.5 * fit!.rms));
    if (close.length >= near.length * 0.6) fit = fitLine(close) ?? fit;
    if (fit.rms > Math.max(1.5, len * 0.015)) return undefined;
    lines.push(fit.line);
  }
  const corners: Point[] = [];
  for (let s = 0; s < 4; s++) {
    const p = intersect(lines[(s + 3) % 4], lines[s]);
    if (!p) return undefined;
    const r = rough[s];
    // The refit may move a corner out to where the rounded corner's tangents meet, not far.
    if (Math.hypot(p.x - r.x, p.y - r.y) > 0.1 * Math.hypot(rough[2].x - rough[0].x, rough[2].y - rough[0].y)) return undefined;
    corners.push(p);
  }
  return corners as Quad;
}

/** Big enough, near-right angles in true proportions (x scaled by xScale), and not the frame itself. */
function cardLike(q: Quad, xScale: number, width: number, height: number): boolean {
  if (polygonArea(q) < width * height * MIN_AREA_FRACTION) return false;
  const t = q.map((p) => ({ x: p.x * xScale, y: p.y }));
  for (let i = 0; i < 4; i++) {
    const angle = cornerAngle(t[(i + 3) % 4], t[i], t[(i + 1) % 4]);
    if (!(Math.abs(angle - 90) <= MAX_ANGLE_SKEW)) return false;
  }
  const frame: Point[] = [{ x: 0, y: 0 }, { x: width, y: 0 }, { x: width, y: height }, { x: 0, y: height }];
  const wholeFrame = q.every((p, i) => Math.abs(p.x - frame[i].x) <= WHOLE_FRAME * width && Math.abs(p.y - frame[i].y) <= WHOLE_FRAME * height);
  return !wholeFrame;
}
