import type { NativeAddon, NativeIndexHandle } from '../signature/native-loader.ts';
import type { Signature } from '../signature/types.ts';
import type { ImageIndex, QueryOptions, RankedResult, SignatureBatch } from './types.ts';

/**
 * The inverted index held in native memory (native/src/index.cc): same layout idea
 * and same scoring arithmetic as TsImageIndex, so both rank identically.
 */
export class NativeImageIndex implements ImageIndex {
  private readonly handle: NativeIndexHandle;

  constructor(addon: NativeAddon) {
    this.handle = new addon.NativeIndex();
  }

  get size(): number {
    return this.handle.size();
  }

  add(id: number, sig: Signature): void {
    this.handle.add(id, sig.coefs, sig.avgl);
  }

  addBatch(batch: SignatureBatch): void {
    this.handle.addBatch(batch.count, batch.ids, batch.avgl, batch.coefs);
  }

  trim(): void {
    this.handle.trim();
  }

  remove(id: number): boolean {
    return this.handle.remove(id);
  }

  has(id: number): boolean {
    return this.handle.has(id);
  }

  ids(): number[] {
    return Array.from(this.handle.ids());
  }

  avgl(id: number): Float64Array | undefined {
    return this.handle.avgl(id);
  }

  clear(): void {
    this.handle.clear();
  }

  query(sig: Signature, options: QueryOptions): RankedResult[] {
    return queryHandle(this.handle, sig, options);
  }

  memoryBytes(): number {
    return this.handle.memoryBytes();
  }
}

/** A native index or segment handle's query: flat [id, raw, ...] from C++ into RankedResults. */
export function queryHandle(handle: Pick<NativeIndexHandle, 'query'>, sig: Signature, options: QueryOptions): RankedResult[] {
  const limit = Math.max(0, Math.floor(options.limit));
  if (!(limit > 0)) return [];
  const allowed = options.allowed === undefined ? undefined : Float64Array.from(options.allowed);
  const flat = handle.query(sig.coefs, sig.avgl, limit, Boolean(options.sketch), Boolean(options.fast), allowed);
  const out: RankedResult[] = new Array(flat.length >> 1);
  for (let i = 0, j = 0; j < flat.length; i++, j += 2) out[i] = [flat[j], flat[j + 1]];
  return out;
}
