/**
 * Realistic signature sets for benchmarks: signatures of the dev corpus photos, of
 * image-level variants of them (crops, shifts, flips, recolourings, noise, mixes of two
 * photos), and, to reach a million cheaply, signature-level perturbations of those
 * variants that keep the real distribution of coefficients (and so of posting-list
 * lengths). Deterministic for a given seed.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { CHANNELS, COEFS_PER_CHANNEL, IMAGE_SIDE, PIXELS, SIGNATURE_LENGTH, type Signature, type SignatureEngine } from '../../src/signature/types.ts';
import { prng } from './prng.ts';

export const DEFAULT_CORPUS_DIR = '/work/shared/corpus/dev/originals';
/** Side of the RGB the corpus photos are first decoded to, so crops keep detail. */
const SOURCE_SIDE = 256;

/**
 * Signatures in flat arrays (no per-image objects): coefs count*120, avgl count*3, and
 * for each the index (in the corpus source list) of the photo it was made from, or -1.
 */
export class SignatureSet {
  constructor(
    readonly coefs: Int32Array,
    readonly avgls: Float64Array,
    readonly count: number,
    readonly origin = new Int32Array(count).fill(-1),
  ) {}

  static allocate(count: number): SignatureSet {
    return new SignatureSet(new Int32Array(count * SIGNATURE_LENGTH), new Float64Array(count * CHANNELS), count);
  }

  /** A view (no copy) of signature i. */
  at(i: number): Signature {
    return {
      coefs: this.coefs.subarray(i * SIGNATURE_LENGTH, (i + 1) * SIGNATURE_LENGTH),
      avgl: this.avgls.subarray(i * CHANNELS, (i + 1) * CHANNELS),
    };
  }

  set(i: number, sig: Signature): void {
    this.coefs.set(sig.coefs, i * SIGNATURE_LENGTH);
    this.avgls.set(sig.avgl, i * CHANNELS);
  }
}


function gaussian(random: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
}

/** Standard normal samples, so per-pixel noise costs a lookup. */
const GAUSSIAN_TABLE = (() => {
  const random = prng(0x9e3779b9);
  return Float64Array.from({ length: 8192 }, () => gaussian(random));
})();

/** The corpus photos decoded (EXIF-rotated, sRGB) to SOURCE_SIDE² RGB, aspect ignored. */
/** The corpus photos in the order loadCorpusSources returns them. */
export function corpusFiles(dir = DEFAULT_CORPUS_DIR, limit = Infinity): string[] {
  return readdirSync(dir).filter((f) => /\.(jpe?g|png|webp)$/i.test(f)).sort().slice(0, limit);
}

export async function loadCorpusSources(dir = DEFAULT_CORPUS_DIR, limit = Infinity): Promise<Uint8Array[]> {
  const files = corpusFiles(dir, limit);
  const out: Uint8Array[] = [];
  for (const f of files) {
    const buf = await sharp(join(dir, f))
      .rotate()
      .flatten({ background: '#ffffff' })
      .toColourspace('srgb')
      .resize(SOURCE_SIDE, SOURCE_SIDE, { fit: 'fill', kernel: 'lanczos3' })
      .removeAlpha()
      .raw()
      .toBuffer();
    out.push(new Uint8Array(buf.buffer, buf.byteOffset, buf.length));
  }
  return out;
}

/** Box-averaged 2x shrink of a SOURCE_SIDE² image: the plain 128x128 version of a photo. */
export function shrinkSource(src: Uint8Array): Uint8Array {
  const out = new Uint8Array(PIXELS * 3);
  for (let y = 0; y < IMAGE_SIDE; y++) {
    for (let x = 0; x < IMAGE_SIDE; x++) {
      for (let c = 0; c < 3; c++) {
        const a = ((2 * y) * SOURCE_SIDE + 2 * x) * 3 + c;
        const b = a + SOURCE_SIDE * 3;
        out[(y * IMAGE_SIDE + x) * 3 + c] = (src[a] + src[a + 3] + src[b] + src[b + 3] + 2) >> 2;
      }
    }
  }
  return out;
}

/**
 * One random variant of a photo as 128x128 RGB: a random crop (60–100% of each side,
 * anywhere) resampled bilinearly, then with some probability a horizontal flip, a
 * recolouring (per-channel gain, offset and gamma), a blend with another photo
 * (alpha 0.2–0.6) and additive noise.
 */
export function imageVariant(src: Uint8Array, other: Uint8Array, random: () => number, out = new Uint8Array(PIXELS * 3)): Uint8Array {
  const cw = SOURCE_SIDE * (0.6 + 0.4 * random());
  const ch = SOURCE_SIDE * (0.6 + 0.4 * random());
  const x0 = random() * (SOURCE_SIDE - cw);
  const y0 = random() * (SOURCE_SIDE - ch);
  const flip = random() < 0.5;
  const recolour = random() < 0.5;
  const gain = [0, 1, 2].map(() => (recolour ? 0.7 + 0.6 * random() : 1));
  const offset = [0, 1, 2].map(() => (recolour ? (random() - 0.5) * 60 : 0));
  const gamma = recolour ? 0.7 + 0.7 * random() : 1;
  const mix = random() < 0.25 ? 0.2 + 0.4 * random() : 0;
  const noise = random() < 0.3 ? random() * 12 : 0;
  // Recolouring as one lookup table per channel (on the rounded value).
  const lut = recolour
    ? [0, 1, 2].map((c) => Float64Array.from({ length: 256 }, (_, v) => 255 * Math.pow(v / 255, gamma) * gain[c] + offset[c]))
    : undefined;
  const sx = cw / IMAGE_SIDE, sy = ch / IMAGE_SIDE;
  for (let y = 0; y < IMAGE_SIDE; y++) {
    const fy = Math.min(SOURCE_SIDE - 1.001, y0 + (y + 0.5) * sy - 0.5);
    const iy = Math.max(0, Math.floor(fy)), ty = Math.max(0, fy - iy);
    for (let x = 0; x < IMAGE_SIDE; x++) {
      const dx = flip ? IMAGE_SIDE - 1 - x : x;
      const fx = Math.min(SOURCE_SIDE - 1.001, x0 + (dx + 0.5) * sx - 0.5);
      const ix = Math.max(0, Math.floor(fx)), tx = Math.max(0, fx - ix);
      const p00 = (iy * SOURCE_SIDE + ix) * 3, p01 = p00 + 3, p10 = p00 + SOURCE_SIDE * 3, p11 = p10 + 3;
      const o = (y * IMAGE_SIDE + x) * 3;
      for (let c = 0; c < 3; c++) {
        let v =
          (src[p00 + c] * (1 - tx) + src[p01 + c] * tx) * (1 - ty) + (src[p10 + c] * (1 - tx) + src[p11 + c] * tx) * ty;
        if (mix > 0) v = v * (1 - mix) + other[((2 * y) * SOURCE_SIDE + 2 * x) * 3 + c] * mix;
        if (lut) v = lut[c][Math.round(v)];
        if (noise > 0) v += GAUSSIAN_TABLE[(random() * GAUSSIAN_TABLE.length) | 0] * noise;
        out[o + c] = v < 0 ? 0 : v > 255 ? 255 : v + 0.5;
      }
    }
  }
  return out;
}

/**
 * A cheap perturbation of a real signature: in each channel, 0–8 of the 40 indices are
 * replaced by indices taken from the same channel of other real signatures (so the
 * coefficient distribution stays that of real photos), and avgl is jittered (σ 0.01).
 */
export function perturbSignature(base: Signature, donors: SignatureSet, random: () => number, out: Signature): void {
  out.avgl[0] = base.avgl[0] + gaussian(random) * 0.01;
  out.avgl[1] = base.avgl[1] + gaussian(random) * 0.005;
  out.avgl[2] = base.avgl[2] + gaussian(random) * 0.005;
  for (let c = 0; c < CHANNELS; c++) {
    const off = c * COEFS_PER_CHANNEL;
    const list = out.coefs.subarray(off, off + COEFS_PER_CHANNEL);
    list.set(base.coefs.subarray(off, off + COEFS_PER_CHANNEL));
    const replace = Math.floor(random() * 9);
    for (let r = 0; r < replace; r++) {
      for (let attempt = 0; attempt < 8; attempt++) {
        const donor = Math.floor(random() * donors.count);
        const coef = donors.coefs[donor * SIGNATURE_LENGTH + off + Math.floor(random() * COEFS_PER_CHANNEL)];
        if (list.includes(coef) || list.includes(-coef)) continue;
        list[Math.floor(random() * COEFS_PER_CHANNEL)] = coef;
        break;
      }
    }
    if (replace > 0) list.sort();
  }
}

export interface VariantSignatureOptions {
  /** Signatures wanted in total. */
  count: number;
  /** How many of them are image-level variants (the rest are perturbations). */
  imageVariants: number;
  engine: SignatureEngine;
  seed?: number;
  /** Corpus sources from loadCorpusSources (loaded when absent). */
  sources?: Uint8Array[];
  onProgress?: (done: number, total: number) => void;
}

/**
 * `count` signatures: first the corpus photos themselves (128x128 shrink of each),
 * then image-level variants until `imageVariants`, then perturbations of those.
 * Image variants pick their photo and their blend partner uniformly.
 */
export async function variantSignatures(options: VariantSignatureOptions): Promise<SignatureSet> {
  const { count, engine } = options;
  const random = prng(options.seed ?? 1);
  const sources = options.sources ?? (await loadCorpusSources());
  const set = SignatureSet.allocate(count);
  const real = Math.min(count, Math.max(options.imageVariants, sources.length));
  let i = 0;
  for (; i < Math.min(sources.length, real); i++) {
    set.set(i, engine.signatureFromRgb(shrinkSource(sources[i])));
    set.origin[i] = i;
  }
  const rgb = new Uint8Array(PIXELS * 3);
  for (; i < real; i++) {
    const from = Math.floor(random() * sources.length);
    const other = sources[Math.floor(random() * sources.length)];
    set.set(i, engine.signatureFromRgb(imageVariant(sources[from], other, random, rgb)));
    set.origin[i] = from;
    if (i % 1000 === 0) options.onProgress?.(i, count);
  }
  const donors = new SignatureSet(set.coefs.subarray(0, real * SIGNATURE_LENGTH), set.avgls.subarray(0, real * CHANNELS), real);
  for (; i < count; i++) {
    const parent = Math.floor(random() * real);
    perturbSignature(set.at(parent), donors, random, set.at(i));
    set.origin[i] = set.origin[parent];
    if (i % 100_000 === 0) options.onProgress?.(i, count);
  }
  return set;
}
