import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../package-root.ts';

/** The C++ index handle (native/src/addon.cc); NativeImageIndex wraps it. */
export interface NativeIndexHandle {
  add(id: number, coefs: Int32Array, avgl: Float64Array): void;
  /** Checks every signature of the batch, then adds them in order. */
  addBatch(count: number, ids: Float64Array, avgl: Float64Array, coefs: Int16Array): void;
  trim(): void;
  remove(id: number): boolean;
  has(id: number): boolean;
  size(): number;
  ids(): Float64Array;
  avgl(id: number): Float64Array | undefined;
  clear(): void;
  /** Results interleaved: [id, raw, id, raw, ...], best first. */
  query(coefs: Int32Array, avgl: Float64Array, limit: number, sketch: boolean, fast: boolean, allowed?: Float64Array): Float64Array;
  memoryBytes(): number;
}

export interface NativeAddon {
  signatureFromRgb(rgb: Uint8Array, coefsOut: Int32Array, avglOut: Float64Array): void;
  NativeIndex: new () => NativeIndexHandle;
  abiVersion: number;
}

export type NativeLoad = { ok: true; addon: NativeAddon; path: string } | { ok: false; reason: string };

const ABI_VERSION = 2;
export const NATIVE_ADDON_PATH = join(PACKAGE_ROOT, 'native/build/Release/haarseek.node');

let cached: NativeLoad | undefined;

/**
 * Loads the C++ addon built by `npm install` (node-gyp, native/binding.gyp). When it
 * cannot, `reason` says why in one line. Loaded at most once per process.
 */
export function loadNativeAddon(): NativeLoad {
  if (cached) return cached;
  if (!existsSync(NATIVE_ADDON_PATH)) {
    cached = {
      ok: false,
      reason: `native addon not built (${NATIVE_ADDON_PATH} missing; build it with \`npx node-gyp rebuild -C native\`, needs python3, make and a C++17 compiler)`,
    };
    return cached;
  }
  try {
    const addon = createRequire(import.meta.url)(NATIVE_ADDON_PATH) as NativeAddon;
    if (addon.abiVersion !== ABI_VERSION) {
      cached = { ok: false, reason: `native addon is stale (abi ${addon.abiVersion}, expected ${ABI_VERSION}); rebuild it with \`npx node-gyp rebuild -C native\`` };
    } else {
      cached = { ok: true, addon, path: NATIVE_ADDON_PATH };
    }
  } catch (err) {
    const detail = (err instanceof Error ? err.message : String(err)).split('\n')[0];
    cached = { ok: false, reason: `native addon failed to load (${detail}); rebuild it with \`npx node-gyp rebuild -C native\`` };
  }
  return cached;
}
