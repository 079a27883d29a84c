// The headless browser the dashboard test drives: CHROMIUM_PATH, else Debian's `chromium` package. On a
// machine without it, where this runs as root with apt-get (CI, a fresh development box), it installs the
// package once; anywhere else it says how to. `npm run browser:chromium` runs it on its own.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

const DEBIAN_CHROMIUM = '/usr/bin/chromium';

export function ensureChromium(log: (message: string) => void = console.log): string {
  const wanted = process.env.CHROMIUM_PATH ?? DEBIAN_CHROMIUM;
  if (fs.existsSync(wanted)) return wanted;
  const root = process.getuid?.() === 0;
  if (process.env.CHROMIUM_PATH || !root || !fs.existsSync('/usr/bin/apt-get')) {
    throw new Error(
      `no browser at ${wanted} for the dashboard test: install Debian's chromium (sudo apt-get install ` +
        'chromium) or set CHROMIUM_PATH to a Chromium or Chrome binary',
    );
  }
  log('installing chromium for the dashboard test (once; a minute or two)');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'chromium'], {
    stdio: 'inherit',
    env,
  });
  if (!fs.existsSync(DEBIAN_CHROMIUM))
    throw new Error('apt-get installed chromium, but not at /usr/bin/chromium');
  return DEBIAN_CHROMIUM;
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(`chromium: ${ensureChromium()}`);
