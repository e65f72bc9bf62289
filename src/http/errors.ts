import { HaarseekError, MethodNotFoundError, ParamError, PayloadTooLargeError, ProtocolError, toReportable } from '../errors.ts';

/** The body every JSON error carries: the row of the error table, and a message for a person. */
export interface JsonErrorBody {
  error: { code: string; fault: number; message: string };
}

export function jsonErrorBody(error: HaarseekError): JsonErrorBody {
  return { error: { code: error.code, fault: error.fault, message: error.message } };
}

/**
 * What an HTTP door reports for anything thrown while serving a request: haarseek's own
 * errors as they are; fastify's (schema validation, body limit, malformed request) as
 * the matching row of the error table; anything else as internal (logged, not sent).
 */
export function toHttpError(err: unknown, maxBodyBytes: number): { error: HaarseekError; internal: boolean } {
  if (err instanceof HaarseekError) return { error: err, internal: false };
  const e = err as { code?: string; message?: string; statusCode?: number; validation?: unknown };
  if (e?.validation) return { error: new ParamError(e.message ?? 'invalid parameters'), internal: false };
  if (e?.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    return { error: new PayloadTooLargeError(`the request is larger than this server's limit of ${maxBodyBytes} bytes`), internal: false };
  }
  if (e?.code === 'FST_ERR_NOT_FOUND') return { error: new MethodNotFoundError(e.message ?? 'no such route'), internal: false };
  const status = e?.statusCode ?? 500;
  if (status >= 400 && status < 500) return { error: new ProtocolError(`bad request: ${e.message}`), internal: false };
  return toReportable(err);
}
