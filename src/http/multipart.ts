import { ProtocolError } from '../errors.ts';

/** One part of a multipart/form-data body; `data` is a view into the body, not a copy. */
export interface FormPart {
  name: string;
  filename?: string;
  contentType?: string;
  data: Buffer;
}

/** Parts one request may carry (a form upload has one or a few). */
const MAX_PARTS = 64;
/** Bytes of headers one part may carry. */
const MAX_PART_HEADER_BYTES = 16 * 1024;
const CRLF = Buffer.from('\r\n');
const HEADER_END = Buffer.from('\r\n\r\n');

/** The boundary of a multipart/form-data Content-Type, or null for any other type. */
export function formDataBoundary(contentType: string | undefined): string | null {
  if (!contentType || !/^\s*multipart\/form-data\s*(;|$)/i.test(contentType)) return null;
  const match = /;\s*boundary\s*=\s*(?:"([^"]{1,70})"|([^\s;"]{1,70}))/i.exec(contentType);
  if (!match) throw new ProtocolError('the multipart/form-data body has no boundary in its Content-Type');
  return match[1] ?? match[2];
}

/**
 * Splits a multipart/form-data body (RFC 7578) held in one buffer. The body arrives
 * whole (src/server/body.ts), so the parts are found with Buffer.indexOf, native and
 * linear, and handed out as views: a 40 MB upload is neither streamed again nor copied.
 * Anything malformed is a ProtocolError naming what is wrong.
 */
export function parseFormData(body: Buffer, boundary: string): FormPart[] {
  const delimiter = Buffer.from(`--${boundary}`);
  const between = Buffer.from(`\r\n--${boundary}`);
  let at = body.indexOf(delimiter);
  if (at < 0) throw new ProtocolError('the multipart/form-data body does not contain its boundary');
  const parts: FormPart[] = [];
  for (;;) {
    at += delimiter.length;
    if (body[at] === 0x2d && body[at + 1] === 0x2d) return parts; // "--": the closing delimiter
    while (body[at] === 0x20 || body[at] === 0x09) at++; // transport padding
    if (body.indexOf(CRLF, at) !== at) throw new ProtocolError('the multipart/form-data body is malformed: a boundary line does not end where it should');
    const headStart = at + CRLF.length;
    let dataStart: number;
    let head = '';
    if (body.indexOf(CRLF, headStart) === headStart) dataStart = headStart + CRLF.length;
    else {
      const headEnd = body.indexOf(HEADER_END, headStart);
      if (headEnd < 0 || headEnd - headStart > MAX_PART_HEADER_BYTES) throw new ProtocolError('the multipart/form-data body is malformed: a part\'s headers do not end');
      head = body.toString('utf8', headStart, headEnd);
      dataStart = headEnd + HEADER_END.length;
    }
    const dataEnd = body.indexOf(between, dataStart);
    if (dataEnd < 0) throw new ProtocolError('the multipart/form-data body is truncated: its closing boundary is missing');
    if (parts.length === MAX_PARTS) throw new ProtocolError(`the multipart/form-data body has more than ${MAX_PARTS} parts`);
    parts.push({ ...describePart(head), data: body.subarray(dataStart, dataEnd) });
    at = dataEnd + CRLF.length;
  }
}

function describePart(head: string): Omit<FormPart, 'data'> {
  let disposition: string | undefined;
  let contentType: string | undefined;
  for (const line of head.split('\r\n')) {
    if (line === '') continue;
    const colon = line.indexOf(':');
    if (colon < 0) throw new ProtocolError(`the multipart/form-data body has a malformed part header: ${JSON.stringify(line.slice(0, 80))}`);
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === 'content-disposition') disposition = value;
    else if (name === 'content-type') contentType = value;
  }
  if (!disposition || !/^form-data\s*(;|$)/i.test(disposition)) {
    throw new ProtocolError('a part of the multipart/form-data body has no "Content-Disposition: form-data" header');
  }
  const params = dispositionParams(disposition);
  if (params.name === undefined) throw new ProtocolError('a part of the multipart/form-data body has no name');
  return { name: params.name, filename: params.filename, contentType };
}

function dispositionParams(disposition: string): Record<string, string | undefined> {
  const params: Record<string, string | undefined> = {};
  const re = /;\s*([^=;\s]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;]*))/g;
  for (let m = re.exec(disposition); m; m = re.exec(disposition)) {
    const key = m[1].toLowerCase();
    if (key === 'name' || key === 'filename') params[key] = m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : m[3].trim();
  }
  return params;
}
