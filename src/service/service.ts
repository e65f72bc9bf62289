import { ServiceContext, type ServiceOptions } from './context.ts';
import { FileService } from './files.ts';
import { SearchService } from './search.ts';
import { SignatureMaker } from './signatures.ts';
import type { SpaceStats } from './space-stats.ts';
import { WriteService } from './writes.ts';

export { RANKINGS, type Ranking, type ServiceOptions } from './context.ts';

/**
 * The application: what every door (XML-RPC, JSON, iqdb routes, the search page) calls.
 * Domain verbs and domain errors only; nothing here knows a protocol.
 */
export interface Service {
  search: SearchService;
  writes: WriteService;
  files: FileService;
  stats: SpaceStats;
  engineName: string;
}

export function createService(options: ServiceOptions): Service {
  const ctx = new ServiceContext(options);
  const signatures = new SignatureMaker(ctx);
  const writes = new WriteService(ctx, signatures);
  return {
    search: new SearchService(ctx, signatures),
    writes,
    files: new FileService(ctx, signatures, writes),
    stats: ctx.stats,
    engineName: options.engine.name,
  };
}
