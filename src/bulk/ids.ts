import { basename, extname } from 'node:path';

/** Image ids are whole numbers from 1 to 2^53, as on every door. */
export const MAX_IMAGE_ID = 2 ** 53;

/** An id written in decimal, or why it is not one. */
export function parseImageId(text: string): { id: number } | { error: string } {
  const t = text.trim();
  if (!/^\d{1,16}$/.test(t)) return { error: `${JSON.stringify(t.slice(0, 40))} is not a whole number` };
  const big = BigInt(t);
  if (big < 1n || big > BigInt(MAX_IMAGE_ID)) return { error: `${t} is not an id from 1 to 2^53` };
  return { id: Number(big) };
}

/** The id a file's name gives (`00042.jpg` is 42), or why there is none. */
export function idFromFileName(path: string): { id: number } | { error: string; reason: 'no-id' | 'bad-id' } {
  const stem = basename(path, extname(path));
  if (!/^\d+$/.test(stem)) {
    return { reason: 'no-id', error: `the file name ${JSON.stringify(stem)} is not a number (ids come from numeric file names; give --ids FILE.csv or --start-id N for other names)` };
  }
  const parsed = parseImageId(stem);
  return 'id' in parsed ? parsed : { reason: 'bad-id', error: parsed.error };
}

/** Ids kept below this count in a plain Set before they move to the sorted array. */
const RECENT_LIMIT = 65_536;

/**
 * A set of ids at about 8 bytes per id, for runs over millions of files: recent ids sit
 * in a small Set, and are merged into one sorted Float64Array when it fills.
 */
export class IdSet {
  private sorted: Float64Array;
  private length: number;
  private recent = new Set<number>();

  /** ascending: ids already sorted ascending (getDbImgIdList's answer), taken as they are. */
  constructor(ascending?: Float64Array) {
    this.sorted = ascending ?? new Float64Array(0);
    this.length = this.sorted.length;
  }

  get size(): number {
    return this.length + this.recent.size;
  }

  has(id: number): boolean {
    if (this.recent.has(id)) return true;
    let lo = 0;
    let hi = this.length - 1;
    const a = this.sorted;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const v = a[mid];
      if (v === id) return true;
      if (v < id) lo = mid + 1;
      else hi = mid - 1;
    }
    return false;
  }

  add(id: number): void {
    if (this.has(id)) return;
    this.recent.add(id);
    if (this.recent.size >= RECENT_LIMIT) this.merge();
  }

  private merge(): void {
    const fresh = Float64Array.from(this.recent).sort();
    this.recent = new Set();
    const need = this.length + fresh.length;
    const out = need <= this.sorted.length ? this.sorted : new Float64Array(Math.max(need, Math.ceil(this.sorted.length * 1.5)));
    // Merge from the back, so `out` may be `sorted` itself.
    let i = this.length - 1;
    let j = fresh.length - 1;
    for (let k = need - 1; k >= 0; k--) {
      if (j < 0 || (i >= 0 && this.sorted[i] > fresh[j])) out[k] = this.sorted[i--];
      else out[k] = fresh[j--];
    }
    this.sorted = out;
    this.length = need;
  }
}
