import { ParamError } from '../errors.ts';
import { FAULTS, Fault, toFault } from './faults.ts';
import { METHODS, type MethodDef, type RpcContext } from './methods.ts';
import { coerceParam } from './params.ts';
import { faultResponse, methodResponse, parseMethodCall } from './wire.ts';

export interface DispatchOptions {
  /** On a reader: sends a write call's body to the writer and returns its response. */
  forwardWrite?: (body: Buffer) => Promise<Buffer>;
  /** On a reader with --no-forward: why writes are refused (names the writer). */
  refuseWrites?: string;
  onInternalError(err: unknown, method: string): void;
}

const SYSTEM_METHODS = ['system.listMethods', 'system.methodHelp', 'system.methodSignature', 'system.multicall'];

/** Turns a request body into a response body: parse, route, check, run, serialise. */
export class RpcDispatcher {
  constructor(private readonly ctx: RpcContext, private readonly options: DispatchOptions) {}

  async handle(body: Buffer): Promise<string | Buffer> {
    let method = '(unparsed)';
    try {
      const call = await parseMethodCall(body);
      method = call.method;
      if (this.isWriteCall(call.method, call.params)) {
        if (this.options.forwardWrite) return await this.options.forwardWrite(body);
        if (this.options.refuseWrites) throw new Fault(FAULTS.readOnly, this.options.refuseWrites);
      }
      return methodResponse(await this.call(call.method, call.params));
    } catch (err) {
      const { fault, internal } = toFault(err);
      if (internal) this.options.onInternalError(err, method);
      return faultResponse(fault);
    }
  }

  private isWriteCall(method: string, params: unknown[]): boolean {
    if (method === 'system.multicall') {
      const calls = Array.isArray(params[0]) ? params[0] : [];
      return calls.some((c) => METHODS[(c as { methodName?: string })?.methodName ?? '']?.write === true);
    }
    return METHODS[method]?.write === true;
  }

  private async call(method: string, params: unknown[]): Promise<unknown> {
    switch (method) {
      case 'system.listMethods':
        return [...Object.keys(METHODS), ...SYSTEM_METHODS].sort();
      case 'system.methodHelp':
        return this.lookup(String(params[0])).help;
      case 'system.methodSignature':
        return [['undef', ...this.lookup(String(params[0])).params.map((p) => p.type)]];
      case 'system.multicall':
        return this.multicall(params);
    }
    const def = METHODS[method];
    if (!def) throw new Fault(FAULTS.methodNotFound, `unknown method ${JSON.stringify(method)}; system.listMethods lists them`);
    return def.run(this.ctx, checkArgs(method, def, params));
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
    const def = METHODS[method];
    if (!def) throw new Fault(FAULTS.methodNotFound, `unknown method ${JSON.stringify(method)}`);
    return def;
  }
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
