import { crc32, deflateSync } from 'node:zlib';
import sharp, { type Sharp } from 'sharp';
import { describe, expect, it } from 'vitest';
import { decodeToRgb128, type DecodeLimits } from '../../src/image/decode.ts';
import { ImageError } from '../../src/errors.ts';
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

function maxDiff(a: Uint8Array, b: Uint8Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

async function expectImageError(input: Uint8Array, kind: ImageError['kind'], limits?: DecodeLimits): Promise<ImageError> {
  let result: unknown;
  try {
    result = await decodeToRgb128(input, limits);
  } catch (err) {
    expect(err).toBeInstanceOf(ImageError);
    expect((err as ImageError).kind).toBe(kind);
    // A sentence a person can act on, not an empty or one-word message.
    expect((err as ImageError).message.length).toBeGreaterThan(20);
    return err as ImageError;
  }
  throw new Error(`expected an ImageError of kind ${kind}, got a result: ${JSON.stringify(result).slice(0, 80)}`);
}

/** A PNG chunk: length, type, data, CRC of type+data. */
function pngChunk(type: string, data: Buffer): Buffer {
  const chunk = Buffer.alloc(12 + data.length);
  chunk.writeUInt32BE(data.length, 0);
  chunk.write(type, 4, 'latin1');
  data.copy(chunk, 8);
  chunk.writeUInt32BE(crc32(chunk.subarray(4, 8 + data.length)), 8 + data.length);
  return chunk;
}

describe('decodeToRgb128: formats', () => {
  /** [name, encoder, what sharp's metadata must say about the fixture (so it really is that variant)] */
  const formats: Array<[string, () => Promise<Buffer>, Record<string, unknown>]> = [
    ['baseline JPEG', () => halves().jpeg({ quality: 95 }).toBuffer(), { format: 'jpeg', isProgressive: false }],
    ['progressive JPEG', () => halves().jpeg({ quality: 95, progressive: true }).toBuffer(), { format: 'jpeg', isProgressive: true }],
    ['CMYK JPEG', () => halves().toColourspace('cmyk').jpeg({ quality: 95 }).toBuffer(), { format: 'jpeg', space: 'cmyk', channels: 4 }],
    ['8-bit PNG', () => halves().png().toBuffer(), { format: 'png', depth: 'uchar', isPalette: false }],
    ['16-bit PNG', () => halves().toColourspace('rgb16').png().toBuffer(), { format: 'png', depth: 'ushort', bitsPerSample: 16 }],
    ['palette PNG', () => halves().png({ palette: true, colours: 4 }).toBuffer(), { format: 'png', isPalette: true }],
    ['interlaced PNG', () => halves().png({ progressive: true }).toBuffer(), { format: 'png', isProgressive: true }],
    ['WebP', () => halves().webp({ lossless: true }).toBuffer(), { format: 'webp' }],
    ['lossy WebP', () => halves().webp({ quality: 90 }).toBuffer(), { format: 'webp' }],
    ['AVIF', () => halves().avif({ lossless: true }).toBuffer(), { format: 'heif', compression: 'av1' }],
    ['TIFF', () => halves().tiff().toBuffer(), { format: 'tiff' }],
    ['LZW TIFF', () => halves().tiff({ compression: 'lzw' }).toBuffer(), { format: 'tiff' }],
    ['GIF', () => halves().gif().toBuffer(), { format: 'gif' }],
    [
      'SVG',
      async () =>
        Buffer.from(
          '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="40"><rect width="32" height="40" fill="#f00"/><rect x="32" width="32" height="40" fill="#00f"/></svg>',
        ),
      { format: 'svg' },
    ],
  ];
  for (const [name, make, expectedMeta] of formats) {
    it(`decodes ${name} to 128x128 RGB and reports the original size`, async () => {
      const input = await make();
      expect(await sharp(input).metadata()).toMatchObject(expectedMeta);
      const decoded = await decodeToRgb128(input);
      expect(decoded.rgb).toBeInstanceOf(Uint8Array);
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

  it('decodes greyscale and greyscale+alpha PNG to three equal channels', async () => {
    const grey = await sharp({ create: { width: 30, height: 10, channels: 3, background: '#808080' } }).toColourspace('b-w').png().toBuffer();
    expect((await sharp(grey).metadata()).channels).toBe(1);
    const decoded = await decodeToRgb128(grey);
    expect(decoded.rgb.length).toBe(RGB_BYTES);
    expectClose(pixel(decoded.rgb, 64, 64), [128, 128, 128], 2);
  });

  it('BMP: this sharp build has no BMP loader, so a BMP is refused with a clear ImageError', async () => {
    // A hand-written 4x2 24-bit BMP (sharp cannot write BMP).
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
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) bmp.set([0, 255, 0], 54 + y * row + x * 3); // B,G,R: green
    const canRead = Object.keys(sharp.format).includes('magick') && sharp.format.magick.input.buffer;
    if (!canRead) {
      // sharp's prebuilt libvips has no ImageMagick loader, hence no BMP: DESIGN says "BMP where sharp can".
      const err = await expectImageError(bmp, 'undecodable');
      expect(err.message).toContain('not an image');
      return;
    }
    const decoded = await decodeToRgb128(bmp);
    expect([decoded.width, decoded.height]).toEqual([4, 2]);
    expectClose(pixel(decoded.rgb, 64, 64), [0, 255, 0]);
  });

  it('uses the first frame of an animated GIF', async () => {
    const frame = (colour: number[]) => Buffer.alloc(16 * 16 * 3).map((_, i) => colour[i % 3]);
    const pages = Buffer.concat([frame([255, 0, 0]), frame([0, 255, 0])]);
    const gif = await sharp(pages, { raw: { width: 16, height: 32, channels: 3, pageHeight: 16 } }).gif().toBuffer();
    expect((await sharp(gif).metadata()).pages).toBe(2);
    const decoded = await decodeToRgb128(gif);
    expect(decoded.rgb.length).toBe(RGB_BYTES);
    expect([decoded.width, decoded.height]).toEqual([16, 16]);
    expectClose(pixel(decoded.rgb, 0, 0), [255, 0, 0], 8);
    expectClose(pixel(decoded.rgb, 127, 127), [255, 0, 0], 8);
  });

  it('uses the first frame of an animated WebP', async () => {
    const frame = (colour: number[]) => Buffer.alloc(16 * 16 * 3).map((_, i) => colour[i % 3]);
    const pages = Buffer.concat([frame([0, 0, 255]), frame([255, 255, 0])]);
    const webp = await sharp(pages, { raw: { width: 16, height: 32, channels: 3, pageHeight: 16 } }).webp({ lossless: true }).toBuffer();
    expect((await sharp(webp).metadata()).pages).toBe(2);
    const decoded = await decodeToRgb128(webp);
    expect([decoded.width, decoded.height]).toEqual([16, 16]);
    expectClose(pixel(decoded.rgb, 64, 64), [0, 0, 255], 8);
  });

  it('flattens transparency on white', async () => {
    const png = await sharp({ create: { width: 20, height: 20, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0 } } }).png().toBuffer();
    expect((await sharp(png).metadata()).hasAlpha).toBe(true);
    const decoded = await decodeToRgb128(png);
    expect(decoded.rgb.length).toBe(RGB_BYTES);
    for (const [x, y] of [[0, 0], [64, 64], [127, 127]]) expect(pixel(decoded.rgb, x, y)).toEqual([255, 255, 255]);
  });

  it('blends half-transparent pixels with white (not black), also for 16-bit and palette PNG', async () => {
    const base = () => sharp({ create: { width: 20, height: 20, channels: 4, background: { r: 255, g: 0, b: 0, alpha: 0.5 } } });
    for (const png of [await base().png().toBuffer(), await base().toColourspace('rgb16').png().toBuffer(), await base().webp({ lossless: true }).toBuffer()]) {
      const decoded = await decodeToRgb128(png);
      // 50% red over white = (255, ~128, ~128); over black it would be (~128, 0, 0).
      expectClose(pixel(decoded.rgb, 64, 64), [255, 128, 128], 4);
    }
    const transparentPalette = await sharp({ create: { width: 20, height: 20, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0 } } })
      .png({ palette: true })
      .toBuffer();
    expect(pixel((await decodeToRgb128(transparentPalette)).rgb, 10, 10)).toEqual([255, 255, 255]);
  });

  describe('EXIF orientation', () => {
    // A 48x32 stored image, a smooth gradient different along each axis and each
    // channel, so any wrong flip or turn shows.
    const W = 48, H = 32;
    const stored = Buffer.alloc(W * H * 3);
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) stored.set([x * 5, y * 7, 255 - x * 3 - y * 2], (y * W + x) * 3);
    const at = (x: number, y: number) => stored.subarray((y * W + x) * 3, (y * W + x) * 3 + 3);

    /** The image as displayed for each EXIF orientation, computed by hand from the EXIF definitions. */
    function displayed(o: number): { px: Buffer; width: number; height: number } {
      const swapped = o >= 5;
      const [width, height] = swapped ? [H, W] : [W, H];
      const px = Buffer.alloc(W * H * 3);
      const source: Record<number, (x: number, y: number) => [number, number]> = {
        1: (x, y) => [x, y],
        2: (x, y) => [W - 1 - x, y], // mirrored horizontally
        3: (x, y) => [W - 1 - x, H - 1 - y], // turned 180°
        4: (x, y) => [x, H - 1 - y], // mirrored vertically
        5: (x, y) => [y, x], // transposed
        6: (x, y) => [y, H - 1 - x], // turned 90° clockwise
        7: (x, y) => [W - 1 - y, H - 1 - x], // transversed
        8: (x, y) => [W - 1 - y, x], // turned 90° anticlockwise
      };
      for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) px.set(at(...source[o](x, y)), (y * width + x) * 3);
      return { px, width, height };
    }

    /** decodeToRgb128 of each displayed image, saved untagged. */
    const references = (async () => {
      const out: Uint8Array[] = [];
      for (let o = 1; o <= 8; o++) {
        const view = displayed(o);
        out[o] = (await decodeToRgb128(await sharp(view.px, { raw: { width: view.width, height: view.height, channels: 3 } }).png().toBuffer())).rgb;
      }
      return out;
    })();

    for (let o = 1; o <= 8; o++) {
      it(`orientation ${o} (PNG): size as displayed, pixels equal the hand-turned image`, async () => {
        const tagged = await sharp(stored, { raw: { width: W, height: H, channels: 3 } }).withMetadata({ orientation: o }).png().toBuffer();
        expect((await sharp(tagged).metadata()).orientation).toBe(o);
        const view = displayed(o);
        const got = await decodeToRgb128(tagged);
        expect([got.width, got.height]).toEqual([view.width, view.height]);
        expect(got.rgb.length).toBe(RGB_BYTES);
        // Not byte-exact: sharp resizes before it turns, so the resampling grid is turned
        // too (a sub-pixel shift). On a smooth gradient that stays within 0-3 levels,
        // while every other orientation is off by far more.
        const refs = await references;
        const diffs = refs.map((ref, r) => (ref ? maxDiff(got.rgb, ref) : Infinity));
        expect(diffs[o], `max difference to each orientation's reference: ${diffs.slice(1)}`).toBeLessThanOrEqual(6);
        for (let other = 1; other <= 8; other++) if (other !== o) expect(diffs[other]).toBeGreaterThan(40);
      });
    }

    it('orientation 6 on a JPEG: width and height swapped, pixels match the rotated image', async () => {
      const tagged = await halves().jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toBuffer();
      expect((await sharp(tagged).metadata()).orientation).toBe(6);
      const decoded = await decodeToRgb128(tagged);
      expect([decoded.width, decoded.height]).toEqual([40, 64]);
      // Turned clockwise, the red left half ends up on top.
      expectClose(pixel(decoded.rgb, 64, 10), [255, 0, 0]);
      expectClose(pixel(decoded.rgb, 64, 117), [0, 0, 255]);
      // Same JPEG pixels turned by sharp before encoding (no tag): close, up to JPEG noise.
      const turned = await decodeToRgb128(await halves().rotate(90).jpeg({ quality: 95 }).toBuffer());
      expect([turned.width, turned.height]).toEqual([40, 64]);
      expect(maxDiff(decoded.rgb, turned.rgb)).toBeLessThanOrEqual(48);
      const unturned = await decodeToRgb128(await halves().jpeg({ quality: 95 }).toBuffer());
      expect(maxDiff(decoded.rgb, unturned.rgb)).toBeGreaterThan(200);
    });

    it('AVIF carries orientation as irot/imir boxes, applied by the decoder: size as displayed', async () => {
      const tagged = await sharp(stored, { raw: { width: W, height: H, channels: 3 } }).withMetadata({ orientation: 6 }).avif({ lossless: true }).toBuffer();
      const decoded = await decodeToRgb128(tagged);
      expect([decoded.width, decoded.height]).toEqual([H, W]);
      const view = displayed(6);
      const want = await decodeToRgb128(await sharp(view.px, { raw: { width: view.width, height: view.height, channels: 3 } }).png().toBuffer());
      expect(maxDiff(decoded.rgb, want.rgb)).toBeLessThanOrEqual(8);
    });
  });

  it('ignores the aspect ratio: a 512x256 image fills the whole 128x128', async () => {
    const wide = await sharp({ create: { width: 512, height: 256, channels: 3, background: '#00ff00' } }).png().toBuffer();
    const decoded = await decodeToRgb128(wide);
    expect([decoded.width, decoded.height]).toEqual([512, 256]);
    expect(pixel(decoded.rgb, 0, 0)).toEqual([0, 255, 0]);
    expect(pixel(decoded.rgb, 127, 127)).toEqual([0, 255, 0]);
  });

  it('always gives exactly 128x128x3 bytes: 1x1, 1x3000, 3000x1, 128x128 and a real photo', async () => {
    for (const [width, height] of [[1, 1], [1, 3000], [3000, 1], [128, 128]]) {
      const png = await sharp({ create: { width, height, channels: 3, background: '#123456' } }).png().toBuffer();
      const decoded = await decodeToRgb128(png);
      expect(decoded.rgb.length).toBe(RGB_BYTES);
      expect([decoded.width, decoded.height]).toEqual([width, height]);
      expectClose(pixel(decoded.rgb, 64, 64), [0x12, 0x34, 0x56], 1);
    }
    const photo = await decodeToRgb128(original(8));
    expect(photo.rgb.length).toBe(RGB_BYTES);
    expect(photo.width * photo.height).toBeGreaterThan(0);
  });
});

describe('decodeToRgb128: bad input', () => {
  it('zero bytes', async () => {
    const err = await expectImageError(new Uint8Array(0), 'empty');
    expect(err.message).toContain('0 bytes');
  });

  it('random bytes', async () => {
    let s = 12345;
    const random = Buffer.alloc(5000).map(() => ((s = (s * 1103515245 + 12345) >>> 0) >>> 24));
    const err = await expectImageError(random, 'undecodable');
    expect(err.message).toMatch(/could not be decoded .*not an image/);
  });

  it('a text file', async () => {
    await expectImageError(Buffer.from('This is a shopping list, not an image.\nmilk\neggs\n'), 'undecodable');
    // Text that starts like an SVG but is not valid XML.
    await expectImageError(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect'), 'undecodable');
  });

  it('a truncated JPEG (baseline and progressive, cut at 50%, 90% and 99%) is refused, not decoded to partly grey pixels', async () => {
    const baseline = original(8);
    const progressive = await sharp(baseline).jpeg({ progressive: true }).toBuffer();
    for (const jpeg of [baseline, progressive]) {
      for (const keep of [0.5, 0.9, 0.99]) {
        const cut = jpeg.subarray(0, Math.floor(jpeg.length * keep));
        // sharp's failOn: 'none' would decode these silently, filling the missing part with grey.
        expect((await sharp(cut, { failOn: 'none' }).raw().toBuffer()).length).toBeGreaterThan(0);
        const err = await expectImageError(cut, 'undecodable');
        expect(err.message).toContain('truncated');
      }
    }
  });

  it('a truncated PNG (plain and interlaced) is refused', async () => {
    for (const progressive of [false, true]) {
      const png = await sharp(original(8)).png({ progressive }).toBuffer();
      for (const keep of [0.5, 0.99]) await expectImageError(png.subarray(0, Math.floor(png.length * keep)), 'undecodable');
    }
  });

  it('truncated GIF, WebP, TIFF and AVIF are refused', async () => {
    const photo = sharp(original(8)).resize(200);
    for (const bytes of [await photo.clone().gif().toBuffer(), await photo.clone().webp().toBuffer(), await photo.clone().tiff().toBuffer(), await photo.clone().avif().toBuffer()]) {
      await expectImageError(bytes.subarray(0, bytes.length >> 1), 'undecodable');
    }
  });

  it('input over the byte limit', async () => {
    const photo = original(1);
    const err = await expectImageError(photo, 'too-large', { maxInputBytes: 1000, maxPixels: 1e8 });
    expect(err.message).toContain('1000');
    expect(err.message).toContain(String(photo.length));
    // Exactly at the limit is accepted.
    const atLimit = await decodeToRgb128(photo, { maxInputBytes: photo.length, maxPixels: 1e8 });
    expect(atLimit.rgb.length).toBe(RGB_BYTES);
  });

  it('a decompression bomb (valid 20000x20000 PNG, 76 KB) is refused from its header, before decoding', async () => {
    // A genuine, fully decodable 1-bit greyscale PNG, deflated by hand: sharp can make the
    // same from a `create` input, but that takes 5-20 s; this takes ~0.2 s and ~50 MB.
    const side = 20_000;
    const rowBytes = 1 + side / 8;
    const ihdr = Buffer.alloc(13);
    ihdr.writeUInt32BE(side, 0);
    ihdr.writeUInt32BE(side, 4);
    ihdr[8] = 1; // bit depth
    ihdr[9] = 0; // greyscale
    const raw = Buffer.alloc(rowBytes * side, 0xff);
    for (let y = 0; y < side; y++) raw[y * rowBytes] = 0; // filter: none
    const bomb = Buffer.concat([
      Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]),
      pngChunk('IHDR', ihdr),
      pngChunk('IDAT', deflateSync(raw, { level: 9 })),
      pngChunk('IEND', Buffer.alloc(0)),
    ]);
    expect(bomb.length).toBeLessThan(200_000);
    const meta = await sharp(bomb, { limitInputPixels: false }).metadata();
    expect([meta.width, meta.height]).toEqual([side, side]);
    // Valid to the last row (a corrupt file would be refused for a different reason).
    const corner = await sharp(bomb, { limitInputPixels: false, failOn: 'error' }).extract({ left: side - 2, top: side - 2, width: 2, height: 2 }).raw().toBuffer();
    expect(corner.every((v) => v === 255)).toBe(true);

    const started = process.hrtime.bigint();
    const err = await expectImageError(bomb, 'too-many-pixels', { maxInputBytes: 1e8, maxPixels: 50_000_000 });
    expect(Number(process.hrtime.bigint() - started) / 1e6).toBeLessThan(1000);
    expect(err.message).toContain('20000x20000');
    expect(err.message).toContain('50000000');
    // The default limit (100 M pixels) refuses it too.
    await expectImageError(bomb, 'too-many-pixels');
  });

  it('a header claiming 20000x20000 over a 1x1 body is refused by the pixel limit too', async () => {
    const forged = await sharp({ create: { width: 1, height: 1, channels: 3, background: '#000' } }).png().toBuffer();
    forged.writeUInt32BE(20_000, 16);
    forged.writeUInt32BE(20_000, 20);
    forged.writeUInt32BE(crc32(forged.subarray(12, 29)), 29);
    await expectImageError(forged, 'too-many-pixels', { maxInputBytes: 1e8, maxPixels: 50_000_000 });
    // Under a limit it passes, the decode then finds the missing rows.
    await expectImageError(forged, 'undecodable', { maxInputBytes: 1e8, maxPixels: 500_000_000 });
  });

  it('an SVG declaring a huge canvas is refused by the pixel limit', async () => {
    const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="30000" height="30000"><rect width="10" height="10"/></svg>');
    const err = await expectImageError(svg, 'too-many-pixels');
    expect(err.message).toContain('30000x30000');
  });
});
