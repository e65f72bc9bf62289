/**
 * The small error taxonomy every layer throws; src/rpc/faults.ts maps each class to one
 * XML-RPC fault code, in one place. Messages are for the person who made the call.
 */
export class ParamError extends Error {
  override name = 'ParamError';
}

export class UnknownSpaceError extends Error {
  override name = 'UnknownSpaceError';
  constructor(readonly dbId: number) {
    super(`database space ${dbId} does not exist (create it with createDb or add an image to it)`);
  }
}

export class UnknownImageError extends Error {
  override name = 'UnknownImageError';
  constructor(readonly dbId: number, readonly imageId: number) {
    super(`image ${imageId} is not in database space ${dbId}`);
  }
}

export class PathNotAllowedError extends Error {
  override name = 'PathNotAllowedError';
}

export class FileError extends Error {
  override name = 'FileError';
}

/** This instance cannot write: a reader with --no-forward, or its writer is unreachable. */
export class ReadOnlyError extends Error {
  override name = 'ReadOnlyError';
}

export class WriterUnreachableError extends Error {
  override name = 'WriterUnreachableError';
}

/** The database was busy past the retry bound; the call can be retried. */
export class BusyError extends Error {
  override name = 'BusyError';
}
