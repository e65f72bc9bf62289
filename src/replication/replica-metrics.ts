import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Replica } from './replica.ts';

/** Seconds from the writer sending a change to its commit here (one clock on one machine; NTP across hosts). */
const DELAY_BUCKETS = [0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export function replicaDelayHistogram(): Histogram {
  return new Histogram({ name: 'haarseek_replica_apply_delay_seconds', help: 'From the writer sending a change to its commit in the local copy.', buckets: DELAY_BUCKETS, registers: [] });
}

/** The replica process's /metrics. */
export function replicaMetrics(replica: Replica, delays: Histogram, port: number): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ role: 'replica', port: String(port) });
  collectDefaultMetrics({ register: registry, prefix: 'haarseek_' });
  const registers = [registry];
  registry.registerMetric(delays);
  new Gauge({ name: 'haarseek_replica_applied_seq', help: 'The last change sequence applied to the local copy (the writer\'s numbering).', registers, collect() { this.set(replica.status().appliedSeq); } });
  new Gauge({ name: 'haarseek_replica_lag_changes', help: 'Changes in the stream not applied here yet.', registers, collect() { this.set(replica.status().pendingChanges); } });
  new Gauge({ name: 'haarseek_replica_connected', help: '1 while connected to NATS.', registers, collect() { this.set(replica.status().connected ? 1 : 0); } });
  new Gauge({ name: 'haarseek_replica_stale', help: '1 while the local copy may be behind the writer (NATS unreachable, bootstrapping, or behind).', registers, collect() { this.set(replica.status().stale ? 1 : 0); } });
  new Counter({ name: 'haarseek_replica_applied_total', help: 'Changes applied since the process started.', registers, collect() { this.reset(); this.inc(replica.applied); } });
  new Counter({ name: 'haarseek_replica_snapshots_installed_total', help: 'Snapshots installed since the process started.', registers, collect() { this.reset(); this.inc(replica.snapshotsInstalled); } });
  new Gauge({ name: 'haarseek_replica_last_bootstrap_seconds', help: 'How long the last snapshot took to fetch, check and install.', registers, collect() { this.set((replica.lastBootstrapMs ?? 0) / 1000); } });
  return registry;
}
