// The OpenAPI 3 document, generated from the routes' zod schemas, served at /api/v2/openapi.json,
// with the Swagger UI at /api/v2/docs (its assets are bundled by @fastify/swagger-ui: no CDN).
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { jsonSchemaTransform, jsonSchemaTransformObject } from '@fastify/type-provider-zod';
import fp from 'fastify-plugin';
import { ERROR_CODES } from '../../errors.js';
import { VERSION } from '../../version.js';

export const OPENAPI_PATH = '/api/v2/openapi.json';
export const DOCS_PATH = '/api/v2/docs';

export default fp(
  async function swaggerPlugin(fastify) {
    await fastify.register(swagger, {
      openapi: {
        openapi: '3.0.3',
        info: {
          title: 'Switchboard API',
          version: VERSION,
          description:
            'REST API of Switchboard. Every error (status ≥ 400) has the `Error` shape with a stable `code`; ' +
            'every response carries `x-request-id`. Authentication: `Authorization: Bearer <access_token>` ' +
            'except on login, refresh, health and signed file links.\n\n' +
            errorCodeTable(),
        },
        servers: [{ url: '/' }],
        components: {
          securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
        },
      },
      // Routes that parse their own body (multipart uploads) describe it in `config.openapiBody`.
      transform: (input) => {
        const transformed = jsonSchemaTransform(input);
        const body = (input.route.config as { openapiBody?: unknown } | undefined)?.openapiBody;
        return body ? { ...transformed, schema: { ...transformed.schema, body } } : transformed;
      },
      transformObject: jsonSchemaTransformObject,
    });
    await fastify.register(swaggerUi, {
      routePrefix: DOCS_PATH,
      staticCSP: true,
      uiConfig: { docExpansion: 'list', deepLinking: true },
    });
    fastify.get(OPENAPI_PATH, { schema: { hide: true } }, async () => fastify.swagger());
  },
  { name: 'swagger' },
);

/** The documented list of error codes, from the same table the server raises them from. */
function errorCodeTable(): string {
  const rows = ERROR_CODES.map(({ code, status, meaning }) => `| \`${code}\` | ${status} | ${meaning} |`);
  return ['### Error codes', '', '| code | status | meaning |', '| --- | --- | --- |', ...rows].join('\n');
}
