// Files a manifest names for its NF: relative to the manifest's folder, made absolute for the
// agent, and a missing one refused naming the manifest, the field and the path.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManifestError } from './errors';
import { parsePods } from './manifest';
import { resolveManifestFiles } from './pod-files';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'flnode-podfiles-'));
  mkdirSync(join(dir, 'pods'));
  writeFileSync(join(dir, 'pods', 'fw-config.yaml'), 'nf: {}\n');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const pod = (name: string, config: string): string => `# the ${name} pod
apiVersion: v1
kind: Pod
metadata: { name: ${name} }
spec:
  containers:
    - name: nf
      command: [flowline-firewall]
      env:
        - { name: FLOWLINE_LCORES, value: "0,1" }
        - { name: FLOWLINE_CONFIG, value: '${config}' }
`;

describe('files a pod manifest names', () => {
  it("resolves a relative FLOWLINE_CONFIG against the manifest's folder, from any working directory", () => {
    const manifest = join(dir, 'pods', 'fw.yaml');
    // The caller names the manifest relative to where it runs, as `flowline apply -f` does.
    const out = resolveManifestFiles(
      pod('fw', 'fw-config.yaml'),
      relative(process.cwd(), manifest),
    );
    const [spec] = parsePods(out, 'fw.yaml');
    expect(spec!.env).toEqual({
      FLOWLINE_LCORES: '0,1',
      FLOWLINE_CONFIG: join(dir, 'pods', 'fw-config.yaml'),
    });
    expect(out).toMatch(/^# the fw pod\n/);
    // An absolute path that exists is left as written.
    const abs = join(dir, 'pods', 'fw-config.yaml');
    expect(resolveManifestFiles(pod('fw', abs), manifest)).toBe(pod('fw', abs));
  });

  it('refuses a missing file naming the manifest, the field and both paths; every document is checked', () => {
    const manifest = join(dir, 'pods', 'two.yaml');
    const text = `${pod('a', 'fw-config.yaml')}---\n${pod('b', '../nowhere.yaml')}`;
    let err: unknown;
    try {
      resolveManifestFiles(text, manifest);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ManifestError);
    expect((err as ManifestError).field).toBe('spec.containers[0].env[1].value');
    expect((err as Error).message).toBe(
      `${manifest}#2: spec.containers[0].env[1].value (FLOWLINE_CONFIG) names ../nowhere.yaml, which is not a file (looked for ${join(dir, 'nowhere.yaml')}: a relative path is taken from the manifest's folder)`,
    );
    expect(() => resolveManifestFiles(pod('c', join(dir, 'pods')), manifest)).toThrow(
      /names .*\/pods, which is not a file$/,
    );
  });
});
