import type { FastifyRequest } from 'fastify';
import { ParamError } from '../errors.ts';
import { type FormPart, formDataBoundary, parseFormData } from './multipart.ts';

/** The name of the form part holding the image (what browsers' forms, curl -F and iqdb use). */
export const FILE_PART = 'file';

/** The request body as bytes (every body arrives as one Buffer: src/server/body.ts); empty when none was sent. */
export function rawBody(req: FastifyRequest): Buffer {
  return Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
}

/** The form parts of a multipart/form-data request, or null when the body is something else. */
export function formParts(req: FastifyRequest): FormPart[] | null {
  const boundary = formDataBoundary(req.headers['content-type']);
  return boundary === null ? null : parseFormData(rawBody(req), boundary);
}

/**
 * The image a request carries: the body itself (any content type but multipart), or the
 * part named `file` of a multipart/form-data body.
 */
export function imageFromRequest(req: FastifyRequest): Buffer {
  const parts = formParts(req);
  if (parts !== null) {
    const file = parts.find((p) => p.name === FILE_PART);
    if (!file) {
      const names = parts.map((p) => JSON.stringify(p.name)).join(', ') || 'none';
      throw new ParamError(`the multipart/form-data body has no part named "${FILE_PART}" (parts: ${names}); send the image as the "${FILE_PART}" part`);
    }
    if (file.data.length === 0) throw new ParamError(`the "${FILE_PART}" part is empty: send the image's bytes in it`);
    return file.data;
  }
  const body = rawBody(req);
  if (body.length === 0) {
    throw new ParamError(`the request carries no image: send the image's bytes as the body, or a multipart/form-data body with a part named "${FILE_PART}"`);
  }
  return body;
}
