// Schemas of the admin views of the running server: configuration and log files.
import { z } from 'zod';
import { LOG_NAME_PATTERN } from '../services/log-files.js';

export const configViewResponse = z
  .object({
    config: z.record(z.string(), z.unknown()).describe('Effective configuration; secrets are "[REDACTED]"'),
    sources: z
      .record(z.string(), z.enum(['default', 'json', 'yaml', '.env', 'env', 'generated']))
      .describe('The layer each setting came from, by dotted key'),
  })
  .meta({ id: 'ConfigView' });

const logFile = z.object({
  name: z.string(),
  log: z.string().describe('main.log, main.json, security.log or audit.log'),
  format: z.enum(['text', 'json']),
  size: z.number().int(),
  modified: z.string(),
  current: z.boolean().describe('The file being written now'),
});

export const logListResponse = z.object({ files: z.array(logFile) }).meta({ id: 'LogFiles' });

export const logParams = z.strictObject({
  name: z.string().max(64).regex(LOG_NAME_PATTERN, {
    error: 'must be a listed log file or main.log, main.json, security.log, audit.log',
  }),
});

export const logTailQuery = z.strictObject({
  tail: z.coerce.number().int().min(1).max(1000).default(100).describe('How many lines, from the end'),
  since: z.iso.datetime({ offset: true }).optional().describe('Only lines at or after this time'),
  level: z
    .enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal'])
    .optional()
    .describe('This level and above'),
  q: z.string().min(1).max(200).optional().describe('Only lines containing this text'),
});

export const logTailResponse = z
  .object({
    file: logFile,
    lines: z.array(z.string()).describe('Oldest first'),
    truncated: z.boolean().describe('Earlier lines matched too, beyond `tail`'),
  })
  .meta({ id: 'LogTail' });
