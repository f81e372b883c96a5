// Where the node finds the executables pods and daemons run: a container's command names a
// workspace package's bin (flowline-firewall → services/firewall/dist/main.js), as an image's
// entrypoint would.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { NodeStepError } from './errors';

/** The repository root (tools/node/dist/ or tools/node/src/ → ../../..). */
export const REPO_ROOT = resolve(__dirname, '..', '..', '..');

let bins: Map<string, string> | undefined;

/** Every bin of every workspace package, by name. */
export function workspaceBins(root = REPO_ROOT): Map<string, string> {
  if (bins && root === REPO_ROOT) return bins;
  const found = new Map<string, string>();
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
    workspaces: string[];
  };
  for (const pattern of pkg.workspaces) {
    const dirs = pattern.endsWith('/*')
      ? readdirSync(join(root, pattern.slice(0, -2)), { withFileTypes: true })
          .filter((d) => d.isDirectory())
          .map((d) => join(root, pattern.slice(0, -2), d.name))
      : [join(root, pattern)];
    for (const dir of dirs) {
      const file = join(dir, 'package.json');
      if (!existsSync(file)) continue;
      const manifest = JSON.parse(readFileSync(file, 'utf8')) as { bin?: Record<string, string> };
      for (const [name, path] of Object.entries(manifest.bin ?? {}))
        found.set(name, join(dir, path));
    }
  }
  if (root === REPO_ROOT) bins = found;
  return found;
}

/** argv to exec for a container command: node scripts run with this node, paths as they are. */
export function resolveCommand(command: string[], root = REPO_ROOT): string[] {
  const [head, ...rest] = command;
  if (!head) throw new NodeStepError('resolve command', 'the command is empty');
  if (isAbsolute(head)) return command;
  const script = workspaceBins(root).get(head);
  if (!script)
    throw new NodeStepError(
      'resolve command',
      `"${head}" is not the bin of any workspace package (known: ${[...workspaceBins(root).keys()].sort().join(', ')})`,
      'use one of those names or an absolute path',
    );
  if (!existsSync(script))
    throw new NodeStepError(
      'resolve command',
      `${head} is ${script}, which is not built`,
      'run npm run build (or tools/setup/setup.sh)',
    );
  return [process.execPath, script, ...rest];
}
