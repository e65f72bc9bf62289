import { tsEngine } from '../../src/engine.ts';
import { describeGoldenConformance } from '../helpers/golden-conformance.ts';

describeGoldenConformance('ts', tsEngine);
