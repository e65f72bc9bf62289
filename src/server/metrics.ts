import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { IndexCatalog } from '../index/catalog.ts';
import type { Stage } from '../service/context.ts';
import type { Admission } from './admission.ts';
import type { ReaderSync } from './reader-sync.ts';

/** Seconds: from a cached small query (~1 ms) to a 40 MiB upload (~10 s). */
const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/**
 * This process's Prometheus metrics (prom-client), served at GET /metrics. Names are
 * listed in the README; every series carries the process's role and port.
 */
export class ServerMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter<'door' | 'method' | 'outcome'>;
  private readonly duration: Histogram<'door'>;
  private readonly stages: Histogram<'stage'>;

  constructor(labels: { role: string; port: number }, sources: { catalog: IndexCatalog; admission: Admission; sync?: ReaderSync; segmentSeq?: () => number | null }) {
    this.registry.setDefaultLabels({ role: labels.role, port: String(labels.port) });
    collectDefaultMetrics({ register: this.registry, prefix: 'haarseek_' });
    const registers = [this.registry];
    this.requests = new Counter({ name: 'haarseek_requests_total', help: 'Calls answered, by door (xmlrpc, json, iqdb), method and outcome (ok or the error code).', labelNames: ['door', 'method', 'outcome'], registers });
    this.duration = new Histogram({ name: 'haarseek_request_duration_seconds', help: 'Time from a call\'s arrival to its answer, by door.', labelNames: ['door'], buckets: BUCKETS, registers });
    this.stages = new Histogram({ name: 'haarseek_stage_duration_seconds', help: 'Time in each stage of a query or add: decode (sharp), signature (Haar), index (the posting walk and top-k).', labelNames: ['stage'], buckets: BUCKETS, registers });
    const { catalog, admission, sync } = sources;
    new Gauge({ name: 'haarseek_in_flight', help: 'Requests being served now.', registers, collect() { this.set(admission.current); } });
    new Gauge({ name: 'haarseek_in_flight_limit', help: 'The in-flight bound (--max-in-flight).', registers, collect() { this.set(admission.limit); } });
    new Counter({ name: 'haarseek_busy_answers_total', help: 'Requests answered busy at once because the in-flight bound was reached.', registers, collect() { this.reset(); this.inc(admission.busyAnswers); } });
    new Gauge({
      name: 'haarseek_images', help: 'Images in each database space.', labelNames: ['space'], registers,
      collect() { this.reset(); for (const id of catalog.ids()) this.set({ space: String(id) }, catalog.get(id)?.size ?? 0); },
    });
    new Gauge({
      name: 'haarseek_index_bytes', help: 'Bytes held privately by each space\'s index (a segment\'s delta and removal mask, or the whole in-memory index).', labelNames: ['space'], registers,
      collect() { this.reset(); for (const id of catalog.ids()) this.set({ space: String(id) }, catalog.get(id)?.memoryBytes() ?? 0); },
    });
    new Gauge({ name: 'haarseek_segment_mapped_bytes', help: 'Bytes of index segment files this process maps (shared through the page cache with every process on the host).', registers, collect() { this.set(catalog.mappedBytes()); } });
    if (sources.segmentSeq) {
      const seq = sources.segmentSeq;
      new Gauge({ name: 'haarseek_segment_seq', help: 'Change-log position of the index segment set in use (-1: none; the spaces are read from the database).', registers, collect() { this.set(seq() ?? -1); } });
    }
    if (sync) {
      // One look at the file per scrape serves both lag gauges.
      let lagAt = 0;
      let lag = { changes: 0, ms: 0 };
      const lagNow = () => {
        if (Date.now() - lagAt > 500) [lag, lagAt] = [sync.lag(), Date.now()];
        return lag;
      };
      new Counter({
        name: 'haarseek_reader_refreshes_total', help: 'Index refreshes of this reader, by kind (incremental, full, failed).', labelNames: ['kind'], registers,
        collect() { this.reset(); for (const [kind, n] of Object.entries(sync.refreshes)) this.inc({ kind }, n); },
      });
      new Gauge({ name: 'haarseek_reader_lag_changes', help: 'Changes the writer has committed that this reader has not applied yet.', registers, collect() { this.set(lagNow().changes); } });
      new Gauge({ name: 'haarseek_reader_lag_seconds', help: 'How long ago the writer committed what this reader has not applied yet (0 when current).', registers, collect() { this.set(lagNow().ms / 1000); } });
      new Gauge({ name: 'haarseek_reader_stale', help: '1 while the reader answers from its last good snapshot because a refresh failed.', registers, collect() { this.set(sync.stale ? 1 : 0); } });
    }
  }

  /** Times one call; `finish` takes its outcome. */
  startCall(door: string): (method: string, outcome: string) => void {
    const end = this.duration.startTimer({ door });
    return (method, outcome) => {
      end();
      this.requests.inc({ door, method, outcome });
    };
  }

  observeStage(stage: Stage, seconds: number): void {
    this.stages.observe({ stage }, seconds);
  }
}
