// The contract's error body, for the OpenAPI document.
import { z } from 'zod';

export const errorBodySchema = z
  .object({
    statusCode: z.number().int(),
    code: z.string().describe('Stable error code, e.g. VALIDATION_FAILED'),
    error: z.string().describe('HTTP status text'),
    message: z.string(),
    details: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
    request_id: z.string(),
    retry_after: z.number().int().optional().describe('Seconds to wait before retrying (423, 429, 503)'),
  })
  .meta({ id: 'Error' });

/** Response entries for the given error statuses, to spread into a route's `response`. */
export function errorResponses(...statuses: number[]): Record<number, typeof errorBodySchema> {
  return Object.fromEntries(statuses.map((status) => [status, errorBodySchema]));
}
