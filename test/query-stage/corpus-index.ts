/**
 * A small index for the query-stage tests: every cards-dev original plus every eighth
 * dev photo as distractors (ids + DEV_ID_OFFSET), with the thumbnails ingest makes.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Engine } from '../../src/engine.ts';
import { decodeForIngest } from '../../src/image/decode-ingest.ts';
import type { ImageIndex } from '../../src/index/types.ts';
import { SHARED_DIR } from '../helpers/paths.ts';

export const CARDS_DIR = join(SHARED_DIR, 'corpus/cards-dev');
export const DEV_DIR = join(SHARED_DIR, 'corpus/dev');
export const DEV_ID_OFFSET = 1_000_000;

export interface CorpusIndex {
  index: ImageIndex;
  thumbnails: Map<number, Uint8Array>;
}

function manifestIds(dir: string): number[] {
  const [, ...rows] = readFileSync(join(dir, 'manifest.csv'), 'utf8').trim().split(/\r?\n/);
  return rows.map((line) => Number(line.split(',')[0]));
}

export function cardPath(id: number): string {
  return join(CARDS_DIR, 'originals', `${String(id).padStart(5, '0')}.jpg`);
}

export function cardQuery(id: number, distortion: string): Buffer {
  return readFileSync(join(CARDS_DIR, 'queries', `${String(id).padStart(5, '0')}_${distortion}.jpg`));
}

export function devQuery(id: number, distortion: string): Buffer {
  return readFileSync(join(DEV_DIR, 'queries', `${String(id).padStart(5, '0')}_${distortion}.jpg`));
}

export async function buildCorpusIndex(engine: Engine): Promise<CorpusIndex> {
  const index = engine.createIndex();
  const thumbnails = new Map<number, Uint8Array>();
  const files: Array<[number, string]> = [
    ...manifestIds(CARDS_DIR).map((id): [number, string] => [id, cardPath(id)]),
    ...manifestIds(DEV_DIR)
      .filter((id) => id % 8 === 0)
      .map((id): [number, string] => [id + DEV_ID_OFFSET, join(DEV_DIR, 'originals', `${String(id).padStart(5, '0')}.jpg`)]),
  ];
  for (const [id, path] of files) {
    const decoded = await decodeForIngest(readFileSync(path));
    index.add(id, engine.signatures.signatureFromRgb(decoded.rgb));
    thumbnails.set(id, decoded.thumbnail);
  }
  return { index, thumbnails };
}
