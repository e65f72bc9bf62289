/**
 * Writes index segment files (layout in segment-format.ts) from the signatures a
 * snapshot streams, atomically: a temporary file beside the target, fsync, rename,
 * fsync of the directory. A reader opening the path sees the old file or the new one,
 * never half of one. Engine-independent: both engines read what this writes.
 */
import { closeSync, fsyncSync, openSync, readSync, readdirSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { CHANNELS, COEFS_PER_CHANNEL, PIXELS, SIGNATURE_LENGTH } from '../signature/types.ts';
import type { SnapshotSource } from './catalog.ts';
import {
  BITMAP_MIN_POSTINGS,
  BITMAP_UNITS,
  CHUNK_SLOTS,
  FLAG_NON_FINITE_AVGL,
  H,
  SEGMENT_HEADER_BYTES,
  SEGMENT_LISTS,
  SEGMENT_VERSION,
  crc32,
  encodeHeader,
  segmentLayout,
} from './segment-format.ts';
import type { SignatureBatch, SpaceFilter } from './types.ts';

export interface SegmentWriteOptions {
  /** The change-log sequence the signatures match (every change up to it is in). */
  seq: number;
  /** The database space, recorded in the header. */
  dbId: number;
  /** fsync the file and its directory before returning (default true; tests turn it off). */
  sync?: boolean;
}

export interface WrittenSegment {
  path: string;
  dbId: number;
  seq: number;
  count: number;
  bytes: number;
}

const BLOCK = CHUNK_SLOTS;

/** The signatures of a snapshot, copied out of its reused batch arrays. */
class Collected {
  count = 0;
  ids = new Float64Array(1024);
  avgl = new Float64Array(1024 * CHANNELS);
  /** Coefficients in blocks of BLOCK images, so a million never needs one copy of all at once twice. */
  readonly coefBlocks: Int16Array[] = [];

  add(batch: SignatureBatch): void {
    for (let k = 0; k < batch.count; k++) {
      const id = batch.ids[k];
      if (Number.isNaN(id)) throw new RangeError('image id is NaN');
      checkSignature(batch.coefs, k * SIGNATURE_LENGTH, id);
    }
    const need = this.count + batch.count;
    if (need > this.ids.length) {
      const cap = Math.max(need, this.ids.length * 2);
      const ids = new Float64Array(cap);
      ids.set(this.ids.subarray(0, this.count));
      const avgl = new Float64Array(cap * CHANNELS);
      avgl.set(this.avgl.subarray(0, this.count * CHANNELS));
      this.ids = ids;
      this.avgl = avgl;
    }
    this.ids.set(batch.ids.subarray(0, batch.count), this.count);
    this.avgl.set(batch.avgl.subarray(0, batch.count * CHANNELS), this.count * CHANNELS);
    for (let k = 0; k < batch.count; ) {
      const at = this.count + k;
      const block = Math.floor(at / BLOCK);
      const offset = at % BLOCK;
      const take = Math.min(batch.count - k, BLOCK - offset);
      if (block === this.coefBlocks.length) this.coefBlocks.push(new Int16Array(Math.min(BLOCK, Math.max(1024, take)) * SIGNATURE_LENGTH));
      let coefs = this.coefBlocks[block];
      if ((offset + take) * SIGNATURE_LENGTH > coefs.length) {
        // The last block grows geometrically: a small space never holds a whole block.
        const grown = new Int16Array(Math.min(BLOCK, Math.max(offset + take, (coefs.length / SIGNATURE_LENGTH) * 2)) * SIGNATURE_LENGTH);
        grown.set(coefs.subarray(0, offset * SIGNATURE_LENGTH));
        this.coefBlocks[block] = coefs = grown;
      }
      coefs.set(batch.coefs.subarray(k * SIGNATURE_LENGTH, (k + take) * SIGNATURE_LENGTH), offset * SIGNATURE_LENGTH);
      k += take;
    }
    this.count = need;
  }

  /** Input positions of the images to keep, by ascending id; the last of repeated ids wins (as addBatch replaces). */
  order(): Uint32Array {
    const n = this.count;
    const ids = this.ids;
    let sorted = true;
    for (let k = 1; k < n && sorted; k++) sorted = ids[k] > ids[k - 1];
    if (sorted) {
      const all = new Uint32Array(n);
      for (let k = 0; k < n; k++) all[k] = k;
      return all;
    }
    const perm = Array.from({ length: n }, (_, k) => k).sort((a, b) => ids[a] - ids[b] || a - b);
    const kept: number[] = [];
    for (let i = 0; i < n; i++) {
      if (i + 1 < n && ids[perm[i + 1]] === ids[perm[i]]) continue;
      kept.push(perm[i]);
    }
    return Uint32Array.from(kept);
  }
}

const seen = new Int32Array(SEGMENT_LISTS);
let stamp = 0;

/**
 * LIST_OF[c * 2 * PIXELS + coef + PIXELS] is the list of coefficient coef (+-1..16383)
 * of channel c, numbered as the in-memory indexes number them; -1 for 0 and out of range.
 */
const LIST_OF = (() => {
  const table = new Int32Array(CHANNELS * 2 * PIXELS).fill(-1);
  for (let c = 0; c < CHANNELS; c++) {
    for (let coef = 1; coef < PIXELS; coef++) {
      table[c * 2 * PIXELS + PIXELS + coef] = c * 2 * PIXELS + coef;
      table[c * 2 * PIXELS + PIXELS - coef] = (c * 2 + 1) * PIXELS + coef;
    }
  }
  return table;
})();

/** The range checks of addBatch, plus: a bitmap cannot hold a coefficient twice. */
function checkSignature(coefs: Int16Array, at: number, id: number): void {
  if (++stamp === 0x7fffffff) {
    seen.fill(0);
    stamp = 1;
  }
  for (let c = 0, o = at; c < CHANNELS; c++) {
    const base = c * 2 * PIXELS + PIXELS;
    for (let k = 0; k < COEFS_PER_CHANNEL; k++, o++) {
      const coef = coefs[o];
      // Int16 coefficients lie in -32768..32767: out of +-16383 reads another channel's
      // row of the table or a -1, and the list must be this channel's.
      const list = coef > -PIXELS && coef < PIXELS ? LIST_OF[base + coef] : -1;
      if (list < 0) throw new RangeError('signature coefficient out of range (must be +-1..16383)');
      if (seen[list] === stamp) throw new RangeError(`image ${id}: coefficient ${coef} appears twice in channel ${c}; an index segment cannot hold it`);
      seen[list] = stamp;
    }
  }
}

/** Sequential writer of the body, keeping the checksum and the position. */
class BodyWriter {
  crc = 0;
  pos = SEGMENT_HEADER_BYTES;
  constructor(private readonly fd: number) {}

  write(data: ArrayBufferView): void {
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    this.crc = crc32(bytes, this.crc);
    let done = 0;
    while (done < bytes.length) done += writeSync(this.fd, bytes, done, bytes.length - done, this.pos + done);
    this.pos += bytes.length;
  }

  padTo(offset: number): void {
    if (offset > this.pos) this.write(new Uint8Array(offset - this.pos));
  }
}

/**
 * Writes one space's segment at `path` from the batches (as IndexCatalog.load takes
 * them; the arrays may be reused between batches). Throws RangeError, as addBatch
 * does, for a malformed signature; nothing is left behind then.
 */
export function writeSegment(path: string, batches: Iterable<SignatureBatch>, options: SegmentWriteOptions): WrittenSegment {
  const collected = new Collected();
  for (const batch of batches) collected.add(batch);
  const tmp = temporaryPath(path);
  try {
    const written = writeCollected(tmp, collected, options);
    commit(tmp, path, options.sync !== false);
    return { ...written, path };
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

function temporaryPath(path: string): string {
  return join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 10)}`);
}

function commit(tmp: string, path: string, sync = true): void {
  renameSync(tmp, path);
  if (sync) syncDirectory(dirname(path));
}

function writeCollected(tmp: string, collected: Collected, options: SegmentWriteOptions): Omit<WrittenSegment, 'path'> {
  const order = collected.order();
  const n = order.length;
  const fd = openSync(tmp, 'w', 0o644);
  try {
    const out = new BodyWriter(fd);
    // Layout offsets before the postings depend on the count only.
    const pre = segmentLayout(n, 0);
    const ids = new Float64Array(n);
    for (let i = 0; i < n; i++) ids[i] = collected.ids[order[i]];
    out.write(ids);
    out.padTo(pre.avglOffset);
    const channel = new Float64Array(n);
    const avgl8 = new Uint8Array(n * 4);
    const avgl8Min: [number, number, number] = [0, 0, 0];
    const avgl8Step: [number, number, number] = [1, 1, 1];
    let flags = 0;
    for (let c = 0; c < CHANNELS; c++) {
      let min = Infinity;
      let max = -Infinity;
      for (let i = 0; i < n; i++) {
        const a = (channel[i] = collected.avgl[order[i] * CHANNELS + c]);
        if (!Number.isFinite(a)) flags |= FLAG_NON_FINITE_AVGL;
        else if (a < min) min = a;
        if (a > max && Number.isFinite(a)) max = a;
      }
      out.write(channel);
      // 8-bit copies for the bounded query's lower bound of the avgl term.
      const step = max > min && Number.isFinite((max - min) / 255) && (max - min) / 255 > 0 ? (max - min) / 255 : 1;
      const base = Number.isFinite(min) ? min : 0;
      avgl8Min[c] = base;
      avgl8Step[c] = step;
      for (let i = 0; i < n; i++) {
        const q = Math.round((channel[i] - base) / step);
        avgl8[i * 4 + c] = q >= 0 && q <= 255 ? q : 0;
      }
    }
    out.padTo(pre.avgl8Offset);
    out.write(avgl8);
    out.padTo(pre.postingsOffset);
    const chunks = pre.chunks;
    const chunkTable = new BigUint64Array(chunks + 1);
    const dir = new Uint32Array(chunks * (SEGMENT_LISTS + 1));
    const counts = new Uint32Array(SEGMENT_LISTS);
    const cursor = new Uint32Array(SEGMENT_LISTS);
    const bitmapWord = new Int32Array(SEGMENT_LISTS);
    const lists = new Uint32Array(Math.min(CHUNK_SLOTS, n) * SIGNATURE_LENGTH);
    let postingsBytes = 0;
    for (let chunk = 0; chunk < chunks; chunk++) {
      const first = chunk * CHUNK_SLOTS;
      const len = Math.min(CHUNK_SLOTS, n - first);
      counts.fill(0);
      // The list of every coefficient of the chunk's images, in slot order.
      for (let local = 0, o = 0; local < len; local++) {
        const src = order[first + local];
        const coefs = collected.coefBlocks[(src / BLOCK) | 0];
        let at = (src % BLOCK) * SIGNATURE_LENGTH;
        for (let c = 0; c < CHANNELS; c++) {
          const base = c * 2 * PIXELS + PIXELS;
          for (let k = 0; k < COEFS_PER_CHANNEL; k++, o++, at++) {
            const list = LIST_OF[base + coefs[at]];
            lists[o] = list;
            counts[list]++;
          }
        }
      }
      const d = chunk * (SEGMENT_LISTS + 1);
      let units = 0;
      for (let l = 0; l < SEGMENT_LISTS; l++) {
        dir[d + l] = units;
        if (counts[l] >= BITMAP_MIN_POSTINGS) {
          units += ((4 - (units % 4)) % 4) + BITMAP_UNITS; // 8-byte aligned bitmap at the end of its span
          bitmapWord[l] = (units - BITMAP_UNITS) >>> 1;
        } else {
          cursor[l] = units;
          units += counts[l];
          bitmapWord[l] = -1;
        }
      }
      dir[d + SEGMENT_LISTS] = units;
      const bytes = Math.ceil((units * 2) / 64) * 64;
      const postings = new Uint16Array(bytes / 2);
      const words = new Uint32Array(postings.buffer);
      for (let local = 0, o = 0; local < len; local++) {
        const word = local >>> 5;
        const bit = 1 << (local & 31);
        for (let j = 0; j < SIGNATURE_LENGTH; j++, o++) {
          const l = lists[o];
          const at = bitmapWord[l];
          if (at >= 0) words[at + word] |= bit;
          else postings[cursor[l]++] = local;
        }
      }
      chunkTable[chunk] = BigInt(postingsBytes);
      out.write(postings);
      postingsBytes += bytes;
    }
    chunkTable[chunks] = BigInt(postingsBytes);
    const layout = segmentLayout(n, postingsBytes);
    out.padTo(layout.chunkTableOffset);
    out.write(chunkTable);
    out.padTo(layout.dirOffset);
    out.write(dir);
    if (out.pos !== layout.fileBytes) throw new Error(`segment writer: wrote ${out.pos} bytes, expected ${layout.fileBytes}`);
    const header = encodeHeader({
      version: SEGMENT_VERSION,
      ...layout,
      count: n,
      seq: options.seq,
      dbId: options.dbId,
      postingsBytes,
      createdAtMs: Date.now(),
      bodyCrc: out.crc,
      avgl8Min,
      avgl8Step,
      flags,
    });
    writeSync(fd, header, 0, header.length, 0);
    if (options.sync !== false) fsyncSync(fd);
    return { dbId: options.dbId, seq: options.seq, count: n, bytes: layout.fileBytes };
  } finally {
    closeSync(fd);
  }
}

function syncDirectory(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // Some platforms cannot fsync a directory; the rename is still atomic.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** The file name of a space's segment inside a segment directory. */
export function segmentFileName(dbId: number): string {
  return `space-${dbId}.hseg`;
}

export function segmentPath(dir: string, dbId: number): string {
  return join(dir, segmentFileName(dbId));
}

/**
 * Writes the segment of every space of one consistent snapshot (or only those given)
 * into `dir` as space-<dbId>.hseg, all covering the snapshot's sequence; one space's
 * signatures are held at a time. When every space was written, segment files of spaces
 * the snapshot does not know are deleted. Each file is replaced atomically; readers
 * holding an older file mapped keep it.
 */
export function writeSnapshotSegments(source: SnapshotSource, dir: string, only?: SpaceFilter): { seq: number; segments: WrittenSegment[] } {
  const pending: Array<{ tmp: string; path: string; written: Omit<WrittenSegment, 'path'> }> = [];
  try {
    // The snapshot's sequence is known when it returns (one read transaction): each
    // space is written with a placeholder, and its header gets the sequence after.
    const { seq, knownSpaces } = source.snapshot(only, (dbId, batches) => {
      const collected = new Collected();
      for (const batch of batches) collected.add(batch);
      const path = segmentPath(dir, dbId);
      const tmp = temporaryPath(path);
      pending.push({ tmp, path, written: { dbId, seq: 0, count: 0, bytes: 0 } });
      pending[pending.length - 1].written = writeCollected(tmp, collected, { seq: 0, dbId });
    });
    for (const p of pending) setHeaderSeq(p.tmp, seq);
    for (const p of pending) commit(p.tmp, p.path);
    if (only === undefined) {
      const known = new Set(knownSpaces.map((id) => segmentFileName(id)));
      for (const name of readdirSync(dir)) {
        if (/^space-.*\.hseg$/.test(name) && !known.has(name)) rmSync(join(dir, name), { force: true });
      }
    }
    return { seq, segments: pending.map((p) => ({ ...p.written, seq, path: p.path })) };
  } finally {
    for (const p of pending) rmSync(p.tmp, { force: true });
  }
}

/** Rewrites the sequence (and the header checksum) of a written, not yet renamed segment. */
function setHeaderSeq(path: string, seq: number): void {
  const fd = openSync(path, 'r+');
  try {
    const header = new Uint8Array(SEGMENT_HEADER_BYTES);
    readSync(fd, header, 0, header.length, 0);
    const v = new DataView(header.buffer);
    v.setBigUint64(H.seq, BigInt(seq), true);
    v.setUint32(H.headerCrc, 0, true);
    v.setUint32(H.headerCrc, crc32(header), true);
    writeSync(fd, header, 0, header.length, 0);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
