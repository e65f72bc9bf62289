import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import * as sigTypes from '../signature/types.ts';
import { ImportError } from './errors.ts';
import * as isk from './isk-format.ts';
import type { IskForm } from './isk-format.ts';

// Module-local copies for the per-coefficient loops (see isk-reader.ts).
const { CHANNELS, COEFS_PER_CHANNEL, SIGNATURE_LENGTH } = sigTypes;
const { BUCKETS, SRZ_LANG_PYTHON, SRZ_PLAT_LINUX, SRZ_V0_7_0, SRZ_VERSIONED } = isk;
const bucketOf = isk.bucketOf;

/** One image as written: coefficients and keywords in the order they go to the file. */
export interface IskRecordOut {
  id: number;
  width: number;
  height: number;
  avgl: ArrayLike<number>;
  /** 120 coefficients, Y then I then Q. */
  coefs: ArrayLike<number>;
  keywords: ArrayLike<number>;
}

/** A space to write. Every iteration goes in ascending id order and may be asked for more than once. */
export interface IskSpaceSource {
  dbId: number;
  /** The image ids, ascending. */
  ids: Float64Array;
  /** Each image's signature as 120 int16 LE (240 bytes), in id order; only the set matters. */
  signatures(): Iterable<Uint8Array>;
  records(): Iterable<IskRecordOut>;
}

/** Bucket entries held at once while the bucket section is written (4 bytes each: 64 MB). */
const ENTRY_BUDGET = 16 * 1024 * 1024;
/** A space's signatures are read from the source once when they fit in this (1M images); else once per bucket range. */
const SIGNATURE_CACHE_BYTES = 256 * 1024 * 1024;
const OUT_CHUNK = 4 * 1024 * 1024;
const YIELD_EVERY = 4096;

/**
 * Writes spaces as iskdaemon 0.9.5's savealldbs (all given spaces) or savedb (one space)
 * file, byte for byte as imgdb.cpp lays it out, atomically (a temporary file renamed
 * over `path`). The bucket section lists, per coefficient, the ids of the images having
 * it, ascending; it is built a range of buckets at a time, so memory stays bounded
 * however many images a space holds.
 */
export function* writeIskFile(
  path: string,
  form: IskForm,
  spaces: IskSpaceSource[],
  options: { entryBudget?: number; cacheBytes?: number } = {},
): Generator<void, { bytes: number; images: number }> {
  if (form === 'savedb' && spaces.length !== 1) throw new ImportError('space', `a savedb file holds exactly one database space, not ${spaces.length}`);
  const tmp = `${path}.tmp-${process.pid}`;
  rmSync(tmp, { force: true });
  const out = new OutFile(tmp);
  let images = 0;
  let done = false;
  try {
    out.i32(SRZ_VERSIONED);
    out.i32(SRZ_V0_7_0);
    out.i32(SRZ_LANG_PYTHON);
    out.i32(SRZ_PLAT_LINUX);
    if (form === 'savealldbs') out.i32(spaces.length);
    for (const space of spaces) {
      if (form === 'savealldbs') out.i32(space.dbId);
      images += yield* writeSpaceBody(out, space, options.entryBudget ?? ENTRY_BUDGET, options.cacheBytes ?? SIGNATURE_CACHE_BYTES);
    }
    out.close(true);
    renameSync(tmp, path);
    done = true;
    return { bytes: out.written, images };
  } finally {
    // Also when the caller stops the job early (generator return).
    if (!done) {
      out.close(false);
      rmSync(tmp, { force: true });
    }
  }
}

function* writeSpaceBody(out: OutFile, space: IskSpaceSource, entryBudget: number, cacheBytes: number): Generator<void, number> {
  const { ids } = space;
  const n = ids.length;
  const counts = new Uint32Array(BUCKETS);
  const buckets = new Int32Array(SIGNATURE_LENGTH);
  // Signatures are read once and kept when they fit the cache; otherwise read again
  // for each range of buckets below.
  const sigBytes = SIGNATURE_LENGTH * 2;
  const cache = n * sigBytes <= cacheBytes ? new Uint8Array(n * sigBytes) : null;
  let seen = 0;
  for (const sig of space.signatures()) {
    if (seen >= n) throw new Error(`space ${space.dbId}: more signatures than its ${n} ids`);
    countBuckets(sig, buckets, counts);
    cache?.set(sig, seen * sigBytes);
    if (++seen % YIELD_EVERY === 0) yield;
  }
  if (seen !== n) throw new Error(`space ${space.dbId}: ${seen} signatures for ${n} ids`);
  const signatures = cache ? () => cachedSignatures(cache, n) : () => space.signatures();

  // Buckets b0..b1 at a time, as many as entryBudget entries allow: one more pass over
  // the signatures per range (a single pass when the space fits the budget).
  let entries = new Uint32Array(0);
  const fill = new Uint32Array(BUCKETS);
  for (let b0 = 0; b0 < BUCKETS; ) {
    let b1 = b0;
    let total = 0;
    while (b1 < BUCKETS && (b1 === b0 || total + counts[b1] <= entryBudget)) total += counts[b1++];
    if (entries.length < total) entries = new Uint32Array(total);
    for (let b = b0, at = 0; b < b1; b++) {
      fill[b] = at;
      at += counts[b];
    }
    if (total > 0) {
      let k = 0;
      for (const sig of signatures()) {
        distribute(sig, k, b0, b1, buckets, fill, entries);
        if (++k % YIELD_EVERY === 0) yield;
      }
    }
    for (let b = b0, p = 0; b < b1; b++) {
      out.i32(counts[b]);
      out.ids(ids, entries, p, counts[b]);
      p += counts[b];
    }
    b0 = b1;
    yield;
  }

  out.u64(n);
  let k = 0;
  for (const rec of space.records()) {
    if (rec.id !== ids[k]) throw new Error(`space ${space.dbId}: record ${k} has id ${rec.id}, expected ${ids[k]}`);
    out.record(rec);
    if (++k % YIELD_EVERY === 0) yield;
  }
  if (k !== n) throw new Error(`space ${space.dbId}: ${k} records for ${n} ids`);
  return n;
}

function* cachedSignatures(cache: Uint8Array, n: number): Generator<Uint8Array> {
  const sigBytes = SIGNATURE_LENGTH * 2;
  for (let k = 0; k < n; k++) yield cache.subarray(k * sigBytes, (k + 1) * sigBytes);
}

function countBuckets(sig: Uint8Array, buckets: Int32Array, counts: Uint32Array): void {
  bucketsOf(sig, buckets);
  for (let j = 0; j < SIGNATURE_LENGTH; j++) counts[buckets[j]]++;
}

/** Appends ordinal k to each of its buckets inside b0..b1 (fill[b]: the next free slot of bucket b). */
function distribute(sig: Uint8Array, k: number, b0: number, b1: number, buckets: Int32Array, fill: Uint32Array, entries: Uint32Array): void {
  bucketsOf(sig, buckets);
  for (let j = 0; j < SIGNATURE_LENGTH; j++) {
    const b = buckets[j];
    if (b >= b0 && b < b1) entries[fill[b]++] = k;
  }
}

/** The bucket of each of a signature's 120 coefficients (240 bytes, int16 LE). */
function bucketsOf(sig: Uint8Array, out: Int32Array): void {
  const view = new DataView(sig.buffer, sig.byteOffset, sig.byteLength);
  for (let c = 0; c < CHANNELS; c++) {
    for (let j = 0; j < COEFS_PER_CHANNEL; j++) out[c * COEFS_PER_CHANNEL + j] = bucketOf(c, view.getInt16((c * COEFS_PER_CHANNEL + j) * 2, true));
  }
}

function checkedInt32(v: number, what: string, id: number): number {
  if (!Number.isInteger(v) || v < -0x80000000 || v > 0x7fffffff) throw new ImportError('damaged', `image ${id}: its ${what} ${v} does not fit iskdaemon's int32`);
  return v;
}

/** Sequential little-endian writes through one buffer. */
class OutFile {
  private readonly fd: number;
  private readonly buf = new Uint8Array(OUT_CHUNK);
  private readonly view = new DataView(this.buf.buffer);
  private pos = 0;
  private closed = false;
  written = 0;

  constructor(path: string) {
    this.fd = openSync(path, 'w');
  }

  i32(v: number): void {
    if (this.pos + 4 > OUT_CHUNK) this.flush();
    this.view.setInt32(this.pos, v, true);
    this.pos += 4;
  }

  u64(v: number): void {
    this.i64(v);
  }

  /** An integer below 2^53 in magnitude as int64. */
  i64(v: number): void {
    if (this.pos + 8 > OUT_CHUNK) this.flush();
    this.view.setUint32(this.pos, v >>> 0, true);
    this.view.setInt32(this.pos + 4, Math.floor(v / 0x100000000), true);
    this.pos += 8;
  }

  /** ids[entries[from + j]] as int64 for j < count: a bucket's image ids. */
  ids(ids: Float64Array, entries: Uint32Array, from: number, count: number): void {
    const view = this.view;
    for (let j = 0; j < count; j++) {
      if (this.pos + 8 > OUT_CHUNK) this.flush();
      const v = ids[entries[from + j]];
      view.setUint32(this.pos, v >>> 0, true);
      view.setInt32(this.pos + 4, Math.floor(v / 0x100000000), true);
      this.pos += 8;
    }
  }

  /** One DiskSigStruct (520 bytes) and its keywords. */
  record(rec: IskRecordOut): void {
    const size = 520 + 4 + rec.keywords.length * 4;
    if (this.pos + size > OUT_CHUNK) this.flush();
    if (size > OUT_CHUNK) throw new ImportError('damaged', `image ${rec.id} has ${rec.keywords.length} keywords, more than an export can hold`);
    const view = this.view;
    let p = this.pos;
    view.setUint32(p, rec.id >>> 0, true);
    view.setInt32(p + 4, Math.floor(rec.id / 0x100000000), true);
    p += 8;
    for (let j = 0; j < SIGNATURE_LENGTH; j++, p += 4) view.setInt32(p, rec.coefs[j], true);
    for (let c = 0; c < CHANNELS; c++, p += 8) view.setFloat64(p, rec.avgl[c], true);
    view.setInt32(p, checkedInt32(rec.width, 'width', rec.id), true);
    view.setInt32(p + 4, checkedInt32(rec.height, 'height', rec.id), true);
    view.setInt32(p + 8, rec.keywords.length, true);
    p += 12;
    for (let j = 0; j < rec.keywords.length; j++, p += 4) view.setInt32(p, rec.keywords[j], true);
    this.pos = p;
  }

  close(sync: boolean): void {
    if (this.closed) return;
    this.closed = true;
    try {
      if (sync) {
        this.flush();
        fsyncSync(this.fd);
      }
    } finally {
      closeSync(this.fd);
    }
  }

  private flush(): void {
    let off = 0;
    while (off < this.pos) off += writeSync(this.fd, this.buf, off, this.pos - off);
    this.written += this.pos;
    this.pos = 0;
  }
}
