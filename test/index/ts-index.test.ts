import { describe, expect, it } from 'vitest';
import { tsEngine } from '../../src/engine.ts';
import { rawScore } from '../../src/index/scoring.ts';
import { TsImageIndex } from '../../src/index/ts-index.ts';
import type { QueryOptions, RankedResult } from '../../src/index/types.ts';
import type { Signature } from '../../src/signature/types.ts';
import { describeIndexBehaviour, rng, syntheticSignature } from '../helpers/index-behaviour.ts';

describeIndexBehaviour('ts', () => tsEngine().createIndex());

const MODES: QueryOptions[] = [{ limit: 0 }, { limit: 0, sketch: true }, { limit: 0, fast: true }, { limit: 0, sketch: true, fast: true }];

/** Every stored image scored one by one with imgSeek's formula, best first, ties by ascending id. */
function bruteForce(stored: Map<number, Signature>, q: Signature, options: QueryOptions): RankedResult[] {
  const all: RankedResult[] = [];
  for (const [id, sig] of stored) {
    if (options.allowed && !options.allowed.has(id)) continue;
    all.push([id, rawScore(q, sig, options.sketch ?? false, options.fast ?? false)]);
  }
  return all.sort((a, b) => a[1] - b[1] || a[0] - b[0]).slice(0, Math.max(0, Math.floor(options.limit)));
}

function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}

describe('TsImageIndex: removal, compaction and ranking against brute force', () => {
  const random = rng(2024);
  const sigs = Array.from({ length: 8000 }, () => syntheticSignature(random));

  it('removing 5000 of 8000 in random order (several compactions): equal to a fresh index of the survivors and to brute force', () => {
    const index = new TsImageIndex();
    sigs.forEach((sig, i) => index.add(i + 1, sig));
    const before = index.memoryBytes();
    const removed = shuffle(Array.from({ length: 8000 }, (_, i) => i + 1), rng(5)).slice(0, 5000);
    for (const id of removed) expect(index.remove(id)).toBe(true);
    for (const id of removed.slice(0, 50)) expect(index.remove(id)).toBe(false);

    const survivors = new Map<number, Signature>();
    sigs.forEach((sig, i) => {
      if (index.has(i + 1)) survivors.set(i + 1, sig);
    });
    expect(index.size).toBe(3000);
    expect(survivors.size).toBe(3000);
    const gone = new Set(removed);
    expect(index.ids()).toEqual(Array.from({ length: 8000 }, (_, i) => i + 1).filter((id) => !gone.has(id)));
    for (const id of removed.slice(0, 20)) {
      expect(index.has(id)).toBe(false);
      expect(index.avgl(id)).toBeUndefined();
    }
    for (const [id, sig] of [...survivors].slice(0, 20)) expect(Array.from(index.avgl(id)!)).toEqual(Array.from(sig.avgl));
    // Compaction gave the posting lists' space back.
    expect(index.memoryBytes()).toBeLessThan(before);

    const fresh = new TsImageIndex();
    for (const [id, sig] of survivors) fresh.add(id, sig);
    // Queries: removed images, surviving images, and unseen ones.
    const queries = [...removed.slice(0, 5).map((id) => sigs[id - 1]), ...[...survivors.values()].slice(0, 5), syntheticSignature(rng(99))];
    for (const q of queries) {
      for (const mode of MODES) {
        const full = bruteForce(survivors, q, { ...mode, limit: Infinity });
        for (const limit of [1, 10, 3000, 5000]) {
          const options = { ...mode, limit };
          const got = index.query(q, options);
          expect(got).toEqual(fresh.query(q, options));
          expect(got).toEqual(full.slice(0, limit));
          expect(got.length).toBe(Math.min(limit, 3000));
          for (const [id] of got) expect(gone.has(id)).toBe(false);
        }
      }
    }
  });

  it('a few removals (tombstones, below the compaction threshold) are excluded too', () => {
    const index = new TsImageIndex();
    const stored = new Map<number, Signature>();
    sigs.slice(0, 4000).forEach((sig, i) => {
      index.add(i + 1, sig);
      stored.set(i + 1, sig);
    });
    for (let id = 1; id <= 4000; id += 13) {
      index.remove(id);
      stored.delete(id);
    }
    for (const q of [sigs[0], sigs[13], sigs[100]]) {
      for (const mode of MODES) expect(index.query(q, { ...mode, limit: 25 })).toEqual(bruteForce(stored, q, { ...mode, limit: 25 }));
    }
    expect(index.query(sigs[0], { limit: 1 })[0][0]).not.toBe(1);
  });

  it('replacing the same ids over and over keeps one entry per id and the latest signature', () => {
    const index = new TsImageIndex();
    const stored = new Map<number, Signature>();
    for (let round = 0; round < 30; round++) {
      for (let id = 1; id <= 200; id++) {
        const sig = sigs[(round * 200 + id) % 8000];
        index.add(id, sig);
        stored.set(id, sig);
      }
    }
    expect(index.size).toBe(200);
    for (const q of [sigs[5999], sigs[7], syntheticSignature(rng(3))]) {
      for (const mode of MODES) expect(index.query(q, { ...mode, limit: 300 })).toEqual(bruteForce(stored, q, { ...mode, limit: 300 }));
    }
  });

  it('remove everything, then add again', () => {
    const index = new TsImageIndex();
    sigs.slice(0, 3000).forEach((sig, i) => index.add(i + 1, sig));
    for (let id = 1; id <= 3000; id++) index.remove(id);
    expect(index.size).toBe(0);
    expect(index.ids()).toEqual([]);
    expect(index.query(sigs[0], { limit: 10 })).toEqual([]);
    index.add(42, sigs[0]);
    index.add(7, sigs[1]);
    expect(index.query(sigs[0], { limit: 10 }).map(([id]) => id)).toEqual([42, 7]);
  });
});

describe('TsImageIndex: ties, limits, filters, large ids', () => {
  const random = rng(77);
  const sigs = Array.from({ length: 100 }, () => syntheticSignature(random));

  it('equal scores come back by ascending id even when the limit cuts through the tie', () => {
    const index = new TsImageIndex();
    const ids = shuffle(Array.from({ length: 60 }, (_, i) => 1000 - i * 7), rng(11));
    for (const id of ids) index.add(id, sigs[0]);
    for (let i = 1; i < 40; i++) index.add(5000 + i, sigs[i]);
    const sorted = [...ids].sort((a, b) => a - b);
    for (const limit of [1, 7, 59, 60]) {
      const got = index.query(sigs[0], { limit });
      expect(got.map(([id]) => id)).toEqual(sorted.slice(0, limit));
      expect(new Set(got.map(([, s]) => s)).size).toBe(1);
    }
    // Fast mode: everything with the same avgl ties, whatever its coefficients.
    const twin: Signature = { coefs: sigs[1].coefs, avgl: sigs[0].avgl };
    index.add(1, twin);
    expect(index.query(sigs[0], { limit: 3, fast: true }).map(([id]) => id)).toEqual([1, sorted[0], sorted[1]]);
    expect(index.query(sigs[0], { limit: 3 }).map(([id]) => id)).toEqual(sorted.slice(0, 3));
  });

  it('limit 0, negative, fractional, and larger than the index', () => {
    const index = new TsImageIndex();
    sigs.slice(0, 5).forEach((sig, i) => index.add(i + 1, sig));
    expect(index.query(sigs[0], { limit: 0 })).toEqual([]);
    expect(index.query(sigs[0], { limit: -3 })).toEqual([]);
    expect(index.query(sigs[0], { limit: 2.9 })).toHaveLength(2);
    const all = index.query(sigs[0], { limit: 1_000_000 });
    expect(all).toHaveLength(5);
    expect(all.map(([id]) => id).sort()).toEqual([1, 2, 3, 4, 5]);
    expect(new TsImageIndex().query(sigs[0], { limit: 10 })).toEqual([]);
  });

  it('the allowed filter: subset under the limit, absent ids, empty set, limit cutting the subset', () => {
    const index = new TsImageIndex();
    const stored = new Map<number, Signature>();
    sigs.forEach((sig, i) => {
      index.add(i + 1, sig);
      stored.set(i + 1, sig);
    });
    const allowed = new Set([3, 9, 27, 81, 99, 500, 2 ** 40]);
    for (const limit of [2, 5, 10]) {
      const options = { limit, allowed };
      expect(index.query(sigs[80], options)).toEqual(bruteForce(stored, sigs[80], options));
    }
    expect(index.query(sigs[80], { limit: 1, allowed })[0][0]).toBe(81);
    expect(index.query(sigs[0], { limit: 10, allowed: new Set() })).toEqual([]);
    expect(index.query(sigs[0], { limit: 10, allowed: new Set([100_000]) })).toEqual([]);
    // The best match overall is filtered out when not allowed.
    expect(index.query(sigs[0], { limit: 3, allowed: new Set([2, 3, 4]) }).map(([id]) => id)).not.toContain(1);
  });

  it('ids up to 2^53 keep their exact value through ties and compaction', () => {
    const index = new TsImageIndex();
    const big = [2 ** 53, 2 ** 53 - 1, 2 ** 53 - 2, 2 ** 52 + 1, 1];
    for (const id of big) index.add(id, sigs[0]);
    for (let i = 0; i < 2000; i++) index.add(10_000 + i, sigs[1 + (i % 99)]);
    for (let i = 0; i < 2000; i++) index.remove(10_000 + i);
    expect(index.ids()).toEqual([1, 2 ** 52 + 1, 2 ** 53 - 2, 2 ** 53 - 1, 2 ** 53]);
    expect(index.query(sigs[0], { limit: 5 }).map(([id]) => id)).toEqual([1, 2 ** 52 + 1, 2 ** 53 - 2, 2 ** 53 - 1, 2 ** 53]);
    expect(index.has(2 ** 53)).toBe(true);
    expect(index.remove(2 ** 53 - 1)).toBe(true);
    expect(index.has(2 ** 53)).toBe(true);
    expect(index.has(2 ** 53 - 1)).toBe(false);
  });
});
