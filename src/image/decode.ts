import type { default as Sharp } from 'sharp';
import { IMAGE_SIDE } from '../signature/types.ts';
import { ImageError } from '../errors.ts';
import { DEFAULT_DECODE_LIMITS, type DecodeLimits } from './limits.ts';

export { DEFAULT_DECODE_LIMITS, type DecodeLimits } from './limits.ts';

export interface DecodedImage {
  /** 128x128 RGB bytes, R,G,B interleaved. */
  rgb: Uint8Array;
  /** Size of the original image as displayed (after EXIF orientation). */
  width: number;
  height: number;
}

let sharpLoading: Promise<typeof Sharp> | undefined;

/**
 * sharp (libvips) takes 100-300 ms to load, most of a server's start: it is loaded on
 * the first decode, or by a server once it listens, so queries by id are answered first.
 */
export function loadSharp(): Promise<typeof Sharp> {
  sharpLoading ??= import('sharp').then(({ default: sharp }) => {
    // sharp's memory cache only helps repeated file reads; a daemon decodes each blob once.
    sharp.cache(false);
    return sharp;
  });
  return sharpLoading;
}

/**
 * Decodes any image sharp reads to the 128x128 RGB the Haar transform needs: EXIF
 * orientation applied, alpha flattened on white, aspect ratio ignored. The shrink uses
 * sharp's antialiased (lanczos3) resampler rather than imgSeek's point sampling, which
 * makes signatures robust to rescaled and recompressed copies.
 */
export async function decodeToRgb128(input: Uint8Array, limits: DecodeLimits = DEFAULT_DECODE_LIMITS): Promise<DecodedImage> {
  if (input.length === 0) throw new ImageError('empty', 'the image is empty (0 bytes)');
  if (input.length > limits.maxInputBytes) {
    throw new ImageError('too-large', `the image is ${input.length} bytes; the limit is ${limits.maxInputBytes} bytes`);
  }
  const sharp = await loadSharp();
  let width: number;
  let height: number;
  try {
    const meta = await sharp(input, { limitInputPixels: false }).metadata();
    if (!meta.width || !meta.height) throw new Error('no dimensions');
    const swapped = (meta.orientation ?? 1) >= 5;
    width = swapped ? meta.height : meta.width;
    height = swapped ? meta.width : meta.height;
  } catch (err) {
    throw undecodable(err);
  }
  if (width * height > limits.maxPixels) {
    throw new ImageError(
      'too-many-pixels',
      `the image is ${width}x${height} = ${width * height} pixels; the limit is ${limits.maxPixels} pixels`,
    );
  }
  try {
    const rgb = await sharp(input, { limitInputPixels: limits.maxPixels, failOn: 'error', pages: 1 })
      .rotate()
      .flatten({ background: '#ffffff' })
      .toColourspace('srgb')
      .resize(IMAGE_SIDE, IMAGE_SIDE, { fit: 'fill', kernel: 'lanczos3' })
      .removeAlpha()
      .raw({ depth: 'uchar' })
      .toBuffer();
    if (rgb.length !== IMAGE_SIDE * IMAGE_SIDE * 3) throw new Error(`decoder returned ${rgb.length} bytes`);
    return { rgb: new Uint8Array(rgb.buffer, rgb.byteOffset, rgb.length), width, height };
  } catch (err) {
    throw undecodable(err);
  }
}

function undecodable(err: unknown): ImageError {
  const detail = err instanceof Error ? err.message.split('\n')[0] : String(err);
  return new ImageError('undecodable', `the image could not be decoded (corrupt, truncated or not an image): ${detail}`);
}
