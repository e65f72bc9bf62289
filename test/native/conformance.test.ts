import { nativeEngine } from '../../src/engine.ts';
import { describeGoldenConformance } from '../helpers/golden-conformance.ts';
import { describeIndexBehaviour } from '../helpers/index-behaviour.ts';
import { describeNative } from './availability.ts';

describeNative('native engine', () => {
  describeGoldenConformance('native', nativeEngine);
  describeIndexBehaviour('native', () => nativeEngine().createIndex());
});
