/**
 * Behaviour of index segments and layered indexes, run for each engine (test/index for
 * the TypeScript reader, test/native for the mapped one): the same ids, order and
 * float64 scores as an in-memory index of the same images, golden vectors, adds,
 * replaces and removals across segment rebuilds, and damaged files refused.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/engine.ts';
import { IndexCatalog } from '../../src/index/catalog.ts';
import { LayeredIndex } from '../../src/index/layered-index.ts';
import {
  BITMAP_UNITS,
  FLAG_NON_FINITE_AVGL,
  H,
  SEGMENT_HEADER_BYTES,
  SEGMENT_LISTS,
  SegmentFormatError,
  checkSegmentBody,
  crc32,
  decodeHeader,
} from '../../src/index/segment-format.ts';
import { segmentPath, writeSegment, writeSnapshotSegments } from '../../src/index/segment-writer.ts';
import type { ImageIndex, QueryOptions, SignatureBatch } from '../../src/index/types.ts';
import type { Signature } from '../../src/signature/types.ts';
import { goldenImages, goldenPixels, goldenScores, type GoldenMode } from '../helpers/golden.ts';
import { rng, syntheticSignature, toBatch } from '../helpers/index-behaviour.ts';

/** Batches of at most `size` entries, as a snapshot streams them. */
export function* batchesOf(entries: ReadonlyArray<readonly [number, Signature]>, size = 4096): Generator<SignatureBatch> {
  for (let from = 0; from < entries.length; from += size) yield toBatch(entries.slice(from, from + size));
}

/** A signature near `base`: some coefficients swapped for others of the same channel, avgl nudged. */
export function perturbed(base: Signature, random: () => number, changes = 6): Signature {
  const coefs = Int32Array.from(base.coefs);
  for (let n = 0; n < changes; n++) {
    const c = Math.floor(random() * 3);
    const k = Math.floor(random() * 40);
    const channel = coefs.subarray(c * 40, c * 40 + 40);
    for (;;) {
      const index = 1 + Math.floor(random() ** 3 * 16383);
      const coef = random() < 0.5 ? index : -index;
      if (channel.includes(coef) || channel.includes(-coef)) continue;
      channel[k] = coef;
      break;
    }
    channel.sort();
  }
  const avgl = Float64Array.from(base.avgl, (v) => v + (random() - 0.5) * 0.02);
  return { coefs, avgl };
}

/**
 * An index's images shaped to exercise a segment: `count` of them over several chunks,
 * dense low-frequency lists (bitmaps) and sparse ones (arrays), near-duplicates of the
 * query signatures, and runs of identical signatures under different ids (equal scores,
 * ordered by id), with ids in no particular order.
 */
export function segmentCorpus(count: number, seed: number): { entries: Array<[number, Signature]>; queries: Signature[] } {
  const random = rng(seed);
  const queries = Array.from({ length: 24 }, () => syntheticSignature(random));
  const entries: Array<[number, Signature]> = [];
  const used = new Set<number>();
  const freshId = () => {
    for (;;) {
      const id = random() < 0.02 ? 2 ** 53 - Math.floor(random() * 1000) : 1 + Math.floor(random() * count * 4);
      if (!used.has(id)) {
        used.add(id);
        return id;
      }
    }
  };
  while (entries.length < count) {
    const roll = random();
    let sig: Signature;
    if (roll < 0.02) sig = queries[Math.floor(random() * queries.length)];
    else if (roll < 0.1) sig = perturbed(queries[Math.floor(random() * queries.length)], random, 1 + Math.floor(random() * 20));
    else if (roll < 0.12 && entries.length > 0) sig = entries[Math.floor(random() * entries.length)][1];
    else sig = syntheticSignature(random);
    entries.push([freshId(), sig]);
  }
  return { entries, queries };
}

/** Counts of bitmap and array lists in a segment file (to know both layouts are exercised). */
export function listKinds(path: string): { bitmaps: number; arrays: number; chunks: number } {
  const buffer = new Uint8Array(readFileSync(path));
  const h = decodeHeader(buffer, buffer.length, path);
  const v = checkSegmentBody(buffer, h, path);
  let bitmaps = 0;
  let arrays = 0;
  for (let c = 0; c < h.chunks; c++) {
    for (let l = 0; l < SEGMENT_LISTS; l++) {
      const span = v.dir[c * (SEGMENT_LISTS + 1) + l + 1] - v.dir[c * (SEGMENT_LISTS + 1) + l];
      if (span >= BITMAP_UNITS) bitmaps++;
      else if (span > 0) arrays++;
    }
  }
  return { bitmaps, arrays, chunks: h.chunks };
}

export const QUERY_MODES: QueryOptions[] = [
  { limit: 10 },
  { limit: 1 },
  { limit: 24, sketch: true },
  { limit: 10, fast: true },
  { limit: 7, sketch: true, fast: true },
  { limit: 250 },
];

function expectSameIndex(got: ImageIndex, want: ImageIndex, queries: Signature[], what: string): void {
  expect(got.size, what).toBe(want.size);
  for (const sig of queries) {
    for (const options of QUERY_MODES) expect(got.query(sig, options), `${what} ${JSON.stringify(options)}`).toEqual(want.query(sig, options));
  }
}

const rewriteHeaderCrc = (bytes: Uint8Array) => {
  const v = new DataView(bytes.buffer, bytes.byteOffset);
  v.setUint32(H.headerCrc, 0, true);
  v.setUint32(H.headerCrc, crc32(bytes.subarray(0, SEGMENT_HEADER_BYTES)), true);
};
const rewriteBodyCrc = (bytes: Uint8Array) => {
  new DataView(bytes.buffer, bytes.byteOffset).setUint32(H.bodyCrc, crc32(bytes.subarray(SEGMENT_HEADER_BYTES)), true);
  rewriteHeaderCrc(bytes);
};

export function describeSegmentBehaviour(engineName: string, makeEngine: () => Engine): void {
  describe(`index segments (${engineName} engine)`, () => {
    let engine: Engine;
    let dir: string;
    const big = segmentCorpus(70_000, 1601);
    let bigPath: string;

    beforeAll(() => {
      engine = makeEngine();
      dir = mkdtempSync(join(tmpdir(), `haarseek-segment-${engineName}-`));
      bigPath = join(dir, 'big.hseg');
      writeSegment(bigPath, batchesOf(big.entries), { seq: 42, dbId: 3 });
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    const memoryIndex = (entries: ReadonlyArray<readonly [number, Signature]>) => {
      const index = engine.createIndex();
      for (const batch of batchesOf(entries)) index.addBatch(batch);
      index.trim();
      return index;
    };

    it('a 70,000-image segment (two chunks, bitmaps and arrays) answers exactly as an in-memory index', () => {
      const kinds = listKinds(bigPath);
      expect(kinds.chunks).toBe(2);
      expect(kinds.bitmaps).toBeGreaterThan(50);
      expect(kinds.arrays).toBeGreaterThan(1000);
      const segment = engine.openSegment(bigPath);
      const memory = memoryIndex(big.entries);
      expect(segment.seq).toBe(42);
      expect(segment.dbId).toBe(3);
      expect(segment.fileCount).toBe(70_000);
      expect(segment.ids()).toEqual(memory.ids());
      const random = rng(5);
      const stored = [...Array.from({ length: 12 }, () => big.entries[Math.floor(random() * big.entries.length)][1])];
      expectSameIndex(segment, memory, [...big.queries, ...stored], 'big segment');
      for (const [id] of big.entries.slice(0, 200)) {
        expect(segment.has(id)).toBe(true);
        expect(Array.from(segment.avgl(id)!)).toEqual(Array.from(memory.avgl(id)!));
      }
      expect(segment.has(0)).toBe(false);
      expect(segment.has(Number.NaN)).toBe(false);
      expect(segment.avgl(-5)).toBeUndefined();
      expect(segment.query(big.queries[0], { limit: 0 })).toEqual([]);
      segment.close();
      expect(segment.size).toBe(0);
      expect(segment.query(big.queries[0], { limit: 10 })).toEqual([]);
    });

    it('keyword-restricted queries (allowed sets of every size) match the in-memory index', () => {
      const segment = engine.openSegment(bigPath);
      const memory = memoryIndex(big.entries);
      const random = rng(9);
      for (const size of [0, 1, 5, 40, 600, 9000, 40_000]) {
        const allowed = new Set<number>();
        while (allowed.size < size) allowed.add(big.entries[Math.floor(random() * big.entries.length)][0]);
        allowed.add(123_456_789); // not stored
        for (const sig of big.queries.slice(0, 4)) {
          for (const options of QUERY_MODES) {
            const o = { ...options, allowed };
            expect(segment.query(sig, o), `allowed ${size} ${JSON.stringify(options)}`).toEqual(memory.query(sig, o));
          }
        }
      }
      segment.close();
    });

    it('removals hide images from every query path; a removed id can be removed once', () => {
      const segment = engine.openSegment(bigPath);
      const entries = new Map(big.entries);
      const random = rng(11);
      const removed = new Set<number>();
      // The best matches first (so the top-k changes), then random ones.
      for (const sig of big.queries.slice(0, 6)) for (const [id] of segment.query(sig, { limit: 5 })) removed.add(id);
      while (removed.size < 3000) removed.add(big.entries[Math.floor(random() * big.entries.length)][0]);
      for (const id of removed) {
        expect(segment.remove(id)).toBe(true);
        expect(segment.remove(id)).toBe(false);
        entries.delete(id);
      }
      expect(segment.size).toBe(70_000 - removed.size);
      expect(segment.removedCount).toBe(removed.size);
      const memory = memoryIndex([...entries]);
      expectSameIndex(segment, memory, big.queries.slice(0, 8), 'after removals');
      const allowed = new Set([...removed].slice(0, 50).concat([...entries.keys()].slice(0, 50)));
      expect(segment.query(big.queries[0], { limit: 100, allowed })).toEqual(memory.query(big.queries[0], { limit: 100, allowed }));
      expect(segment.ids()).toEqual(memory.ids());
      for (const id of [...removed].slice(0, 20)) {
        expect(segment.has(id)).toBe(false);
        expect(segment.avgl(id)).toBeUndefined();
      }
      expect(() => segment.add(1, big.queries[0])).toThrow(/read-only/);
      segment.close();
    });

    it('a segment matches the golden vectors, as the in-memory index does', async () => {
      const sigs: Signature[] = [];
      for (const image of goldenImages) sigs.push(engine.signatures.signatureFromRgb(await goldenPixels(image)));
      const path = join(dir, 'golden.hseg');
      writeSegment(path, batchesOf(sigs.map((sig, i) => [i + 1, sig] as const)), { seq: 1, dbId: 1 });
      const segment = engine.openSegment(path);
      const layered = new LayeredIndex(engine.openSegment(path), engine.createIndex());
      // Half of them moved to the delta (replaced by themselves).
      sigs.forEach((sig, i) => {
        if (i % 2 === 0) layered.add(i + 1, sig);
      });
      const memory = memoryIndex(sigs.map((sig, i) => [i + 1, sig] as const));
      for (const mode of Object.keys(goldenScores) as GoldenMode[]) {
        const options = { limit: 24, sketch: mode.startsWith('sketch1'), fast: mode.endsWith('fast1') };
        for (const { query, ranked } of goldenScores[mode]) {
          for (const [what, index] of [['segment', segment], ['layered', layered]] as const) {
            const got = index.query(sigs[query - 1], options);
            expect(got, `${what} ${mode} query ${query}`).toEqual(memory.query(sigs[query - 1], options));
            expect(got.map(([id]) => id)).toEqual(ranked.map(([id]) => id));
            got.forEach(([, raw], k) => expect(Math.abs(raw - ranked[k][1])).toBeLessThan(1e-6));
          }
        }
      }
      segment.close();
      layered.clear();
    });

    it('an empty space writes an empty segment; repeated ids keep the last signature; ids may come in any order', () => {
      const empty = join(dir, 'empty.hseg');
      expect(writeSegment(empty, [], { seq: 5, dbId: 9 }).count).toBe(0);
      const segment = engine.openSegment(empty);
      expect(segment.size).toBe(0);
      expect(segment.ids()).toEqual([]);
      expect(segment.query(big.queries[0], { limit: 10 })).toEqual([]);
      const random = rng(3);
      const entries: Array<[number, Signature]> = Array.from({ length: 3000 }, () => [1 + Math.floor(random() * 1000), syntheticSignature(random)]);
      const path = join(dir, 'repeats.hseg');
      const written = writeSegment(path, batchesOf(entries, 333), { seq: 6, dbId: 9 });
      const memory = memoryIndex(entries);
      expect(written.count).toBe(memory.size);
      const reopened = engine.openSegment(path);
      expect(reopened.ids()).toEqual(memory.ids());
      expectSameIndex(reopened, memory, big.queries.slice(0, 5), 'repeated ids');
      reopened.close();
    });

    it('non-finite avgl values are kept (the file is flagged so no bound relies on them) and queries still answer', () => {
      const random = rng(6);
      const entries: Array<[number, Signature]> = Array.from({ length: 500 }, (_, i) => [i + 1, syntheticSignature(random)]);
      entries[10][1] = { coefs: entries[10][1].coefs, avgl: Float64Array.of(Number.NaN, 0, 0) };
      entries[20][1] = { coefs: entries[20][1].coefs, avgl: Float64Array.of(0.5, Number.POSITIVE_INFINITY, 0) };
      const path = join(dir, 'non-finite.hseg');
      writeSegment(path, batchesOf(entries), { seq: 1, dbId: 1 });
      const bytes = new Uint8Array(readFileSync(path));
      expect(decodeHeader(bytes, bytes.length, path).flags & FLAG_NON_FINITE_AVGL).toBe(FLAG_NON_FINITE_AVGL);
      const segment = engine.openSegment(path);
      expect(segment.size).toBe(500);
      expect(Number.isNaN(segment.avgl(11)![0])).toBe(true);
      const got = segment.query(entries[0][1], { limit: 10 });
      expect(got[0][0]).toBe(1);
      expect(got).toHaveLength(10);
      segment.close();
    });

    it('a malformed signature is refused as addBatch refuses it, and leaves no file behind', () => {
      const random = rng(4);
      const entries: Array<[number, Signature]> = Array.from({ length: 10 }, (_, i) => [i + 1, syntheticSignature(random)]);
      const batch = toBatch(entries);
      batch.coefs[3 * 120 + 7] = 0;
      const path = join(dir, 'bad.hseg');
      expect(() => writeSegment(path, [batch], { seq: 1, dbId: 1 })).toThrow(RangeError);
      const twice = toBatch(entries);
      twice.coefs[5 * 120 + 1] = twice.coefs[5 * 120 + 2];
      expect(() => writeSegment(path, [twice], { seq: 1, dbId: 1 })).toThrow(/appears twice/);
      expect(readdirSync(dir).filter((f) => f.includes('bad.hseg'))).toEqual([]);
    });

    it('damaged, truncated and foreign files are refused with a clear error', () => {
      const path = join(dir, 'small.hseg');
      const random = rng(21);
      const small = Array.from({ length: 5000 }, (_, i) => [i + 1, syntheticSignature(random)] as const);
      writeSegment(path, batchesOf(small), { seq: 1, dbId: 1 });
      const good = new Uint8Array(readFileSync(path));
      const bad = join(dir, 'damaged.hseg');
      const refuses = (bytes: Uint8Array, reason: RegExp, options = {}) => {
        writeFileSync(bad, bytes);
        let error: unknown;
        try {
          engine.openSegment(bad, options).close();
        } catch (err) {
          error = err;
        }
        expect(error, String(reason)).toBeInstanceOf(SegmentFormatError);
        expect((error as SegmentFormatError).code).toBe('HAARSEEK_SEGMENT_INVALID');
        expect((error as Error).message).toMatch(reason);
        expect((error as Error).message).toContain(bad);
        expect((error as Error).message).toMatch(/rebuild it from the database/);
      };
      const edit = (f: (b: Uint8Array, v: DataView) => void) => {
        const b = good.slice();
        f(b, new DataView(b.buffer));
        return b;
      };
      refuses(new TextEncoder().encode('PRAGMA foreign file, not a segment\n'.repeat(200)), /not an index segment \(wrong magic bytes\)/);
      refuses(new Uint8Array(0), /truncated: 0 bytes/);
      refuses(good.slice(0, 100), /truncated: 100 bytes, shorter than the 4096-byte header/);
      refuses(good.slice(0, good.length - 1000), new RegExp(`truncated: ${good.length - 1000} bytes, the header says ${good.length}`));
      refuses(new Uint8Array([...good, 1, 2, 3]), /trailing data/);
      refuses(edit((b) => (b[SEGMENT_HEADER_BYTES + 12_345] ^= 0x10)), /damaged \(checksum mismatch\)/);
      refuses(edit((b) => (b[b.length - 3] ^= 0x01)), /damaged \(checksum mismatch\)/);
      refuses(edit((b) => (b[H.count] ^= 0x01)), /damaged header \(checksum mismatch\)/);
      refuses(edit((b, v) => { v.setUint32(H.version, 2, true); rewriteHeaderCrc(b); }), /format version 2, this build reads version 1/);
      refuses(edit((b, v) => { v.setUint32(H.byteOrder, 0x04030201, true); rewriteHeaderCrc(b); }), /another byte order/);
      refuses(edit((b, v) => { v.setUint32(H.chunkBits, 15, true); rewriteHeaderCrc(b); }), /unsupported geometry/);
      refuses(edit((b, v) => { v.setBigUint64(H.postingsOffset, 4096n, true); rewriteHeaderCrc(b); }), /inconsistent header \(postingsOffset\)/);
      refuses(edit((b, v) => { v.setBigUint64(H.count, 4000n, true); rewriteHeaderCrc(b); }), /inconsistent header/);
      refuses(edit((b, v) => { v.setBigUint64(H.count, 4999n, true); rewriteHeaderCrc(b); }), /postings beyond the image count/);
      // Consistent checksums around a broken structure (a file written by something else):
      // refused before any query could read out of bounds.
      const h = decodeHeader(good, good.length, path);
      refuses(edit((b, v) => { v.setFloat64(h.idsOffset + 8 * 10, 3, true); rewriteBodyCrc(b); }), /image ids not strictly ascending/);
      refuses(edit((b, v) => { v.setUint32(h.dirOffset + 4 * 500, 0xfffffff0, true); rewriteBodyCrc(b); }), /bad directory/);
      refuses(edit((b, v) => { v.setBigUint64(h.chunkTableOffset, 64n, true); rewriteBodyCrc(b); }), /bad chunk table/);
      // Postings out of order in some array list.
      const v = checkSegmentBody(good.slice(), h, path);
      let broken = -1;
      for (let l = 0; l < SEGMENT_LISTS && broken < 0; l++) if (v.dir[l + 1] - v.dir[l] >= 2 && v.dir[l + 1] - v.dir[l] < BITMAP_UNITS) broken = l;
      refuses(edit((b, dv) => { dv.setUint16(h.postingsOffset + 2 * v.dir[broken], 65535, true); rewriteBodyCrc(b); }), /postings not ascending/);
      // verify: false skips the body checksum only.
      writeFileSync(bad, edit((b) => (b[h.avglOffset + 5] ^= 0x01)));
      expect(() => engine.openSegment(bad)).toThrow(/checksum/);
      engine.openSegment(bad, { verify: false }).close();
      // A missing file is not a format error.
      expect(() => engine.openSegment(join(dir, 'missing.hseg'))).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    });

    it('layered index: adds, replaces and removals over a segment, across segment rebuilds, rank as one in-memory index', () => {
      const random = rng(77);
      const pool = [...big.queries, ...Array.from({ length: 40 }, () => syntheticSignature(random))];
      type Op = { t: 'add'; id: number; sig: number } | { t: 'remove'; id: number } | { t: 'query'; sig: number; limit: number; sketch: boolean; fast: boolean; allowed: number[] | null } | { t: 'rebuild' };
      const idArb = fc.integer({ min: 1, max: 60 });
      const opArb: fc.Arbitrary<Op> = fc.oneof(
        { weight: 5, arbitrary: fc.record({ t: fc.constant('add' as const), id: idArb, sig: fc.nat(pool.length - 1) }) },
        { weight: 3, arbitrary: fc.record({ t: fc.constant('remove' as const), id: idArb }) },
        {
          weight: 4,
          arbitrary: fc.record({
            t: fc.constant('query' as const),
            sig: fc.nat(pool.length - 1),
            limit: fc.oneof(fc.integer({ min: 0, max: 12 }), fc.integer({ min: 13, max: 80 })),
            sketch: fc.boolean(),
            fast: fc.boolean(),
            allowed: fc.option(fc.array(idArb, { maxLength: 10 }), { nil: null }),
          }),
        },
        { weight: 1, arbitrary: fc.constant({ t: 'rebuild' as const }) },
      );
      let n = 0;
      fc.assert(
        fc.property(fc.array(idArb, { maxLength: 40 }), fc.array(opArb, { minLength: 1, maxLength: 120 }), (initial, ops) => {
          const path = join(dir, `layered-${n++}.hseg`);
          const state = new Map<number, Signature>();
          initial.forEach((id, k) => state.set(id, pool[(id * 7 + k) % pool.length]));
          writeSegment(path, batchesOf([...state]), { seq: 1, dbId: 1, sync: false });
          let layered = new LayeredIndex(engine.openSegment(path), engine.createIndex());
          const reference = memoryIndex([...state]);
          let seq = 1;
          for (const op of ops) {
            if (op.t === 'add') {
              layered.add(op.id, pool[op.sig]);
              reference.add(op.id, pool[op.sig]);
              state.set(op.id, pool[op.sig]);
            } else if (op.t === 'remove') {
              expect(layered.remove(op.id)).toBe(reference.remove(op.id));
              state.delete(op.id);
            } else if (op.t === 'rebuild') {
              // A new segment of the current state; the old one stays mapped until replaced.
              writeSegment(path, batchesOf([...state]), { seq: ++seq, dbId: 1, sync: false });
              const next = new LayeredIndex(engine.openSegment(path), engine.createIndex());
              expect(next.seq).toBe(seq);
              layered.clear();
              layered = next;
            } else {
              const options: QueryOptions = { limit: op.limit, sketch: op.sketch, fast: op.fast };
              if (op.allowed) options.allowed = new Set(op.allowed);
              expect(layered.query(pool[op.sig], options), JSON.stringify(op)).toEqual(reference.query(pool[op.sig], options));
            }
            expect(layered.size).toBe(reference.size);
          }
          expect(layered.ids()).toEqual(reference.ids());
          for (const id of reference.ids()) {
            expect(layered.has(id)).toBe(true);
            expect(Array.from(layered.avgl(id)!)).toEqual(Array.from(reference.avgl(id)!));
          }
          layered.clear();
          expect(layered.size).toBe(0);
          layered.add(5, pool[0]);
          expect(layered.ids()).toEqual([5]);
          rmSync(path, { force: true });
        }),
        { numRuns: 120, seed: 160_016 },
      );
    });

    it('layered index at 70,000 images: a thousand changes, then a rebuild and more changes', () => {
      const random = rng(31);
      const state = new Map(big.entries);
      let layered = new LayeredIndex(engine.openSegment(bigPath), engine.createIndex());
      const ids = big.entries.map(([id]) => id);
      const change = (count: number) => {
        for (let i = 0; i < count; i++) {
          const roll = random();
          const id = roll < 0.3 ? 1 + Math.floor(random() * 500) : ids[Math.floor(random() * ids.length)];
          if (roll < 0.6) {
            const sig = random() < 0.5 ? perturbed(big.queries[Math.floor(random() * big.queries.length)], random, 2) : syntheticSignature(random);
            layered.add(id, sig);
            state.set(id, sig);
          } else {
            expect(layered.remove(id)).toBe(state.delete(id));
          }
        }
      };
      change(1000);
      expectSameIndex(layered, memoryIndex([...state]), big.queries.slice(0, 8), 'after 1000 changes');
      const path = join(dir, 'rebuilt.hseg');
      writeSegment(path, batchesOf([...state]), { seq: 43, dbId: 3 });
      layered.clear();
      layered = new LayeredIndex(engine.openSegment(path), engine.createIndex());
      change(1000);
      const memory = memoryIndex([...state]);
      expectSameIndex(layered, memory, big.queries.slice(0, 8), 'after the rebuild and 1000 more');
      expect(layered.ids()).toEqual(memory.ids());
      expect(layered.memoryBytes()).toBeGreaterThan(0);
      layered.clear();
    });

    it('a catalog holds layered indexes: install swaps a space, the replaced index lets its segment go', () => {
      const catalog = new IndexCatalog(() => engine.createIndex());
      const first = new LayeredIndex(engine.openSegment(bigPath), engine.createIndex());
      catalog.install(3, first);
      expect(catalog.imageCount()).toBe(70_000);
      expect(catalog.mappedBytes()).toBe(engineName === 'native' ? first.segment!.fileBytes : 0);
      expect(catalog.memoryBytes()).toBeGreaterThan(0);
      const second = new LayeredIndex(engine.openSegment(bigPath), engine.createIndex());
      catalog.install(3, second);
      expect(first.size).toBe(0);
      expect(first.segment).toBeNull();
      expect(catalog.get(3)!.query(big.queries[0], { limit: 5 })).toEqual(memoryIndex(big.entries).query(big.queries[0], { limit: 5 }));
      catalog.drop(3);
      expect(second.size).toBe(0);
    });

    it('writeSnapshotSegments writes every space of one snapshot with its sequence and removes unknown spaces', () => {
      const snapDir = mkdtempSync(join(dir, 'snap-'));
      const random = rng(8);
      const spaces = new Map<number, Array<[number, Signature]>>([
        [1, Array.from({ length: 300 }, (_, i) => [i + 1, syntheticSignature(random)] as [number, Signature])],
        [2, []],
        [7, Array.from({ length: 20 }, (_, i) => [100 + i, syntheticSignature(random)] as [number, Signature])],
      ]);
      writeFileSync(segmentPath(snapDir, 99), 'stale');
      const source = {
        snapshot(only: ReadonlySet<number> | undefined, load: (dbId: number, batches: Iterable<SignatureBatch>) => void) {
          for (const [dbId, entries] of spaces) if (!only || only.has(dbId)) load(dbId, batchesOf(entries, 64));
          return { seq: 1234, knownSpaces: [...spaces.keys()] };
        },
      };
      const { seq, segments } = writeSnapshotSegments(source, snapDir);
      expect(seq).toBe(1234);
      expect(segments.map((s) => [s.dbId, s.count, s.seq])).toEqual([
        [1, 300, 1234],
        [2, 0, 1234],
        [7, 20, 1234],
      ]);
      expect(readdirSync(snapDir).sort()).toEqual(['space-1.hseg', 'space-2.hseg', 'space-7.hseg']);
      for (const [dbId, entries] of spaces) {
        const segment = engine.openSegment(segmentPath(snapDir, dbId));
        expect(segment.seq).toBe(1234);
        expect(segment.dbId).toBe(dbId);
        expectSameIndex(segment, memoryIndex(entries), big.queries.slice(0, 2), `space ${dbId}`);
        segment.close();
      }
      writeSnapshotSegments(source, snapDir, new Set([7]));
      expect(readdirSync(snapDir).sort()).toEqual(['space-1.hseg', 'space-2.hseg', 'space-7.hseg']);
    });
  });
}
