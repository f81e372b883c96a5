// The README's walk-through as commands: every line of the sh/bash code blocks between
// `<!-- walkthrough:start -->` and `<!-- walkthrough:end -->`, in order, as written (comments
// and blank lines left out, `\` continuations joined). A code block of another language between
// the markers is an error, so no command there can escape being run.
import { spawn } from 'node:child_process';

export const START = '<!-- walkthrough:start -->';
export const END = '<!-- walkthrough:end -->';

export function walkthroughCommands(markdown: string): string[] {
  const starts = markdown.split(START).length - 1;
  const ends = markdown.split(END).length - 1;
  if (starts !== 1 || ends !== 1)
    throw new Error(
      `the README must hold ${START} and ${END} once each (found ${starts}, ${ends})`,
    );
  const from = markdown.indexOf(START) + START.length;
  const to = markdown.indexOf(END);
  if (to < from) throw new Error(`${END} comes before ${START}`);
  const lines = markdown.slice(from, to).split('\n');
  const commands: string[] = [];
  let inBlock = false;
  let pending = '';
  for (const raw of lines) {
    const fence = /^\s*```\s*(\S*)\s*$/.exec(raw);
    if (fence) {
      if (!inBlock && !['sh', 'bash', 'shell'].includes(fence[1]!))
        throw new Error(`a code block between the markers is "${fence[1] || 'untyped'}", not sh`);
      if (inBlock && pending) throw new Error(`a command ends in "\\": ${pending}`);
      inBlock = !inBlock;
      continue;
    }
    if (!inBlock) continue;
    const line = raw.trim();
    if (!pending && (line === '' || line.startsWith('#'))) continue;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1).trim()} `;
      continue;
    }
    commands.push(`${pending}${line}`);
    pending = '';
  }
  if (inBlock) throw new Error('a code block between the markers is not closed');
  if (commands.length === 0) throw new Error('no commands between the markers');
  return commands;
}

export interface CommandRun {
  command: string;
  status: number | null;
  output: string;
  ms: number;
}

/**
 * Runs one command with bash in `cwd`, stdout and stderr together; past `timeoutMs` its whole
 * process group is killed (what it started detached, such as the node agent, is the caller's
 * to stop).
 */
export function runCommand(
  command: string,
  opts: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs: number },
): Promise<CommandRun> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn('bash', ['-c', command], {
      cwd: opts.cwd,
      env: opts.env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => {
      output += `\n[killed after ${opts.timeoutMs / 1000} s]\n`;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }, opts.timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ command, status: code, output, ms: Date.now() - started });
    });
  });
}

/** The rows of `flowline traffic` results tables in an output: flow → [sent, received]. */
export function resultRows(output: string, flows: string[]): Map<string, [number, number]> {
  const rows = new Map<string, [number, number]>();
  for (const line of output.split('\n')) {
    const m = /^(\S+)\s+(\d+)\s+(\d+)\s+\d+\s+[\d.]+\s/.exec(line);
    if (m && flows.includes(m[1]!)) rows.set(m[1]!, [Number(m[2]), Number(m[3])]);
  }
  return rows;
}
