// Schemas of the files routes (the multipart upload body is described for the OpenAPI document only:
// the route reads it as a stream).
import { z } from 'zod';

export const fileSchema = z
  .object({
    id: z.string(),
    file_name: z.string().describe('The uploader’s name for it, sanitised; for display only'),
    file_type: z.string().describe('Decided by the server from the extension and the content'),
    file_size: z.number().int(),
    sha256: z.string().describe('Hex SHA-256 of the stored bytes'),
    file_url: z
      .string()
      .describe(
        'Signed download link (`?exp=&sig=`): works without an Authorization header until it expires',
      ),
    created_at: z.string(),
  })
  .meta({ id: 'File' });

export const fileParams = z.strictObject({ fileId: z.string().max(64) });

export const downloadQuery = z.object({
  exp: z.string().max(16).optional().describe('Signed link: expiry (unix seconds)'),
  sig: z.string().max(128).optional().describe('Signed link: signature'),
});

/** OpenAPI description of the upload form (JSON Schema: the zod compilers never see it). */
export const uploadFormSchema = {
  type: 'object',
  required: ['file'],
  properties: {
    file: { type: 'string', format: 'binary', description: 'The file; exactly one' },
    channel_id: {
      type: 'string',
      description:
        'Optional: the channel it is meant for (you must be a member). Access comes from sharing it in a message.',
    },
  },
} as const;
