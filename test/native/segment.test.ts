import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nativeEngine, tsEngine } from '../../src/engine.ts';
import type { SegmentAddon } from '../../src/index/native-segment.ts';
import { LayeredIndex } from '../../src/index/layered-index.ts';
import { writeSegment } from '../../src/index/segment-writer.ts';
import type { QueryOptions, SegmentIndex } from '../../src/index/types.ts';
import { loadNativeAddon } from '../../src/signature/native-loader.ts';
import type { Signature } from '../../src/signature/types.ts';
import { rng, syntheticSignature } from '../helpers/index-behaviour.ts';
import { QUERY_MODES, batchesOf, describeSegmentBehaviour, perturbed, segmentCorpus } from '../index/segment-cases.ts';
import { describeNative } from './availability.ts';

describeNative('native engine, index segments', () => {
  describeSegmentBehaviour('native', nativeEngine);

  describe('the mapped reader and the TypeScript reader of the same file are equivalent', () => {
    const addon = () => (loadNativeAddon() as { addon: SegmentAddon }).addon;
    const kernels = ['scalar', 'avx2', 'avx512'];
    const strategies = ['exact', 'bounded', 'auto'];
    let dir: string;
    let path: string;
    const corpus = segmentCorpus(140_000, 4242);

    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'haarseek-segment-equivalence-'));
      path = join(dir, 'corpus.hseg');
      writeSegment(path, batchesOf(corpus.entries), { seq: 1, dbId: 1 });
    });
    afterAll(() => {
      addon().setSegmentKernel!(addon().segmentKernel!());
      addon().setSegmentStrategy?.('auto');
      rmSync(dir, { recursive: true, force: true });
    });

    /** Runs `body` under every strategy and every kernel this CPU has. */
    function everyWalk(body: (what: string) => void): void {
      const a = addon();
      const original = a.segmentKernel!();
      try {
        for (const kernel of kernels) {
          if (!a.setSegmentKernel!(kernel)) continue;
          for (const strategy of strategies) {
            a.setSegmentStrategy!(strategy as 'auto' | 'exact' | 'bounded');
            body(`${kernel}/${strategy}`);
          }
        }
      } finally {
        a.setSegmentKernel!(original);
        a.setSegmentStrategy!('auto');
      }
    }

    it('every SIMD flavour and strategy returns the TypeScript reader results, bit for bit (140,000 images, three chunks)', () => {
      const native = nativeEngine().openSegment(path);
      const ts = tsEngine().openSegment(path);
      const random = rng(12);
      const queries: Signature[] = [
        ...corpus.queries,
        ...corpus.queries.slice(0, 8).map((q) => perturbed(q, random, 3)),
        ...Array.from({ length: 8 }, () => corpus.entries[Math.floor(random() * corpus.entries.length)][1]),
        ...Array.from({ length: 4 }, () => syntheticSignature(random)),
      ];
      const want = new Map<string, unknown>();
      queries.forEach((sig, q) => {
        for (const options of [...QUERY_MODES, { limit: 1000 }]) want.set(`${q} ${JSON.stringify(options)}`, ts.query(sig, options));
      });
      everyWalk((what) => {
        queries.forEach((sig, q) => {
          for (const options of [...QUERY_MODES, { limit: 1000 }]) {
            const key = `${q} ${JSON.stringify(options)}`;
            expect(native.query(sig, options), `${what} ${key}`).toEqual(want.get(key));
          }
        });
      });
      const counts = addon().segmentQueryCounts!();
      expect(counts.bounded).toBeGreaterThan(0);
      native.close();
      ts.close();
    });

    it('the bounded query stays exact when its candidate limits force every fallback and extra round', () => {
      const native = nativeEngine().openSegment(path);
      const ts = tsEngine().openSegment(path);
      const random = rng(15);
      const queries = [...corpus.queries, ...Array.from({ length: 6 }, () => corpus.entries[Math.floor(random() * corpus.entries.length)][1])];
      const a = addon();
      try {
        a.setSegmentStrategy!('bounded');
        for (const [first, max] of [[1, 2], [4, 8], [16, 64], [64, 512], [0, 0]]) {
          a.setSegmentBoundLimits!(first, max);
          for (const sig of queries) {
            for (const options of [{ limit: 1 }, { limit: 10 }, { limit: 40, sketch: true }]) {
              expect(native.query(sig, options), `limits ${first}/${max} ${JSON.stringify(options)}`).toEqual(ts.query(sig, options));
            }
          }
        }
      } finally {
        a.setSegmentBoundLimits!(0, 0);
        a.setSegmentStrategy!('auto');
      }
      native.close();
      ts.close();
    });

    it('removals and allowed sets: every flavour matches the TypeScript reader', () => {
      const opened: SegmentIndex[] = [nativeEngine().openSegment(path), tsEngine().openSegment(path)];
      const random = rng(13);
      // Remove the best matches of half the queries, and a few thousand others.
      const removed = new Set<number>();
      for (const sig of corpus.queries.slice(0, 12)) for (const [id] of opened[1].query(sig, { limit: 20 })) removed.add(id);
      while (removed.size < 5000) removed.add(corpus.entries[Math.floor(random() * corpus.entries.length)][0]);
      for (const index of opened) for (const id of removed) expect(index.remove(id)).toBe(true);
      const [native, ts] = opened;
      const allowed = new Set(Array.from({ length: 3000 }, () => corpus.entries[Math.floor(random() * corpus.entries.length)][0]));
      everyWalk((what) => {
        for (const sig of corpus.queries) {
          for (const options of [{ limit: 10 }, { limit: 30, sketch: true }, { limit: 10, allowed }, { limit: 5, fast: true, allowed }] as QueryOptions[]) {
            expect(native.query(sig, options), what).toEqual(ts.query(sig, options));
          }
        }
      });
      expect(native.ids()).toEqual(ts.ids());
      for (const index of opened) index.close();
    });

    it('layered indexes over both readers stay equal through changes', () => {
      const random = rng(14);
      const layered = [new LayeredIndex(nativeEngine().openSegment(path), nativeEngine().createIndex()), new LayeredIndex(tsEngine().openSegment(path), tsEngine().createIndex())];
      for (let step = 0; step < 3000; step++) {
        const id = random() < 0.5 ? corpus.entries[Math.floor(random() * corpus.entries.length)][0] : 1 + Math.floor(random() * 1000);
        if (random() < 0.6) {
          const sig = perturbed(corpus.queries[Math.floor(random() * corpus.queries.length)], random, 1 + Math.floor(random() * 10));
          for (const index of layered) index.add(id, sig);
        } else {
          expect(layered[0].remove(id)).toBe(layered[1].remove(id));
        }
      }
      expect(layered[0].size).toBe(layered[1].size);
      everyWalk((what) => {
        for (const sig of corpus.queries) for (const options of QUERY_MODES) expect(layered[0].query(sig, options), what).toEqual(layered[1].query(sig, options));
      });
      for (const index of layered) index.clear();
    });
  });
});
