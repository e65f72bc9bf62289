import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * What a replica tells the readers of its host, through a small file beside the
 * database (DATA/replica.json, replaced atomically about every second): the database
 * file alone cannot say whether it is behind the writer on another host.
 */
export interface ReplicaStatus {
  pid: number;
  state: string;
  connected: boolean;
  /** True while the replica cannot vouch that the file is current (NATS unreachable, bootstrapping, behind). */
  stale: boolean;
  database: string | null;
  appliedSeq: number;
  /** Changes in the stream after the last one this replica received. */
  pendingChanges: number;
  lastAppliedAt: string | null;
  lastError: string | null;
  updatedAt: number;
}

/** A status older than this means the replica process is gone: its readers are stale. */
const STATUS_TTL_MS = 5000;

export function replicaStatusPath(dataDir: string): string {
  return join(dataDir, 'replica.json');
}

export function writeReplicaStatus(dataDir: string, status: ReplicaStatus): void {
  const path = replicaStatusPath(dataDir);
  writeFileSync(`${path}.tmp`, JSON.stringify(status));
  renameSync(`${path}.tmp`, path);
}

export interface ReplicaView extends ReplicaStatus {
  /** How old the status is: past STATUS_TTL_MS the replica counts as stopped and the host as stale. */
  ageMs: number;
}

/** A reader's look at its host's replica (null on a host without one); cached briefly, as /health and /metrics both ask. */
export function replicaStatusReader(dataDir: string): () => ReplicaView | null {
  let cached: ReplicaView | null = null;
  let at = 0;
  let absent = false;
  return () => {
    const now = Date.now();
    if (now - at > 250) {
      at = now;
      try {
        const status = JSON.parse(readFileSync(replicaStatusPath(dataDir), 'utf8')) as ReplicaStatus;
        cached = { ...status, ageMs: 0 };
        absent = false;
      } catch (err) {
        // A host that never had a replica has no file; one whose file is half-written keeps the last view.
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') absent = true;
      }
    }
    if (absent || !cached) return null;
    const ageMs = Math.max(0, now - cached.updatedAt);
    const gone = ageMs > STATUS_TTL_MS;
    return { ...cached, ageMs, stale: cached.stale || gone, lastError: gone ? `the replica process has not reported for ${Math.round(ageMs / 1000)} s` : cached.lastError };
  };
}
