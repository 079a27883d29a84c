// /api/v2/files: upload (multipart, streamed), download (uploader, channel members, or a signed link;
// ETag and byte ranges) and delete. The service decides who may do what; this file speaks HTTP:
// multipart parsing and its limits, ranges, caching and the headers that keep a browser from running
// what it downloads.
import multipart from '@fastify/multipart';
import type { FastifyPluginAsyncZod } from '@fastify/type-provider-zod';
import { create as contentDisposition } from 'content-disposition';
import type { FastifyReply, FastifyRequest } from 'fastify';
import parseRange from 'range-parser';
import { z } from 'zod';
import { Errors } from '../../errors.js';
import { INLINE_TYPES } from '../../files/file-types.js';
import { requestContext } from '../../plugins/app/authenticate.js';
import type { FileDoc } from '../../repositories/files.js';
import { errorResponses } from '../../schemas/error.js';
import { downloadQuery, fileParams, fileSchema, uploadFormSchema } from '../../schemas/files.js';
import type { UploadPart } from '../../services/files.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** A JSON-schema request body for the OpenAPI document of a route that parses its own body. */
    openapiBody?: Record<string, unknown>;
  }
}

/** Limits of one upload form: one file, `channel_id`, and a little slack for clients' extra fields. */
const FORM_LIMITS = { files: 2, fields: 8, parts: 10, fieldSize: 1024, fieldNameSize: 100, headerPairs: 20 };

/**
 * Downloads never run in the browser: no scripts, no plug-ins, no same-origin access, even for a type a
 * browser would render (an administrator may allow HTML uploads; they still cannot act as our origin).
 */
const DOWNLOAD_CSP = "default-src 'none'; style-src 'unsafe-inline'; sandbox; frame-ancestors 'none'";

const filesRoutes: FastifyPluginAsyncZod = async (fastify) => {
  const security = [{ bearer: [] }];
  const tags = ['files'];
  // Only these routes accept multipart bodies; busboy's limits are set per request below.
  await fastify.register(multipart, { throwFileSizeLimit: true });

  fastify.post(
    '/files',
    {
      schema: {
        tags,
        summary: 'Upload a file (multipart field `file`, optional `channel_id`)',
        description:
          'The body is streamed to storage and verified: MAX_FILE_SIZE (413 FILE_TOO_LARGE), the user’s ' +
          'storage quota (413 STORAGE_QUOTA_EXCEEDED), ALLOWED_EXTENSIONS and a content check against the ' +
          'extension (415 FILE_TYPE_NOT_ALLOWED), FILE_UPLOADS_PER_HOUR (429). Share the file by sending a ' +
          'message with its id in `attachments`.',
        security,
        consumes: ['multipart/form-data'],
        response: { 201: fileSchema, ...errorResponses(400, 401, 403, 404, 413, 415, 429) },
      },
      config: { openapiBody: uploadFormSchema },
    },
    async (request, reply) => {
      const file = await fastify.files.upload(request.principal, (maxBytes) =>
        uploadParts(request, maxBytes),
      );
      return reply.code(201).send(file);
    },
  );

  // HEAD is declared with GET (not derived by Fastify, whose derived HEAD would read the whole file).
  fastify.route({
    method: ['GET', 'HEAD'],
    url: '/files/:fileId',
    exposeHeadRoute: false,
    schema: {
      tags,
      summary: 'Download a file (also HEAD); byte ranges and ETag',
      description:
        'Allowed to the uploader, members of a channel it was shared in, or anyone with the signed link ' +
        'from `file_url` (no Authorization header needed). Images that browsers can show safely are ' +
        'served inline; everything else as an attachment under a sandboxing CSP.',
      security: [{ bearer: [] }, {}],
      params: fileParams,
      querystring: downloadQuery,
      response: {
        200: z.unknown().describe('The file’s bytes, with its stored type'),
        206: z.unknown().describe('The requested byte range'),
        304: z.null().describe('Not modified (If-None-Match)'),
        ...errorResponses(400, 401, 403, 404, 416),
      },
    },
    config: { signedLink: true },
    handler: async (request, reply) => {
      const file = await fastify.files.fileForDownload(request.principal ?? null, request.params.fileId, {
        exp: request.query.exp,
        sig: request.query.sig,
      });
      const etag = `"${file.sha256}"`;
      const notModified = matchesAny(request.headers['if-none-match'], etag);
      // Checked and opened before any header is set: a refusal answers with the error body alone.
      const range = notModified ? undefined : requestedRange(request, reply, file, etag);
      const body = notModified || request.method === 'HEAD' ? null : await fastify.files.open(file, range);
      reply
        .header('content-type', file.file_type)
        .header('content-disposition', dispositionOf(file))
        .header('content-security-policy', DOWNLOAD_CSP)
        .header('x-content-type-options', 'nosniff')
        .header('cache-control', 'private, max-age=3600')
        .header('etag', etag)
        .header('last-modified', file.created_at.toUTCString())
        .header('accept-ranges', 'bytes');
      if (notModified) return reply.code(304).send(null);
      if (range) {
        reply
          .code(206)
          .header('content-range', `bytes ${range.start}-${range.end}/${file.file_size}`)
          .header('content-length', range.end - range.start + 1);
      } else {
        reply.header('content-length', file.file_size);
      }
      return reply.send(body);
    },
  });

  fastify.delete(
    '/files/:fileId',
    {
      schema: {
        tags,
        summary: 'Delete a file (its uploader or an admin): bytes removed, messages show it as deleted',
        security,
        params: fileParams,
        response: { 204: z.null().describe('Deleted'), ...errorResponses(401, 403, 404) },
      },
    },
    async (request, reply) => {
      await fastify.files.remove(request.principal, request.params.fileId, requestContext(request));
      return reply.code(204).send(null);
    },
  );
};

/** The request's multipart parts as the service reads them, with multipart failures as our errors. */
async function* uploadParts(request: FastifyRequest, maxBytes: number): AsyncGenerator<UploadPart> {
  if (!request.isMultipart()) {
    throw new Errors.UNSUPPORTED_MEDIA_TYPE(request.headers['content-type'] ?? '(none)');
  }
  try {
    // preservePath: the name exactly as sent, so "../../etc/passwd" is refused rather than shortened.
    // One byte over the limit lets the service tell "too large" from "exactly the limit".
    const parts = request.parts({
      preservePath: true,
      limits: { ...FORM_LIMITS, fileSize: maxBytes + 1 },
    });
    for await (const part of parts) {
      if (part.type === 'file') {
        // A file name is a structural field: the detection plugin cannot see it in a parsed body.
        await request.server.detection?.inspectValue(request, part.filename, 'file_name');
        yield {
          type: 'file',
          name: part.fieldname,
          filename: part.filename,
          declaredType: part.mimetype,
          stream: part.file,
        };
      } else {
        yield {
          type: 'field',
          name: part.fieldname,
          value: typeof part.value === 'string' ? part.value : JSON.stringify(part.value),
          truncated: part.valueTruncated,
        };
      }
    }
  } catch (error) {
    throw multipartError(error);
  }
}

function multipartError(error: unknown): Error {
  const { code, statusCode } = error as { code?: string; statusCode?: number };
  switch (code) {
    case 'FST_PARTS_LIMIT':
    case 'FST_FIELDS_LIMIT':
      return new Errors.TOO_MANY_PARTS();
    case 'FST_FILES_LIMIT':
      return new Errors.TOO_MANY_FILES();
  }
  // Ours (raised by the service while it read the parts) pass through; busboy's become one code.
  if (statusCode && statusCode < 500 && !code?.startsWith('FST_')) return error as Error;
  return new Errors.INVALID_MULTIPART();
}

/** Inline only for image types a browser shows without running anything; RFC 6266/5987 encoded name. */
function dispositionOf(file: FileDoc): string {
  const type = INLINE_TYPES.has(file.file_type) ? 'inline' : 'attachment';
  return contentDisposition(file.file_name, { type });
}

/** Whether an If-None-Match header names this ETag (or is `*`); weak comparison, as RFC 9110 asks. */
function matchesAny(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  if (header.trim() === '*') return true;
  return header.split(',').some((candidate) => candidate.trim().replace(/^W\//, '') === etag);
}

/**
 * The one byte range asked for, undefined for the whole file. A malformed, unsatisfiable or
 * multi-range request is refused (416) rather than answered in full: a client asking for part of a
 * file is never silently sent all of it. An If-Range that no longer matches means "send it all".
 */
function requestedRange(
  request: FastifyRequest,
  reply: FastifyReply,
  file: FileDoc,
  etag: string,
): { start: number; end: number } | undefined {
  const header = request.headers.range;
  if (header === undefined) return undefined;
  const ifRange = request.headers['if-range'];
  if (ifRange !== undefined && String(ifRange).trim() !== etag) return undefined;
  const refuse = (reason: string) => {
    void reply.header('content-range', `bytes */${file.file_size}`);
    return new Errors.RANGE_NOT_SATISFIABLE(reason);
  };
  if (header.length > 200) throw refuse('The Range header is too long');
  const ranges = parseRange(file.file_size, header, { combine: true });
  if (ranges === -2) throw refuse('The Range header is malformed (expected bytes=start-end)');
  if (ranges === -1) throw refuse(`The range is outside the file (${file.file_size} bytes)`);
  if (ranges.type !== 'bytes') throw refuse('Only byte ranges are supported');
  if (ranges.length !== 1) throw refuse('Ask for one range per request');
  return { start: ranges[0]!.start, end: ranges[0]!.end };
}

export default filesRoutes;
