/**
 * iqdb's text form of a signature (danbooru/iqdb src/haar_signature.cpp:76-91,
 * HaarSignature::to_string) and its parser (:21-42, from_hash). See README.md here.
 *
 *   "iqdb_" + avgl[0..2]: the 16 hex digits of each double's IEEE-754 bit pattern,
 *             most significant first ("{:016x}" of the uint64 bits)
 *           + coefs Y, I, Q (40 each, in stored order = ascending): 4 hex digits of each
 *             value's uint16 two's complement ("{:04x}")
 *
 * 5 + 3*16 + 120*4 = 533 characters, lower-case hex. iqdb's avgl is imgSeek's avgl
 * (same transform, same scale: haar.cpp:148-150, 223-225), so a haarseek Signature maps
 * one to one.
 */
import { ParamError } from '../errors.ts';
import { CHANNELS, COEFS_PER_CHANNEL, PIXELS, SIGNATURE_LENGTH, type Signature } from '../signature/types.ts';

export const IQDB_HASH_PREFIX = 'iqdb_';
const AVGL_DIGITS = 16;
const COEF_DIGITS = 4;
/** 5 + 2 * sizeof(HaarSignature): 3 doubles + 120 int16 (haar_signature.cpp:22). */
export const IQDB_HASH_LENGTH = IQDB_HASH_PREFIX.length + CHANNELS * AVGL_DIGITS + SIGNATURE_LENGTH * COEF_DIGITS;

/** A `hash` that is not an iqdb signature; a parameter error (400 on the JSON doors). */
export class IqdbHashError extends ParamError {
  constructor(message: string) {
    super(`invalid iqdb hash: ${message}`);
    this.name = 'IqdbHashError';
  }
}

const bits = new DataView(new ArrayBuffer(8));

function doubleToHex(value: number): string {
  bits.setFloat64(0, value);
  return bits.getBigUint64(0).toString(16).padStart(AVGL_DIGITS, '0');
}

function hexToDouble(hex: string): number {
  bits.setBigUint64(0, BigInt(`0x${hex}`));
  return bits.getFloat64(0);
}

/** iqdb's hash of a signature; the coefficients are written in the order they are stored. */
export function toIqdbHash(sig: Signature): string {
  if (sig.avgl.length !== CHANNELS || sig.coefs.length !== SIGNATURE_LENGTH) {
    throw new RangeError(`a signature has ${CHANNELS} avgl values and ${SIGNATURE_LENGTH} coefficients`);
  }
  let text = IQDB_HASH_PREFIX;
  for (let c = 0; c < CHANNELS; c++) text += doubleToHex(sig.avgl[c]);
  for (let k = 0; k < SIGNATURE_LENGTH; k++) {
    const value = sig.coefs[k];
    if (!Number.isInteger(value) || value < -32768 || value > 32767) {
      throw new RangeError(`coefficient ${value} does not fit iqdb's int16`);
    }
    text += (value & 0xffff).toString(16).padStart(COEF_DIGITS, '0');
  }
  return text;
}

const HEX = /^[0-9a-fA-F]*$/;

/**
 * Reads an iqdb hash back into a Signature (each channel sorted ascending, as iqdb's
 * HaarSignature constructor leaves it). Stricter than iqdb, which checks only the
 * length: the prefix, the hex digits, finite avgl values and coefficient indices in
 * 1..16383, distinct within a channel, are all required, because iqdb would index its
 * buckets out of bounds with anything else.
 */
export function parseIqdbHash(text: unknown): Signature {
  if (typeof text !== 'string') throw new IqdbHashError(`expected a string, got ${text === null ? 'null' : typeof text}`);
  if (!text.startsWith(IQDB_HASH_PREFIX)) {
    throw new IqdbHashError(`it must start with "${IQDB_HASH_PREFIX}" (got "${text.slice(0, 12)}${text.length > 12 ? '…' : ''}")`);
  }
  if (text.length !== IQDB_HASH_LENGTH) {
    throw new IqdbHashError(`it must be ${IQDB_HASH_LENGTH} characters long, got ${text.length}`);
  }
  const body = text.slice(IQDB_HASH_PREFIX.length);
  if (!HEX.test(body)) {
    const at = body.search(/[^0-9a-fA-F]/);
    throw new IqdbHashError(`character ${IQDB_HASH_PREFIX.length + at + 1} ("${body[at]}") is not a hex digit`);
  }

  const avgl = new Float64Array(CHANNELS);
  let pos = 0;
  for (let c = 0; c < CHANNELS; c++, pos += AVGL_DIGITS) {
    avgl[c] = hexToDouble(body.slice(pos, pos + AVGL_DIGITS));
    if (!Number.isFinite(avgl[c])) throw new IqdbHashError(`avgl value ${c + 1} is ${avgl[c]}, not a finite number`);
  }

  const coefs = new Int32Array(SIGNATURE_LENGTH);
  for (let c = 0; c < CHANNELS; c++) {
    const seen = new Set<number>();
    for (let k = 0; k < COEFS_PER_CHANNEL; k++, pos += COEF_DIGITS) {
      const raw = Number.parseInt(body.slice(pos, pos + COEF_DIGITS), 16);
      const value = raw >= 0x8000 ? raw - 0x10000 : raw;
      const index = Math.abs(value);
      if (index < 1 || index >= PIXELS) {
        throw new IqdbHashError(`coefficient ${k + 1} of channel ${'YIQ'[c]} is ${value}; indices are 1..${PIXELS - 1}, signed`);
      }
      if (seen.has(index)) throw new IqdbHashError(`channel ${'YIQ'[c]} lists coefficient index ${index} twice`);
      seen.add(index);
      coefs[c * COEFS_PER_CHANNEL + k] = value;
    }
    coefs.subarray(c * COEFS_PER_CHANNEL, (c + 1) * COEFS_PER_CHANNEL).sort();
  }
  return { avgl, coefs };
}
