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

/** Bucket entries held at once while the bucket section is written (4 bytes each). */
const ENTRY_BUDGET = 8 * 1024 * 1024;
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
  options: { entryBudget?: number } = {},
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
      images += yield* writeSpaceBody(out, space, options.entryBudget ?? ENTRY_BUDGET);
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

function* writeSpaceBody(out: OutFile, space: IskSpaceSource, entryBudget: number): Generator<void, number> {
  const { ids } = space;
  const n = ids.length;
  const counts = new Uint32Array(BUCKETS);
  const buckets = new Int32Array(SIGNATURE_LENGTH);
  let seen = 0;
  for (const sig of space.signatures()) {
    bucketsOf(sig, buckets);
    for (let j = 0; j < SIGNATURE_LENGTH; j++) counts[buckets[j]]++;
    if (++seen % YIELD_EVERY === 0) yield;
  }
  if (seen !== n) throw new Error(`space ${space.dbId}: ${seen} signatures for ${n} ids`);

  let entries = new Uint32Array(0);
  const fill = new Uint32Array(BUCKETS);
  for (let b0 = 0; b0 < BUCKETS; ) {
    let b1 = b0;
    let total = 0;
    while (b1 < BUCKETS && (b1 === b0 || total + counts[b1] <= entryBudget)) total += counts[b1++];
    if (entries.length < total) entries = new Uint32Array(total);
    let at = 0;
    for (let b = b0; b < b1; b++) {
      fill[b] = at;
      at += counts[b];
    }
    if (total > 0) {
      let k = 0;
      for (const sig of space.signatures()) {
        bucketsOf(sig, buckets);
        for (let j = 0; j < SIGNATURE_LENGTH; j++) {
          const b = buckets[j];
          if (b >= b0 && b < b1) entries[fill[b]++] = k;
        }
        if (++k % YIELD_EVERY === 0) yield;
      }
    }
    let p = 0;
    for (let b = b0; b < b1; b++) {
      out.i32(counts[b]);
      for (let j = 0; j < counts[b]; j++) out.i64(ids[entries[p++]]);
    }
    b0 = b1;
    yield;
  }

  out.u64(n);
  let k = 0;
  for (const rec of space.records()) {
    if (rec.id !== ids[k]) throw new Error(`space ${space.dbId}: record ${k} has id ${rec.id}, expected ${ids[k]}`);
    out.ensure(520 + 4);
    out.i64(rec.id);
    for (let j = 0; j < SIGNATURE_LENGTH; j++) out.i32(rec.coefs[j]);
    for (let c = 0; c < CHANNELS; c++) out.f64(rec.avgl[c]);
    out.i32(checkedInt32(rec.width, 'width', rec.id));
    out.i32(checkedInt32(rec.height, 'height', rec.id));
    out.i32(rec.keywords.length);
    for (let j = 0; j < rec.keywords.length; j++) out.i32(rec.keywords[j]);
    if (++k % YIELD_EVERY === 0) yield;
  }
  if (k !== n) throw new Error(`space ${space.dbId}: ${k} records for ${n} ids`);
  return n;
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
  private readonly buf = Buffer.allocUnsafe(OUT_CHUNK);
  private pos = 0;
  private closed = false;
  written = 0;

  constructor(path: string) {
    this.fd = openSync(path, 'w');
  }

  ensure(n: number): void {
    if (this.pos + n > this.buf.length) this.flush();
  }

  i32(v: number): void {
    this.ensure(4);
    this.buf.writeInt32LE(v, this.pos);
    this.pos += 4;
  }

  u64(v: number): void {
    this.i64(v);
  }

  /** An integer below 2^53 in magnitude as int64. */
  i64(v: number): void {
    this.ensure(8);
    this.buf.writeUInt32LE(v >>> 0, this.pos);
    this.buf.writeInt32LE(Math.floor(v / 0x100000000), this.pos + 4);
    this.pos += 8;
  }

  f64(v: number): void {
    this.ensure(8);
    this.buf.writeDoubleLE(v, this.pos);
    this.pos += 8;
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
