import { z } from 'zod';

export const healthStatusSchema = z.enum(['ok', 'degraded', 'down']);

export const databaseCheckSchema = z.object({
  engine: z.string().describe('mongodb or ferretdb (unknown until first reached)'),
  version: z.string().nullable(),
  embedded: z.boolean().describe('true when the server started its own database (no MONGO_URL)'),
  status: z.enum(['unknown', 'up', 'down']),
  latency_ms: z.number().nullable().describe('round trip of the last ping'),
  checked_at: z.string().nullable(),
});

export const realtimeCheckSchema = z.object({
  redis: z
    .enum(['disabled', 'up', 'down'])
    .describe('disabled: no REDIS_URL (one instance); down: other instances are out of reach'),
  instance: z.string().describe('this instance, as other instances know it'),
  sockets: z.number(),
  long_polls: z.number(),
  users: z.number().describe('distinct users connected to this instance'),
  slow_consumer_closes: z.number(),
  heartbeat_terminations: z.number(),
  connection_work: z
    .object({ running: z.number(), queued: z.number(), timed_out: z.number() })
    .describe(
      'Database work of sockets coming and going (sign-in, channel list, resume): under way, waiting for ' +
        'a place (a reconnect backlog), and given up after DB_TIMEOUT_MS since start',
    ),
});

export const systemSchema = z.object({
  rss_bytes: z.number(),
  heap_used_bytes: z.number(),
  event_loop_delay_p99_ms: z.number(),
  cpu_percent: z.number(),
});

export const healthSchema = z
  .object({
    status: healthStatusSchema,
    version: z.string(),
    uptime_s: z.number(),
    checks: z.object({ database: databaseCheckSchema, realtime: realtimeCheckSchema }).optional(),
    websocket: z
      .object({ connections: z.number(), users: z.number() })
      .optional()
      .describe('This process: open sockets and long-polls, distinct users'),
    throughput: z
      .object({ messages_per_min: z.number() })
      .optional()
      .describe('Messages created through this process in the last 60 s'),
    system: systemSchema.optional(),
    errors: z
      .object({ rate_per_min: z.number().describe('Server errors (5xx) answered in the last 60 s') })
      .optional(),
  })
  .meta({ id: 'Health' });

export const liveSchema = z.object({ status: z.literal('ok') });
export const readySchema = z.object({ status: z.literal('ready') });
