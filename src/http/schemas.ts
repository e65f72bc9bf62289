/**
 * The JSON schemas of the HTTP doors: fastify validates requests and serialises answers
 * with them, and @fastify/swagger writes the OpenAPI document from the same objects.
 */
import { ERRORS } from '../errors.ts';
import { MAX_ID } from '../rpc/params.ts';

export const ERROR_SCHEMA_ID = 'Error';

/** `{ error: { code, fault, message } }`: every JSON error, its code a row of the error table. */
export const errorSchema = {
  $id: ERROR_SCHEMA_ID,
  type: 'object',
  description: 'An error: `code` names its row in the error table (the HTTP status follows from it), `fault` is the same error\'s XML-RPC fault code, `message` is for a person.',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'fault', 'message'],
      properties: {
        code: { type: 'string', enum: Object.keys(ERRORS) },
        fault: { type: 'integer' },
        message: { type: 'string' },
      },
    },
  },
} as const;

const errorRef = { $ref: `${ERROR_SCHEMA_ID}#` };

/** A route's responses: its 200 body, and the error body for every 4xx and 5xx. */
export function responses(ok: object, okDescription: string): Record<string, object> {
  return {
    200: { description: okDescription, ...ok },
    '4xx': { description: 'A call the client can correct: bad parameters or body (400), no write key (401), refused (403), unknown space, image or route (404), body too large (413), not an image (415)…', ...errorRef },
    '5xx': { description: 'The server could not answer: writer unreachable (502), busy (503), internal (500).', ...errorRef },
  };
}

export const spaceId = { type: 'integer', minimum: 0, maximum: MAX_ID, description: 'database space id' } as const;
export const imageId = { type: 'integer', minimum: 1, maximum: MAX_ID, description: 'image id, 1 to 2^53' } as const;
const keyword = { type: 'integer', minimum: -MAX_ID, maximum: MAX_ID } as const;

export const spaceParams = { type: 'object', required: ['space'], properties: { space: spaceId } } as const;
export const imageParams = { type: 'object', required: ['space', 'id'], properties: { space: spaceId, id: imageId } } as const;

/** Query parameters of a similarity search (numres is bounded by --max-results). */
export function searchQuery(maxResults: number) {
  return {
    type: 'object',
    properties: {
      numres: { type: 'integer', minimum: 1, maximum: maxResults, default: 10, description: 'how many results (exactly this many when the space holds enough images)' },
      sketch: { type: 'integer', enum: [0, 1], default: 0, description: '1: score with imgSeek\'s sketch weights' },
      fast: { type: 'integer', enum: [0, 1], default: 0, description: '1: score on the average colour only (imgSeek\'s fast query)' },
      keywords: { type: 'string', pattern: '^\\s*-?\\d+(\\s*,\\s*-?\\d+)*\\s*$', description: 'only images having these keywords, comma-separated' },
      kwJoin: { type: 'string', enum: ['and', 'or'], default: 'and', description: 'and: images having all the keywords; or: any of them' },
      ranking: {
        type: 'string',
        enum: ['imgseek', 'verified'],
        description: 'imgseek: imgSeek\'s scores and order exactly. verified: query variants and a thumbnail check re-rank the candidates (a card photographed on a table finds its card). Default: the server\'s --ranking, which /api/v1/status names',
      },
    },
  } as const;
}

export const searchAnswer = {
  type: 'object',
  required: ['space', 'ranking', 'results', 'tookMs'],
  properties: {
    space: spaceId,
    ranking: { type: 'string' },
    results: {
      type: 'array',
      description: 'best first',
      items: {
        type: 'object',
        required: ['id', 'score'],
        properties: { id: imageId, score: { type: 'number', description: 'iskdaemon\'s score, 0..100 (100: the same image)' } },
      },
    },
    tookMs: { type: 'number', description: 'time this process spent on the search' },
  },
} as const;

export const addedImage = {
  type: 'object',
  required: ['id', 'width', 'height'],
  properties: { id: imageId, width: { type: 'integer' }, height: { type: 'integer' } },
} as const;

export const imageInfo = {
  type: 'object',
  required: ['id', 'width', 'height', 'avgl', 'keywords'],
  properties: {
    id: imageId,
    width: { type: 'integer' },
    height: { type: 'integer' },
    avgl: { type: 'array', items: { type: 'number' }, minItems: 3, maxItems: 3, description: 'average Y, I, Q (imgSeek\'s avgl)' },
    keywords: { type: 'array', items: keyword },
  },
} as const;

export const removedImage = {
  type: 'object',
  required: ['id', 'removed'],
  properties: { id: imageId, removed: { type: 'boolean', const: true } },
} as const;

export const imageKeywords = {
  type: 'object',
  required: ['id', 'keywords'],
  properties: { id: imageId, keywords: { type: 'array', items: keyword, description: 'ascending' } },
} as const;

/** Body of PUT/DELETE .../keywords; checked only when sent as application/json. */
export const keywordsBody = {
  content: {
    'application/json': {
      schema: {
        type: 'object',
        required: ['keywords'],
        additionalProperties: false,
        properties: { keywords: { type: 'array', items: keyword, maxItems: 10_000 } },
      },
    },
  },
} as const;

export const spaceSummary = {
  type: 'object',
  required: ['id', 'images'],
  properties: { id: spaceId, images: { type: 'integer' } },
} as const;

export const spaceList = {
  type: 'object',
  required: ['spaces'],
  properties: { spaces: { type: 'array', items: spaceSummary } },
} as const;

export const statusAnswer = {
  type: 'object',
  required: ['role', 'engine', 'pid', 'version', 'ranking', 'imageUrlTemplate', 'spaces', 'stale', 'snapshotAgeMs'],
  properties: {
    role: { type: 'string', enum: ['writer', 'reader'] },
    engine: { type: 'string', description: 'native or ts' },
    pid: { type: 'integer' },
    version: { type: 'string' },
    ranking: { type: 'string', description: 'the ranking this server offers by default' },
    imageUrlTemplate: { type: ['string', 'null'], description: 'where an image is shown by id: {id} is replaced (--image-url-template)' },
    spaces: { type: 'array', items: spaceSummary },
    stale: { type: 'boolean', description: 'a reader answering from its last good snapshot because it cannot read the database' },
    snapshotAgeMs: { type: ['number', 'null'], description: 'time since the snapshot was last checked against the database' },
  },
} as const;

export const statsAnswer = {
  type: 'object',
  required: ['process', 'spaces'],
  properties: {
    process: {
      type: 'object',
      description: 'this process (each process of a cluster counts its own calls)',
      properties: {
        role: { type: 'string' },
        engine: { type: 'string' },
        pid: { type: 'integer' },
        port: { type: 'integer' },
        uptimeSeconds: { type: 'number' },
        rssBytes: { type: 'number' },
        heapUsedBytes: { type: 'number' },
        indexBytes: { type: 'number' },
        images: { type: 'integer' },
      },
    },
    spaces: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          id: spaceId,
          images: { type: 'integer' },
          queries: { type: 'integer', description: 'searches this process answered' },
          adds: { type: 'integer', description: 'images this process added' },
          addsSinceSave: { type: 'integer' },
          lastId: { type: 'integer', description: 'the last image id this process added' },
        },
      },
    },
  },
} as const;
