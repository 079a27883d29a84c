// Every error code a client can see, in one place. Codes are part of the public contract: never rename one.
import createError from '@fastify/error';

export const Errors = {
  VALIDATION_FAILED: createError('VALIDATION_FAILED', '%s', 400),
  INVALID_JSON: createError('INVALID_JSON', 'The request body is not valid JSON', 400),
  UNAUTHORIZED: createError('UNAUTHORIZED', 'Authentication is required', 401),
  INVALID_TOKEN: createError('INVALID_TOKEN', 'The token is invalid, expired or revoked', 401),
  INVALID_CREDENTIALS: createError('INVALID_CREDENTIALS', 'The email or password is incorrect', 401),
  FORBIDDEN: createError('FORBIDDEN', 'You are not allowed to do this', 403),
  BLOCKED: createError('BLOCKED', 'Blocked after suspicious activity; try again in %s seconds', 403),
  BLOCK_NOT_FOUND: createError('BLOCK_NOT_FOUND', 'No ban in force for %s', 404),
  DETECTION_DISABLED: createError('DETECTION_DISABLED', 'Detection is off (DETECTION_ENABLED=false)', 404),
  ACCOUNT_DISABLED: createError('ACCOUNT_DISABLED', 'This account is disabled', 403),
  WRONG_PASSWORD: createError('WRONG_PASSWORD', 'The current password is incorrect', 403),
  USER_NOT_FOUND: createError('USER_NOT_FOUND', 'User not found', 404),
  EMAIL_TAKEN: createError('EMAIL_TAKEN', 'A user with this email already exists', 409),
  INVALID_SET_PASSWORD_TOKEN: createError(
    'INVALID_SET_PASSWORD_TOKEN',
    'The set-password token is invalid, used or expired',
    400,
  ),
  IMPORT_INVALID: createError('IMPORT_INVALID', '%s', 400),
  ACCOUNT_LOCKED: createError('ACCOUNT_LOCKED', 'Too many failed logins; try again in %s seconds', 423),
  LOGIN_THROTTLED: createError(
    'LOGIN_THROTTLED',
    'Too many failed logins from this address; try again in %s seconds',
    429,
  ),
  CHANNEL_NOT_FOUND: createError('CHANNEL_NOT_FOUND', 'Channel not found', 404),
  MESSAGE_NOT_FOUND: createError('MESSAGE_NOT_FOUND', 'Message not found', 404),
  NOTIFICATION_NOT_FOUND: createError('NOTIFICATION_NOT_FOUND', 'Notification not found', 404),
  ANNOUNCEMENT_NOT_FOUND: createError('ANNOUNCEMENT_NOT_FOUND', 'Announcement not found', 404),
  FILE_NOT_FOUND: createError('FILE_NOT_FOUND', 'File %s not found', 404),
  NOT_CHANNEL_MEMBER: createError('NOT_CHANNEL_MEMBER', 'Join this channel first', 403),
  NOT_MESSAGE_SENDER: createError('NOT_MESSAGE_SENDER', 'Only the sender can edit a message', 403),
  CHANNEL_NAME_TAKEN: createError('CHANNEL_NAME_TAKEN', 'A channel with this name already exists', 409),
  DEPARTMENT_CHANNEL_EXISTS: createError(
    'DEPARTMENT_CHANNEL_EXISTS',
    'This department already has its channel',
    409,
  ),
  CHANNEL_ARCHIVED: createError('CHANNEL_ARCHIVED', 'This channel is archived', 409),
  MEMBERSHIP_MANAGED: createError('MEMBERSHIP_MANAGED', '%s', 409),
  LAST_OWNER: createError('LAST_OWNER', 'A group needs an owner: make someone else owner first', 409),
  CLIENT_ID_CONFLICT: createError(
    'CLIENT_ID_CONFLICT',
    'This client_id was already used for a different message',
    409,
  ),
  MESSAGE_DELETED: createError('MESSAGE_DELETED', 'This message was deleted', 409),
  EDIT_WINDOW_CLOSED: createError('EDIT_WINDOW_CLOSED', 'This message can no longer be edited', 409),
  TOO_MANY_REACTIONS: createError('TOO_MANY_REACTIONS', 'This message has too many different reactions', 409),
  INVALID_REPLY_TO: createError('INVALID_REPLY_TO', 'reply_to must name a message in the same channel', 400),
  INVALID_RECIPIENT: createError('INVALID_RECIPIENT', '%s', 400),
  ORIGIN_NOT_ALLOWED: createError('ORIGIN_NOT_ALLOWED', 'This origin may not open a WebSocket here', 403),
  INVALID_FRAME: createError('INVALID_FRAME', 'A frame must be a JSON object with a string type', 400),
  UNKNOWN_TYPE: createError('UNKNOWN_TYPE', 'Unknown frame type %s', 400),
  INVALID_CURSOR: createError('INVALID_CURSOR', 'The cursor is not one this server issued', 400),
  FILE_MISSING: createError('FILE_MISSING', 'The request has no file part named "file"', 400),
  TOO_MANY_FILES: createError('TOO_MANY_FILES', 'Send one file per request', 400),
  TOO_MANY_PARTS: createError('TOO_MANY_PARTS', 'The form has too many parts or fields', 400),
  FILE_EMPTY: createError('FILE_EMPTY', 'The file is empty', 400),
  INVALID_FILE_NAME: createError('INVALID_FILE_NAME', '%s', 400),
  INVALID_MULTIPART: createError('INVALID_MULTIPART', 'The multipart body is malformed or incomplete', 400),
  FILE_TOO_LARGE: createError('FILE_TOO_LARGE', 'The file is larger than %s bytes', 413),
  STORAGE_QUOTA_EXCEEDED: createError(
    'STORAGE_QUOTA_EXCEEDED',
    'This upload would take you past your storage quota of %s bytes',
    413,
  ),
  FILE_TYPE_NOT_ALLOWED: createError('FILE_TYPE_NOT_ALLOWED', '%s', 415),
  FILE_NOT_OWNED: createError('FILE_NOT_OWNED', 'Only the uploader may attach this file', 403),
  FILE_LINK_INVALID: createError('FILE_LINK_INVALID', 'This file link is not valid', 403),
  FILE_LINK_EXPIRED: createError('FILE_LINK_EXPIRED', 'This file link has expired; fetch a fresh one', 403),
  RANGE_NOT_SATISFIABLE: createError('RANGE_NOT_SATISFIABLE', '%s', 416),
  LOG_NOT_FOUND: createError('LOG_NOT_FOUND', 'No log file %s', 404),
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
} as const;

export type ErrorCode = keyof typeof Errors;

/** For codes whose message is built per case. */
const MEANINGS: Record<string, string> = {
  VALIDATION_FAILED: 'The input is invalid; `details` names each failing field',
  IMPORT_INVALID: 'The staff list could not be read',
  MEMBERSHIP_MANAGED: 'Membership of direct, department and general channels is managed by the server',
  INVALID_FILE_NAME: 'The file name is empty, a path, or holds control or direction characters',
  FILE_TYPE_NOT_ALLOWED:
    'The extension is not in ALLOWED_EXTENSIONS, or the content does not match it, or it is active content',
  RANGE_NOT_SATISFIABLE: 'The Range header is malformed, asks for several ranges, or starts past the end',
  INVALID_RECIPIENT: 'The recipient cannot receive this message (e.g. yourself, or a disabled account)',
};

/**
 * Codes for errors raised by the framework or a third-party plugin without one of ours, by status
 * (mapped in plugins/app/errors.ts).
 */
export const STATUS_FALLBACK_CODES: Readonly<Record<number, string>> = {
  400: 'BAD_REQUEST',
  401: 'UNAUTHORIZED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  405: 'METHOD_NOT_ALLOWED',
  406: 'NOT_ACCEPTABLE',
  408: 'REQUEST_TIMEOUT',
  409: 'CONFLICT',
  413: 'PAYLOAD_TOO_LARGE',
  414: 'URI_TOO_LONG',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  429: 'RATE_LIMITED',
  431: 'HEADERS_TOO_LARGE',
};

const FRAMEWORK_ERROR_CODES = [
  { code: 'BAD_REQUEST', status: 400, meaning: 'The request could not be understood (e.g. a malformed URL)' },
  { code: 'INVALID_CONTENT_LENGTH', status: 400, meaning: 'Content-Length does not match the body' },
  { code: 'NOT_FOUND', status: 404, meaning: 'Not found' },
  { code: 'METHOD_NOT_ALLOWED', status: 405, meaning: 'The route does not accept this method' },
  { code: 'NOT_ACCEPTABLE', status: 406, meaning: 'No acceptable representation' },
  { code: 'REQUEST_TIMEOUT', status: 408, meaning: 'The request took too long to arrive' },
  { code: 'CONFLICT', status: 409, meaning: 'The request conflicts with the current state' },
  { code: 'URI_TOO_LONG', status: 414, meaning: 'The URL is too long' },
  { code: 'HEADERS_TOO_LARGE', status: 431, meaning: 'The request headers are too large' },
];

/** Every code a client can receive, with its status: published in the OpenAPI document. */
export const ERROR_CODES: readonly { code: string; status: number; meaning: string }[] = [
  ...Object.entries(Errors).map(([code, make]) => {
    // Built with placeholders until none is left in the message (codes take zero, one or two values).
    let sample = new make();
    for (const args of [['…'], ['…', '…']] as const) {
      if (!sample.message.includes('%s') && !/\bundefined\b/.test(sample.message)) break;
      sample = new make(...(args as unknown as []));
    }
    return { code, status: sample.statusCode ?? 500, meaning: MEANINGS[code] ?? sample.message };
  }),
  ...FRAMEWORK_ERROR_CODES,
].sort((a, b) => a.status - b.status || a.code.localeCompare(b.code));

/** An error that tells the client when to retry (Retry-After header and `retry_after` in the body). */
export function withRetryAfter<T extends Error>(error: T, seconds: number): T & { retryAfterMs: number } {
  return Object.assign(error, { retryAfterMs: Math.max(1, Math.ceil(seconds)) * 1000 });
}

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

/** A cursor the server did not issue (400 VALIDATION_FAILED naming `cursor`). */
export function invalidCursor(): Error & { details: ErrorDetail[] } {
  return validationError('Invalid cursor', [
    { path: 'cursor', message: 'is not a cursor this server issued' },
  ]);
}

/** A documented error with a `details` list; thrown by routes and services for input they refuse. */
export function validationError(message: string, details: ErrorDetail[]): Error & { details: ErrorDetail[] } {
  const error = new Errors.VALIDATION_FAILED(message) as InstanceType<typeof Errors.VALIDATION_FAILED> & {
    details: ErrorDetail[];
  };
  error.details = details;
  return error;
}
