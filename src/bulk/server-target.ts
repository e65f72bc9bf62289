import { open } from 'node:fs/promises';
import type { AddTarget, Settle } from './add.ts';
import { BulkError } from './errors.ts';
import type { IdSet } from './ids.ts';
import { type ServerClient, keyRefused } from './server-client.ts';

/**
 * Through a running server's JSON API: each file's bytes as the body of PUT
 * /api/v1/spaces/:space/images/:id, `concurrency` requests in flight; the server
 * decodes. The ids the space held are read once at the start.
 */
export class ServerTarget implements AddTarget {
  readonly label: string;

  constructor(
    private readonly client: ServerClient,
    private readonly space: number,
    private readonly existing: IdSet,
    readonly concurrency: number,
    private readonly maxBytes: number,
    private readonly settle: Settle,
  ) {
    this.label = `server ${client.origin}`;
  }

  present(ids: readonly number[]): Set<number> {
    return new Set(ids.filter((id) => this.existing.has(id)));
  }

  async add(path: string, id: number, replacing: boolean): Promise<void> {
    let bytes: Buffer;
    try {
      const file = await open(path, 'r');
      try {
        const { size } = await file.stat();
        if (size > this.maxBytes) {
          this.settle({ outcome: 'failed', path, id, reason: 'too-large', message: `the file is ${size} bytes; the limit is ${this.maxBytes} bytes (--max-bytes)` });
          return;
        }
        bytes = await file.readFile();
      } finally {
        await file.close();
      }
    } catch (err) {
      this.settle({ outcome: 'failed', path, id, reason: 'unreadable', message: (err as Error).message });
      return;
    }
    const answer = await this.client.putImage(this.space, id, bytes);
    if (answer.ok) {
      this.settle({ outcome: 'added', path, id, replaced: replacing });
      return;
    }
    const { status, code, message } = answer.error;
    if (status === 401) throw keyRefused(this.client.origin);
    if (code === 'limitReached' || code === 'readOnly' || code === 'methodNotFound') throw new BulkError(`${this.client.origin}: ${message}`);
    const reason = code === 'undecodableImage' ? 'undecodable' : code === 'payloadTooLarge' || status === 413 ? 'too-large' : status >= 500 ? 'server' : 'refused';
    this.settle({ outcome: 'failed', path, id, reason, message });
  }

  flush(): void {}

  async close(): Promise<void> {}
}
