import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { POD_NETNS_PREFIX, nodeDown } from '@flowline/node';
import { parseFlowsFile } from '../../src/traffic';
import {
  type CommandRun,
  resultRows,
  runCommand,
  walkthroughCommands,
} from '../readme-walkthrough';

/**
 * The README's walk-through, every command as written, from the repository root: a node from
 * examples/node.yaml, the generator, firewall and router pods, the chain, traffic, stats, a rule
 * change, traffic again, down. Real OVS-DPDK and NF processes. Each command is bounded, and
 * whatever happens, the node is taken down after (its state dir is this test's own, through
 * FLOWLINE_STATE_DIR, so a node of the user's is not touched). The figures are checked against
 * what the examples lead to: each flow sends the count examples/flows.yaml gives it; before the
 * rule change web and dns arrive and telnet meets the firewall's default deny; after it, only
 * web arrives. Once the chain exists, two mistakes a new user makes are tried on the live node
 * (not README commands): a chain naming a pod that does not run, and a pod whose config file is
 * missing; each must fail saying what exists or what is missing, and change nothing.
 */
const root = process.getuid?.() === 0;
const repo = resolve(__dirname, '..', '..', '..', '..');
const stateDir = '/var/run/flowline-walkthrough';
const env = { ...process.env, FLOWLINE_STATE_DIR: stateDir };
const COMMAND_TIMEOUT_MS = 120_000;
/** All commands together; the test's own timeout is a minute more, for the check and down. */
const TOTAL_MS = 480_000;

const netns = (): string[] =>
  existsSync('/run/netns')
    ? readdirSync('/run/netns').filter(
        (n) => n.startsWith(POD_NETNS_PREFIX) || n.startsWith('flowline-node-'),
      )
    : [];

describe.skipIf(!root)('the README walk-through, run as written', () => {
  const commands = walkthroughCommands(readFileSync(join(repo, 'README.md'), 'utf8'));
  const runs: CommandRun[] = [];
  const mistakes: CommandRun[] = [];
  /** What the node said when a send failed or lost everything (NF logs, the switch's ports). */
  const diagnostics: (CommandRun & { keep: number })[] = [];
  const scratch = mkdtempSync(join(tmpdir(), 'flowline-walkthrough-'));

  afterAll(async () => {
    // Whatever failed: nothing of this node may stay.
    await nodeDown({ stateDir });
    rmSync(scratch, { recursive: true, force: true });
    for (const r of mistakes)
      process.stdout.write(`\n(mistake) $ ${r.command}    [exit ${r.status}]\n${r.output}`);
    for (const r of runs)
      process.stdout.write(
        `\n$ ${r.command}    [exit ${r.status}, ${(r.ms / 1000).toFixed(1)} s]\n${r.output}`,
      );
    for (const r of diagnostics)
      process.stdout.write(`\n(diagnostics) $ ${r.command}    [exit ${r.status}]\n${r.output}`);
  }, 120_000);

  /**
   * The node's state while it still runs: the NFs' port counters, the switch's live port
   * counters and rule hits, its log on the vhost-user connections, the pods' logs, the
   * interfaces' link state. `keep` is how many of a command's last lines the failure's message
   * carries (CI prints only the tail of its log, so the telling ones come first); the test's
   * own output has them whole.
   */
  async function diagnose(): Promise<void> {
    const run = async (command: string, keep: number): Promise<void> => {
      diagnostics.push({
        ...(await runCommand(command, { cwd: repo, env, timeoutMs: 30_000 })),
        keep,
      });
    };
    const mgmt = `unix:${stateDir}/ovs/br-flowline.mgmt`;
    // The switch's errors, e.g. a vhost-user handshake it failed and dropped.
    await run('npm run -s flowline -- stats', 14);
    await run(`ovs-ofctl dump-ports ${mgmt}`, 16);
    await run(
      `grep -E '[|](ERR|EMER)[|]|connection has been destroyed' ${stateDir}/ovs/ovs-vswitchd.log | tail -30`,
      12,
    );
    for (const pod of ['default/gen', 'default/fw', 'default/rtr'])
      await run(`npm run -s flowline -- logs ${pod} --tail 40`, 3);
    await run(`ovs-ofctl dump-flows ${mgmt}`, 0);
    await run(
      `ovs-vsctl --db=unix:${stateDir}/ovs/db.sock --columns=name,ofport,link_state,statistics list Interface`,
      0,
    );
  }

  /** What the node showed, short enough for a failure's message: each command's last lines. */
  const diagnosticText = (): string =>
    diagnostics
      .filter((r) => r.keep > 0)
      .map((r) => {
        const lines = r.output.trimEnd().split('\n').slice(-r.keep);
        return [`$ ${r.command} [exit ${r.status}]`, ...lines.map((l) => l.slice(0, 400))].join(
          '\n',
        );
      })
      .join('\n');

  /** A failure's message, followed by what the node showed if a send failed or lost everything. */
  const withDiagnostics = (head: string): string =>
    diagnostics.length ? `${head}\nwhat the node showed then:\n${diagnosticText()}\n` : head;

  /** A chain naming a pod that does not run; a pod whose config file is not there. */
  async function tryMistakes(): Promise<void> {
    const chain = join(scratch, 'chain.yaml');
    writeFileSync(
      chain,
      readFileSync(join(repo, 'examples', 'chain.yaml'), 'utf8')
        .replace('name: demo', 'name: typo')
        .replace('nf: default/rtr', 'nf: default/router'),
    );
    const pod = join(scratch, 'nat.yaml');
    writeFileSync(
      pod,
      readFileSync(join(repo, 'examples', 'fw.yaml'), 'utf8')
        .replace('name: fw', 'name: nat')
        .replace('value: fw-config.yaml', 'value: nat-config.yaml'),
    );
    const run = (c: string) => runCommand(c, { cwd: repo, env, timeoutMs: 60_000 });
    const badChain = await run(`npm run flowline -- chain create -f ${chain}`);
    const badPod = await run(`npm run flowline -- apply -f ${pod}`);
    const chains = await run('npm run flowline -- chain list --json');
    const status = await run('npm run flowline -- status --json');
    mistakes.push(badChain, badPod);
    expect(badChain.status).toBe(1);
    expect(badChain.output).toMatch(
      /spec\.hops\[1\]\.nf: no pod default\/router runs on this node \(pods: (default\/(gen|fw|rtr)(, )?){3}\)/,
    );
    expect(badPod.status).toBe(1);
    expect(badPod.output).toContain(
      `${pod}: spec.containers[0].env[0].value (FLOWLINE_CONFIG) names nat-config.yaml, which is not a file (looked for ${join(scratch, 'nat-config.yaml')}`,
    );
    // Nothing changed: one chain, three pods.
    const json = (r: CommandRun): unknown => JSON.parse(r.output.slice(r.output.search(/^[[{]/m)));
    expect((json(chains) as { name: string }[]).map((c) => c.name)).toEqual(['demo']);
    expect((json(status) as { pods: { key: string }[] }).pods.map((p) => p.key).sort()).toEqual([
      'default/fw',
      'default/gen',
      'default/rtr',
    ]);
  }

  it(
    'every command succeeds, with the figures the examples lead to, and down leaves nothing',
    async () => {
      const deadline = Date.now() + TOTAL_MS;
      for (const command of commands) {
        const timeoutMs = Math.max(1000, Math.min(COMMAND_TIMEOUT_MS, deadline - Date.now()));
        const run = await runCommand(command, { cwd: repo, env, timeoutMs });
        runs.push(run);
        const send = /traffic start .*--wait/.test(command);
        if (send && (run.status !== 0 || /received 0\b/.test(run.output))) await diagnose();
        expect(run.status, withDiagnostics(`${command}\n${run.output}`)).toBe(0);
        if (/ chain create /.test(command)) await tryMistakes();
      }
      const flows = parseFlowsFile(readFileSync(join(repo, 'examples', 'flows.yaml'), 'utf8'), 'f');
      const count = new Map(flows.flows!.map((f) => [f.name!, Number(f.count)]));
      const names = [...count.keys()];
      expect(names).toEqual(['web', 'dns', 'telnet']);
      const sends = runs.filter((r) =>
        /traffic start -f examples\/flows\.yaml .*--wait/.test(r.command),
      );
      expect(sends).toHaveLength(2);
      const [before, after] = sends.map((r) => resultRows(r.output, names));
      const arrives = (rows: Map<string, [number, number]>, flow: string, yes: boolean): void => {
        const [sent, received] = rows.get(flow)!;
        const said = withDiagnostics(flow);
        expect(sent, said).toBe(count.get(flow));
        // Allowed flows: all but a trace on a host whose two cores four pollers share.
        if (yes) expect(received, said).toBeGreaterThanOrEqual(sent * 0.99);
        else expect(received, said).toBe(0);
      };
      arrives(before!, 'web', true);
      arrives(before!, 'dns', true);
      arrives(before!, 'telnet', false);
      arrives(after!, 'web', true);
      arrives(after!, 'dns', false);
      arrives(after!, 'telnet', false);

      // One flow from flags alone (web's port, so it passes): the count on its command line.
      const byFlags = runs.find((r) => /traffic start --src-ip .*--wait/.test(r.command))!;
      const flagCount = Number(/--count (\d+)/.exec(byFlags.command)?.[1]);
      const [flagSent, flagReceived] = resultRows(byFlags.output, ['flow-0']).get('flow-0')!;
      expect(flagSent).toBe(flagCount);
      expect(flagReceived).toBeGreaterThanOrEqual(flagSent * 0.99);

      // `traffic results` shows the run `--wait` printed.
      const results = runs.find((r) => / traffic results$/.test(r.command))!;
      expect(resultRows(results.output, names)).toEqual(before);

      // stats: the chain's first hop took every packet sent; the router what passed the firewall.
      const stats = runs.find((r) => / stats$/.test(r.command))!.output;
      const hop = (nf: string): number =>
        Number(new RegExp(`^demo\\s+${nf}\\s+yes\\s+(\\d+)`, 'm').exec(stats)?.[1]);
      const total = (rows: Map<string, [number, number]>, i: 0 | 1): number =>
        [...rows.values()].reduce((a, r) => a + r[i], 0);
      expect(hop('default/fw')).toBe(total(before!, 0));
      expect(hop('default/rtr')).toBe(total(before!, 1));

      // down: what it stopped, named; and nothing of the node is left.
      const down = runs.at(-1)!.output;
      for (const pod of ['gen', 'fw', 'rtr']) {
        expect(down).toMatch(new RegExp(`pod default/${pod} \\(pid \\d+\\)`));
        expect(down).toContain(`default/${pod}/net1`);
        expect(down).toContain(`flpod-default-${pod}`);
      }
      for (const daemon of ['node agent', 'chain-controller', 'device-plugin', 'ovs-vswitchd'])
        expect(down).toContain(`${daemon} (pid `);
      expect(down).not.toContain('no node was up');
      expect(netns()).toEqual([]);
      expect(spawnSync('pgrep', ['-f', stateDir], { encoding: 'utf8' }).stdout.trim()).toBe('');
    },
    TOTAL_MS + 60_000,
  );
});
