// How `npm test` counts: from each project's outcome report (outcome-reporter.mjs) and the
// checked-in list of expected skips (expected-skips.json). Kept apart from run-tests.mjs so the
// rules are unit-tested (tools/workspace-checks/src/test-outcomes.test.ts).
//
// - A test that passed counts as passed; one that failed, as failed.
// - A test that did not run because a hook of its suite (or an enclosing one) failed counts as
//   failed, not skipped; a hook error that stopped no test (afterAll) counts as one failure, and
//   so does a module that did not load, or an unhandled error.
// - A skipped test counts as skipped only when an entry of the expected-skips list matches it and
//   that entry's condition holds on this machine; any other skip is a failure, named.
// - A project without a report (its build or test process crashed), or whose report holds no
//   test at all, is a failure.
import { accessSync, constants, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** Conditions an expected skip may name; each is a fact about this machine. */
export function machineFacts({ env = process.env, getuid = process.getuid } = {}) {
  const hasCommand = (cmd) =>
    (env.PATH ?? '').split(delimiter).some((dir) => {
      try {
        accessSync(join(dir, cmd), constants.X_OK);
        return true;
      } catch {
        return false;
      }
    });
  const hugepagesFree = () => {
    try {
      const m = /HugePages_Free:\s+(\d+)/.exec(readFileSync('/proc/meminfo', 'utf8'));
      return m ? Number(m[1]) : 0;
    } catch {
      return 0;
    }
  };
  return {
    notRoot: () => getuid?.() !== 0,
    noHugepages: () => hugepagesFree() === 0,
    missingCommand: (cmd) => !hasCommand(cmd),
  };
}

/** True when the entry's condition holds (every key given must hold). */
export function conditionHolds(when, facts) {
  const keys = Object.keys(when ?? {});
  if (keys.length === 0) return false; // an unconditional skip is never expected
  return keys.every((key) => {
    const fact = facts[key];
    if (!fact) throw new Error(`expected-skips: unknown condition "${key}"`);
    return fact(when[key]);
  });
}

/** Minimal glob: `*` within a path segment, `**` across segments. */
export function globToRegExp(glob) {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*' && glob[i + 1] === '*') {
      re += '.*';
      i++;
      if (glob[i + 1] === '/') i++;
    } else if (c === '*') re += '[^/]*';
    else re += c.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

function matchingEntry(project, test, entries, facts) {
  return entries.find(
    (e) =>
      (e.project === '*' || e.project === project) &&
      globToRegExp(e.file ?? '**').test(test.file) &&
      (e.test === undefined || test.name.includes(e.test)) &&
      conditionHolds(e.when, facts),
  );
}

/** Validates the list's shape: every entry needs a reason and a condition. */
export function validateExpectedSkips(list) {
  if (!list || !Array.isArray(list.skips))
    throw new Error('expected-skips: "skips" must be a list');
  list.skips.forEach((e, i) => {
    if (typeof e.project !== 'string')
      throw new Error(`expected-skips: skips[${i}].project missing`);
    if (typeof e.reason !== 'string' || e.reason.length === 0)
      throw new Error(`expected-skips: skips[${i}].reason missing`);
    if (!e.when || Object.keys(e.when).length === 0)
      throw new Error(`expected-skips: skips[${i}].when missing (a skip needs a condition)`);
  });
  return list.skips;
}

/**
 * @param {{ project: string, report: { tests: object[], errors: object[] } | undefined }[]} projects
 * @param {object[]} expectedSkips entries of expected-skips.json
 * @param {ReturnType<typeof machineFacts>} facts
 */
export function countOutcomes(projects, expectedSkips, facts) {
  const out = { passed: 0, failed: 0, skipped: 0, problems: [], skippedTests: [] };
  for (const { project, report } of projects) {
    if (!report) {
      out.failed += 1;
      out.problems.push(`${project}: no test report (build or test run crashed)`);
      continue;
    }
    if (report.tests.length === 0 && report.errors.length === 0) {
      out.failed += 1;
      out.problems.push(`${project}: no tests ran`);
      continue;
    }
    // Suites whose hooks failed, by file: a test under one did not run.
    const failedSuites = report.errors.filter(
      (e) => e.where !== 'module' && e.where !== 'unhandled',
    );
    const blockedBy = (t) =>
      failedSuites.find(
        (e) => e.file === t.file && (t.name === e.where || t.name.startsWith(`${e.where} > `)),
      );
    const usedErrors = new Set();
    for (const t of report.tests) {
      if (t.state === 'passed') out.passed += 1;
      else if (t.state === 'failed') {
        out.failed += 1;
        const more = t.detail ? `\n${t.detail.replace(/^/gm, '      ')}` : '';
        out.problems.push(`${project}: ${t.file} › ${t.name} failed: ${t.error ?? ''}${more}`);
      } else if (t.state === 'skipped' && t.mode === 'run' && blockedBy(t)) {
        const e = blockedBy(t);
        usedErrors.add(e);
        out.failed += 1;
        out.problems.push(
          `${project}: ${t.file} › ${t.name} did not run: a hook failed: ${e.message}`,
        );
      } else if (t.state === 'skipped') {
        const entry = matchingEntry(project, t, expectedSkips, facts);
        if (entry) {
          out.skipped += 1;
          out.skippedTests.push(`${project}: ${t.file} › ${t.name} (${entry.reason})`);
        } else {
          out.failed += 1;
          const why = t.note ? ` (${t.note})` : '';
          out.problems.push(
            `${project}: ${t.file} › ${t.name} was skipped${why}, and no entry of tools/scripts/expected-skips.json expects it here`,
          );
        }
      } else {
        out.failed += 1;
        out.problems.push(`${project}: ${t.file} › ${t.name} never finished (${t.state})`);
      }
    }
    for (const e of report.errors) {
      if (usedErrors.has(e)) continue;
      out.failed += 1;
      const where = e.where === 'module' ? 'failed to load' : `${e.where}: error outside a test`;
      out.problems.push(`${project}: ${e.file} ${where}: ${e.message}`);
    }
  }
  return out;
}

/** Which projects a FLOWLINE_TEST_PROJECTS filter selects; a name that matches none is an error. */
export function selectProjects(projects, filter) {
  if (filter === undefined) return projects;
  const names = filter
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (names.length === 0) throw new Error('FLOWLINE_TEST_PROJECTS is set but names no project');
  const unknown = names.filter((n) => !projects.includes(n));
  if (unknown.length > 0)
    throw new Error(
      `FLOWLINE_TEST_PROJECTS names no such project: ${unknown.join(', ')} (projects: ${projects.join(', ')})`,
    );
  return projects.filter((p) => names.includes(p));
}
