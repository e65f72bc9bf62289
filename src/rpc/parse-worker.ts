// A worker thread that parses large XML-RPC bodies, so that the sax parser's seconds
// on a 40 MiB upload never block the process's other requests.
import { parentPort } from 'node:worker_threads';
import { ProtocolError } from '../errors.ts';
import { parseMethodCall } from './wire.ts';

parentPort!.on('message', async ({ id, body }: { id: number; body: Uint8Array }) => {
  try {
    const call = await parseMethodCall(Buffer.from(body.buffer, body.byteOffset, body.byteLength));
    parentPort!.postMessage({ id, call });
  } catch (err) {
    parentPort!.postMessage({ id, error: (err as Error).message, protocol: err instanceof ProtocolError });
  }
});
