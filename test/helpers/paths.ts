import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** ../shared beside the checkout (HAARSEEK_SHARED overrides). */
export const SHARED_DIR = (() => {
  const fromEnv = process.env.HAARSEEK_SHARED;
  if (fromEnv) return resolve(fromEnv);
  const beside = resolve(REPO_ROOT, '../shared');
  if (!existsSync(join(beside, 'golden'))) throw new Error(`shared/ not found at ${beside}; set HAARSEEK_SHARED`);
  return beside;
})();

export const GOLDEN_DIR = join(SHARED_DIR, 'golden');
export const CORPUS_DIR = join(SHARED_DIR, 'corpus/dev');
