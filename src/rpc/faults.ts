import { toReportable } from '../errors.ts';

/** An XML-RPC fault as it goes on the wire. */
export interface Fault {
  code: number;
  message: string;
}

/**
 * The one place an error becomes a fault: its code comes from the error table
 * (src/errors.ts). Unknown errors are internal: logged by the caller, never detailed
 * to the client.
 */
export function toFault(err: unknown): { fault: Fault; internal: boolean } {
  const { error, internal } = toReportable(err);
  return { fault: { code: error.fault, message: error.message }, internal };
}
