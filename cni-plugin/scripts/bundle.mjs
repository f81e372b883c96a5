// Builds the plugin's two executables:
// - dist/flowline-cni: the whole plugin bundled into one JS file with a node shebang (one CNI
//   invocation by the exec protocol, or `flowline-cni daemon`). Dependencies are inlined; node
//   built-ins stay.
// - dist/flowline: the native executable a node's CNI bin dir gets (/opt/cni/bin/flowline),
//   compiled from shim/flowline.c: it hands each invocation to the daemon, or execs
//   flowline-cni beside it when no daemon runs.
import { execFileSync } from 'node:child_process';
import { chmodSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outfile = join(root, 'dist', 'flowline-cni');
const require = createRequire(import.meta.url);
// Resolved through a variable: a literal require of it here would make nx see the plugin's
// static import of @flowline/telemetry as also lazy-loaded, which its lint rule forbids.
const TELEMETRY = '@flowline/telemetry';

// A CNI plugin is started for every pod and its start-up is on the pod's critical path. It
// uses only the JSON logger of @flowline/telemetry, so the bundle takes that module alone
// instead of the package's index (which loads the whole OpenTelemetry SDK: 1.2 MB, +80 ms).
const telemetryLoggerOnly = {
  name: 'telemetry-logger-only',
  setup(b) {
    b.onResolve({ filter: /^@flowline\/telemetry$/ }, () => ({
      path: join(dirname(require.resolve(TELEMETRY)), 'logger.js'),
    }));
  },
};
/** One self-contained CommonJS file for Node 20 (dependencies inlined, built-ins kept). */
const bundle = (entry, file, extra = {}) =>
  build({
    entryPoints: [join(root, 'src', entry)],
    outfile: file,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    minify: true,
    sourcemap: false,
    legalComments: 'none',
    logLevel: 'warning',
    ...extra,
  });

await bundle('main.ts', outfile, {
  banner: { js: '#!/usr/bin/env node' },
  plugins: [telemetryLoggerOnly],
});
chmodSync(outfile, 0o755);

// The daemon (`flowline-cni daemon` loads it): the full @flowline/telemetry, for its metrics.
await bundle('daemon-main.ts', join(root, 'dist', 'flowline-cni-daemon.js'));

const shim = join(root, 'dist', 'flowline');
const cc = process.env.CC || 'cc';
execFileSync(
  cc,
  // Static: the chart copies it onto hosts whose libc may be older than the build machine's.
  [
    '-std=c11',
    '-D_GNU_SOURCE',
    '-O2',
    '-Wall',
    '-Wextra',
    '-Werror',
    '-static',
    '-o',
    shim,
    join(root, 'shim', 'flowline.c'),
  ],
  { stdio: 'inherit' },
);
