import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

export const kindDir = join(__dirname, '..');
export const repoRoot = join(kindDir, '..', '..');
export const script = join(kindDir, 'e2e.sh');

export interface ScriptRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs e2e.sh with bash and the given arguments and PATH. */
export function runScript(args: string[], env: NodeJS.ProcessEnv = {}): ScriptRun {
  const r = spawnSync('/bin/bash', [script, ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 20_000,
  });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The dry run's plan: "==> step" headers and "+ command" lines, in order. */
export interface Plan {
  steps: string[];
  commands: { step: string; line: string }[];
}

export function parsePlan(stdout: string): Plan {
  const plan: Plan = { steps: [], commands: [] };
  for (const line of stdout.split('\n')) {
    if (line.startsWith('==> ')) plan.steps.push(line.slice(4));
    else if (line.startsWith('+ '))
      plan.commands.push({ step: plan.steps[plan.steps.length - 1] ?? '', line: line.slice(2) });
  }
  return plan;
}
