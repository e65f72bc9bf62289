import { NativeImageIndex } from './index/native-index.ts';
import { NativeSegmentIndex } from './index/native-segment.ts';
import { TsImageIndex } from './index/ts-index.ts';
import { TsSegmentIndex } from './index/ts-segment.ts';
import type { ImageIndex, SegmentIndex, SegmentOpenOptions } from './index/types.ts';
import { TsSignatureEngine } from './signature/haar.ts';
import { loadNativeAddon } from './signature/native-loader.ts';
import { NativeSignatureEngine } from './signature/native-signature.ts';
import type { SignatureEngine } from './signature/types.ts';

/** One engine: how signatures are computed and how an index is held. */
export interface Engine {
  readonly name: 'ts' | 'native';
  readonly signatures: SignatureEngine;
  createIndex(): ImageIndex;
  /**
   * Opens a space's index segment file (src/index/segment-format.ts): mapped read-only
   * by the native engine, read into memory by the TypeScript one. Throws
   * SegmentFormatError for a file that is not a usable segment. Wrap it in a
   * LayeredIndex with createIndex() as the delta to take changes.
   */
  openSegment(path: string, options?: SegmentOpenOptions): SegmentIndex;
}

/** Where loadEngine reports falling back to the TypeScript engine (pino-compatible). */
export interface EngineLogger {
  warn(obj: object, msg: string): void;
}

export function tsEngine(): Engine {
  return {
    name: 'ts',
    signatures: new TsSignatureEngine(),
    createIndex: () => new TsImageIndex(),
    openSegment: (path, options) => TsSegmentIndex.open(path, options),
  };
}

/** The C++ engine; throws an Error saying why when the addon is not available. */
export function nativeEngine(): Engine {
  const load = loadNativeAddon();
  if (!load.ok) throw new Error(`haarseek: the native engine is unavailable: ${load.reason}`);
  const addon = load.addon;
  return {
    name: 'native',
    signatures: new NativeSignatureEngine(addon),
    createIndex: () => new NativeImageIndex(addon),
    openSegment: (path, options) => NativeSegmentIndex.open(addon, path, options),
  };
}

let fallbackLogged = false;

/**
 * The single place that decides which engine runs. HAARSEEK_ENGINE=ts or native forces
 * one (native forced but missing throws); otherwise native when the addon loads, else
 * the TypeScript engine, saying why once per process (to `log`, or stderr).
 */
export function loadEngine(log?: EngineLogger): Engine {
  const forced = process.env.HAARSEEK_ENGINE?.trim().toLowerCase();
  if (forced === 'ts') return tsEngine();
  if (forced === 'native') return nativeEngine();
  if (forced) throw new Error(`haarseek: HAARSEEK_ENGINE must be "ts" or "native", not "${process.env.HAARSEEK_ENGINE}"`);
  const load = loadNativeAddon();
  if (load.ok) return nativeEngine();
  if (!fallbackLogged) {
    fallbackLogged = true;
    const msg = 'using the TypeScript engine (slower): the native addon is unavailable';
    if (log) log.warn({ engine: 'ts', reason: load.reason }, msg);
    else process.stderr.write(`haarseek: ${msg}: ${load.reason}\n`);
  }
  return tsEngine();
}
