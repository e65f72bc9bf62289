import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeQuery } from '../../src/query-stage/decode-query.ts';
import { convexHull, largestInscribedQuad, orderQuad } from '../../src/query-stage/geometry.ts';
import { findCard, rectifyCard } from '../../src/query-stage/rectify.ts';
import { applyHomography, squareToQuad, type Quad } from '../../src/query-stage/warp.ts';
import { CORPUS_DIR } from '../helpers/paths.ts';
import { encodeJpeg, paintCardOnTable, syntheticCard, type Pt } from './synthetic.ts';

/** The corners findCard reports (in the query's 128x128 pixels) in the scene's pixels. */
function inScene(quad: Quad, width: number, height: number): Pt[] {
  return quad.map((p) => ({ x: (p.x * width) / 128, y: (p.y * height) / 128 }));
}

const SCENES: Array<{ name: string; width: number; height: number; quad: Pt[]; table?: [number, number, number]; shadow?: number }> = [
  {
    name: 'mild perspective, green table',
    width: 480,
    height: 640,
    quad: [{ x: 52, y: 60 }, { x: 420, y: 41 }, { x: 437, y: 590 }, { x: 36, y: 575 }],
  },
  {
    name: 'turned 8 degrees, dark table, strong shadow',
    width: 600,
    height: 640,
    quad: [{ x: 140, y: 70 }, { x: 470, y: 116 }, { x: 410, y: 560 }, { x: 82, y: 512 }],
    table: [40, 38, 44],
    shadow: 0.45,
  },
  {
    name: 'small card on a light table',
    width: 640,
    height: 480,
    quad: [{ x: 220, y: 110 }, { x: 400, y: 104 }, { x: 409, y: 360 }, { x: 212, y: 352 }],
    table: [150, 140, 120],
  },
];

describe('card rectification', () => {
  for (const scene of SCENES) {
    it(`finds the card's corners within a few pixels: ${scene.name}`, async () => {
      const photo = paintCardOnTable({ ...scene, card: syntheticCard() });
      const query = await decodeQuery(await encodeJpeg(photo, 85));
      const card = findCard(query.rgb, query.aspect);
      expect(card, 'no card found').toBeDefined();
      const found = inScene(card!.quad, scene.width, scene.height);
      // A query pixel is 3.75-5 scene pixels: within 1.5 of them.
      const tolerance = (1.5 * Math.max(scene.width, scene.height)) / 128;
      for (let k = 0; k < 4; k++) {
        const d = Math.hypot(found[k].x - scene.quad[k].x, found[k].y - scene.quad[k].y);
        expect(d, `corner ${k}: found (${found[k].x.toFixed(1)}, ${found[k].y.toFixed(1)}), drawn at (${scene.quad[k].x}, ${scene.quad[k].y})`).toBeLessThan(tolerance);
      }
    });
  }

  it('the rectified card looks like the card: its red frame lands where it was drawn', async () => {
    const scene = SCENES[1];
    const cardImage = syntheticCard();
    const query = await decodeQuery(await encodeJpeg(paintCardOnTable({ ...scene, card: cardImage }), 90));
    const card = findCard(query.rgb, query.aspect)!;
    const out = rectifyCard(query.rgb, card, 100, 140);
    // The card's left red bar spans x 12..18 of 200, the black block x 40..90, y 50..110 of 280.
    const at = (u: number, v: number) => {
      const o = (Math.round(v * 140) * 100 + Math.round(u * 100)) * 3;
      return [out.data[o], out.data[o + 1], out.data[o + 2]];
    };
    const red = at(15 / 200, 0.5);
    expect(red[0] - red[1], `left frame bar ${red}`).toBeGreaterThan(60);
    const black = at(65 / 200, 80 / 280);
    expect(Math.max(...black), `black block ${black}`).toBeLessThan(110);
    const white = at(0.5, 140 / 280);
    expect(Math.min(...white), `white card ${white}`).toBeGreaterThan(150);
  });

  it('finds no card in a photo or a blank image', async () => {
    const photo = await decodeQuery(readFileSync(join(CORPUS_DIR, 'originals/00001.jpg')));
    expect(findCard(photo.rgb, photo.aspect)).toBeUndefined();
    const white = await decodeQuery(await encodeJpeg({ data: new Uint8Array(300 * 200 * 3).fill(255), width: 300, height: 200 }));
    expect(findCard(white.rgb, white.aspect)).toBeUndefined();
  });

  it('finds no card in a shape that is not a quadrilateral (a disc on a table)', async () => {
    const w = 400;
    const h = 400;
    const data = new Uint8Array(w * h * 3);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const inside = (x - 200) ** 2 + (y - 200) ** 2 < 150 ** 2;
        data.set(inside ? [240, 240, 235] : [60, 90, 60], (y * w + x) * 3);
      }
    }
    const q = await decodeQuery(await encodeJpeg({ data, width: w, height: h }));
    expect(findCard(q.rgb, q.aspect)).toBeUndefined();
  });
});

describe('geometry', () => {
  it('squareToQuad takes the unit square corners to the quad', () => {
    const quad: Quad = [{ x: 10, y: 12 }, { x: 90, y: 5 }, { x: 100, y: 120 }, { x: 3, y: 110 }];
    const h = squareToQuad(quad);
    const corners = [[0, 0], [1, 0], [1, 1], [0, 1]];
    corners.forEach(([u, v], k) => {
      const p = applyHomography(h, u, v);
      expect(p.x).toBeCloseTo(quad[k].x, 9);
      expect(p.y).toBeCloseTo(quad[k].y, 9);
    });
  });

  it('the largest quadrilateral in the hull of a rounded rectangle sits at its corners', () => {
    const pts: Pt[] = [];
    for (let t = 0; t < 360; t += 3) {
      const a = (t * Math.PI) / 180;
      // A rounded rectangle: corners of radius 5 around a 60 x 90 box.
      const cx = Math.cos(a) >= 0 ? 60 : 0;
      const cy = Math.sin(a) >= 0 ? 90 : 0;
      pts.push({ x: cx + 5 * Math.cos(a), y: cy + 5 * Math.sin(a) });
    }
    const quad = orderQuad(largestInscribedQuad(convexHull(pts))!);
    const expected = [{ x: -3.5, y: -3.5 }, { x: 63.5, y: -3.5 }, { x: 63.5, y: 93.5 }, { x: -3.5, y: 93.5 }];
    quad.forEach((p, k) => expect(Math.hypot(p.x - expected[k].x, p.y - expected[k].y)).toBeLessThan(3));
  });
});
