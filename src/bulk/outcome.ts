/**
 * What became of each file `haarseek add` looked at, and the run's summary. One table of
 * reasons, so the summary, the report and the tests name them the same way.
 */

/** Why a file was not added though nothing is wrong with it. */
export const SKIP_REASONS = {
  present: 'the space already holds its id; --replace replaces it',
  'not-image': 'not an image by its extension (met in a directory walk)',
  absent: 'with --thumbnails-only: the space does not hold its id (add it first)',
} as const;

/** Why a file could not be added. */
export const FAIL_REASONS = {
  'no-id': 'the file name is not a number, or the --ids file has no line for it',
  'bad-id': 'the id is not a whole number from 1 to 2^53',
  'duplicate-id': 'an earlier file of this run has the same id',
  unreadable: 'the file or directory could not be read',
  'too-large': 'over the byte limit (--max-bytes) or the pixel limit',
  undecodable: 'corrupt, truncated, empty, or not a format sharp reads',
  refused: 'the server refused it',
  server: 'the server failed to answer, after retries',
} as const;

export type SkipReason = keyof typeof SKIP_REASONS;
export type FailReason = keyof typeof FAIL_REASONS;

export type FileOutcome =
  | { outcome: 'added'; path: string; id: number; replaced: boolean }
  | { outcome: 'skipped'; path: string; id: number | null; reason: SkipReason; message: string }
  | { outcome: 'failed'; path: string; id: number | null; reason: FailReason; message: string };

export interface AddSummary {
  space: number;
  /** `data DIR` or `server URL`. */
  target: string;
  /** Files looked at (each has one outcome). */
  files: number;
  /** Images stored, replaced ones included. */
  added: number;
  replaced: number;
  skipped: number;
  failed: number;
  skippedBy: Partial<Record<SkipReason, number>>;
  failedBy: Partial<Record<FailReason, number>>;
  /** The first failures, to show where the trouble is (the report has them all). */
  failures: Array<{ path: string; id: number | null; reason: FailReason; message: string }>;
  seconds: number;
  /** Images added per second of the run. */
  imagesPerSecond: number;
  /** The run stopped early (interrupted, or a fatal error); what was added stays. */
  stopped: string | null;
  report: string | null;
}

/** How many failures the summary lists by name. */
const LISTED_FAILURES = 20;

/** Counts outcomes as they come. */
export class Tally {
  files = 0;
  added = 0;
  replaced = 0;
  skipped = 0;
  failed = 0;
  readonly skippedBy: Partial<Record<SkipReason, number>> = {};
  readonly failedBy: Partial<Record<FailReason, number>> = {};
  readonly failures: AddSummary['failures'] = [];

  count(o: FileOutcome): void {
    this.files++;
    if (o.outcome === 'added') {
      this.added++;
      if (o.replaced) this.replaced++;
    } else if (o.outcome === 'skipped') {
      this.skipped++;
      this.skippedBy[o.reason] = (this.skippedBy[o.reason] ?? 0) + 1;
    } else {
      this.failed++;
      this.failedBy[o.reason] = (this.failedBy[o.reason] ?? 0) + 1;
      if (this.failures.length < LISTED_FAILURES) this.failures.push({ path: o.path, id: o.id, reason: o.reason, message: o.message });
    }
  }

  summary(space: number, target: string, seconds: number, stopped: string | null, report: string | null): AddSummary {
    return {
      space,
      target,
      files: this.files,
      added: this.added,
      replaced: this.replaced,
      skipped: this.skipped,
      failed: this.failed,
      skippedBy: this.skippedBy,
      failedBy: this.failedBy,
      failures: this.failures,
      seconds: Number(seconds.toFixed(3)),
      imagesPerSecond: seconds > 0 ? Number((this.added / seconds).toFixed(1)) : 0,
      stopped,
      report,
    };
  }
}

/** The summary as the lines printed at the end of a run. */
export function describeAddSummary(s: AddSummary): string[] {
  const lines = [
    `space ${s.space} (${s.target}): added ${s.added}${s.replaced > 0 ? ` (${s.replaced} replaced)` : ''}, skipped ${s.skipped}, failed ${s.failed} of ${s.files} files in ${s.seconds.toFixed(2)} s (${s.imagesPerSecond} images/s)`,
  ];
  if (s.skipped > 0) lines.push(`skipped ${s.skipped}:`, ...byReason(s.skippedBy, SKIP_REASONS));
  if (s.failed > 0) {
    lines.push(`failed ${s.failed}:`, ...byReason(s.failedBy, FAIL_REASONS));
    lines.push(s.failed > s.failures.length ? `the first ${s.failures.length} failed files:` : 'failed files:');
    for (const f of s.failures) lines.push(`  ${f.path}${f.id === null ? '' : ` (id ${f.id})`}: ${f.reason}: ${f.message}`);
    if (s.failed > s.failures.length) lines.push(`  ... and ${s.failed - s.failures.length} more${s.report ? ` (all in ${s.report})` : ' (--report FILE lists them all)'}`);
  }
  if (s.stopped) lines.push(`stopped early: ${s.stopped}; what was added stays, and the same command run again skips it`);
  if (s.report) lines.push(`report: ${s.report}`);
  return lines;
}

function byReason<R extends string>(counts: Partial<Record<R, number>>, table: Record<R, string>): string[] {
  return (Object.keys(table) as R[]).filter((r) => (counts[r] ?? 0) > 0).map((r) => `  ${counts[r]} ${r}: ${table[r]}`);
}
