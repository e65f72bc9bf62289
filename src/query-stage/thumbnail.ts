/**
 * The small grey thumbnail stored with every image at ingest, which the check compares
 * a query with. It is made from the same 128x128 RGB the signature is computed from
 * (the whole image, aspect ratio ignored), so ingest pays no second decode.
 */
import { IMAGE_SIDE } from '../signature/types.ts';
import { shrinkGrey, toGrey, type GreyImage } from './raster.ts';

/** Thumbnail size: 32 x 48 grey bytes = 1,536 bytes an image. */
export const THUMB_WIDTH = 32;
export const THUMB_HEIGHT = 48;
export const THUMB_BYTES = THUMB_WIDTH * THUMB_HEIGHT;

/**
 * The stored thumbnail of an image from its 128x128 RGB (R,G,B interleaved, the bytes
 * signatureFromRgb takes): Rec. 601 luma, area-averaged to THUMB_WIDTH x THUMB_HEIGHT,
 * one byte a pixel, row-major.
 */
export function thumbnailOf(rgb128: Uint8Array, width = THUMB_WIDTH, height = THUMB_HEIGHT): Uint8Array {
  if (rgb128.length !== IMAGE_SIDE * IMAGE_SIDE * 3) {
    throw new RangeError(`thumbnailOf takes ${IMAGE_SIDE}x${IMAGE_SIDE} RGB (${IMAGE_SIDE * IMAGE_SIDE * 3} bytes), got ${rgb128.length} bytes`);
  }
  const grey = toGrey({ data: rgb128, width: IMAGE_SIDE, height: IMAGE_SIDE });
  const small = shrinkGrey(grey, width, height);
  const out = new Uint8Array(width * height);
  for (let i = 0; i < out.length; i++) out[i] = Math.round(Math.max(0, Math.min(255, small.data[i])));
  return out;
}

/** A stored thumbnail as a grey image (for the check), or undefined when it has the wrong size. */
export function thumbnailImage(bytes: Uint8Array, width = THUMB_WIDTH, height = THUMB_HEIGHT): GreyImage | undefined {
  if (bytes.length !== width * height) return undefined;
  return { data: Float32Array.from(bytes), width, height };
}
