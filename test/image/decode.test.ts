import { readFileSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import sharp, { type Sharp } from 'sharp';
import { describe, expect, it } from 'vitest';
import { decodeToRgb128 } from '../../src/image/decode.ts';
import { ImageError } from '../../src/image/errors.ts';
import { original } from '../helpers/corpus.ts';

const RGB_BYTES = 128 * 128 * 3;

/** A 64x40 image, left half red and right half blue: orientation is visible in it. */
function halves(): Sharp {
  const w = 64, h = 40;
  const px = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) px.set(x < w / 2 ? [255, 0, 0] : [0, 0, 255], (y * w + x) * 3);
  return sharp(px, { raw: { width: w, height: h, channels: 3 } });
}

function pixel(rgb: Uint8Array, x: number, y: number): number[] {
  const o = (y * 128 + x) * 3;
  return [rgb[o], rgb[o + 1], rgb[o + 2]];
}

function expectClose(actual: number[], expected: number[], tolerance = 40): void {
  actual.forEach((v, i) => expect(Math.abs(v - expected[i]), `${actual} vs ${expected}`).toBeLessThanOrEqual(tolerance));
}

async function expectImageError(input: Uint8Array, kind: ImageError['kind'], limits?: Parameters<typeof decodeToRgb128>[1]): Promise<ImageError> {
  try {
    await decodeToRgb128(input, limits);
  } catch (err) {
    expect(err).toBeInstanceOf(ImageError);
    expect((err as ImageError).kind).toBe(kind);
    expect((err as ImageError).message.length).toBeGreaterThan(20);
    return err as ImageError;
  }
  throw new Error('expected an ImageError');
}

describe('decodeToRgb128: formats', () => {
  const formats: Array<[string, () => Promise<Buffer>]> = [
    ['baseline JPEG', () => halves().jpeg({ quality: 95 }).toBuffer()],
    ['progressive JPEG', () => halves().jpeg({ quality: 95, progressive: true }).toBuffer()],
    ['CMYK JPEG', () => halves().toColourspace('cmyk').jpeg({ quality: 95 }).toBuffer()],
    ['8-bit PNG', () => halves().png().toBuffer()],
    ['16-bit PNG', () => halves().toColourspace('rgb16').png().toBuffer()],
    ['palette PNG', () => halves().png({ palette: true, colours: 4 }).toBuffer()],
    ['WebP', () => halves().webp({ lossless: true }).toBuffer()],
    ['AVIF', () => halves().avif({ lossless: true }).toBuffer()],
    ['TIFF', () => halves().tiff().toBuffer()],
    ['GIF', () => halves().gif().toBuffer()],
    ['SVG', async () => Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="64" height="40"><rect width="32" height="40" fill="#f00"/><rect x="32" width="32" height="40" fill="#00f"/></svg>')],
  ];
  for (const [name, make] of formats) {
    it(`decodes ${name} to 128x128 RGB and reports the original size`, async () => {
      const decoded = await decodeToRgb128(await make());
      expect(decoded.rgb.length).toBe(RGB_BYTES);
      expect([decoded.width, decoded.height]).toEqual([64, 40]);
      const [left, right] = [pixel(decoded.rgb, 10, 64), pixel(decoded.rgb, 117, 64)];
      if (name.includes('CMYK')) {
        // Pure RGB blue is outside the CMYK gamut: check which colour dominates instead.
        expect(left[0] - left[2], `${left}`).toBeGreaterThan(100);
        expect(right[2] - right[0], `${right}`).toBeGreaterThan(60);
      } else {
        expectClose(left, [255, 0, 0]);
        expectClose(right, [0, 0, 255]);
      }
    });
  }

  it('decodes BMP (written by hand: sharp cannot write it)', async () => {
    const w = 4, h = 2, row = 12;
    const bmp = Buffer.alloc(54 + row * h);
    bmp.write('BM', 0);
    bmp.writeUInt32LE(bmp.length, 2);
    bmp.writeUInt32LE(54, 10);
    bmp.writeUInt32LE(40, 14);
    bmp.writeInt32LE(w, 18);
    bmp.writeInt32LE(h, 22);
    bmp.writeUInt16LE(1, 26);
    bmp.writeUInt16LE(24, 28);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) bmp.set([0, 255, 0], 54 + y * row + x * 3);
    let decoded;
    try {
      decoded = await decodeToRgb128(bmp);
    } catch (err) {
      // This libvips build may lack a BMP loader; then the refusal must be a clear ImageError.
      expect(err).toBeInstanceOf(ImageError);
      return;
    }
    expect([decoded.width, decoded.height]).toEqual([4, 2]);
    expectClose(pixel(decoded.rgb, 64, 64), [0, 255, 0]);
  });

  it('uses the first frame of an animated GIF', async () => {
    const frame = (colour: number[]) => Buffer.alloc(16 * 16 * 3).map((_, i) => colour[i % 3]);
    const pages = Buffer.concat([frame([255, 0, 0]), frame([0, 255, 0])]);
    const gif = await sharp(pages, { raw: { width: 16, height: 32, channels: 3, pageHeight: 16 } }).gif().toBuffer();
    expect((await sharp(gif).metadata()).pages).toBe(2);
    const decoded = await decodeToRgb128(gif);
    expect([decoded.width, decoded.height]).toEqual([16, 16]);
    expectClose(pixel(decoded.rgb, 64, 64), [255, 0, 0]);
  });

  it('flattens transparency on white', async () => {
    const png = await sharp({ create: { width: 20, height: 20, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0 } } }).png().toBuffer();
    const decoded = await decodeToRgb128(png);
    expect(pixel(decoded.rgb, 0, 0)).toEqual([255, 255, 255]);
    expect(pixel(decoded.rgb, 127, 127)).toEqual([255, 255, 255]);
  });

  it('applies EXIF orientation: size reported as displayed, pixels rotated', async () => {
    const plain = await halves().jpeg({ quality: 95 }).toBuffer();
    // Orientation 6: the stored image is shown rotated 90° clockwise.
    const tagged = await halves().jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toBuffer();
    expect((await sharp(tagged).metadata()).orientation).toBe(6);
    const decoded = await decodeToRgb128(tagged);
    expect([decoded.width, decoded.height]).toEqual([40, 64]);
    // Rotated clockwise, the red left half ends up on top.
    expectClose(pixel(decoded.rgb, 64, 10), [255, 0, 0]);
    expectClose(pixel(decoded.rgb, 64, 117), [0, 0, 255]);
    const unrotated = await decodeToRgb128(plain);
    expect(Buffer.from(decoded.rgb).equals(Buffer.from(unrotated.rgb))).toBe(false);
  });

  it('ignores the aspect ratio: a 512x256 image fills the whole 128x128', async () => {
    const wide = await sharp({ create: { width: 512, height: 256, channels: 3, background: '#00ff00' } }).png().toBuffer();
    const decoded = await decodeToRgb128(wide);
    expect(pixel(decoded.rgb, 0, 0)).toEqual([0, 255, 0]);
    expect(pixel(decoded.rgb, 127, 127)).toEqual([0, 255, 0]);
  });
});

describe('decodeToRgb128: bad input', () => {
  it('zero bytes', async () => {
    await expectImageError(new Uint8Array(0), 'empty');
  });

  it('random bytes and a text file', async () => {
    await expectImageError(Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 7919) % 256)), 'undecodable');
    await expectImageError(readFileSync('/etc/hostname'), 'undecodable');
  });

  it('a truncated JPEG and a truncated PNG', async () => {
    const jpeg = original(8);
    await expectImageError(jpeg.subarray(0, jpeg.length >> 1), 'undecodable');
    const png = await sharp(jpeg).png().toBuffer();
    await expectImageError(png.subarray(0, png.length >> 1), 'undecodable');
  });

  it('input over the byte limit', async () => {
    const err = await expectImageError(original(1), 'too-large', { maxInputBytes: 1000, maxPixels: 1e8 });
    expect(err.message).toContain('1000');
  });

  it('a decompression bomb is refused from its header, before decoding', async () => {
    // A real PNG whose header claims 20000x20000: all a decoder has to go by up front.
    const bomb = await sharp({ create: { width: 1, height: 1, channels: 3, background: '#000' } }).png().toBuffer();
    bomb.writeUInt32BE(20_000, 16);
    bomb.writeUInt32BE(20_000, 20);
    bomb.writeUInt32BE(crc32(bomb.subarray(12, 29)), 29);
    expect((await sharp(bomb, { limitInputPixels: false }).metadata()).width).toBe(20_000);
    const started = process.hrtime.bigint();
    const err = await expectImageError(bomb, 'too-many-pixels', { maxInputBytes: 1e8, maxPixels: 50_000_000 });
    expect(err.message).toContain('20000x20000');
    expect(Number(process.hrtime.bigint() - started) / 1e6).toBeLessThan(2000);
  });
});
