/**
 * Plane geometry for rectification: convex hull, the largest quadrilateral inside a
 * convex polygon, line fits and intersections. Points are in pixel coordinates.
 */
import type { Point, Quad } from './warp.ts';

function cross(o: Point, a: Point, b: Point): number {
  return (a.x - o.x) * (b.y - o.y) - (a.y - o.y) * (b.x - o.x);
}

/** Convex hull (Andrew's monotone chain), counter-clockwise in y-down coordinates as given, no collinear points. */
export function convexHull(points: Point[]): Point[] {
  const pts = [...points].sort((a, b) => a.x - b.x || a.y - b.y);
  if (pts.length < 3) return pts;
  const lower: Point[] = [];
  for (const p of pts) {
    while (lower.length >= 2 && cross(lower[lower.length - 2], lower[lower.length - 1], p) <= 0) lower.pop();
    lower.push(p);
  }
  const upper: Point[] = [];
  for (let i = pts.length - 1; i >= 0; i--) {
    const p = pts[i];
    while (upper.length >= 2 && cross(upper[upper.length - 2], upper[upper.length - 1], p) <= 0) upper.pop();
    upper.push(p);
  }
  lower.pop();
  upper.pop();
  return lower.concat(upper);
}

/** Area of a simple polygon (absolute value of the shoelace sum). */
export function polygonArea(poly: readonly Point[]): number {
  let s = 0;
  for (let i = 0; i < poly.length; i++) {
    const a = poly[i];
    const b = poly[(i + 1) % poly.length];
    s += a.x * b.y - b.x * a.y;
  }
  return Math.abs(s) / 2;
}

/**
 * The largest-area quadrilateral whose corners are vertices of a convex polygon: for
 * each diagonal (i, k), the vertices farthest from it on either side. O(n³) on at most
 * MAX_QUAD_VERTICES vertices (a longer hull is thinned evenly first).
 */
export function largestInscribedQuad(polygon: readonly Point[]): Point[] | undefined {
  const step = Math.ceil(polygon.length / MAX_QUAD_VERTICES);
  const hull = step > 1 ? polygon.filter((_, i) => i % step === 0) : polygon;
  const n = hull.length;
  if (n < 4) return undefined;
  let best = -1;
  let corners = [0, 1, 2, 3];
  for (let i = 0; i < n; i++) {
    for (let k = i + 2; k < n; k++) {
      let bj = -1;
      let aj = -1;
      for (let j = i + 1; j < k; j++) {
        const t = Math.abs(cross(hull[i], hull[j], hull[k]));
        if (t > aj) {
          aj = t;
          bj = j;
        }
      }
      let bl = -1;
      let al = -1;
      for (let l = k + 1; l < n + i; l++) {
        const t = Math.abs(cross(hull[i], hull[k], hull[l % n]));
        if (t > al) {
          al = t;
          bl = l % n;
        }
      }
      if (bj < 0 || bl < 0) continue;
      if (aj + al > best) {
        best = aj + al;
        corners = [i, bj, k, bl];
      }
    }
  }
  return best < 0 ? undefined : corners.map((t) => hull[t]);
}

const MAX_QUAD_VERTICES = 96;

/** Orders four corners as top-left, top-right, bottom-right, bottom-left. */
export function orderQuad(corners: readonly Point[]): Quad {
  const cx = corners.reduce((s, p) => s + p.x, 0) / corners.length;
  const cy = corners.reduce((s, p) => s + p.y, 0) / corners.length;
  // Clockwise on screen (y down) starting from the corner in the upper-left direction.
  const sorted = [...corners].sort((a, b) => Math.atan2(a.y - cy, a.x - cx) - Math.atan2(b.y - cy, b.x - cx));
  // atan2 order runs from -π (left) through -π/2 (up) ... ; pick the start as the corner with the smallest x+y.
  let start = 0;
  for (let i = 1; i < 4; i++) if (sorted[i].x + sorted[i].y < sorted[start].x + sorted[start].y) start = i;
  return [sorted[start], sorted[(start + 1) % 4], sorted[(start + 2) % 4], sorted[(start + 3) % 4]];
}

/** A line a·x + b·y = c with (a, b) a unit normal. */
export interface Line {
  a: number;
  b: number;
  c: number;
}

/** Total least-squares line through points (their principal axis), with the RMS distance. */
export function fitLine(points: readonly Point[]): { line: Line; rms: number } | undefined {
  const n = points.length;
  if (n < 2) return undefined;
  let mx = 0;
  let my = 0;
  for (const p of points) {
    mx += p.x;
    my += p.y;
  }
  mx /= n;
  my /= n;
  let sxx = 0;
  let syy = 0;
  let sxy = 0;
  for (const p of points) {
    const dx = p.x - mx;
    const dy = p.y - my;
    sxx += dx * dx;
    syy += dy * dy;
    sxy += dx * dy;
  }
  // The normal is the eigenvector of the smaller eigenvalue of the scatter matrix.
  const theta = 0.5 * Math.atan2(2 * sxy, sxx - syy);
  const a = -Math.sin(theta);
  const b = Math.cos(theta);
  const c = a * mx + b * my;
  let ss = 0;
  for (const p of points) ss += (a * p.x + b * p.y - c) ** 2;
  return { line: { a, b, c }, rms: Math.sqrt(ss / n) };
}

export function intersect(l1: Line, l2: Line): Point | undefined {
  const det = l1.a * l2.b - l2.a * l1.b;
  if (Math.abs(det) < 1e-9) return undefined;
  return { x: (l1.c * l2.b - l2.c * l1.b) / det, y: (l1.a * l2.c - l2.a * l1.c) / det };
}

/** Distance from p to the segment ab, and where along it (0..1) the closest point lies. */
export function segmentDistance(p: Point, a: Point, b: Point): { d: number; t: number } {
  const vx = b.x - a.x;
  const vy = b.y - a.y;
  const len2 = vx * vx + vy * vy;
  const t = len2 === 0 ? 0 : ((p.x - a.x) * vx + (p.y - a.y) * vy) / len2;
  const tc = Math.max(0, Math.min(1, t));
  return { d: Math.hypot(p.x - a.x - tc * vx, p.y - a.y - tc * vy), t };
}

/** Interior angle at corner b of a-b-c, in degrees. */
export function cornerAngle(a: Point, b: Point, c: Point): number {
  const v1x = a.x - b.x;
  const v1y = a.y - b.y;
  const v2x = c.x - b.x;
  const v2y = c.y - b.y;
  const cos = (v1x * v2x + v1y * v2y) / (Math.hypot(v1x, v1y) * Math.hypot(v2x, v2y));
  return (Math.acos(Math.max(-1, Math.min(1, cos))) * 180) / Math.PI;
}
