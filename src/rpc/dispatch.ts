import { type ErrorCode, MethodNotFoundError, ParamError, ReadOnlyError, UnauthorizedError, UnknownImageError, toReportable } from '../errors.ts';
import { toFault } from './faults.ts';
import { type Access, METHODS, type MethodDef, type RpcContext } from './methods.ts';
import { coerceParam } from './params.ts';
import type { ParsePool } from './parse-pool.ts';
import { type MethodCall, faultResponse, methodResponse, sniffMethodName } from './wire.ts';

export interface DispatchOptions {
  parser: ParsePool;
  /** On a reader: sends a call that changes the database, with its credentials, to the writer and returns its response. */
  forwardWrite?: (body: Buffer, authorization: string | undefined) => Promise<Buffer>;
  /** On a reader with --no-forward: why writes are refused (names the writer). */
  refuseWrites?: string;
  onInternalError(err: unknown, method: string): void;
}

/** A call's answer, with what the server logs and counts about it. */
export interface Answer {
  body: string | Buffer;
  method: string;
  /** Present when the answer is a fault. */
  failure?: { code: ErrorCode; fault: number; message: string };
}

/** What the HTTP layer knows about the caller. */
export interface Caller {
  /** The request carried the write key. */
  authorized: boolean;
  /** The Authorization header as sent, relayed when a write is forwarded. */
  authorization?: string;
}

const SYSTEM_METHODS = ['system.listMethods', 'system.methodHelp', 'system.methodSignature', 'system.multicall'];

/** Turns a request body into a response body: parse, authorise, route, check, run, serialise. */
export class RpcDispatcher {
  constructor(private readonly ctx: RpcContext, private readonly options: DispatchOptions) {}

  async handle(body: Buffer, caller: Caller): Promise<Answer> {
    let method = '(unparsed)';
    try {
      // A reader relays a plain write call without parsing it: the writer parses it anyway.
      const named = this.options.forwardWrite ? sniffMethodName(body) : null;
      const namedDef = named !== null ? METHODS.get(named) : undefined;
      if (named !== null && namedDef?.mutates) {
        method = named;
        if (!caller.authorized) throw unauthorized(named, namedDef.access);
        return { body: await this.options.forwardWrite!(body, caller.authorization), method };
      }
      // Kept only when the call might still have to be relayed as it came.
      const keepBody = this.options.forwardWrite !== undefined && (namedDef === undefined || named === 'system.multicall');
      const call = await this.options.parser.parse(body, keepBody);
      method = call.method;
      const calls = this.calledMethods(call);
      for (const def of calls) if (def.access !== 'read' && !caller.authorized) throw unauthorized(call.method, def.access);
      if (calls.some((def) => def.mutates)) {
        if (this.options.forwardWrite) return { body: await this.options.forwardWrite(body, caller.authorization), method };
        if (this.options.refuseWrites) throw new ReadOnlyError(this.options.refuseWrites);
      }
      return { body: methodResponse(await this.call(call.method, call.params)), method };
    } catch (err) {
      const { error, internal } = toReportable(err);
      if (internal) this.options.onInternalError(err, method);
      return { body: faultResponse(toFault(error).fault), method, failure: { code: error.code, fault: error.fault, message: error.message } };
    }
  }

  /** The haarseek methods a call runs: itself, or each entry of a multicall. */
  private calledMethods(call: MethodCall): MethodDef[] {
    if (call.method !== 'system.multicall') {
      const def = METHODS.get(call.method);
      return def ? [def] : [];
    }
    const entries = Array.isArray(call.params[0]) ? call.params[0] : [];
    return entries.flatMap((entry) => {
      const def = METHODS.get((entry as { methodName?: unknown })?.methodName as string);
      return def ? [def] : [];
    });
  }

  private async call(method: string, params: unknown[]): Promise<unknown> {
    switch (method) {
      case 'system.listMethods':
        return [...METHODS.keys(), ...SYSTEM_METHODS].sort();
      case 'system.methodHelp':
        return this.lookup(String(params[0])).help;
      case 'system.methodSignature':
        return [['undef', ...this.lookup(String(params[0])).params.map((p) => p.type)]];
      case 'system.multicall':
        return this.multicall(params);
    }
    const def = this.lookup(method);
    const args = checkArgs(method, def, params);
    try {
      return await def.run(this.ctx, args);
    } catch (err) {
      // iskdaemon answered an ordinary miss with a plain "no", which its clients test for.
      if (err instanceof UnknownImageError && def.onMissing) return def.onMissing.image;
      throw err;
    }
  }

  /** Each call's result is wrapped in a one-element array, each failure is a fault struct. */
  private async multicall(params: unknown[]): Promise<unknown[]> {
    if (params.length !== 1 || !Array.isArray(params[0])) {
      throw new ParamError('system.multicall takes one array of {methodName, params} structs');
    }
    const out: unknown[] = [];
    for (const entry of params[0] as Array<{ methodName?: unknown; params?: unknown }>) {
      try {
        const name = entry?.methodName;
        if (typeof name !== 'string') throw new ParamError('each multicall entry needs a methodName string');
        if (name === 'system.multicall') throw new ParamError('system.multicall cannot be nested');
        out.push([await this.call(name, Array.isArray(entry.params) ? entry.params : [])]);
      } catch (err) {
        const { fault, internal } = toFault(err);
        if (internal) this.options.onInternalError(err, 'system.multicall');
        out.push({ faultCode: fault.code, faultString: fault.message });
      }
    }
    return out;
  }

  private lookup(method: string): MethodDef {
    const def = METHODS.get(method);
    if (!def) throw new MethodNotFoundError(`unknown method ${JSON.stringify(method)}; system.listMethods lists them`);
    return def;
  }
}

function unauthorized(method: string, access: Access): UnauthorizedError {
  return new UnauthorizedError(
    `${method} is a${access === 'admin' ? 'n admin' : ' write'} call and needs the server's write key: send it as HTTP Basic auth ` +
      '(http://anyname:KEY@host/RPC in Python, Ruby and PHP clients) or as the header "Authorization: Bearer KEY". ' +
      'The operator sets the key with --write-key or HAARSEEK_WRITE_KEY (npm start prints it once, and keeps it in the data directory\'s write.key).',
  );
}

function checkArgs(method: string, def: MethodDef, raw: unknown[]): unknown[] {
  const params = def.legacy ? def.legacy(raw) : raw;
  const required = def.params.filter((p) => !('default' in p)).length;
  if (params.length < required || params.length > def.params.length) {
    const expected = required === def.params.length ? `${required}` : `${required} to ${def.params.length}`;
    const usage = `${method}(${def.params.map((p) => ('default' in p ? `${p.name}=${JSON.stringify(p.default)}` : p.name)).join(', ')})`;
    throw new ParamError(`${method} takes ${expected} parameters, got ${params.length}: ${usage}`);
  }
  return def.params.map((spec, i) => (i < params.length ? coerceParam(spec, params[i], i) : spec.default));
}
