import { decodeToRgb128 } from '../image/decode.ts';
import { thumbnailOf } from '../query-stage/thumbnail.ts';
import type { Signature } from '../signature/types.ts';
import type { ServiceContext } from './context.ts';
import { Limiter } from './limiter.ts';

export interface ImageSignature {
  sig: Signature;
  width: number;
  height: number;
  /** The small grey picture the verified ranking checks candidates with (query-stage/thumbnail.ts). */
  thumb: Uint8Array;
}

/** Image bytes to signature, with at most maxConcurrentDecodes decodes at once. */
export class SignatureMaker {
  private readonly decodes: Limiter;

  constructor(private readonly ctx: ServiceContext) {
    this.decodes = new Limiter(ctx.o.maxConcurrentDecodes);
  }

  async of(bytes: Uint8Array): Promise<ImageSignature> {
    const started = performance.now();
    const decoded = await this.decodes.run(() => decodeToRgb128(bytes, this.ctx.o.decodeLimits));
    this.ctx.o.observe?.('decode', (performance.now() - started) / 1000);
    const sig = this.ctx.timed('signature', () => this.ctx.o.engine.signatures.signatureFromRgb(decoded.rgb));
    return { sig, width: decoded.width, height: decoded.height, thumb: thumbnailOf(decoded.rgb) };
  }

  /** Runs a decode of the caller's under the same bound as every other decode. */
  limited<T>(decode: () => Promise<T>): Promise<T> {
    return this.decodes.run(decode);
  }
}
