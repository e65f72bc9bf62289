import fastifySwagger from '@fastify/swagger';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AUTH_CHALLENGE } from './access.ts';
import type { DoorContext, HttpDoorsOptions } from './context.ts';
import { checkPathIds } from './context.ts';
import { jsonErrorBody, toHttpError } from './errors.ts';
import { iqdbRoutes } from './iqdb-routes.ts';
import { jsonApi } from './json-api.ts';
import { lazyValidatorCompiler } from './lazy-validator.ts';
import { searchPage } from './page.ts';
import { writerRelay } from './relay.ts';
import { errorSchema } from './schemas.ts';
import { VERSION } from './version.ts';

export type { HttpDoorsOptions } from './context.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The request body of a route whose body is read by hand (image bytes), for the OpenAPI document only. */
    docBody?: object;
  }
}

/**
 * The HTTP doors beside XML-RPC, on every process: the JSON API under /api/v1 (with its
 * OpenAPI document at /api/v1/openapi.json), iqdb's routes, and the search page at /.
 * All of them call the service; a reader relays writes to the writer.
 */
export function registerHttpDoors(app: FastifyInstance, options: HttpDoorsOptions): void {
  const { config, log } = options;
  const outcomes = new WeakMap<FastifyRequest, string>();
  const ctx: DoorContext = {
    ...options,
    relay: config.role === 'reader' && config.forwardWrites && config.writerUrl ? writerRelay(config.writerUrl, config.requestTimeoutMs, log) : undefined,
    reportError(err, req, door) {
      const reported = toHttpError(err, config.maxBodyBytes);
      const { error, internal } = reported;
      outcomes.set(req, error.code);
      if (internal) log.error({ err, door, method: req.method, route: req.routeOptions.url }, 'internal error');
      else log.info({ door, method: req.method, route: req.routeOptions.url ?? req.url, code: error.code, reason: error.message }, 'call failed');
      return reported;
    },
  };

  app.register(async (doors) => {
    // Response schemas document the answers (OpenAPI) but are not compiled into
    // serializers: compiling one per route cost a restarted reader about a second.
    doors.setSerializerCompiler(() => (data) => JSON.stringify(data));
    doors.setValidatorCompiler(lazyValidatorCompiler(() => doors.getSchemas()));
    doors.addSchema(errorSchema);
    await doors.register(fastifySwagger, {
      openapi: {
        openapi: '3.1.0',
        info: {
          title: 'haarseek',
          version: VERSION,
          description:
            'Reverse image search. Reads are open; writes and admin calls need the write key as HTTP Basic auth (the key as password) or a Bearer token. Every process answers; readers relay writes to the writer. Errors: `{ error: { code, fault, message } }` with the HTTP status of the error table.',
        },
        components: { securitySchemes: { writeKey: { type: 'http', scheme: 'basic', description: 'any user name, the write key as password (or `Authorization: Bearer KEY`)' } } },
      },
      refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
      // Image bodies are read by hand (no body schema to validate), so their description
      // comes from the route's config; routes behind the key are marked as such.
      transform: ({ schema, url, route }) => {
        const docBody = route.config?.docBody;
        const secured = route.onRequest !== undefined;
        if (!schema || (!docBody && !secured)) return { schema, url };
        const documented: Record<string, unknown> = { ...schema };
        if (docBody) documented.body = docBody;
        if (secured) documented.security = [{ writeKey: [] }];
        return { schema: documented as typeof schema, url };
      },
      // @fastify/swagger marks every body required; a DELETE's body (keywords) is optional.
      transformObject: (document) => {
        const openapi = 'openapiObject' in document ? document.openapiObject : {};
        for (const ops of Object.values(openapi.paths ?? {}) as Array<{ delete?: { requestBody?: { required?: boolean } } }>) {
          if (ops.delete?.requestBody) ops.delete.requestBody.required = false;
        }
        return openapi;
      },
    });

    doors.addHook('preValidation', checkPathIds);
    if (options.startCall) {
      const ends = new WeakMap<FastifyRequest, (route: string, outcome: string) => void>();
      doors.addHook('onRequest', async (req) => {
        ends.set(req, options.startCall!(req.url.startsWith('/api/') ? 'json' : 'iqdb'));
      });
      doors.addHook('onResponse', async (req, reply) => {
        const outcome = reply.statusCode < 400 ? 'ok' : (outcomes.get(req) ?? String(reply.statusCode));
        ends.get(req)?.(`${req.method} ${req.routeOptions.url ?? 'unknown'}`, outcome);
      });
    }

    await doors.register(async (api) => {
      api.setErrorHandler(async (err, req, reply) => {
        const { error } = ctx.reportError(err, req, 'json');
        if (error.code === 'unauthorized') reply.header('www-authenticate', AUTH_CHALLENGE);
        return reply.code(error.httpStatus).send(jsonErrorBody(error));
      });
      await jsonApi(api, ctx);
    }, { prefix: '/api/v1' });

    await doors.register(async (iqdb) => iqdbRoutes(iqdb, ctx));
  });

  app.register(searchPage);
}
