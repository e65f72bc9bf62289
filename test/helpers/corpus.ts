import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CORPUS_DIR } from './paths.ts';

/** Bytes of corpus original number n (1..318). */
export function original(n: number): Buffer {
  return readFileSync(join(CORPUS_DIR, 'originals', `${String(n).padStart(5, '0')}.jpg`));
}

export function originalPath(n: number): string {
  return join(CORPUS_DIR, 'originals', `${String(n).padStart(5, '0')}.jpg`);
}
