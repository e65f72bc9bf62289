import type { NativeAddon } from './native-loader.ts';
import { CHANNELS, PIXELS, SIGNATURE_LENGTH, type Signature, type SignatureEngine } from './types.ts';

/** imgSeek's calcHaar in C++ (native/src/signature.cc); bit-identical to the TS engine. */
export class NativeSignatureEngine implements SignatureEngine {
  readonly name = 'native' as const;

  constructor(private readonly addon: NativeAddon) {}

  signatureFromRgb(rgb: Uint8Array): Signature {
    if (rgb.length !== PIXELS * 3) {
      throw new RangeError(`expected ${PIXELS * 3} bytes of 128x128 RGB, got ${rgb.length}`);
    }
    const coefs = new Int32Array(SIGNATURE_LENGTH);
    const avgl = new Float64Array(CHANNELS);
    this.addon.signatureFromRgb(rgb, coefs, avgl);
    return { coefs, avgl };
  }
}
