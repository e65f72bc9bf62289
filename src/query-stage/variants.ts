/**
 * Query variants: the query as sent plus copies that undo what usually happened to a
 * photographed or re-edited picture, each as the 128x128 RGB a signature is made from.
 * Every variant is searched; an image keeps the best raw score any variant gave it.
 * All are drawn from the query's own 128x128 pixels (see decode-query.ts).
 */
import type { QueryImage } from './decode-query.ts';
import { edgeColour, mirrorRgb } from './raster.ts';
import { rectifyCard, type CardDetection } from './rectify.ts';
import { composeAffine, similarityMap, squareToQuad, warpRgb, type Homography } from './warp.ts';

export type VariantKind =
  | 'plain'
  | 'mirrored'
  | 'zoomed-out'
  | 'rotated-left'
  | 'rotated-right'
  | 'rectified'
  | 'rectified-zoomed-out';

export interface QueryVariant {
  readonly kind: VariantKind;
  /** 128x128 RGB, R,G,B interleaved. */
  readonly rgb: Uint8Array;
}

/** How much of each side the picture keeps when zoomed out (a centre crop of ~90% of the area undone). */
export const ZOOM_OUT = 0.95;
/** Rotated-back variants: the angle, and the zoom that undoes the crop that usually hides a rotation's corners. */
export const ROTATE_BACK_DEGREES = 3;
export const ROTATE_BACK_ZOOM = 0.9;

/** The query as sent. */
export function plainVariant(query: QueryImage): QueryVariant {
  return { kind: 'plain', rgb: query.rgb.data };
}

/**
 * The geometric variants: mirrored, zoomed out (padded with the edge colour), and
 * rotated back both ways (corners filled with the edge colour).
 */
export function geometricVariants(query: QueryImage): QueryVariant[] {
  const src = query.rgb;
  const side = src.width;
  const edge = edgeColour(src, 2);
  const draw = (zoom: number, degrees: number) => warpRgb(src, trueSimilarity(query, zoom, degrees), side, side, edge).data;
  return [
    { kind: 'mirrored', rgb: mirrorRgb(src).data },
    { kind: 'zoomed-out', rgb: draw(ZOOM_OUT, 0) },
    { kind: 'rotated-left', rgb: draw(ROTATE_BACK_ZOOM, -ROTATE_BACK_DEGREES) },
    { kind: 'rotated-right', rgb: draw(ROTATE_BACK_ZOOM, ROTATE_BACK_DEGREES) },
  ];
}

/** A found card rectified (its shading divided out), and rectified then zoomed out (table colour around). */
export function cardVariants(query: QueryImage, card: CardDetection): QueryVariant[] {
  const src = query.rgb;
  const side = src.width;
  const z = 1 / ZOOM_OUT;
  const zoomed = composeAffine(squareToQuad(card.quad), [z, 0, 0.5 - z / 2, 0, z, 0.5 - z / 2]);
  return [
    { kind: 'rectified', rgb: rectifyCard(src, card, side, side).data },
    { kind: 'rectified-zoomed-out', rgb: warpRgb(src, zoomed, side, side, edgeColour(src, 2)).data },
  ];
}

/** Every variant but the plain one (cardVariants only when a card was found). */
export function extraVariants(query: QueryImage, card: CardDetection | undefined): QueryVariant[] {
  return [...geometricVariants(query), ...(card ? cardVariants(query, card) : [])];
}

/**
 * similarityMap in the photo's true proportions, expressed in the pixels of its
 * stretched square copy: a rotation stays rigid in the picture the user took.
 */
function trueSimilarity(query: QueryImage, zoom: number, degrees: number): Homography {
  const { width, height } = query.rgb;
  const trueWidth = height * query.aspect;
  const m = similarityMap(trueWidth, height, zoom, degrees);
  const k = width / trueWidth;
  m[0] *= k;
  m[1] *= k;
  m[2] *= k;
  return m;
}
