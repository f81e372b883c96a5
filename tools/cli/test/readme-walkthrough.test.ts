import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { END, START, resultRows, runCommand, walkthroughCommands } from './readme-walkthrough';

const md = (body: string): string => `# t\n\n\`\`\`sh\nnot me\n\`\`\`\n${START}\n${body}\n${END}\n`;

describe('the README walk-through extraction', () => {
  it('takes every command of the sh blocks between the markers, in order, as written', () => {
    expect(
      walkthroughCommands(
        md(
          'Text.\n\n```sh\n# a comment\nnpm run a -- up\n\nnpm run b \\\n  --x 1\n```\n\nMore.\n\n```bash\necho c\n```',
        ),
      ),
    ).toEqual(['npm run a -- up', 'npm run b --x 1', 'echo c']);
  });

  it('refuses what would let a command go unrun', () => {
    expect(() => walkthroughCommands('# no markers')).toThrow(/once each \(found 0, 0\)/);
    expect(() => walkthroughCommands(md('```\nrm -rf x\n```'))).toThrow(/"untyped", not sh/);
    expect(() => walkthroughCommands(md('```sh\necho a\n'))).toThrow(/not closed/);
    expect(() => walkthroughCommands(md('just text'))).toThrow(/no commands/);
    expect(() => walkthroughCommands(`${END}\n${START}`)).toThrow(/comes before/);
  });

  it("the repository README has one, and it uses the CLI's commands only", () => {
    const readme = readFileSync(join(resolve(__dirname, '..', '..', '..'), 'README.md'), 'utf8');
    const commands = walkthroughCommands(readme);
    expect(commands.length).toBeGreaterThanOrEqual(5);
    for (const c of commands) expect(c).toMatch(/^npm run flowline -- /);
    expect(commands.at(-1)).toBe('npm run flowline -- down');
  });

  it('runs a command with its status and output, and kills it past its time', async () => {
    const ok = await runCommand('echo out; echo err >&2; exit 3', {
      cwd: '/',
      env: process.env,
      timeoutMs: 5000,
    });
    expect(ok).toMatchObject({ status: 3, output: 'out\nerr\n' });
    const slow = await runCommand('sleep 20', { cwd: '/', env: process.env, timeoutMs: 300 });
    expect(slow.status).not.toBe(0);
    expect(slow.output).toMatch(/killed after 0.3 s/);
    expect(slow.ms).toBeLessThan(5000);
  });

  it('reads the figures of results tables', () => {
    const out = `default/gen: run 1 RUNNING (all sent), 4.2 s; sent 30000, received 20000
flow     sent  received  not received  loss %  p50 µs   p99 µs
------  -----  --------  ------------  ------  ------  -------
web     10000     10000             0    0.00   567.1  72593.7
telnet  10000         0         10000  100.00       -        -`;
    expect([...resultRows(out, ['web', 'telnet', 'dns'])]).toEqual([
      ['web', [10000, 10000]],
      ['telnet', [10000, 0]],
    ]);
  });
});
