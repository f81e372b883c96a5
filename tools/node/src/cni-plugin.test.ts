import { existsSync, mkdirSync, mkdtempSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CNI_PATH_SYSTEM, cniBinDir, cniDaemonSocket, cniPath, installCniBin } from './cni-plugin';
import { NodeStepError } from './errors';

let dir: string;
beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'flnode-cni-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('the CNI plugin on the node', () => {
  it('is found in the state dir first, then in the system plugins', () => {
    expect(cniBinDir('/s')).toBe('/s/cni-bin');
    expect(cniPath('/s')).toBe(`/s/cni-bin:${CNI_PATH_SYSTEM}`);
    expect(cniDaemonSocket('/s')).toBe('/s/cni/cni.sock');
  });

  it("installs as a link named after the network config's type, again and again", () => {
    const root = join(dir, 'repo');
    const stateDir = join(dir, 'state');
    mkdirSync(join(root, 'cni-plugin', 'dist'), { recursive: true });
    writeFileSync(join(root, 'cni-plugin', 'dist', 'flowline'), '');
    installCniBin(stateDir, root);
    installCniBin(stateDir, root);
    expect(readlinkSync(join(cniBinDir(stateDir), 'flowline'))).toBe(
      join(root, 'cni-plugin', 'dist', 'flowline'),
    );
  });

  it('is refused, saying what to do, when the plugin is not built', () => {
    const err = (() => {
      try {
        installCniBin(join(dir, 'state'), join(dir, 'empty-repo'));
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(NodeStepError);
    expect((err as Error).message).toMatch(/cni-plugin\/dist\/flowline is not built/);
    expect(existsSync(join(cniBinDir(join(dir, 'state')), 'flowline'))).toBe(false);
  });
});
