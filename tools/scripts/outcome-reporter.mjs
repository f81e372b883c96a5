// A vitest reporter that records every test's outcome and every error outside a test (a failing
// beforeAll/afterAll, a module that does not load, an unhandled error) in one JSON file, so that
// run-tests.mjs can tell a test skipped on purpose from one that never ran because a hook failed.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, relative } from 'node:path';

const firstLine = (e) => String(e?.message ?? e).split('\n')[0];
/** How much of a failure's message past its first line is kept: CI shows only the log's tail. */
export const DETAIL_MAX_LINES = 60;
export const DETAIL_MAX_CHARS = 6000;
/** A failure's message after its first line (what a test put there to explain it), bounded. */
export const detail = (e) => {
  const rest = String(e?.message ?? e)
    .split('\n')
    .slice(1)
    .filter((l) => l.trim() !== '');
  if (rest.length === 0) return undefined;
  const kept = rest.slice(0, DETAIL_MAX_LINES).join('\n').slice(0, DETAIL_MAX_CHARS);
  const cut = rest.length > DETAIL_MAX_LINES || kept.length < rest.join('\n').length;
  return cut ? `${kept}\n... (cut; the test's own output has it whole)` : kept;
};

export default class OutcomeReporter {
  /** @param {{ outputFile: string, root: string }} options */
  constructor(options) {
    this.outputFile = options.outputFile;
    this.root = options.root;
  }

  onTestRunEnd(testModules, unhandledErrors) {
    const tests = [];
    const errors = [];
    for (const mod of testModules) {
      const file = relative(this.root, mod.moduleId);
      for (const e of mod.errors()) errors.push({ file, where: 'module', message: firstLine(e) });
      // Hook failures land on the suite (beforeAll/afterAll) they belong to.
      for (const suite of mod.children.allSuites())
        for (const e of suite.errors())
          errors.push({ file, where: suite.fullName, message: firstLine(e) });
      for (const test of mod.children.allTests()) {
        const r = test.result();
        tests.push({
          file,
          name: test.fullName,
          state: r.state,
          mode: test.options.mode,
          note: r.state === 'skipped' ? r.note : undefined,
          error: r.state === 'failed' ? firstLine(r.errors[0]) : undefined,
          detail: r.state === 'failed' ? detail(r.errors[0]) : undefined,
        });
      }
    }
    for (const e of unhandledErrors)
      errors.push({ file: '', where: 'unhandled', message: firstLine(e) });
    mkdirSync(dirname(this.outputFile), { recursive: true });
    writeFileSync(this.outputFile, JSON.stringify({ tests, errors }, null, 2) + '\n');
  }
}
