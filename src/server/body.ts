import type { IncomingMessage } from 'node:http';
import { PayloadTooLargeError } from '../errors.ts';

/**
 * Reads a request body into one buffer. With a Content-Length the buffer is allocated
 * once and each chunk copied in as it arrives, so a 50 MB upload never costs one long
 * concatenation on the event loop; without one, chunks are joined at the end.
 */
export function collectBody(req: IncomingMessage, limit: number, done: (err: Error | null, body?: Buffer) => void): void {
  const declared = req.headers['content-length'] !== undefined ? Number(req.headers['content-length']) : null;
  const tooLarge = () => new PayloadTooLargeError(`the request is larger than this server's limit of ${limit} bytes`);
  if (declared !== null && (!Number.isSafeInteger(declared) || declared < 0)) return done(new PayloadTooLargeError('the Content-Length header is not a byte count'));
  if (declared !== null && declared > limit) return refuseAfterReading(req, limit, tooLarge(), done);
  const whole = declared !== null ? Buffer.allocUnsafeSlow(declared) : null;
  const chunks: Buffer[] = [];
  let received = 0;
  let finished = false;
  const finish = (err: Error | null, body?: Buffer) => {
    if (finished) return;
    finished = true;
    done(err, body);
  };
  req.on('data', (chunk: Buffer) => {
    if (finished) return;
    if (received + chunk.length > (declared ?? limit)) {
      finished = true;
      return refuseAfterReading(req, limit, declared !== null ? new PayloadTooLargeError('the body is longer than its Content-Length') : tooLarge(), done);
    }
    if (whole) chunk.copy(whole, received);
    else chunks.push(chunk);
    received += chunk.length;
  });
  req.on('end', () => {
    if (declared !== null && received !== declared) return finish(new PayloadTooLargeError(`the body ended after ${received} of its ${declared} bytes`));
    finish(null, whole ?? Buffer.concat(chunks, received));
  });
  req.on('error', (err) => finish(err));
}

/** How much of a refused body is read (and dropped) before the connection is cut. */
const DROP_BEYOND_LIMIT = 64 * 1024 * 1024;

/**
 * Answers a refused body only once the client has sent it (read and dropped): a client
 * still writing when the answer and a close come back sees a reset, not the answer.
 * Past the limit plus 64 MiB the connection is cut instead.
 */
function refuseAfterReading(req: IncomingMessage, limit: number, error: Error, done: (err: Error | null) => void): void {
  let dropped = 0;
  let answered = false;
  const answer = () => {
    if (answered) return;
    answered = true;
    done(error);
  };
  req.removeAllListeners('data');
  req.on('data', (chunk: Buffer) => {
    dropped += chunk.length;
    if (dropped > limit + DROP_BEYOND_LIMIT) {
      req.destroy();
      answer();
    }
  });
  req.once('end', answer);
  req.once('error', answer);
  req.resume();
}
