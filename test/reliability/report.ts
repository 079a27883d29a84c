// The reliability report: each test file records its figures under a section; when the run ends,
// report-setup.ts gathers them into report.json and report.md in RELIABILITY_REPORT_DIR (default
// reliability-report/, not committed; a full run's report.md is copied to docs/reliability.md).
import fs from 'node:fs';
import path from 'node:path';
import { inject } from 'vitest';

export interface Section {
  /** One line saying what was done. */
  summary: string;
  /** Figures, by name: numbers with their unit in the name (`recovery_ms`), or short strings. */
  figures: Record<string, number | string | boolean>;
  /** What was checked and held (each a sentence). */
  checks: string[];
}

/** Records one section (a test file calls this once per promise it checks). */
export function recordSection(name: string, section: Section): void {
  const dir = inject('reliabilityReportDir');
  fs.mkdirSync(path.join(dir, 'sections'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'sections', `${name}.json`), JSON.stringify(section, null, 2));
}
