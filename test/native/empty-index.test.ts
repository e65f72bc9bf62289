import { type Engine, nativeEngine } from '../../src/engine.ts';
import { describeEmptyIndexCost } from '../index/empty-index-cost.ts';
import { describeNative } from './availability.ts';

describeNative('native engine, empty spaces', () => {
  let engine: Engine | undefined;
  describeEmptyIndexCost('native', () => (engine ??= nativeEngine()).createIndex());
});
