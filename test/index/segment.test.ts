import { tsEngine } from '../../src/engine.ts';
import { describeSegmentBehaviour } from './segment-cases.ts';

describeSegmentBehaviour('ts', tsEngine);
