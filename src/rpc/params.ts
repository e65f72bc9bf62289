import { ParamError } from '../errors.ts';

/** Largest image id: ids are exact integers in a double, as in most clients' languages. */
export const MAX_ID = 2 ** 53;
/**
 * Largest id an XML-RPC client may add: XML-RPC's <int> is 32-bit, and PHP's, Ruby's
 * and Python's clients send ids as <int>, so a larger one could never be asked about
 * again. Larger ids (added through the JSON API) go out as <i8>.
 */
export const MAX_XMLRPC_NEW_ID = 2 ** 31 - 1;

export type ParamType = 'int' | 'id' | 'newId' | 'bool' | 'string' | 'blob' | 'intList' | 'keywordList';

export interface ParamSpec {
  name: string;
  type: ParamType;
  /** Present when the parameter is optional. */
  default?: unknown;
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Checks and converts one argument; the message names the parameter and what was sent. */
export function coerceParam(spec: ParamSpec, value: unknown, position: number): unknown {
  const where = `parameter ${position + 1} (${spec.name})`;
  switch (spec.type) {
    case 'int':
      return toInt(value, where);
    case 'id': {
      const id = toInt(value, where);
      if (id < 1 || id > MAX_ID) throw new ParamError(`${where} must be an id from 1 to 2^53, got ${id}`);
      return id;
    }
    case 'newId': {
      const id = toInt(value, where);
      if (id < 1 || id > MAX_XMLRPC_NEW_ID) {
        throw new ParamError(
          `${where} must be an id from 1 to 2147483647 (2^31-1): XML-RPC integers are 32-bit, so XML-RPC clients could not send a larger id back; got ${id} (the JSON API takes ids up to 2^53)`,
        );
      }
      return id;
    }
    case 'bool':
      if (typeof value === 'boolean') return value;
      if (value === 0 || value === 1) return value === 1;
      if (value === '0' || value === '1') return value === '1';
      if (value === 'true' || value === 'false' || value === 'True' || value === 'False') return value.toLowerCase() === 'true';
      throw new ParamError(`${where} must be a boolean (or 0/1), got ${describe(value)}`);
    case 'string':
      if (typeof value === 'string') return value;
      throw new ParamError(`${where} must be a string, got ${describe(value)}`);
    case 'blob':
      return toBytes(value, where);
    case 'intList':
      return toIntList(value, where);
    case 'keywordList':
      return toIntList(value, where);
  }
}

/** Image payloads come as <base64> (a Buffer) or as base64 text in a <string>. */
function toBytes(value: unknown, where: string): Buffer {
  if (Buffer.isBuffer(value)) return value;
  if (typeof value === 'string') {
    const compact = value.replace(/\s+/g, '');
    if (compact.length % 4 !== 0 || !BASE64.test(compact)) {
      throw new ParamError(`${where} must be an image as XML-RPC base64 or base64 text; the string is not valid base64`);
    }
    return Buffer.from(compact, 'base64');
  }
  throw new ParamError(`${where} must be image bytes (base64), got ${describe(value)}`);
}

function toInt(value: unknown, where: string): number {
  let n: number = Number.NaN;
  if (typeof value === 'number') n = value;
  else if (typeof value === 'string' && /^\s*-?\d+\s*$/.test(value)) {
    // <i8> arrives as text; compare exactly, since Number() would round 2^53+1 down.
    const big = BigInt(value.trim());
    n = big > BigInt(MAX_ID) || big < -BigInt(MAX_ID) ? Number.NaN : Number(big);
  }
  else if (typeof value === 'boolean') n = value ? 1 : 0;
  if (!Number.isSafeInteger(n) && !(Number.isInteger(n) && Math.abs(n) === MAX_ID)) {
    throw new ParamError(`${where} must be an integer, got ${describe(value)}`);
  }
  return n;
}

/** iskdaemon takes id and keyword lists as comma-separated strings; arrays are accepted too. */
function toIntList(value: unknown, where: string): number[] {
  const items = Array.isArray(value)
    ? value
    : typeof value === 'string'
      ? value.split(',').map((s) => s.trim()).filter((s) => s.length > 0)
      : typeof value === 'number'
        ? [value]
        : null;
  if (items === null) throw new ParamError(`${where} must be a comma-separated list of integers, got ${describe(value)}`);
  return items.map((item) => toInt(item, where));
}

function describe(value: unknown): string {
  if (Buffer.isBuffer(value)) return `binary data (${value.length} bytes)`;
  if (Array.isArray(value)) return 'an array';
  if (value === null) return 'nil';
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  return `${typeof value} ${String(value)}`;
}
