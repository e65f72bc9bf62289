import { TsImageIndex } from './index/ts-index.ts';
import type { ImageIndex } from './index/types.ts';
import { TsSignatureEngine } from './signature/haar.ts';
import type { SignatureEngine } from './signature/types.ts';

/** One engine: how signatures are computed and how an index is held. */
export interface Engine {
  readonly name: 'ts' | 'native';
  readonly signatures: SignatureEngine;
  createIndex(): ImageIndex;
}

export function tsEngine(): Engine {
  return { name: 'ts', signatures: new TsSignatureEngine(), createIndex: () => new TsImageIndex() };
}

/** The single place that decides which engine runs. */
export function loadEngine(): Engine {
  return tsEngine();
}
