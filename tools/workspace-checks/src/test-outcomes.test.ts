// The rules by which `npm test` counts (tools/scripts/test-outcomes.mjs), and the reporter that
// feeds them, driven through a real vitest run of a scratch project.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// tools/scripts is the runner itself, not a project: imported by path on purpose.
// eslint-disable-next-line @nx/enforce-module-boundaries
import {
  conditionHolds,
  countOutcomes,
  globToRegExp,
  machineFacts,
  selectProjects,
  validateExpectedSkips,
  // @ts-expect-error: a plain .mjs module without types
} from '../../scripts/test-outcomes.mjs';
// eslint-disable-next-line @nx/enforce-module-boundaries
import {
  DETAIL_MAX_CHARS,
  DETAIL_MAX_LINES,
  detail,
  // @ts-expect-error: a plain .mjs module without types
} from '../../scripts/outcome-reporter.mjs';

const root = resolve(__dirname, '..', '..', '..');
const never = { notRoot: () => false, noHugepages: () => false, missingCommand: () => false };
const always = { notRoot: () => true, noHugepages: () => true, missingCommand: () => true };
const integrationSkip = {
  project: '*',
  file: 'test/integration/**',
  reason: 'needs root',
  when: { notRoot: true },
};

interface Outcome {
  passed: number;
  failed: number;
  skipped: number;
  problems: string[];
  skippedTests: string[];
}
const count = (report: unknown, facts = never, skips = [integrationSkip]): Outcome =>
  countOutcomes([{ project: '@flowline/x', report }], skips, facts) as Outcome;
const t = (name: string, state: string, extra: object = {}) => ({
  file: 'test/integration/a.test.ts',
  name,
  state,
  mode: 'run',
  ...extra,
});

describe('countOutcomes', () => {
  it('counts passes and failures', () => {
    const o = count({
      tests: [
        t('a', 'passed'),
        t('b', 'failed', { error: 'expected 1 to be 2' }),
        t('c', 'passed'),
      ],
      errors: [],
    });
    expect([o.passed, o.failed, o.skipped]).toEqual([2, 1, 0]);
    expect(o.problems).toEqual([
      '@flowline/x: test/integration/a.test.ts › b failed: expected 1 to be 2',
    ]);
  });

  it('fails a skip no entry expects, and names it', () => {
    const o = count({ tests: [t('s > x', 'skipped', { mode: 'skip' })], errors: [] });
    expect([o.passed, o.failed, o.skipped]).toEqual([0, 1, 0]);
    expect(o.problems[0]).toMatch(/s > x was skipped, and no entry/);
  });

  it('counts a skip as skipped only where its entry matches and its condition holds', () => {
    const report = { tests: [t('s > x', 'skipped', { mode: 'skip' })], errors: [] };
    expect(count(report, always).skipped).toBe(1);
    expect(count(report, always).skippedTests[0]).toMatch(/s > x \(needs root\)/);
    expect(count(report, never).failed).toBe(1);
    // The entry covers integration tests only: a unit test skipped is still unexpected.
    const unit = { tests: [{ ...t('u', 'skipped'), file: 'src/u.test.ts' }], errors: [] };
    expect(count(unit, always).failed).toBe(1);
  });

  it("shows a failure's detail under its line, indented", () => {
    const o = count({
      tests: [
        t('b', 'failed', { error: 'web: expected 0', detail: '$ ovs-ofctl dump-ports\nport 1' }),
      ],
      errors: [],
    });
    expect(o.problems).toEqual([
      '@flowline/x: test/integration/a.test.ts › b failed: web: expected 0\n      $ ovs-ofctl dump-ports\n      port 1',
    ]);
  });

  it('counts tests under a failed beforeAll as failed, not skipped', () => {
    const o = count(
      {
        tests: [t('suite > a', 'skipped'), t('suite > inner > b', 'skipped'), t('other', 'passed')],
        errors: [{ file: 'test/integration/a.test.ts', where: 'suite', message: 'boom' }],
      },
      always, // even where integration skips are expected
    );
    expect([o.passed, o.failed, o.skipped]).toEqual([1, 2, 0]);
    expect(o.problems.join('\n')).toMatch(/did not run: a hook failed: boom/);
  });

  it('counts an afterAll error, a module that did not load and an unhandled error', () => {
    const o = count({
      tests: [t('suite > a', 'passed')],
      errors: [
        { file: 'test/integration/a.test.ts', where: 'suite', message: 'after' },
        { file: 'test/integration/b.test.ts', where: 'module', message: 'no such module' },
        { file: '', where: 'unhandled', message: 'late' },
      ],
    });
    expect([o.passed, o.failed]).toEqual([1, 3]);
    expect(o.problems.join('\n')).toMatch(/b.test.ts failed to load: no such module/);
  });

  it('fails a project without a report or without tests', () => {
    expect(count(undefined).problems[0]).toMatch(/no test report/);
    expect(count({ tests: [], errors: [] }).problems[0]).toMatch(/no tests ran/);
  });
});

describe('the expected-skips list', () => {
  it('is valid, and expects no skip on a machine set up as this one (root, hugepages, clang)', () => {
    const list = JSON.parse(
      readFileSync(join(root, 'tools', 'scripts', 'expected-skips.json'), 'utf8'),
    );
    const entries = validateExpectedSkips(list) as { when: object }[];
    expect(entries.length).toBeGreaterThan(0);
    const facts = machineFacts();
    if (process.getuid?.() === 0 && !facts.noHugepages() && !facts.missingCommand('clang'))
      expect(entries.filter((e) => conditionHolds(e.when, facts))).toEqual([]);
  });

  it('refuses entries without a reason or a condition, and unknown conditions', () => {
    expect(() => validateExpectedSkips({ skips: [{ project: '*', when: {} }] })).toThrow(/reason/);
    expect(() => validateExpectedSkips({ skips: [{ project: '*', reason: 'r' }] })).toThrow(
      /condition/,
    );
    expect(() => conditionHolds({ sunny: true }, never)).toThrow(/unknown condition "sunny"/);
    expect(conditionHolds({}, always)).toBe(false);
  });

  it('matches files by glob', () => {
    expect(globToRegExp('test/integration/**').test('test/integration/x/y.test.ts')).toBe(true);
    expect(globToRegExp('test/*.ts').test('test/x/y.ts')).toBe(false);
    expect(globToRegExp('src/a.test.ts').test('src/aXtest.ts')).toBe(false);
  });

  it('reads facts from the machine', () => {
    expect(machineFacts({ env: { PATH: '/usr/bin:/bin' } }).missingCommand('sh')).toBe(false);
    expect(machineFacts({ env: { PATH: '' } }).missingCommand('sh')).toBe(true);
    expect(machineFacts({ getuid: () => 1000 }).notRoot()).toBe(true);
    expect(machineFacts({ getuid: () => 0 }).notRoot()).toBe(false);
  });
});

describe('selectProjects', () => {
  const all = ['@flowline/a', '@flowline/b'];
  it('selects what is named, everything when unset, and refuses names that match nothing', () => {
    expect(selectProjects(all, undefined)).toEqual(all);
    expect(selectProjects(all, '@flowline/b')).toEqual(['@flowline/b']);
    expect(() => selectProjects(all, '@flowline/nope')).toThrow(/no such project: @flowline\/nope/);
    expect(() => selectProjects(all, ' , ')).toThrow(/names no project/);
  });
});

describe("a failure's detail", () => {
  it('is the message past its first line, blank lines left out', () => {
    expect(detail(new Error('web: expected 0\n\n$ stats\n  rx 0\n'))).toBe('$ stats\n  rx 0');
    expect(detail(new Error('expected 1 to be 2'))).toBeUndefined();
  });

  it('is bounded in lines and characters, and says so when cut', () => {
    const many = Array.from({ length: DETAIL_MAX_LINES + 5 }, (_, i) => `line ${i}`);
    const d = detail(new Error(['first', ...many].join('\n'))) as string;
    expect(d.split('\n')).toHaveLength(DETAIL_MAX_LINES + 1);
    expect(d).toContain(`line ${DETAIL_MAX_LINES - 1}\n... (cut`);
    const wide = detail(new Error(`first\n${'x'.repeat(DETAIL_MAX_CHARS * 2)}`)) as string;
    expect(wide.split('\n')[0]).toHaveLength(DETAIL_MAX_CHARS);
    expect(wide).toMatch(/\(cut/);
  });
});

describe('outcome reporter on a real vitest run', () => {
  let dir: string;
  let report: {
    tests: { name: string; state: string; mode: string }[];
    errors: { where: string }[];
  };
  beforeAll(() => {
    dir = mkdtempSync(join(root, 'tools', 'workspace-checks', '.scratch-'));
    mkdirSync(join(dir, 'src'));
    writeFileSync(
      join(dir, 'src', 'a.test.ts'),
      `import { afterAll, beforeAll, describe, it } from 'vitest';
describe('hook', () => {
  beforeAll(() => { throw new Error('boom'); });
  it('blocked', () => {});
});
describe('after', () => {
  afterAll(() => { throw new Error('late'); });
  it('ran', () => {});
});
it.skip('skipped', () => {});
it('dynamic', (ctx) => ctx.skip('no widget'));
it('explained', () => { throw new Error('web: lost\\nport 1 rx 0'); });
`,
    );
    writeFileSync(join(dir, 'src', 'b.test.ts'), `import './missing';\n`);
    writeFileSync(
      join(dir, 'vitest.config.mts'),
      `import { flowlineVitestConfig } from '../../../vitest.shared.mjs';
export default flowlineVitestConfig('scratch');\n`,
    );
    spawnSync(process.execPath, [join(root, 'node_modules', 'vitest', 'vitest.mjs'), 'run'], {
      cwd: dir,
      env: { ...process.env, FLOWLINE_TEST_REPORT_DIR: join(dir, 'reports') },
      encoding: 'utf8',
    });
    report = JSON.parse(readFileSync(join(dir, 'reports', 'scratch.json'), 'utf8'));
  }, 60_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('records each test and each error outside a test, and the rules count them', () => {
    const states = Object.fromEntries(report.tests.map((x) => [x.name, `${x.state}/${x.mode}`]));
    expect(states).toEqual({
      'hook > blocked': 'skipped/run',
      'after > ran': 'passed/run',
      skipped: 'skipped/skip',
      dynamic: 'skipped/run',
      explained: 'failed/run',
    });
    const explained = report.tests.find((x) => x.name === 'explained') as unknown as {
      error: string;
      detail: string;
    };
    expect([explained.error, explained.detail]).toEqual(['web: lost', 'port 1 rx 0']);
    expect(report.errors.map((e) => e.where).sort()).toEqual(['after', 'hook', 'module']);
    const o = countOutcomes([{ project: 'scratch', report }], [], never) as Outcome;
    // blocked + 2 unexpected skips + a failure + afterAll + module = 6 failures; 1 pass.
    expect([o.passed, o.failed, o.skipped]).toEqual([1, 6, 0]);
  });
});
