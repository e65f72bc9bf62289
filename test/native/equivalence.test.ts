import fc from 'fast-check';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import { type Engine, nativeEngine, tsEngine } from '../../src/engine.ts';
import { decodeToRgb128 } from '../../src/image/decode.ts';
import { LayeredIndex } from '../../src/index/layered-index.ts';
import { writeSegment } from '../../src/index/segment-writer.ts';
import type { ImageIndex, QueryOptions, RankedResult } from '../../src/index/types.ts';
import type { Signature } from '../../src/signature/types.ts';
import { original } from '../helpers/corpus.ts';
import { rng, syntheticSignature, toBatch } from '../helpers/index-behaviour.ts';
import { describeNative } from './availability.ts';
import { imageKinds, imageSpec, synthesizeImage } from './images.ts';

function expectSameSignature(a: Signature, b: Signature, what: string): void {
  expect(Array.from(b.coefs), what).toEqual(Array.from(a.coefs));
  // Bit-identical: both engines do the same float64 operations in the same order.
  expect(Array.from(b.avgl), what).toEqual(Array.from(a.avgl));
}

/** Same ids in the same order with bit-identical float64 scores, as the README promises. */
function expectSameRanking(ts: RankedResult[], native: RankedResult[], what: string): void {
  expect(native.map(([id]) => id), what).toEqual(ts.map(([id]) => id));
  native.forEach(([, raw], k) => expect(Object.is(raw, ts[k][1]), `${what} rank ${k}: ${raw} vs ${ts[k][1]}`).toBe(true));
}

describeNative('native and TypeScript engines are equivalent', () => {
  let ts: Engine;
  let native: Engine;
  /** Signatures of generated images of every kind and of real photos. */
  const pool: Signature[] = [];

  beforeAll(async () => {
    ts = tsEngine();
    native = nativeEngine();
    for (let n = 1; n <= 318; n += 4) {
      const { rgb } = await decodeToRgb128(original(n));
      pool.push(ts.signatures.signatureFromRgb(rgb));
    }
    imageKinds.forEach((kind, k) => {
      for (let seed = 0; seed < 8; seed++) pool.push(ts.signatures.signatureFromRgb(synthesizeImage({ kind, seed: k * 100 + seed })));
    });
    const random = rng(99);
    for (let i = 0; i < 40; i++) pool.push(syntheticSignature(random));
  });

  it('same signature for 3000 generated images (noise, gradients, blocks, stripes, flat, low-res)', () => {
    fc.assert(
      fc.property(imageSpec, (spec) => {
        const rgb = synthesizeImage(spec);
        expectSameSignature(ts.signatures.signatureFromRgb(rgb), native.signatures.signatureFromRgb(rgb), JSON.stringify(spec));
      }),
      { numRuns: 3000, seed: 20240601 },
    );
  });

  it('same signature for every dev corpus photo, decoded and on its own', async () => {
    for (let n = 1; n <= 318; n++) {
      const { rgb } = await decodeToRgb128(original(n));
      expectSameSignature(ts.signatures.signatureFromRgb(rgb), native.signatures.signatureFromRgb(rgb), `original ${n}`);
    }
  });

  it('same signature for a flat image, where every coefficient ties at zero', () => {
    const rgb = new Uint8Array(128 * 128 * 3).fill(77);
    expectSameSignature(ts.signatures.signatureFromRgb(rgb), native.signatures.signatureFromRgb(rgb), 'flat');
  });

  const idArb = fc.oneof(
    { weight: 6, arbitrary: fc.integer({ min: 1, max: 40 }) },
    { weight: 1, arbitrary: fc.constantFrom(2 ** 53, 2 ** 53 - 1, 2 ** 32 + 1, 2 ** 31) },
  );
  type Op =
    | { t: 'add'; id: number; sig: number }
    | { t: 'remove'; id: number }
    | { t: 'query'; sig: number; limit: number; sketch: boolean; fast: boolean; allowed: number[] | null };
  const opArb: fc.Arbitrary<Op> = fc.oneof(
    { weight: 5, arbitrary: fc.record({ t: fc.constant('add' as const), id: idArb, sig: fc.nat(999) }) },
    { weight: 2, arbitrary: fc.record({ t: fc.constant('remove' as const), id: idArb }) },
    {
      weight: 3,
      arbitrary: fc.record({
        t: fc.constant('query' as const),
        sig: fc.nat(999),
        limit: fc.oneof(fc.integer({ min: 0, max: 12 }), fc.integer({ min: 13, max: 100 })),
        sketch: fc.boolean(),
        fast: fc.boolean(),
        allowed: fc.option(fc.array(idArb, { maxLength: 12 }), { nil: null }),
      }),
    },
  );

  function check(a: ImageIndex, b: ImageIndex, sig: Signature, options: QueryOptions, what: string): void {
    expectSameRanking(a.query(sig, options), b.query(sig, options), what);
  }

  it('identical ranked ids and scores over random add / remove / re-add / query sequences', () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 150 }), (ops) => {
        const a = ts.createIndex();
        const b = native.createIndex();
        for (const op of ops) {
          if (op.t === 'add') {
            const sig = pool[op.sig % pool.length];
            a.add(op.id, sig);
            b.add(op.id, sig);
          } else if (op.t === 'remove') {
            expect(b.remove(op.id)).toBe(a.remove(op.id));
          } else {
            const options: QueryOptions = { limit: op.limit, sketch: op.sketch, fast: op.fast };
            if (op.allowed) options.allowed = new Set(op.allowed);
            check(a, b, pool[op.sig % pool.length], options, JSON.stringify(op));
          }
          expect(b.size).toBe(a.size);
        }
        expect(b.ids()).toEqual(a.ids());
        for (const id of a.ids()) expect(Array.from(b.avgl(id)!)).toEqual(Array.from(a.avgl(id)!));
        b.clear();
        expect(b.size).toBe(0);
      }),
      { numRuns: 300, seed: 424242 },
    );
  });

  it('segment + delta: both engines read one segment file and rank as one in-memory index through adds, replaces, removals and switches to new segments', () => {
    const dir = mkdtempSync(join(tmpdir(), 'haarseek-equivalence-'));
    try {
      const random = rng(77);
      const pick = () => pool[Math.floor(random() * pool.length)];
      const live = new Map<number, Signature>();
      const reference = ts.createIndex();
      for (let id = 1; id <= 600; id++) {
        const sig = pick();
        live.set(id, sig);
        reference.add(id, sig);
      }
      let seq = 0;
      const openBoth = () => {
        const path = join(dir, `space-1.${++seq}.hseg`);
        writeSegment(path, [toBatch([...live].sort((x, y) => x[0] - y[0]))], { seq, dbId: 1, sync: false });
        return [new LayeredIndex(ts.openSegment(path), ts.createIndex()), new LayeredIndex(native.openSegment(path), native.createIndex())] as const;
      };
      let [a, b] = openBoth();
      for (let round = 0; round < 3; round++) {
        for (let step = 0; step < 300; step++) {
          const r = random();
          const id = 1 + Math.floor(random() * 700);
          const what = `round ${round} step ${step}`;
          if (r < 0.45) {
            const sig = pick();
            a.add(id, sig);
            b.add(id, sig);
            reference.add(id, sig);
            live.set(id, sig);
          } else if (r < 0.65) {
            const removed = reference.remove(id);
            expect(a.remove(id), what).toBe(removed);
            expect(b.remove(id), what).toBe(removed);
            live.delete(id);
          } else {
            const options: QueryOptions = { limit: 1 + Math.floor(random() * 30), sketch: random() < 0.3, fast: random() < 0.1 };
            if (random() < 0.2) options.allowed = new Set(Array.from({ length: 40 }, () => 1 + Math.floor(random() * 700)));
            const q = pick();
            check(reference, a, q, options, `${what} ts`);
            check(reference, b, q, options, `${what} native`);
          }
        }
        expect(b.ids()).toEqual(reference.ids());
        expect(a.ids()).toEqual(reference.ids());
        // A new segment of the current state, written while the old one is open and queried: the switch changes no answer.
        const [a2, b2] = openBoth();
        for (let k = 0; k < 20; k++) {
          const q = pick();
          check(b, b2, q, { limit: 20 }, `round ${round} switch ${k}`);
          check(a, a2, q, { limit: 20 }, `round ${round} switch ${k} ts`);
        }
        a.clear();
        b.clear();
        [a, b] = [a2, b2];
      }
      a.clear();
      b.clear();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('identical results through thousands of replacements and removals (compactions)', () => {
    const random = rng(1234);
    const a = ts.createIndex();
    const b = native.createIndex();
    const sigs = [...pool, ...Array.from({ length: 400 }, () => syntheticSignature(random))];
    const pick = () => sigs[Math.floor(random() * sigs.length)];
    for (let step = 1; step <= 30_000; step++) {
      const id = 1 + Math.floor(random() * 5000);
      const roll = random();
      if (roll < 0.55) {
        const sig = pick();
        a.add(id, sig);
        b.add(id, sig);
      } else {
        expect(b.remove(id)).toBe(a.remove(id));
      }
      if (step % 1000 === 0) {
        expect(b.size).toBe(a.size);
        for (let q = 0; q < 4; q++) {
          const sig = pick();
          for (const options of [
            { limit: 10 },
            { limit: 25, sketch: true },
            { limit: 10, fast: true },
            { limit: a.size + 5 },
            { limit: 10, allowed: new Set(Array.from({ length: 300 }, () => 1 + Math.floor(random() * 5000))) },
          ]) {
            check(a, b, sig, options, `step ${step} ${JSON.stringify({ ...options, allowed: undefined })}`);
          }
        }
      }
    }
    expect(b.ids()).toEqual(a.ids());
  });

  it('a batch load (ids replaced inside it, then trimmed) ranks as adding one at a time, in both engines', () => {
    const random = rng(777);
    const entries: Array<[number, Signature]> = Array.from({ length: 3000 }, () => [
      1 + Math.floor(random() * 2500),
      random() < 0.5 ? pool[Math.floor(random() * pool.length)] : syntheticSignature(random),
    ]);
    const oneByOne = ts.createIndex();
    for (const [id, sig] of entries) oneByOne.add(id, sig);
    const loaded = [ts.createIndex(), native.createIndex()];
    for (const index of loaded) {
      for (let from = 0; from < entries.length; from += 700) index.addBatch(toBatch(entries.slice(from, from + 700)));
      index.trim();
      expect(index.size).toBe(oneByOne.size);
      expect(index.ids()).toEqual(oneByOne.ids());
    }
    const queries = () => Array.from({ length: 20 }, () => pool[Math.floor(random() * pool.length)]);
    for (const sig of queries()) {
      for (const index of loaded) {
        check(oneByOne, index, sig, { limit: 15 }, 'after load');
        check(oneByOne, index, sig, { limit: 15, sketch: true }, 'after load, sketch');
      }
    }
    // Trimmed lists sit at exact length: the next adds and removes must grow them correctly.
    for (let step = 0; step < 2000; step++) {
      const id = 1 + Math.floor(random() * 3000);
      if (random() < 0.7) {
        const sig = syntheticSignature(random);
        for (const index of [oneByOne, ...loaded]) index.add(id, sig);
      } else {
        for (const index of [oneByOne, ...loaded]) index.remove(id);
      }
    }
    for (const sig of queries()) for (const index of loaded) check(oneByOne, index, sig, { limit: 15 }, 'after later changes');
  });

  it('rejects a batch holding a malformed signature and adds none of it', () => {
    const b = native.createIndex();
    const batch = toBatch([
      [1, pool[0]],
      [2, pool[1]],
      [3, pool[2]],
    ]);
    batch.coefs[2 * 120 + 5] = 0;
    expect(() => b.addBatch(batch)).toThrow(RangeError);
    expect(b.size).toBe(0);
    expect(() => b.addBatch({ ...toBatch([[1, pool[0]]]), count: 2 })).toThrow(TypeError);
    expect(b.size).toBe(0);
    b.addBatch(toBatch([[7, pool[0]]]));
    expect(b.ids()).toEqual([7]);
  });

  it('rejects a malformed signature instead of reading out of bounds', () => {
    const b = native.createIndex();
    const bad = { coefs: new Int32Array(120).fill(16384), avgl: new Float64Array(3) };
    expect(() => b.add(1, bad)).toThrow(RangeError);
    expect(() => b.add(1, { coefs: new Int32Array(10), avgl: new Float64Array(3) })).toThrow(TypeError);
    expect(() => b.add(Number.NaN, pool[0])).toThrow(RangeError);
    expect(b.size).toBe(0);
    b.add(1, pool[0]);
    expect(() => b.query(bad, { limit: 5 })).toThrow(RangeError);
  });
});
