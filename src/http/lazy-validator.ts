import { createRequire } from 'node:module';
import type { FastifySchema, FastifySchemaCompiler } from 'fastify';

const require = createRequire(import.meta.url);

interface Validate {
  (data: unknown): boolean | { error?: Error; value?: unknown } | Promise<unknown>;
  errors?: unknown;
}
type BuildValidator = (route: { schema: FastifySchema; method: string; url: string; httpPart?: string }) => Validate;

/**
 * Fastify compiles every route's schema with ajv while it starts: about 200 ms of a
 * server's start, before it can answer anything. This compiles each one on its route's
 * first request instead, with the compiler and the options fastify uses by default.
 */
export function lazyValidatorCompiler(externalSchemas: () => unknown): FastifySchemaCompiler<FastifySchema> {
  let build: BuildValidator | undefined;
  return (route) => {
    let validate: Validate | undefined;
    const lazy: Validate = (data) => {
      build ??= (require('@fastify/ajv-compiler') as () => (schemas: unknown, options: object) => BuildValidator)()(externalSchemas(), { customOptions: {}, plugins: [] });
      validate ??= build(route);
      const result = validate(data);
      // Fastify reads a failed validation's reasons from the function it was given.
      lazy.errors = validate.errors;
      return result;
    };
    return lazy as ReturnType<FastifySchemaCompiler<FastifySchema>>;
  };
}
