/** Exit codes of `haarseek add` and `haarseek query` (documented in their --help). */
export const EXIT = {
  /** Stopped by an error that concerns the whole run (bad option, wrong key, server unreachable). */
  error: 1,
  /** The data directory is in use by a writer or a cluster (as `haarseek serve` and `import` exit). */
  locked: 2,
  /** The run went through, but some files failed (the summary and --report say which and why). */
  someFailed: 3,
  /** Interrupted (Ctrl-C): what was added stays. */
  interrupted: 130,
} as const;

/** An error that stops a bulk command as a whole; its message is printed as it is. */
export class BulkError extends Error {
  constructor(message: string, readonly exitCode: number = EXIT.error) {
    super(message);
    this.name = 'BulkError';
  }
}
