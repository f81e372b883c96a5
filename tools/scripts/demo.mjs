// `npm run demo` after set-up: the end-to-end demo on the embedded single-node runtime
// (tools/node): traffic-gen → firewall → router → sink over OVS-DPDK, the chain created through
// the chain controller's gRPC API, live stats, a firewall rule changed mid-run, a summary, and a
// complete teardown. Extra arguments go to `flowline demo` (e.g. -- --seconds 30 --json).
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const run = spawnSync(
  process.execPath,
  [join(root, 'tools', 'cli', 'dist', 'main.js'), 'demo', ...process.argv.slice(2)],
  {
    stdio: 'inherit',
  },
);
process.exit(run.status ?? 1);
