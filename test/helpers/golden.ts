import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { GOLDEN_DIR } from './paths.ts';

export interface GoldenImage {
  file: string;
  rgb_sha256: string;
  avgl: [number, number, number];
  sig: [number[], number[], number[]];
}
export type GoldenMode = 'sketch0_fast0' | 'sketch1_fast0' | 'sketch0_fast1' | 'sketch1_fast1';
export interface GoldenRanking {
  query: number;
  ranked: Array<[number, number, number]>;
}

export const goldenImages: GoldenImage[] = JSON.parse(readFileSync(join(GOLDEN_DIR, 'signatures.json'), 'utf8')).images;
export const goldenScores: Record<GoldenMode, GoldenRanking[]> = JSON.parse(
  readFileSync(join(GOLDEN_DIR, 'scores.json'), 'utf8'),
).modes;

/** The exact 128x128 RGB bytes of a golden input (no resize). */
export async function goldenPixels(image: GoldenImage): Promise<Uint8Array> {
  const data = await sharp(join(GOLDEN_DIR, image.file)).removeAlpha().raw().toBuffer();
  return new Uint8Array(data);
}
