// Every error code a client can see, in one place. Codes are part of the public contract: never rename one.
import createError from '@fastify/error';

export const Errors = {
  VALIDATION_FAILED: createError('VALIDATION_FAILED', '%s', 400),
  INVALID_JSON: createError('INVALID_JSON', 'The request body is not valid JSON', 400),
  UNAUTHORIZED: createError('UNAUTHORIZED', 'Authentication is required', 401),
  FORBIDDEN: createError('FORBIDDEN', 'You are not allowed to do this', 403),
  ROUTE_NOT_FOUND: createError('ROUTE_NOT_FOUND', 'Route %s %s not found', 404),
  PAYLOAD_TOO_LARGE: createError('PAYLOAD_TOO_LARGE', 'The request body is larger than %s bytes', 413),
  UNSUPPORTED_MEDIA_TYPE: createError('UNSUPPORTED_MEDIA_TYPE', 'Content type %s is not supported here', 415),
  RATE_LIMITED: createError('RATE_LIMITED', 'Too many requests, retry in %s', 429),
  INTERNAL_ERROR: createError('INTERNAL_ERROR', 'Something went wrong on our side', 500),
  DATABASE_UNAVAILABLE: createError(
    'DATABASE_UNAVAILABLE',
    'The database is unavailable, try again shortly',
    503,
  ),
  SERVER_OVERLOADED: createError('SERVER_OVERLOADED', 'The server is overloaded, try again shortly', 503),
  SHUTTING_DOWN: createError('SHUTTING_DOWN', 'The server is shutting down', 503),
} as const;

export type ErrorCode = keyof typeof Errors;

/** One entry of `details` in the error body: which input field failed and why. */
export interface ErrorDetail {
  path: string;
  message: string;
}

/** The one error body of the contract, for every status ≥ 400. */
export interface ErrorBody {
  statusCode: number;
  code: string;
  error: string;
  message: string;
  details?: ErrorDetail[];
  request_id: string;
  retry_after?: number;
}

/** A documented error with a `details` list; thrown by routes and services for input they refuse. */
export function validationError(message: string, details: ErrorDetail[]): Error & { details: ErrorDetail[] } {
  const error = new Errors.VALIDATION_FAILED(message) as InstanceType<typeof Errors.VALIDATION_FAILED> & {
    details: ErrorDetail[];
  };
  error.details = details;
  return error;
}
