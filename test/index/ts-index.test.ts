import { tsEngine } from '../../src/engine.ts';
import { describeIndexBehaviour } from '../helpers/index-behaviour.ts';

describeIndexBehaviour('ts', () => tsEngine().createIndex());
