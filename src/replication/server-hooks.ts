import { Gauge, type Registry } from 'prom-client';
import type { Logger } from 'pino';
import type { ServerConfig } from '../server/config.ts';
import type { WriterStore } from '../store/writer-store.ts';
import type { Publisher } from './publisher.ts';
import { replicaStatusReader } from './replica-status.ts';

/**
 * What replication adds to a `haarseek serve` process, kept out of app.ts: the writer's
 * publisher (--nats), and a reader's view of its host's replica (cluster --follow),
 * for /health, /metrics and the stale flag. On a host with neither, every part is a no-op.
 */
export class ServerReplication {
  private publisher: Publisher | undefined;
  private readonly replica;

  constructor(private readonly config: ServerConfig, private readonly dbPath: string, private readonly log: Logger) {
    this.replica = config.role === 'reader' ? replicaStatusReader(config.dataDir) : () => null;
  }

  async startPublisher(writer: WriterStore): Promise<void> {
    if (!this.config.nats) return;
    const { Publisher } = await import('./publisher.ts');
    this.publisher = await Publisher.start(writer, { ...this.config.nats, dbPath: this.dbPath, dataDir: this.config.dataDir, log: this.log });
  }

  /** A reader whose host's replica cannot vouch for the file is stale, however fresh its index is. */
  stale(): boolean {
    return this.replica()?.stale ?? false;
  }

  /** Extra /health fields: `nats` on a publishing writer, `replica` on a reader of a replica host. */
  health(): Record<string, unknown> {
    if (this.publisher) return { nats: this.publisher.status() };
    if (this.config.role === 'writer' && this.config.nats) return { nats: { state: 'starting' } };
    const view = this.replica();
    return view ? { replica: view } : {};
  }

  registerMetrics(registry: Registry): void {
    const registers = [registry];
    if (this.config.role === 'writer' && this.config.nats) {
      const status = () => this.publisher?.status() ?? { publishedSeq: 0, backlog: 0, state: 'starting' };
      new Gauge({ name: 'haarseek_nats_published_seq', help: 'The last change sequence the NATS stream holds.', registers, collect: function () { this.set(Number(status().publishedSeq)); } });
      new Gauge({ name: 'haarseek_nats_backlog_changes', help: 'Committed changes not in the NATS stream yet (held in the change log).', registers, collect: function () { this.set(Number(status().backlog)); } });
      new Gauge({ name: 'haarseek_nats_publishing', help: '1 while the writer publishes to NATS; 0 while it retries or refused.', registers, collect: function () { this.set(status().state === 'publishing' ? 1 : 0); } });
      return;
    }
    if (!this.config.follower) return;
    const replica = this.replica;
    const view = () => replica();
    new Gauge({ name: 'haarseek_replica_stale', help: 'Host fed by a replica: 1 while the replica cannot vouch that the local copy is current.', registers, collect: function () { const v = view(); if (v) this.set(v.stale ? 1 : 0); } });
    new Gauge({ name: 'haarseek_replica_applied_seq', help: 'Host fed by a replica: the last change sequence it applied.', registers, collect: function () { const v = view(); if (v) this.set(v.appliedSeq); } });
    new Gauge({ name: 'haarseek_replica_lag_changes', help: 'Host fed by a replica: changes in the stream it has not applied yet.', registers, collect: function () { const v = view(); if (v) this.set(v.pendingChanges); } });
    new Gauge({ name: 'haarseek_replica_status_age_seconds', help: 'Host fed by a replica: how old its last status report is.', registers, collect: function () { const v = view(); if (v) this.set(v.ageMs / 1000); } });
  }

  async close(): Promise<void> {
    await this.publisher?.close();
    this.log.debug('replication closed');
  }
}
