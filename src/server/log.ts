import { Writable } from 'node:stream';
import pino, { type Logger } from 'pino';

/** Keeps the last lines this process logged, for iskdaemon's getIskLog. */
export class LogRing extends Writable {
  private readonly lines: string[] = [];

  constructor(private readonly capacity = 500) {
    super();
  }

  override _write(chunk: Buffer, _encoding: string, done: () => void): void {
    this.lines.push(chunk.toString().trimEnd());
    if (this.lines.length > this.capacity) this.lines.splice(0, this.lines.length - this.capacity);
    done();
  }

  tail(count: number): string {
    return this.lines.slice(-Math.max(0, count)).join('\n');
  }
}

/**
 * Readable lines at a terminal (pino-pretty), JSON lines otherwise (files, journald,
 * collectors). pino-pretty is loaded only for a terminal: it costs a restart ~0.2 s.
 */
export async function terminalOrJson(): Promise<NodeJS.WritableStream> {
  if (!process.stdout.isTTY) return process.stdout;
  const { default: pretty } = await import('pino-pretty');
  return pretty({ colorize: true, sync: true, translateTime: 'SYS:HH:MM:ss.l' });
}

export async function createLogger(level: string, base: Record<string, unknown>, ring: LogRing): Promise<Logger> {
  return pino({ level, base: { pid: process.pid, ...base } }, pino.multistream([{ stream: await terminalOrJson(), level }, { stream: ring, level }]));
}
