import { Readable } from 'node:stream';
import Deserializer from 'xmlrpc/lib/deserializer.js';
import CustomType from 'xmlrpc/lib/customtype.js';
import { serializeFault, serializeMethodResponse } from 'xmlrpc/lib/serializer.js';
import { FAULTS, Fault } from './faults.ts';

export interface MethodCall {
  method: string;
  params: unknown[];
}

/**
 * Parses an XML-RPC methodCall. Documents with a DOCTYPE are refused outright: XML-RPC
 * never needs one, and refusing it closes entity-expansion and external-entity attacks.
 */
export function parseMethodCall(body: Buffer): Promise<MethodCall> {
  if (body.includes('<!DOCTYPE') || body.includes('<!ENTITY')) {
    return Promise.reject(new Fault(FAULTS.parseError, 'XML with a DOCTYPE or ENTITY declaration is not accepted'));
  }
  return new Promise((resolve, reject) => {
    let settled = false;
    new Deserializer('utf8').deserializeMethodCall(Readable.from([body]), (error, method, params) => {
      if (settled) return;
      settled = true;
      if (error || method === undefined) {
        reject(new Fault(FAULTS.parseError, `not a valid XML-RPC methodCall: ${error?.message ?? 'no method name'}`));
      } else {
        resolve({ method, params: params ?? [] });
      }
    });
  });
}

/** A number that must go out as <double> even when it is whole (scores of 100 or 0). */
export class XmlRpcDouble extends CustomType {
  constructor(value: number) {
    super(String(value));
    this.tagName = 'double';
  }
}

export function methodResponse(value: unknown): string {
  return serializeMethodResponse(value);
}

export function faultResponse(fault: Fault): string {
  return serializeFault({ faultCode: fault.code, faultString: fault.message });
}
