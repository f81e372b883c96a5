import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const repoRoot = join(__dirname, '..', '..', '..');
const nxBin = join(repoRoot, 'node_modules', 'nx', 'dist', 'bin', 'nx.js');
const eslintBin = join(repoRoot, 'node_modules', 'eslint', 'bin', 'eslint.js');
const nxEnv = { ...process.env, NX_DAEMON: 'false', NX_NO_CLOUD: 'true' };

/**
 * A scratch workspace with the real eslint.config.mjs and one project of each kind, so the
 * rules are proven whatever projects the real workspace has today.
 */
describe('module boundaries (real eslint.config.mjs, scratch workspace)', () => {
  const ws = mkdtempSync(join(tmpdir(), 'flowline-boundaries-'));

  const project = (dir: string, name: string, tag: string): void => {
    mkdirSync(join(ws, dir, 'src'), { recursive: true });
    writeFileSync(
      join(ws, dir, 'package.json'),
      JSON.stringify({ name, version: '0.0.0', main: 'src/index.ts', nx: { tags: [tag] } }),
    );
    writeFileSync(join(ws, dir, 'src', 'index.ts'), 'export const value = 1;\n');
  };

  beforeAll(() => {
    writeFileSync(
      join(ws, 'package.json'),
      JSON.stringify({
        name: 'scratch',
        private: true,
        workspaces: ['packages/*', 'services/*', 'tools/*', 'cni-plugin'],
      }),
    );
    writeFileSync(join(ws, 'nx.json'), readFileSync(join(repoRoot, 'nx.json')));
    writeFileSync(
      join(ws, 'tsconfig.base.json'),
      readFileSync(join(repoRoot, 'tsconfig.base.json')),
    );
    writeFileSync(join(ws, 'eslint.config.mjs'), readFileSync(join(repoRoot, 'eslint.config.mjs')));
    mkdirSync(join(ws, 'node_modules', '@flowline'), { recursive: true });
    for (const entry of [
      '@nx',
      'nx',
      '@eslint',
      'eslint',
      'typescript-eslint',
      '@typescript-eslint',
      'typescript',
      'globals',
    ]) {
      try {
        symlinkSync(join(repoRoot, 'node_modules', entry), join(ws, 'node_modules', entry));
      } catch {
        // a package the real tree hoists differently; the lint below would fail loudly if needed
      }
    }
    project('packages/lib-a', '@flowline/lib-a', 'scope:package');
    project('services/svc-a', '@flowline/svc-a', 'scope:service');
    project('services/svc-b', '@flowline/svc-b', 'scope:service');
    project('cni-plugin', '@flowline/cni-plugin', 'scope:plugin');
    project('tools/tool-a', '@flowline/tool-a', 'scope:tool');
    for (const [dir, name] of [
      ['packages/lib-a', 'lib-a'],
      ['services/svc-a', 'svc-a'],
      ['services/svc-b', 'svc-b'],
      ['cni-plugin', 'cni-plugin'],
      ['tools/tool-a', 'tool-a'],
    ] as const) {
      symlinkSync(join(ws, dir), join(ws, 'node_modules', '@flowline', name));
    }
    // The boundary rule reads nx's cached project graph; computing it once writes the cache.
    execFileSync(process.execPath, [nxBin, 'show', 'projects'], {
      cwd: ws,
      env: nxEnv,
      stdio: 'pipe',
    });
  }, 120_000);

  afterAll(() => rmSync(ws, { recursive: true, force: true }));

  /**
   * Lints one import in a process rooted in the scratch workspace: nx finds its workspace root
   * (and so its project graph) from the working directory. Returns the boundary rule's messages;
   * throws if the rule could not run, so an "allowed" result is never vacuous.
   */
  function boundaryErrors(fromFile: string, importOf: string): string[] {
    const out = spawnSync(
      process.execPath,
      [eslintBin, '--format', 'json', '--stdin', '--stdin-filename', join(ws, fromFile)],
      {
        cwd: ws,
        env: nxEnv,
        encoding: 'utf8',
        input: `import { value } from '${importOf}';\nexport const x = value;\n`,
      },
    );
    if (/No cached ProjectGraph/.test(out.stderr + out.stdout)) {
      throw new Error('the boundary rule was skipped: nx had no project graph');
    }
    const results = JSON.parse(out.stdout) as {
      messages: { ruleId: string | null; message: string }[];
    }[];
    const messages = results[0]?.messages ?? [];
    const fatal = messages.filter((m) => m.ruleId === null);
    if (fatal.length > 0)
      throw new Error(`eslint could not lint: ${fatal.map((m) => m.message).join('; ')}`);
    return messages
      .filter((m) => m.ruleId === '@nx/enforce-module-boundaries')
      .map((m) => m.message);
  }

  it('rejects an import from one service into another', () => {
    const errors = boundaryErrors('services/svc-a/src/probe.ts', '@flowline/svc-b');
    expect(errors.join('\n')).toMatch(
      /scope:service.*can only depend on libs tagged with "scope:package"/s,
    );
  });

  it('rejects an import from packages/ into a service or a plugin', () => {
    expect(boundaryErrors('packages/lib-a/src/probe.ts', '@flowline/svc-a')).toHaveLength(1);
    expect(boundaryErrors('packages/lib-a/src/probe.ts', '@flowline/cni-plugin')).toHaveLength(1);
  });

  it('allows services and plugins to import packages', () => {
    expect(boundaryErrors('services/svc-a/src/probe.ts', '@flowline/lib-a')).toEqual([]);
    expect(boundaryErrors('cni-plugin/src/probe.ts', '@flowline/lib-a')).toEqual([]);
  });

  it('allows tools to drive services and plugins', () => {
    expect(boundaryErrors('tools/tool-a/src/probe.ts', '@flowline/svc-a')).toEqual([]);
  });
});

describe('the real project graph', () => {
  it('has edges only in the allowed directions', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'flowline-graph-')), 'graph.json');
    execFileSync(process.execPath, [nxBin, 'graph', `--file=${file}`], {
      cwd: repoRoot,
      env: nxEnv,
      stdio: 'pipe',
    });
    const graph = JSON.parse(readFileSync(file, 'utf8')) as {
      graph: {
        nodes: Record<string, { data: { root: string; tags?: string[] } }>;
        dependencies: Record<string, { target: string }[]>;
      };
    };
    const { depConstraints } = (await import(join(repoRoot, 'eslint.config.mjs'))) as {
      depConstraints: { sourceTag: string; onlyDependOnLibsWithTags: string[] }[];
    };
    const scopeOf = (name: string): string | undefined =>
      graph.graph.nodes[name]?.data.tags?.find((t) => t.startsWith('scope:'));
    const nodes = Object.keys(graph.graph.nodes);
    expect(nodes).toEqual(expect.arrayContaining(['@flowline/proto', '@flowline/telemetry']));
    for (const name of nodes) expect(scopeOf(name), `${name} has a scope tag`).toBeDefined();
    const violations: string[] = [];
    for (const [source, deps] of Object.entries(graph.graph.dependencies)) {
      const constraint = depConstraints.find((c) => c.sourceTag === scopeOf(source));
      for (const { target } of deps) {
        if (!graph.graph.nodes[target]) continue; // npm packages
        if (!constraint?.onlyDependOnLibsWithTags.includes(scopeOf(target) ?? '')) {
          violations.push(`${source} → ${target}`);
        }
        const bothServices =
          scopeOf(source) === 'scope:service' && scopeOf(target) === 'scope:service';
        if (bothServices) violations.push(`service ${source} → service ${target}`);
      }
    }
    expect(violations).toEqual([]);
  });
});
