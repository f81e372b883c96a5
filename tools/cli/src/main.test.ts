// The errors a new user meets first, as the CLI says them: each names what is wrong and what
// to do. (No node runs here: these need no root.)
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { main } from './main';

const root = resolve(__dirname, '..', '..', '..');
const work = mkdtempSync(join(tmpdir(), 'flowline-cli-'));
const stateDir = join(work, 'state');
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('what a new user is told', () => {
  it('a pod whose config file is missing: the manifest, the field and the path it looked for', async () => {
    const manifest = join(work, 'fw.yaml');
    writeFileSync(
      manifest,
      `apiVersion: v1\nkind: Pod\nmetadata: { name: fw }\nspec:\n  containers:\n    - name: fw\n      command: [flowline-firewall]\n      env: [{ name: FLOWLINE_CONFIG, value: fw-config.yaml }]\n`,
    );
    await expect(main(['apply', '-f', manifest, '--state-dir', stateDir])).rejects.toThrow(
      `${manifest}: spec.containers[0].env[0].value (FLOWLINE_CONFIG) names fw-config.yaml, which is not a file (looked for ${join(work, 'fw-config.yaml')}: a relative path is taken from the manifest's folder)`,
    );
  });

  it('apply before up: run up', async () => {
    await expect(
      main(['apply', '-f', join(root, 'examples', 'gen.yaml'), '--state-dir', stateDir]),
    ).rejects.toThrow(
      `apply: no node runs (state dir ${stateDir}) (fix: run flowline up first, e.g. npm run flowline -- up --config examples/node.yaml)`,
    );
  });

  it('chain, traffic and stats before up: flowline up starts a node', async () => {
    for (const argv of [
      ['chain', 'create', '-f', join(root, 'examples', 'chain.yaml')],
      ['traffic', 'results'],
      ['stats'],
    ])
      await expect(main([...argv, '--state-dir', stateDir])).rejects.toThrow(
        `no node runs here (state dir ${stateDir}); flowline up starts one`,
      );
  });

  it('a traffic flag that does not fit is a usage error naming it', async () => {
    await expect(
      main(['traffic', 'start', '-f', join(root, 'examples', 'flows.yaml'), '--size', 'jumbo']),
    ).rejects.toThrow(/^--size: "jumbo" is not a frame size \(64\.\.1518\) or imix/);
    await expect(
      main(['traffic', 'start', '--src-ip', '10.1.0.1', '--dst-ip', '10.2.0.1', '--wait']),
    ).rejects.toThrow(/^--wait needs count-limited flows/);
  });

  it('traffic --help is help, not an error', async () => {
    const out = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    try {
      await main(['traffic', '--help']);
      expect(String(out.mock.calls[0]?.[0])).toMatch(/^flowline traffic start \[-f flows\.yaml\]/);
    } finally {
      out.mockRestore();
    }
    await expect(main(['traffic'])).rejects.toThrow(/^flowline traffic start/);
  });

  it('logs --tail takes a count of lines, nothing else', async () => {
    const logs = join(stateDir, 'logs');
    mkdirSync(logs, { recursive: true });
    writeFileSync(join(logs, 'agent.log'), 'one\ntwo\nthree\n');
    for (const bad of ['abc', '-5', '1.5', ''])
      await expect(
        main(['logs', 'agent', `--tail=${bad}`, '--state-dir', stateDir]),
      ).rejects.toThrow(`--tail: "${bad}" is not a count of lines (0 or more)`);
    const out = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    try {
      await main(['logs', 'agent', '--tail', '2', '--state-dir', stateDir]);
      expect(String(out.mock.calls[0]?.[0])).toBe('two\nthree\n');
    } finally {
      out.mockRestore();
    }
  });

  it('delete fails naming each name that matched no manifest, after removing the others', async () => {
    const manifests = join(stateDir, 'manifests');
    mkdirSync(manifests, { recursive: true });
    writeFileSync(join(manifests, 'fw.yaml'), 'kind: Pod\n');
    const out = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    try {
      await expect(
        main(['delete', 'fw', 'fw-typo', '--json', '--state-dir', stateDir]),
      ).rejects.toThrow('delete: no manifest named fw-typo');
      expect(JSON.parse(String(out.mock.calls[0]?.[0]))).toEqual({
        removed: ['fw.yaml'],
        unmatched: ['fw-typo'],
      });
    } finally {
      out.mockRestore();
    }
    expect(existsSync(join(manifests, 'fw.yaml'))).toBe(false);
  });
});
