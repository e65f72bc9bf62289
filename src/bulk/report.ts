import { type WriteStream, createWriteStream } from 'node:fs';
import { once } from 'node:events';
import type { AddSummary, FileOutcome } from './outcome.ts';

/**
 * `--report FILE`: one line per file looked at, as it is settled. FILE ending in .csv
 * gets CSV (path,id,outcome,reason,message, with a header); anything else JSON lines,
 * closed by a `{"summary": ...}` line.
 */
export class ReportWriter {
  private out: WriteStream | null = null;
  private readonly csv: boolean;
  private failed: Error | null = null;

  /** The file is created at the first line, so a run refused before it starts leaves none. */
  constructor(readonly path: string) {
    this.csv = path.toLowerCase().endsWith('.csv');
  }

  write(o: FileOutcome): void {
    const reason = o.outcome === 'added' ? (o.replaced ? 'replaced' : '') : o.reason;
    const message = o.outcome === 'added' ? '' : o.message;
    if (this.csv) {
      this.line(`${[o.path, o.id === null ? '' : String(o.id), o.outcome, reason, message].map(csvField).join(',')}\n`);
    } else {
      const record: Record<string, unknown> = { path: o.path, id: o.id, outcome: o.outcome };
      if (reason) record.reason = reason;
      if (message) record.message = message;
      this.line(`${JSON.stringify(record)}\n`);
    }
  }

  /** Writes the summary line (JSON lines only) and closes the file. */
  async close(summary: AddSummary): Promise<void> {
    if (!this.csv) this.line(`${JSON.stringify({ summary })}\n`);
    const out = this.opened();
    out.end();
    if (!out.closed && !this.failed) await once(out, 'close').catch(() => undefined);
    if (this.failed) throw new Error(`could not write the report ${this.path}: ${this.failed.message}`);
  }

  private line(text: string): void {
    this.opened().write(text);
  }

  private opened(): WriteStream {
    if (!this.out) {
      this.out = createWriteStream(this.path, { flags: 'w' });
      this.out.on('error', (err) => (this.failed = err));
      if (this.csv) this.out.write('path,id,outcome,reason,message\n');
    }
    return this.out;
  }
}

function csvField(value: string): string {
  return /[",\n\r]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}
