// Global setup of the reliability suite: prepares the report folder, then, when every file has run,
// writes report.json and report.md from the sections the files recorded (see report.ts).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { PROFILE } from './profile.js';
import type { Section } from './report.js';

declare module 'vitest' {
  export interface ProvidedContext {
    reliabilityReportDir: string;
  }
}

const ORDER = ['outage', 'crash', 'redis', 'storm', 'abuse', 'soak', 'fuzz'];

let reportDir: string;
let startedAt: Date;

export function setup(project: TestProject): void {
  reportDir = path.resolve(process.env.RELIABILITY_REPORT_DIR ?? 'reliability-report');
  fs.rmSync(path.join(reportDir, 'sections'), { recursive: true, force: true });
  fs.mkdirSync(path.join(reportDir, 'sections'), { recursive: true });
  startedAt = new Date();
  project.provide('reliabilityReportDir', reportDir);
}

export function teardown(): void {
  const dir = path.join(reportDir, 'sections');
  const sections: Record<string, Section> = {};
  for (const file of fs.readdirSync(dir).sort()) {
    sections[file.replace(/\.json$/, '')] = JSON.parse(
      fs.readFileSync(path.join(dir, file), 'utf8'),
    ) as Section;
  }
  const names = Object.keys(sections).sort(
    (a, b) => (ORDER.indexOf(a) + 1 || 99) - (ORDER.indexOf(b) + 1 || 99) || a.localeCompare(b),
  );
  const run = {
    started_at: startedAt.toISOString(),
    finished_at: new Date().toISOString(),
    profile: PROFILE,
    machine: `${os.cpus().length} CPUs, ${Math.round(os.totalmem() / 2 ** 30)} GiB, node ${process.version}`,
  };
  fs.writeFileSync(path.join(reportDir, 'report.json'), JSON.stringify({ run, sections }, null, 2));
  const lines = [
    '# Switchboard reliability report',
    '',
    `Run ${run.started_at} → ${run.finished_at}, profile \`${PROFILE.name}\`, on ${run.machine}.`,
    'Produced by `npm run test:reliability` (test/reliability); every figure below was measured in that run.',
    '',
  ];
  for (const name of names) {
    const section = sections[name]!;
    lines.push(`## ${name}`, '', section.summary, '', '| figure | value |', '| --- | --- |');
    for (const [key, value] of Object.entries(section.figures)) lines.push(`| ${key} | ${value} |`);
    lines.push('', ...section.checks.map((check) => `- ${check}`), '');
  }
  fs.writeFileSync(path.join(reportDir, 'report.md'), lines.join('\n'));
  console.warn(`reliability report: ${path.join(reportDir, 'report.md')}`);
}
