import { tsEngine } from '../../src/engine.ts';
import { describeEmptyIndexCost } from './empty-index-cost.ts';

const engine = tsEngine();
describeEmptyIndexCost('ts', () => engine.createIndex());
