import {
  BusyError,
  FileError,
  ParamError,
  PathNotAllowedError,
  ReadOnlyError,
  UnknownImageError,
  UnknownSpaceError,
  WriterUnreachableError,
} from '../errors.ts';
import { ImageError } from '../image/errors.ts';
import { StoreError } from '../store/schema.ts';

/**
 * Every XML-RPC fault haarseek sends, with a stable code. The negative codes are the
 * ones the XML-RPC interoperability spec fixes; the positive ones are haarseek's.
 */
export const FAULTS = {
  parseError: -32700,
  methodNotFound: -32601,
  invalidParams: -32602,
  internal: -32603,
  unknownSpace: 1,
  unknownImage: 2,
  undecodableImage: 3,
  payloadTooLarge: 4,
  readOnly: 5,
  writerUnreachable: 6,
  pathNotAllowed: 7,
  fileError: 8,
  busy: 9,
} as const;

export type FaultCode = (typeof FAULTS)[keyof typeof FAULTS];

export class Fault extends Error {
  constructor(readonly code: FaultCode, message: string) {
    super(message);
    this.name = 'Fault';
  }
}

/** The one place that maps an error class to a fault. Unknown errors are internal. */
export function toFault(err: unknown): { fault: Fault; internal: boolean } {
  if (err instanceof Fault) return { fault: err, internal: false };
  const message = err instanceof Error ? err.message : String(err);
  const known = (code: FaultCode) => ({ fault: new Fault(code, message), internal: false });
  if (err instanceof ParamError) return known(FAULTS.invalidParams);
  if (err instanceof UnknownSpaceError) return known(FAULTS.unknownSpace);
  if (err instanceof UnknownImageError) return known(FAULTS.unknownImage);
  if (err instanceof ImageError) {
    return known(err.kind === 'too-large' || err.kind === 'too-many-pixels' ? FAULTS.payloadTooLarge : FAULTS.undecodableImage);
  }
  if (err instanceof ReadOnlyError) return known(FAULTS.readOnly);
  if (err instanceof WriterUnreachableError) return known(FAULTS.writerUnreachable);
  if (err instanceof PathNotAllowedError) return known(FAULTS.pathNotAllowed);
  if (err instanceof FileError || err instanceof StoreError) return known(FAULTS.fileError);
  if (err instanceof BusyError) return known(FAULTS.busy);
  if (isSqliteBusy(err)) return known(FAULTS.busy);
  return { fault: new Fault(FAULTS.internal, `internal error: ${message}`), internal: true };
}

function isSqliteBusy(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  return code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED';
}
