import { Writable } from 'node:stream';
import pino, { type Logger } from 'pino';
import pretty from 'pino-pretty';

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

/** Readable lines at a terminal (pino-pretty), JSON lines otherwise (files, journald, collectors). */
export function terminalOrJson(): NodeJS.WritableStream {
  return process.stdout.isTTY ? pretty({ colorize: true, sync: true, translateTime: 'SYS:HH:MM:ss.l' }) : process.stdout;
}

export function createLogger(level: string, base: Record<string, unknown>, ring: LogRing): Logger {
  return pino({ level, base: { pid: process.pid, ...base } }, pino.multistream([{ stream: terminalOrJson(), level }, { stream: ring, level }]));
}
