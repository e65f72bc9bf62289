import { SIGNATURE_LENGTH, type Signature } from '../signature/types.ts';

/** Coefficient indices fit in int16 (|i| < 16384): 240 bytes per signature on disk. */
export function encodeCoefs(coefs: Int32Array): Buffer {
  const packed = Buffer.allocUnsafe(SIGNATURE_LENGTH * 2);
  for (let k = 0; k < SIGNATURE_LENGTH; k++) packed.writeInt16LE(coefs[k], k * 2);
  return packed;
}

export function decodeCoefs(blob: Uint8Array): Int32Array {
  if (blob.byteLength !== SIGNATURE_LENGTH * 2) throw new RangeError(`signature blob of ${blob.byteLength} bytes`);
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  const coefs = new Int32Array(SIGNATURE_LENGTH);
  for (let k = 0; k < SIGNATURE_LENGTH; k++) coefs[k] = view.getInt16(k * 2, true);
  return coefs;
}

export interface ImageRow {
  dbId: number;
  imageId: number;
  width: number;
  height: number;
  sig: Signature;
}

export type RawImageRow = [imageId: number, width: number, height: number, y: number, i: number, q: number, sig: Buffer];

export function signatureOfRow(row: RawImageRow): Signature {
  return { coefs: decodeCoefs(row[6]), avgl: Float64Array.of(row[3], row[4], row[5]) };
}
