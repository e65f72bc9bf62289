/**
 * Every error haarseek reports to a caller, declared once. Each door maps an error to
 * its own wire form from this table alone: XML-RPC sends `fault` as the faultCode, the
 * JSON and iqdb routes send `http` as the status with `{error: {code, fault, message}}`.
 * Messages are for the person who made the call.
 *
 * The negative fault codes are the ones the XML-RPC interoperability spec fixes; the
 * positive ones are haarseek's (1..9 kept from its first release).
 */
export const ERRORS = {
  parseError: { fault: -32700, http: 400 },
  methodNotFound: { fault: -32601, http: 404 },
  invalidParams: { fault: -32602, http: 400 },
  internal: { fault: -32603, http: 500 },
  unknownSpace: { fault: 1, http: 404 },
  unknownImage: { fault: 2, http: 404 },
  undecodableImage: { fault: 3, http: 415 },
  payloadTooLarge: { fault: 4, http: 413 },
  readOnly: { fault: 5, http: 403 },
  writerUnreachable: { fault: 6, http: 502 },
  pathNotAllowed: { fault: 7, http: 403 },
  fileError: { fault: 8, http: 422 },
  busy: { fault: 9, http: 503 },
  unauthorized: { fault: 10, http: 401 },
  limitReached: { fault: 11, http: 409 },
} as const;

export type ErrorCode = keyof typeof ERRORS;

/** An error a caller caused or can act on; `code` names its row in ERRORS. */
export class HaarseekError extends Error {
  constructor(readonly code: ErrorCode, message: string) {
    super(message);
    this.name = 'HaarseekError';
  }

  get fault(): number {
    return ERRORS[this.code].fault;
  }

  get httpStatus(): number {
    return ERRORS[this.code].http;
  }
}

/** The request is not a valid call of its protocol (malformed XML, JSON, multipart). */
export class ProtocolError extends HaarseekError {
  constructor(message: string) {
    super('parseError', message);
  }
}

export class MethodNotFoundError extends HaarseekError {
  constructor(message: string) {
    super('methodNotFound', message);
  }
}

export class ParamError extends HaarseekError {
  constructor(message: string) {
    super('invalidParams', message);
  }
}

export class UnknownSpaceError extends HaarseekError {
  constructor(readonly dbId: number) {
    super('unknownSpace', `database space ${dbId} does not exist (create it with createDb or add an image to it)`);
  }
}

export class UnknownImageError extends HaarseekError {
  constructor(readonly dbId: number, readonly imageId: number) {
    super('unknownImage', `image ${imageId} is not in database space ${dbId}`);
  }
}

/** Why an image could not be turned into pixels. */
export type ImageErrorKind = 'empty' | 'too-large' | 'too-many-pixels' | 'undecodable';

export class ImageError extends HaarseekError {
  constructor(readonly kind: ImageErrorKind, message: string) {
    super(kind === 'too-large' || kind === 'too-many-pixels' ? 'payloadTooLarge' : 'undecodableImage', message);
  }
}

/** A request body over the configured limit. */
export class PayloadTooLargeError extends HaarseekError {
  constructor(message: string) {
    super('payloadTooLarge', message);
  }
}

/** This instance cannot write: a reader with --no-forward. */
export class ReadOnlyError extends HaarseekError {
  constructor(message: string) {
    super('readOnly', message);
  }
}

export class WriterUnreachableError extends HaarseekError {
  constructor(message: string) {
    super('writerUnreachable', message);
  }
}

export class PathNotAllowedError extends HaarseekError {
  constructor(message: string) {
    super('pathNotAllowed', message);
  }
}

/** A missing or unusable file (not a haarseek database, a foreign schema...). */
export class FileError extends HaarseekError {
  constructor(message: string) {
    super('fileError', message);
  }
}

/** The database or the process is busy past its bound; the call can be retried. */
export class BusyError extends HaarseekError {
  constructor(message: string) {
    super('busy', message);
  }
}

/** A write or admin call without a valid write key. */
export class UnauthorizedError extends HaarseekError {
  constructor(message: string) {
    super('unauthorized', message);
  }
}

/** A configured limit (spaces per server) would be passed. */
export class LimitReachedError extends HaarseekError {
  constructor(message: string) {
    super('limitReached', message);
  }
}

/**
 * Maps anything thrown to a reportable error. SQLite's busy answers are BusyError;
 * whatever else is unknown is internal (the caller logs it; its message is not sent).
 */
export function toReportable(err: unknown): { error: HaarseekError; internal: boolean } {
  if (err instanceof HaarseekError) return { error: err, internal: false };
  const code = (err as { code?: unknown })?.code;
  if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED') {
    return { error: new BusyError('the database is busy; retry shortly'), internal: false };
  }
  return { error: new HaarseekError('internal', 'internal error (logged on the server)'), internal: true };
}

// Errors that stop a process from starting; they never reach a caller.

export class WriterLockedError extends Error {
  override name = 'WriterLockedError';
}

export class ClusterLockedError extends Error {
  override name = 'ClusterLockedError';
}

/** Replication cannot go on (a URL that is not NATS, a stream of another database, a damaged snapshot): one line for the operator. */
export class ReplicationError extends Error {
  override name = 'ReplicationError';
}
