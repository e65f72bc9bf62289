import { join } from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';
import { PACKAGE_ROOT } from '../package-root.ts';

/** The search page's folder: plain files, no build step (web/app.js talks to /api/v1). */
export const WEB_ROOT = join(PACKAGE_ROOT, 'web');

/**
 * What the page may load: its own files, its own API, thumbnails from anywhere (the
 * operator's --image-url-template may name another host) and the picked image as a blob.
 */
const CONTENT_SECURITY_POLICY = "default-src 'self'; img-src * data: blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/**
 * Serves web/ by GET: index.html at / (POST / stays XML-RPC) and its assets. Only the
 * files present at start are routes (no wildcard), so every other path keeps its own
 * 404 (JSON under /api/v1).
 */
export async function searchPage(app: FastifyInstance): Promise<void> {
  await app.register(fastifyStatic, {
    root: WEB_ROOT,
    prefix: '/',
    wildcard: false,
    index: ['index.html'],
    decorateReply: false,
    cacheControl: true,
    maxAge: 60_000,
    setHeaders(res) {
      res.setHeader('x-content-type-options', 'nosniff');
      res.setHeader('content-security-policy', CONTENT_SECURITY_POLICY);
      res.setHeader('referrer-policy', 'no-referrer');
    },
  });
}
