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

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Copies a stored signature blob into slot k of an Int16Array of packed signatures. */
export function copyPackedCoefs(blob: Uint8Array, into: Int16Array, k: number): void {
  if (blob.byteLength !== SIGNATURE_LENGTH * 2) throw new RangeError(`signature blob of ${blob.byteLength} bytes`);
  if (LITTLE_ENDIAN) new Uint8Array(into.buffer, into.byteOffset + k * SIGNATURE_LENGTH * 2, SIGNATURE_LENGTH * 2).set(blob);
  else into.set(decodeCoefs(blob), k * SIGNATURE_LENGTH);
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
