// The detection rules: each an id, a category, a score and what it means. Scores add up per principal
// (OWASP CRS anomaly scoring); the thresholds in config `security` turn a total into observe, alert or
// block. Chat content has rules of its own, category `content`, that never add to a principal's score.

export type RuleCategory =
  | 'injection'
  | 'traversal'
  | 'brute_force'
  | 'enumeration'
  | 'flood'
  | 'protocol'
  | 'reconnaissance'
  | 'anomaly'
  | 'content';

export interface Rule {
  category: RuleCategory;
  /** Points added to the principal's score each time it fires (0: observe only). */
  score: number;
  description: string;
}

export const RULES = {
  'injection.sql': {
    category: 'injection',
    score: 10,
    description: 'SQL injection signature in a structural field (id, name, query parameter, header…)',
  },
  'injection.xss': {
    category: 'injection',
    score: 10,
    description: 'Script or markup injection signature in a structural field',
  },
  'injection.command': {
    category: 'injection',
    score: 10,
    description: 'Shell command injection signature in a structural field',
  },
  'injection.nosql_operator': {
    category: 'injection',
    score: 15,
    description:
      'An object with $-operator keys (or a key containing a dot) where the API takes plain values',
  },
  'injection.nosql_signature': {
    category: 'injection',
    score: 10,
    description:
      'MongoDB operator or JavaScript injection text ($where, $regex, ; return …) in a structural field',
  },
  'traversal.path': {
    category: 'traversal',
    score: 10,
    description:
      'Path traversal or local file reference (../, /etc/passwd, file://, NUL) in a structural field',
  },
  'protocol.jwt_alg_none': {
    category: 'protocol',
    score: 25,
    description: 'A bearer token whose header asks for no signature (alg: none)',
  },
  'brute_force.bad_token': {
    category: 'brute_force',
    score: 4,
    description: 'Repeated invalid or forged bearer tokens (beyond 3 in 5 minutes)',
  },
  'brute_force.refresh_reuse': {
    category: 'brute_force',
    score: 10,
    description: 'A rotated refresh token used again (a stolen token, or a replay)',
  },
  'brute_force.account': {
    category: 'brute_force',
    score: 6,
    description: 'Failed logins on one account beyond 5 in the login window',
  },
  'brute_force.ip': {
    category: 'brute_force',
    score: 4,
    description: 'Failed logins from one address beyond 10 in the login window',
  },
  'brute_force.credential_stuffing': {
    category: 'brute_force',
    score: 10,
    description: 'Failed logins for 5 or more distinct accounts from one address in the login window',
  },
  'enumeration.not_found': {
    category: 'enumeration',
    score: 4,
    description: 'A burst of 404s on user, channel, message or file lookups (beyond 15 a minute)',
  },
  'reconnaissance.scanner_agent': {
    category: 'reconnaissance',
    score: 20,
    description: 'A known vulnerability scanner or attack tool user agent',
  },
  'reconnaissance.probe_path': {
    category: 'reconnaissance',
    score: 10,
    description: 'A request for a file only scanners ask for (/.env, /.git, /wp-admin, *.php …)',
  },
  'reconnaissance.not_found_burst': {
    category: 'reconnaissance',
    score: 3,
    description: 'A burst of requests for routes that do not exist (beyond 30 a minute)',
  },
  'flood.rate_limited': {
    category: 'flood',
    score: 3,
    description: 'A request or frame refused by a rate limit',
  },
  'flood.dm_spam': {
    category: 'flood',
    score: 10,
    description: 'Direct messages to 10 or more distinct people within 5 minutes',
  },
  'flood.ws_churn': {
    category: 'flood',
    score: 5,
    description: 'WebSocket connections opened beyond 20 a minute',
  },
  'protocol.malformed_frame': {
    category: 'protocol',
    score: 3,
    description: 'Malformed, binary or unknown WebSocket frames beyond 5 a minute',
  },
  'protocol.oversized_frame': {
    category: 'protocol',
    score: 10,
    description: 'A WebSocket frame over WS_MAX_FRAME',
  },
  'anomaly.request_rate': {
    category: 'anomaly',
    score: 5,
    description: "A user's request rate far above their own moving baseline",
  },
  'anomaly.new_login_context': {
    category: 'anomaly',
    score: 0,
    description: 'A login from an address and user agent never seen for this user (observe only)',
  },
  'content.sql': { category: 'content', score: 1, description: 'SQL in chat content (observe only)' },
  'content.xss': {
    category: 'content',
    score: 1,
    description: 'Markup or script in chat content (observe only)',
  },
  'content.command': {
    category: 'content',
    score: 1,
    description: 'Shell commands in chat content (observe only)',
  },
  'content.traversal': {
    category: 'content',
    score: 1,
    description: 'File paths in chat content (observe only)',
  },
  'content.nosql': {
    category: 'content',
    score: 1,
    description: 'MongoDB queries in chat content (observe only)',
  },
} as const satisfies Record<string, Rule>;

export type RuleId = keyof typeof RULES;

export interface FiredRule {
  id: RuleId;
  /** Where it fired: `query.q`, `body.name`, `header.user-agent`, `frame.channel_id`… */
  where?: string;
}
