import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import type { ImageIndex } from '../../src/index/types.ts';
import type { Signature } from '../../src/signature/types.ts';
import { rng, syntheticSignature, toBatch } from '../helpers/index-behaviour.ts';

/** Issue 11: every database space holds an index per process, most of them empty. */
const EMPTY_BUDGET = 64 * 1024;
const SPACES = 2000;

/** A full collection, when the process allows one (flag set late, the usual test trick). */
function collector(): () => void {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (typeof exposed === 'function') return exposed;
  try {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as unknown;
    if (typeof gc === 'function') return gc as () => void;
  } catch {
    // no collector: the RSS budget below is generous enough without one
  }
  return () => {};
}

/**
 * An index with no images holds no posting-list structures: 2,000 of them stay within
 * 2,000 x 64 KB of RSS, and it allocates its lists on the first add.
 */
export function describeEmptyIndexCost(engineName: string, createIndex: () => ImageIndex): void {
  describe(`an empty index costs at most 64 KB (${engineName})`, () => {
    const random = rng(11);
    const sigs = Array.from({ length: 200 }, () => syntheticSignature(random));

    it(`${SPACES} empty indexes, kept referenced, report <= 64 KB each and grow RSS by less than ${SPACES} x 64 KB`, () => {
      const gc = collector();
      gc();
      const before = process.memoryUsage().rss;
      const kept: ImageIndex[] = [];
      for (let i = 0; i < SPACES; i++) {
        kept.push(createIndex());
        // Stop early once over budget rather than filling the machine.
        if (i % 50 === 49 && process.memoryUsage().rss - before > SPACES * EMPTY_BUDGET) break;
      }
      gc();
      const grown = process.memoryUsage().rss - before;
      expect(grown, `RSS grew ${(grown / 2 ** 20).toFixed(1)} MiB for ${kept.length} empty indexes`).toBeLessThan(SPACES * EMPTY_BUDGET);
      expect(kept).toHaveLength(SPACES);
      for (const index of kept) expect(index.memoryBytes()).toBeLessThanOrEqual(EMPTY_BUDGET);
      expect(kept.every((index) => index.size === 0)).toBe(true);
    });

    it('an empty index answers every query with [] and lists no ids', () => {
      const index = createIndex();
      expect(index.size).toBe(0);
      expect(index.ids()).toEqual([]);
      expect(index.has(1)).toBe(false);
      expect(index.avgl(1)).toBeUndefined();
      expect(index.remove(1)).toBe(false);
      for (const options of [{ limit: 10 }, { limit: 10, sketch: true }, { limit: 10, fast: true }, { limit: 10, allowed: new Set([1, 2]) }]) {
        expect(index.query(sigs[0], options)).toEqual([]);
      }
      index.trim();
      index.addBatch(toBatch([]));
      index.clear();
      expect(index.size).toBe(0);
      expect(index.memoryBytes()).toBeLessThanOrEqual(EMPTY_BUDGET);
    });

    it('allocates its lists on the first add, and memoryBytes says so', () => {
      const index = createIndex();
      index.add(7, sigs[0]);
      expect(index.ids()).toEqual([7]);
      expect(index.query(sigs[0], { limit: 5 })[0][0]).toBe(7);
      // Over 98,304 list headers: hundreds of KB that an honest count includes.
      expect(index.memoryBytes()).toBeGreaterThan(512 * 1024);
      const batched = createIndex();
      batched.addBatch(toBatch(sigs.slice(0, 20).map((sig, i): [number, Signature] => [i + 1, sig])));
      batched.trim();
      expect(batched.size).toBe(20);
      expect(batched.query(sigs[3], { limit: 1 })[0][0]).toBe(4);
      expect(batched.memoryBytes()).toBeGreaterThan(512 * 1024);
    });

    it('a filled index that is cleared, or emptied by removals, goes back to <= 64 KB and keeps working', () => {
      const index = createIndex();
      sigs.forEach((sig, i) => index.add(i + 1, sig));
      expect(index.memoryBytes()).toBeGreaterThan(EMPTY_BUDGET);
      index.query(sigs[0], { limit: 10 });
      index.clear();
      expect(index.memoryBytes()).toBeLessThanOrEqual(EMPTY_BUDGET);
      expect(index.ids()).toEqual([]);
      expect(index.query(sigs[0], { limit: 10 })).toEqual([]);

      const fresh = createIndex();
      for (const target of [index, fresh]) sigs.slice(0, 50).forEach((sig, i) => target.add(100 + i, sig));
      for (const sig of sigs.slice(0, 10)) expect(index.query(sig, { limit: 10 })).toEqual(fresh.query(sig, { limit: 10 }));

      for (let id = 100; id < 150; id++) expect(index.remove(id)).toBe(true);
      expect(index.size).toBe(0);
      expect(index.memoryBytes()).toBeLessThanOrEqual(EMPTY_BUDGET);
      expect(index.query(sigs[0], { limit: 10 })).toEqual([]);
      index.add(5, sigs[5]);
      expect(index.query(sigs[5], { limit: 3 })).toEqual(fresh.query(sigs[5], { limit: 1 }).map(([, raw]) => [5, raw]));
    });
  });
}
