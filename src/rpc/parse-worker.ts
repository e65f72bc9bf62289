// A worker thread that parses large XML-RPC bodies, so that the sax parser's seconds
// on a 40 MiB upload never block the process's other requests.
import { parentPort } from 'node:worker_threads';
import { ProtocolError } from '../errors.ts';
import { parseMethodCall } from './wire.ts';

/** Decoded payloads that own their memory move back to the main thread instead of being copied. */
function ownBuffers(value: unknown, out: ArrayBuffer[] = []): ArrayBuffer[] {
  if (value instanceof Uint8Array) {
    if (value.byteOffset === 0 && value.byteLength === value.buffer.byteLength && value.buffer instanceof ArrayBuffer && !out.includes(value.buffer)) {
      out.push(value.buffer);
    }
  } else if (Array.isArray(value)) for (const item of value) ownBuffers(item, out);
  else if (value !== null && typeof value === 'object') for (const item of Object.values(value)) ownBuffers(item, out);
  return out;
}

parentPort!.on('message', async ({ id, body }: { id: number; body: Uint8Array }) => {
  try {
    const call = await parseMethodCall(Buffer.from(body.buffer, body.byteOffset, body.byteLength));
    parentPort!.postMessage({ id, call }, ownBuffers(call.params));
  } catch (err) {
    parentPort!.postMessage({ id, error: (err as Error).message, protocol: err instanceof ProtocolError });
  }
});
