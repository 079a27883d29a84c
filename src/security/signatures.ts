// Attack signatures: one regular expression per family, run on a bounded, normalised prefix of a value.
// Every pattern is written for linear time: no nested or adjacent unbounded quantifiers over the same
// characters, every gap bounded ({0,N}), so a crafted input costs at most (prefix length × pattern size).
// test/security/signatures.test.ts feeds them pathological inputs and counts the cost.

/** Only this much of any one value is inspected (attacks live at the start of a field). */
export const SCAN_PREFIX = 2048;

export type SignatureFamily = 'sqli' | 'xss' | 'cmdi' | 'traversal' | 'nosql';

const SIGNATURES: Record<SignatureFamily, RegExp> = {
  sqli: new RegExp(
    [
      // Tautologies after a closing quote: ' OR '1'='1, " or ""=", ') or ('a'='a
      `['"\`)]\\s{0,10}(?:or|and|xor|\\|\\||&&)\\s{0,10}[('"]{0,2}\\s{0,5}[\\w'"]{1,30}\\s{0,5}['")]{0,2}\\s{0,5}(?:=|<|>|!=|<>|\\blike\\b|\\bis\\b|\\bin\\b|\\brlike\\b|\\bregexp\\b)`,
      // Tautologies without quotes: 1 or 1=1, -1 and 2>1
      `\\b(?:or|and)\\s{1,10}\\d{1,10}\\s{0,5}(?:=|<|>|<>)\\s{0,5}\\d{1,10}`,
      `\\b(?:or|and)\\s{1,10}(?:true|false|null)\\b`,
      `\\bunion\\b[\\s(]{1,20}(?:all\\s{1,10}|distinct\\s{1,10})?select\\b`,
      // Quotes glued by an operator: '=', '||', "="or
      `['"]\\s{0,5}(?:=|\\|\\|)\\s{0,5}['"]`,
      `\\bif\\s{0,5}\\(\\s{0,5}\\d{1,10}\\s{0,5}[=<>]`,
      `\\bdrop\\s{1,10}(?:table|function|database|procedure|view|index|user|schema)\\b`,
      `\\bselect\\b[^;]{0,200}?\\bfrom\\b`,
      // Stacked queries: '; DROP TABLE x
      `;\\s{0,10}(?:drop|delete|insert|update|alter|create|truncate|exec|execute|shutdown|declare|grant|rename|replace|merge|call|set)\\b`,
      // A quote closed and the rest commented away: admin'--, ' #, "/*
      `['"\`]\\s{0,10}(?:--|#|/\\*|;)`,
      `\\b(?:sleep|benchmark|pg_sleep|dbms_pipe\\.receive_message|randomblob|load_file|extractvalue|updatexml|group_concat|make_set|schema_name|table_name|column_name|utl_inaddr\\.get_host_name|ctxsys\\.drithsx\\.sn|sys_context|xmltype)\\s{0,5}\\(`,
      `\\b(?:char|chr|nchar)\\s{0,5}\\(\\s{0,5}\\d|\\bconvert\\s{0,5}\\(\\s{0,5}int\\b|\\bcast\\s{0,5}\\([^)]{0,60}\\bas\\s{1,5}(?:int|char|varchar|numeric)`,
      `\\bwaitfor\\s{1,10}(?:delay|time)\\b`,
      `@@(?:version|datadir|hostname|servername|basedir)`,
      `\\b(?:information_schema|sysobjects|syscolumns|sqlite_master|pg_catalog|mysql\\.user|xp_cmdshell|sp_executesql|sp_configure|sys\\.dba_users|all_tables|dual)\\b`,
      `\\binto\\s{1,10}(?:out|dump)file\\b`,
      `\\border\\s{1,10}by\\s{1,10}\\d{1,6}\\b`,
      `\\bgroup\\s{1,10}by\\b[^;]{0,100}?\\bhaving\\b`,
      `\\bhaving\\s{1,10}\\d{1,10}\\s{0,5}=`,
      `\\b(?:exec|execute)\\s{1,10}(?:master|xp_|sp_)`,
      `/\\*!?\\d{0,6}`,
    ].join('|'),
    'i',
  ),
  xss: new RegExp(
    [
      `<\\s{0,5}/?\\s{0,5}(?:script|iframe|frame|frameset|object|embed|applet|svg|img|image|body|html|video|audio|source|details|marquee|math|style|link|meta|base|form|input|button|select|textarea|isindex|xss|a|div|span|p|table|td|keygen|template|animate|set|x|bgsound|layer|ilayer|xml|import|plaintext|title)\\b`,
      `<[a-z!/?%][^>]{0,300}\\bon[a-z]{3,30}\\s{0,5}=`,
      `\\bon(?:error|load|click|mouseover|mouseenter|focus|blur|toggle|begin|end|animationstart|pageshow|start|finish|submit|change|input|keydown|keyup|wheel|scroll|resize|message|hashchange|popstate|beforeprint|afterprint|unload|pointerover|pointerdown)\\s{0,5}=\\s{0,5}['"\`]?[^'"\`\\s]{0,5}`,
      `(?:java|vb|live)script\\s{0,5}:`,
      `data\\s{0,5}:\\s{0,5}(?:text/html|image/svg|application/x?html)`,
      `\\bexpression\\s{0,5}\\(`,
      `\\b(?:alert|prompt|confirm|eval|settimeout|setinterval)(?:\\(|\`)`,
      `\\bdocument\\s{0,5}\\.\\s{0,5}(?:cookie|domain|location|write|body)`,
      `\\bwindow\\s{0,5}\\.\\s{0,5}(?:location|open|name)`,
      `\\bstring\\s{0,5}\\.\\s{0,5}fromcharcode\\b`,
      `\\bsrcdoc\\s{0,5}=`,
      `\\{\\{[^}]{0,100}(?:constructor|__proto__|\\$on|\\$eval)`,
    ].join('|'),
    'i',
  ),
  cmdi: new RegExp(
    [
      // A command after a shell separator. A lone `&` is common in names (R&D, Smith & Sons): only the
      // unmistakable commands count after it.
      `(?:[;|\`\\n\\r]|&&|\\$\\()\\s{0,10}(?:cat|ls|dir|id|whoami|uname|ifconfig|ipconfig|netstat|wget|curl|nc|ncat|netcat|telnet|bash|sh|zsh|ksh|csh|dash|python[23]?|perl|ruby|php|node|powershell|pwsh|cmd|ping|nslookup|dig|host|rm|chmod|chown|mkfifo|echo|sleep|timeout|type|more|head|tail|env|printenv|set|kill|reboot|shutdown|sudo|su|crontab|base64|xxd|sed|awk|find|tftp|scp|ssh|socat|certutil|bitsadmin|net|systeminfo|tasklist|netsh|wmic|reg|sc|schtasks)\\b`,
      `&\\s{0,10}(?:cat|ls|dir|id|whoami|uname|wget|curl|nc|ncat|netcat|bash|sh|powershell|cmd|ping|nslookup|rm|chmod|sleep|timeout|python[23]?|perl|ruby|php|systeminfo|ipconfig|ifconfig)\\b`,
      `\\$\\([^)]{1,200}\\)`,
      `\\$\\{|\\$_(?:get|post|request|cookie|server|env)\\b|&&\\s{0,5}\\$[a-z_]`,
      `(?:^|[^\\w.])/(?:usr/(?:local/)?)?s?bin/[a-z]`,
      `\\\\\\n|/[?*]{2,}`,
      `\\w(?:'\\w{1,4}){2,8}`,
      '`[^`]{1,200}`',
      `\\$\\{\\s{0,5}ifs\\s{0,5}\\}|\\$ifs\\b`,
      `\\b(?:/bin/|/usr/bin/)(?:ba|z|k|c|da)?sh\\b`,
      `\\bcmd(?:\\.exe)?\\s{0,5}/c\\b`,
      `\\b(?:nc|ncat|netcat)\\s{1,10}-[a-z]{0,5}e\\b`,
      `\\|\\s{0,5}(?:sh|bash)\\b`,
      `/dev/(?:tcp|udp)/`,
    ].join('|'),
    'i',
  ),
  traversal: new RegExp(
    [
      `(?:^|[/\\\\=])\\.{2,}[/\\\\]`,
      `[/\\\\]\\.{2,}(?:[/\\\\]|$)`,
      `\\.{3,}/{2}`,
      // Dots followed by an encoded, overlong or odd separator: ..%2f ..0x2f ..;/ ..%c0%af
      `\\.\\.(?:%|0x|;|[\\u00c0\\u00c1\\u00e0])`,
      `\\b(?:web-inf|winnt)\\b|\\bdesktop\\.ini\\b`,
      `/(?:etc/(?:passwd|shadow|group|hosts|issue|hostname|sudoers|crontab|fstab|mysql|ssh)|proc/(?:self|version|\\d{1,7})/|var/log/|root/\\.|windows/(?:win\\.ini|system32|system\\.ini)|boot\\.ini|winnt/)`,
      `\\b(?:win|boot|system)\\.ini\\b`,
      `\\bc:[/\\\\](?:windows|winnt|boot|inetpub)`,
      `\\bfile\\s{0,5}:\\s{0,5}//`,
      `\\b(?:php|zip|phar|expect|glob|data|gopher|dict|jar|netdoc)://`,
      `\\u0000`,
    ].join('|'),
    'i',
  ),
  nosql: new RegExp(
    [
      `\\$(?:where|regex|ne|eq|gt|gte|lt|lte|in|nin|exists|or|and|nor|not|expr|function|accumulator|elemmatch|size|type|mod|all|text|jsonschema|comment|slice|lookup|merge|out)\\b`,
      `;\\s{0,10}return\\b`,
      `\\bdb\\.\\w{1,64}\\.(?:insert|find|update|remove|drop|delete)\\w{0,10}\\s{0,5}\\(`,
      `(?:\\|\\||&&)\\s{0,5}['"]?\\w{1,10}['"]?\\s{0,5}={2,3}`,
      `\\bthis\\s{0,5}\\.\\s{0,5}(?:password|constructor|__proto__)`,
      `\\[\\s{0,5}\\$[a-z]{1,20}\\s{0,5}\\]`,
      `\\b__proto__\\b|\\bconstructor\\s{0,5}\\[`,
    ].join('|'),
    'i',
  ),
};

const FAMILIES = Object.keys(SIGNATURES) as SignatureFamily[];

/**
 * Characters without which no signature can match: most values (ids, plain names) have none, and skip
 * the patterns altogether. Letters-only SQL ("1 union select") is caught by the two words.
 */
const SUSPICIOUS =
  /[<>'"`;|&$(){}[\]\\%=\n\r#*:]|\.\.|--|\?\?|\bunion\b|\bselect\b|\border\s+by\b|\bweb-inf\b|\/(?:etc|proc|bin|usr|var|windows)\//i;

export function percentDecode(value: string): string {
  if (!value.includes('%')) return value;
  try {
    return decodeURIComponent(value);
  } catch {
    // Broken escapes: decode the ones that are whole.
    return value.replace(/%([0-9a-f]{2})/gi, (_match, hex: string) => String.fromCharCode(parseInt(hex, 16)));
  }
}

const ENTITIES: Record<string, string> = {
  lt: '<',
  gt: '>',
  quot: '"',
  apos: "'",
  amp: '&',
  colon: ':',
  sol: '/',
  lpar: '(',
  rpar: ')',
  tab: '\t',
  newline: '\n',
};

function entityDecode(value: string): string {
  if (!value.includes('&')) return value;
  return value.replace(/&(#x[0-9a-f]{1,6}|#\d{1,7}|[a-z]{2,8});?/gi, (match, body: string) => {
    if (body[0] !== '#') return ENTITIES[body.toLowerCase()] ?? match;
    const code =
      body[1] === 'x' || body[1] === 'X' ? parseInt(body.slice(2), 16) : parseInt(body.slice(1), 10);
    return code > 0 && code < 0x110000 ? String.fromCodePoint(code) : match;
  });
}

/** What an attacker's encodings hide: percent-encoding (twice), HTML entities, SQL inline comments. */
export function normalise(value: string): string {
  let text = value.length > SCAN_PREFIX ? value.slice(0, SCAN_PREFIX) : value;
  text = percentDecode(percentDecode(text));
  text = entityDecode(text);
  if (text.includes('/*'))
    text = text.replace(/\/\*[^*]{0,200}\*\//g, (comment) => (comment.startsWith('/*!') ? comment : ' '));
  return text;
}

/** The signature families a value matches (empty for nearly every value). */
export function matchSignatures(value: string): SignatureFamily[] {
  if (!SUSPICIOUS.test(value.length > SCAN_PREFIX ? value.slice(0, SCAN_PREFIX) : value)) return [];
  const text = normalise(value);
  const found: SignatureFamily[] = [];
  for (const family of FAMILIES) if (SIGNATURES[family].test(text)) found.push(family);
  return found;
}

const SCANNER_AGENTS =
  /\b(?:sqlmap|nikto|nmap|masscan|zgrab|nuclei|wpscan|dirbuster|gobuster|ffuf|acunetix|netsparker|invicti|w3af|arachni|openvas|burp(?:suite| collaborator)?|havij|zmeu|jaeles|wfuzz|feroxbuster|whatweb|nessus|qualys|appscan|webinspect|skipfish|commix|xsstrike|dotdotpwn|hydra|medusa|morfeus|jorgee|paros|webshag|grabber|vega|zap|owasp|dirsearch|censysinspect|libwww-perl|fimap|bsqlbf|mysqloit|pangolin|sqlninja|absinthe|brutus|metasploit|nmap scripting engine|wapiti|uniscan|joomscan|droopescan|cmsmap|xenu|netlab360|l9explore|leakix|expanse|fuzz faster u fool|burpcollaborator)\b/i;

/** Known vulnerability scanners and attack tools, by their user agent. */
export function isScannerAgent(userAgent: string): boolean {
  return SCANNER_AGENTS.test(userAgent.length > 512 ? userAgent.slice(0, 512) : userAgent);
}

const PROBE_PATHS =
  /(?:^|\/)(?:\.env(?:\.[a-z]{1,10})?|\.git|\.svn|\.hg|\.bzr|\.aws|\.ssh|\.(?:bash|zsh|mysql|psql)_history|jenkins|\.docker|\.kube|\.npmrc|\.ds_store|\.htaccess|\.htpasswd|\.idea|\.vscode|wp-admin|wp-login|wp-content|wp-includes|wp-config|xmlrpc\.php|phpmyadmin|phpinfo|pma|myadmin|adminer|server-status|server-info|actuator|cgi-bin|vendor\/phpunit|boaform|hnap1|solr|jmx-console|manager\/html|web-inf|config\.(?:php|json|yml|yaml|bak|old)|web\.config|backup|dump\.sql|database\.sql|id_rsa|credentials|secrets?\.(?:json|ya?ml)|\.well-known\/(?!security\.txt)[^/]{0,50}|telescope|_ignition|owa|ecp|autodiscover|remote\/login|console|shell|cmd|etc\/passwd)(?:[/?#.]|$)|\.(?:php\d?|asp|aspx|jsp|jspx|cgi|pl|cfm|do|action|bak|old|orig|swp|sql|tar|tgz|gz|zip|rar|7z|ini|log|conf)~?(?:[?#]|$)/i;

/** Requests for files that only scanners ask a chat API for. */
export function isProbePath(path: string): boolean {
  return PROBE_PATHS.test(path.length > 512 ? path.slice(0, 512) : path);
}
