/** Side of the square image the Haar transform works on. */
export const IMAGE_SIDE = 128;
export const PIXELS = IMAGE_SIDE * IMAGE_SIDE;
/** Coefficients kept per channel (imgSeek's NUM_COEFS). */
export const COEFS_PER_CHANNEL = 40;
export const CHANNELS = 3;
export const SIGNATURE_LENGTH = COEFS_PER_CHANNEL * CHANNELS;

/**
 * An imgSeek signature. `coefs` holds the Y, I and Q lists one after the other, each
 * COEFS_PER_CHANNEL signed indices sorted ascending (+i for a positive coefficient,
 * -i otherwise). `avgl` holds the three DC values (Y, I, Q).
 */
export interface Signature {
  coefs: Int32Array;
  avgl: Float64Array;
}

/** Turns 128x128 RGB bytes (R,G,B interleaved) into a signature. */
export interface SignatureEngine {
  readonly name: 'ts' | 'native';
  signatureFromRgb(rgb: Uint8Array): Signature;
}

export function channelCoefs(sig: Signature, channel: number): Int32Array {
  return sig.coefs.subarray(channel * COEFS_PER_CHANNEL, (channel + 1) * COEFS_PER_CHANNEL);
}
