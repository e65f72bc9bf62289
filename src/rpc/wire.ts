import { Readable } from 'node:stream';
import Deserializer from 'xmlrpc/lib/deserializer.js';
import CustomType from 'xmlrpc/lib/customtype.js';
import { serializeFault, serializeMethodResponse } from 'xmlrpc/lib/serializer.js';
import { ProtocolError } from '../errors.ts';
import type { Fault } from './faults.ts';

export interface MethodCall {
  method: string;
  params: unknown[];
}

/** No haarseek method takes values nested deeper than this (multicall: 4). */
const MAX_DEPTH = 16;
/** Values in one call; a keyword or id list of this size is already absurd. */
const MAX_VALUES = 200_000;
/** The sax parser is fed this much at a time. */
const CHUNK_BYTES = 64 * 1024;

/**
 * Parses an XML-RPC methodCall. Documents with a DOCTYPE are refused outright: XML-RPC
 * never needs one, and refusing it closes entity-expansion and external-entity attacks.
 * Calls nested deeper than any method needs, or with more values than any needs, are
 * refused too, before anything else touches them.
 */
export function parseMethodCall(body: Buffer): Promise<MethodCall> {
  if (body.includes('<!DOCTYPE') || body.includes('<!ENTITY')) {
    return Promise.reject(new ProtocolError('XML with a DOCTYPE or ENTITY declaration is not accepted'));
  }
  return new Promise((resolve, reject) => {
    let settled = false;
    const chunks = (function* () {
      for (let at = 0; at < body.length; at += CHUNK_BYTES) yield body.subarray(at, at + CHUNK_BYTES);
    })();
    new Deserializer('utf8').deserializeMethodCall(Readable.from(chunks), (error, method, params) => {
      if (settled) return;
      settled = true;
      if (error || method === undefined) {
        reject(new ProtocolError(`not a valid XML-RPC methodCall: ${error?.message ?? 'no method name'}`));
        return;
      }
      const problem = shapeProblem(params ?? []);
      if (problem) reject(new ProtocolError(problem));
      else resolve({ method, params: params ?? [] });
    });
  });
}

/**
 * The method a call names, read from its first bytes without parsing the rest (a
 * reader decides from it alone to relay a 50 MB upload to the writer untouched), or
 * null when the head is not the plain `<methodCall><methodName>NAME` form.
 */
export function sniffMethodName(body: Buffer): string | null {
  const head = body.subarray(0, 1024).toString('latin1');
  const match = /^\s*(?:<\?xml[^>]*\?>)?\s*<methodCall>\s*<methodName>([A-Za-z0-9_.:]{1,100})<\/methodName>/.exec(head);
  return match ? match[1] : null;
}

/** Walks the parsed values without recursion; says why a call is refused, or null. */
function shapeProblem(params: unknown[]): string | null {
  const stack: Array<[unknown, number]> = [[params, 0]];
  let values = 0;
  while (stack.length > 0) {
    const [value, depth] = stack.pop()!;
    if (++values > MAX_VALUES) return `the call holds more than ${MAX_VALUES} values; no haarseek method takes that many`;
    if (depth > MAX_DEPTH) return `the call nests values deeper than ${MAX_DEPTH} levels; no haarseek method takes that`;
    if (Array.isArray(value)) for (const item of value) stack.push([item, depth + 1]);
    else if (value !== null && typeof value === 'object' && !Buffer.isBuffer(value) && !(value instanceof Date)) {
      for (const item of Object.values(value)) stack.push([item, depth + 1]);
    }
  }
  return null;
}

/** A number that must go out as <double> even when it is whole (scores of 100 or 0). */
export class XmlRpcDouble extends CustomType {
  constructor(value: number) {
    super(String(value));
    this.tagName = 'double';
  }
}

/** A whole number beyond XML-RPC's 32-bit <int> (ids added through the JSON API, byte counts). */
class XmlRpcI8 extends CustomType {
  constructor(value: number) {
    super(String(value));
    this.tagName = 'i8';
  }
}

const INT32_MAX = 2 ** 31 - 1;

/** Whole numbers outside 32 bits become <i8>: as <int> a client would read them wrong. */
function widen(value: unknown): unknown {
  if (typeof value === 'number') return Number.isInteger(value) && (value > INT32_MAX || value < -INT32_MAX - 1) ? new XmlRpcI8(value) : value;
  if (Array.isArray(value)) return value.map(widen);
  if (value !== null && typeof value === 'object' && !(value instanceof CustomType) && !Buffer.isBuffer(value) && !(value instanceof Date)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, widen(v)]));
  }
  return value;
}

export function methodResponse(value: unknown): string {
  return serializeMethodResponse(widen(value));
}

export function faultResponse(fault: Fault): string {
  return serializeFault({ faultCode: fault.code, faultString: fault.message });
}
