/**
 * A query image decoded once, exactly as ingest decodes an image: the 128x128 RGB of
 * the whole picture (aspect ratio ignored, lanczos3) that its plain signature is made
 * from. Every variant, the card search and the check's views are drawn from these
 * same pixels, with the original aspect ratio remembered so that rotations and right
 * angles are judged in true proportions. The plain variant is therefore byte for byte
 * the query imgSeek's ranking makes.
 */
import { DEFAULT_DECODE_LIMITS, decodeToRgb128, type DecodeLimits } from '../image/decode.ts';
import { IMAGE_SIDE } from '../signature/types.ts';
import type { GreyImage, RgbImage } from './raster.ts';
import { identityMap, warpRgb } from './warp.ts';

export interface QueryImage {
  /** 128x128 RGB, R,G,B interleaved: decodeToRgb128's bytes. */
  readonly rgb: RgbImage;
  /** Width / height of the original image as displayed (after EXIF orientation). */
  readonly aspect: number;
}

/** Decodes query bytes (any format sharp reads); throws ImageError on bad input. */
export async function decodeQuery(bytes: Uint8Array, limits: DecodeLimits = DEFAULT_DECODE_LIMITS): Promise<QueryImage> {
  const decoded = await decodeToRgb128(bytes, limits);
  return queryFromRgb128(decoded.rgb, decoded.width / decoded.height);
}

/** A QueryImage from 128x128 RGB already in memory (the image's aspect ratio beside it). */
export function queryFromRgb128(rgb: Uint8Array, aspect: number): QueryImage {
  if (rgb.length !== IMAGE_SIDE * IMAGE_SIDE * 3) throw new RangeError(`expected ${IMAGE_SIDE}x${IMAGE_SIDE} RGB, got ${rgb.length} bytes`);
  const a = Number.isFinite(aspect) && aspect > 0 ? aspect : 1;
  return { rgb: { data: rgb, width: IMAGE_SIDE, height: IMAGE_SIDE }, aspect: a };
}

/**
 * A stand-in QueryImage drawn from a stored grey thumbnail (for checks when the query is
 * a stored image): the thumbnail stretched back to 128x128, grey in all three channels.
 */
export function queryFromThumbnail(thumb: GreyImage, aspect: number): QueryImage {
  const rgb = new Uint8Array(thumb.width * thumb.height * 3);
  for (let i = 0; i < thumb.data.length; i++) rgb.fill(thumb.data[i], i * 3, i * 3 + 3);
  const small: RgbImage = { data: rgb, width: thumb.width, height: thumb.height };
  const big = warpRgb(small, identityMap(thumb.width, thumb.height), IMAGE_SIDE, IMAGE_SIDE, [255, 255, 255]);
  return queryFromRgb128(big.data, aspect);
}
