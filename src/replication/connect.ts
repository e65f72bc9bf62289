import { createConnection } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { type NatsConnection, connect } from 'nats';
import type { Logger } from 'pino';
import { ReplicationError } from '../errors.ts';

/** How long a server that accepted the connection has to greet us with INFO, as NATS servers do at once. */
const GREETING_MS = 3000;

export type ProbeResult = { kind: 'nats' } | { kind: 'down'; reason: string } | { kind: 'not-nats'; reason: string };

/**
 * Looks at what answers at a NATS URL without the client library: a NATS server sends
 * `INFO {...}` as soon as a connection opens. Refused or unreachable: down (retry);
 * anything else answering: not NATS (a wrong URL, to be reported, not retried forever).
 */
export async function probeNats(url: string): Promise<ProbeResult> {
  let host: string;
  let port: number;
  try {
    const u = new URL(url.includes('://') ? url : `nats://${url}`);
    host = u.hostname;
    port = Number(u.port || 4222);
  } catch {
    return { kind: 'not-nats', reason: `${url} is not a URL` };
  }
  return new Promise((resolve) => {
    const socket = createConnection({ host, port });
    let got = '';
    let connected = false;
    socket.once('connect', () => {
      connected = true;
    });
    const done = (r: ProbeResult) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(r);
    };
    const timer = setTimeout(
      () => done(connected ? { kind: 'not-nats', reason: `it accepted a connection but sent no NATS greeting within ${GREETING_MS} ms` } : { kind: 'down', reason: 'connection timed out' }),
      GREETING_MS,
    );
    socket.on('data', (chunk) => {
      got += chunk.toString('latin1');
      if (got.length >= 5) done(got.startsWith('INFO ') ? { kind: 'nats' } : { kind: 'not-nats', reason: `it answered ${JSON.stringify(got.slice(0, 24))}, not a NATS greeting` });
    });
    socket.on('error', (err) => done({ kind: 'down', reason: (err as NodeJS.ErrnoException).code ?? err.message }));
  });
}

/**
 * Connects to the first of `servers` that answers, retrying with backoff (250 ms
 * doubling to 10 s) while none does; the client then reconnects by itself for ever.
 * A URL that answers but is not NATS ends the attempt with a ReplicationError.
 */
export async function connectWithRetry(servers: string[], name: string, log: Logger, onAttemptFailed?: (reason: string) => void): Promise<NatsConnection> {
  let delay = 250;
  for (let attempt = 1; ; attempt++) {
    const probes = await Promise.all(servers.map(async (url) => ({ url, probe: await probeNats(url) })));
    const wrong = probes.find((p) => p.probe.kind === 'not-nats');
    if (wrong && wrong.probe.kind === 'not-nats') throw new ReplicationError(`${wrong.url} is not a NATS server: ${wrong.probe.reason}`);
    if (probes.some((p) => p.probe.kind === 'nats')) {
      try {
        return await connect({ servers, name, maxReconnectAttempts: -1, reconnectTimeWait: 250, timeout: 5000, pingInterval: 5000, maxPingOut: 2 });
      } catch (err) {
        onAttemptFailed?.((err as Error).message);
        log.warn({ err: (err as Error).message, attempt, retryInMs: delay }, 'could not connect to NATS; retrying');
      }
    } else {
      const reason = probes.map((p) => `${p.url}: ${p.probe.kind === 'down' ? p.probe.reason : ''}`).join('; ');
      onAttemptFailed?.(reason);
      if (attempt === 1 || attempt % 10 === 0) log.warn({ servers, reason, attempt, retryInMs: delay }, 'NATS is not reachable; retrying with backoff');
    }
    await sleep(delay);
    delay = Math.min(delay * 2, 10_000);
  }
}
