// The admin dashboard at /admin: one HTML page, its script and style, and Chart.js, all served by this
// server from its own files (no CDN). The page itself is public (it is only a sign-in form); everything
// it shows comes from the admin API with the signed-in admin's token. Its CSP lets it load its own
// scripts and call its own API, nothing else.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyPluginAsync } from 'fastify';

const DASHBOARD_DIR = fileURLToPath(new URL('../dashboard/', import.meta.url));
const CHART_DIR = path.join(path.dirname(createRequire(import.meta.url).resolve('chart.js')), '.');

const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

interface Asset {
  body: Buffer;
  type: string;
}

function load(file: string, type: string): Asset {
  return { body: readFileSync(file), type };
}

const dashboardRoutes: FastifyPluginAsync = async (fastify) => {
  // Read once at start: a missing file fails the start, not a visitor's request.
  const page = load(path.join(DASHBOARD_DIR, 'index.html'), 'text/html; charset=utf-8');
  const assets: Record<string, Asset> = {
    'dashboard.js': load(path.join(DASHBOARD_DIR, 'dashboard.js'), 'text/javascript; charset=utf-8'),
    'dashboard.css': load(path.join(DASHBOARD_DIR, 'dashboard.css'), 'text/css; charset=utf-8'),
    'chart.umd.min.js': load(path.join(CHART_DIR, 'chart.umd.min.js'), 'text/javascript; charset=utf-8'),
  };

  const schema = { hide: true };
  for (const url of ['/admin', '/admin/']) {
    fastify.get(url, { schema }, async (_request, reply) =>
      reply
        .header('content-security-policy', CSP)
        .header('cache-control', 'no-cache')
        .type(page.type)
        .send(page.body),
    );
  }
  fastify.get<{ Params: { file: string } }>('/admin/assets/:file', { schema }, async (request, reply) => {
    const asset = Object.hasOwn(assets, request.params.file) ? assets[request.params.file] : undefined;
    if (!asset) return reply.callNotFound();
    return reply.header('cache-control', 'no-cache').type(asset.type).send(asset.body);
  });
};

export default dashboardRoutes;
