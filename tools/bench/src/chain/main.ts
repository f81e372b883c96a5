/**
 * The chain benchmark from tools/bench: `flock /tmp/flowline-heavy.lock npx tsx
 * tools/bench/src/chain/main.ts [options]` runs `flowline bench chain` (tools/cli), which owns
 * the node and the chain; the search, the report and the picture are this folder's
 * (search.ts, bench.ts, report.ts). tools/cli depends on this package, so this entry runs the
 * CLI as a process rather than importing it. Options are the CLI's (`--help`); the default
 * output folder here is `flowline-bench/chain-<time>` in the temp dir.
 */
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const cli = resolve(__dirname, '..', '..', '..', 'cli', 'dist', 'main.js');
const args = process.argv.slice(2);
if (!args.includes('--out') && !args.includes('--help'))
  args.push('--out', join(tmpdir(), 'flowline-bench', `chain-${Date.now()}`));
const r = spawnSync(process.execPath, [cli, 'bench', 'chain', ...args], { stdio: 'inherit' });
process.exit(r.status ?? 1);
