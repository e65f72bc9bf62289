import { type Candidate, type IdSource, candidates } from './files.ts';
import { IdSet } from './ids.ts';
import { type FileOutcome, Tally } from './outcome.ts';
import type { Progress } from './progress.ts';
import type { ReportWriter } from './report.ts';

export interface AddPlan {
  space: number;
  /** Files and directories (walked recursively); may be empty with an --ids file. */
  paths: string[];
  ids: IdSource;
  /** Store over ids the space already holds, instead of skipping them. */
  replace: boolean;
  /** Only give images the space already holds their thumbnails (databases from before them, or imported). */
  thumbnailsOnly?: boolean;
}

/** Where `haarseek add` puts images: a data directory, or a running server. */
export interface AddTarget {
  /** `data DIR` or `server URL`, for the summary. */
  readonly label: string;
  /** Files worth having in flight at once. */
  readonly concurrency: number;
  /** Which of these ids the space already holds: one look-up for many ids. */
  present(ids: readonly number[]): Set<number>;
  /**
   * Adds the file under the id. Resolves when the file no longer holds a slot (decoded
   * and staged, or stored); its outcome goes to `settle`, for a staged image at its
   * commit. Rejects with a BulkError when the whole run must stop.
   */
  add(path: string, id: number, replacing: boolean): Promise<void>;
  /** Commits what is staged. */
  flush(): void;
  close(): Promise<void>;
}

export type Settle = (outcome: FileOutcome) => void;

/** Files whose ids are looked up together (one presence query per chunk). */
const CHUNK = 256;

/** Where each file's outcome goes: the counts, the report, the progress display. */
export class Recorder {
  readonly tally = new Tally();

  constructor(private readonly report: ReportWriter | null, private readonly progress: Progress | null) {}

  readonly settle = (o: FileOutcome): void => {
    this.tally.count(o);
    this.report?.write(o);
    this.progress?.update(this.tally);
  };
}

/**
 * The run of `haarseek add`: walks the files (streamed), gives each its id, refuses
 * duplicate ids, looks the ids up in the space a chunk at a time, and hands the files
 * to the target with at most target.concurrency in flight. Memory stays bounded by
 * the chunk, the files in flight and ~8 bytes per id seen. Returns the error that
 * stopped the run early, if any (what was added before it stays).
 */
export async function runAdd(plan: AddPlan, target: AddTarget, recorder: Recorder, stop: AbortSignal): Promise<{ stoppedBy: unknown }> {
  const { settle } = recorder;
  const seen = new IdSet();
  let fatal: unknown = null;
  let inFlight = 0;
  const waiters: Array<() => void> = [];
  const wait = () => new Promise<void>((resolve) => waiters.push(resolve));
  const release = () => {
    inFlight--;
    waiters.shift()?.();
  };
  const halted = () => fatal !== null || stop.aborted;

  const dispatch = async (chunk: Array<{ path: string; id: number }>) => {
    const present = target.present(chunk.map((c) => c.id));
    for (const c of chunk) {
      if (halted()) return;
      const replacing = present.has(c.id);
      if (plan.thumbnailsOnly && !replacing) {
        settle({ outcome: 'skipped', path: c.path, id: c.id, reason: 'absent', message: `space ${plan.space} does not hold id ${c.id}` });
        continue;
      }
      if (replacing && !plan.replace && !plan.thumbnailsOnly) {
        settle({ outcome: 'skipped', path: c.path, id: c.id, reason: 'present', message: `space ${plan.space} already holds id ${c.id}` });
        continue;
      }
      while (inFlight >= target.concurrency) await wait();
      if (halted()) return;
      inFlight++;
      target
        .add(c.path, c.id, replacing)
        .catch((err) => {
          fatal ??= err;
        })
        .finally(release);
    }
  };

  try {
    let chunk: Array<{ path: string; id: number }> = [];
    for await (const cand of candidates(plan.paths, plan.ids)) {
      if (halted()) break;
      const ready = admit(cand, seen, settle);
      if (!ready) continue;
      chunk.push(ready);
      if (chunk.length >= CHUNK) {
        await dispatch(chunk);
        chunk = [];
      }
    }
    if (!halted()) await dispatch(chunk);
  } catch (err) {
    fatal ??= err;
  }
  while (inFlight > 0) await wait();
  try {
    target.flush();
  } catch (err) {
    fatal ??= err;
  }
  return { stoppedBy: fatal };
}

/** A candidate with a usable, unseen id; otherwise its outcome is settled here. */
function admit(cand: Candidate, seen: IdSet, settle: (o: FileOutcome) => void): { path: string; id: number } | null {
  if ('notImage' in cand) {
    settle({ outcome: 'skipped', path: cand.path, id: null, reason: 'not-image', message: 'not an image by its extension' });
    return null;
  }
  if ('fail' in cand) {
    settle({ outcome: 'failed', path: cand.path, id: cand.id, reason: cand.fail, message: cand.message });
    return null;
  }
  if (seen.has(cand.id)) {
    settle({ outcome: 'failed', path: cand.path, id: cand.id, reason: 'duplicate-id', message: `an earlier file of this run has id ${cand.id}` });
    return null;
  }
  seen.add(cand.id);
  return { path: cand.path, id: cand.id };
}
