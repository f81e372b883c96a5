// A pod's interfaces through a stand-in CNI plugin (a script in the node's CNI bin) that logs
// each call's command, interface and pod identity, and fails where a test says so.
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { testContext } from '../test/support/context';
import { cniBinDir } from './cni-plugin';
import type { PodSpec } from './manifest';
import { attachNetworks, detachNetworks, podCniInvocation } from './pod-network';
import type { NodeState, PodRecord } from './state';
import { emptyStopReport } from './stop-report';

let dir: string;
beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'flnode-net-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const pod = (): PodRecord =>
  ({
    key: 'default/fw',
    namespace: 'default',
    name: 'fw',
    netns: 'flpod-default-fw',
    containerId: 'c0ffee',
    attachments: [],
  }) as unknown as PodRecord;

/** The node's switch as the state records it (attachments name its OVSDB socket). */
function withSwitch(ctx: { state: NodeState }): void {
  ctx.state.ovs = { runDir: '', netns: '', filePrefix: '', dbSocket: '/ovs/db.sock', bridge: '' };
}

const specWith = (...interfaces: string[]): PodSpec =>
  ({
    networks: interfaces.map((i) => ({ name: 'flowline-net', interface: i })),
  }) as unknown as PodSpec;

/** The stand-in plugin: logs "<command> <ifname> <CNI_ARGS>"; fails when <dir>/fail-<cmd>-<if> exists. */
function installFakePlugin(stateDir: string): string {
  const calls = join(dir, 'calls');
  mkdirSync(cniBinDir(stateDir), { recursive: true });
  const script = join(cniBinDir(stateDir), 'flowline');
  writeFileSync(
    script,
    `#!/bin/bash
cat > /dev/null
echo "$CNI_COMMAND $CNI_IFNAME $CNI_ARGS" >> ${calls}
if [ -e ${dir}/fail-$CNI_COMMAND-$CNI_IFNAME ]; then
  echo '{"cniVersion":"1.1.0","code":11,"msg":"refused"}'; exit 1
fi
echo '{"cniVersion":"1.1.0"}'
`,
  );
  chmodSync(script, 0o755);
  return calls;
}

describe("a pod's interfaces", () => {
  it('are made by the plugin the network names, with the pod in CNI_ARGS and the daemon socket', () => {
    const p = pod();
    const inv = podCniInvocation('ADD', '/s', p, {
      network: 'flowline-net',
      ifname: 'net1',
      containerId: 'c0ffee',
      netconf: { type: 'flowline', name: 'flowline-net' },
    });
    expect(inv).toEqual({
      command: 'ADD',
      plugin: '/s/cni-bin/flowline',
      cniPath: '/s/cni-bin:/usr/lib/cni',
      netconf: { type: 'flowline', name: 'flowline-net' },
      env: { FLOWLINE_CNI_SOCKET: '/s/cni/cni.sock' },
      containerId: 'c0ffee',
      netns: '/run/netns/flpod-default-fw',
      ifname: 'net1',
      args: {
        IgnoreUnknown: 'true',
        K8S_POD_NAMESPACE: 'default',
        K8S_POD_NAME: 'fw',
        K8S_POD_INFRA_CONTAINER_ID: 'c0ffee',
      },
    });
  });

  it('ADD per network in order, each recorded first; DEL last first, noting each port', async () => {
    const stateDir = join(dir, 'state');
    const calls = installFakePlugin(stateDir);
    const { ctx, saved } = testContext(stateDir);
    withSwitch(ctx);
    const p = pod();
    await attachNetworks(ctx, specWith('net1', 'net2'), p);
    expect(p.attachments.map((a) => [a.ifname, a.netconf.ovsdbSocket])).toEqual([
      ['net1', '/ovs/db.sock'],
      ['net2', '/ovs/db.sock'],
    ]);
    expect(saved).toHaveLength(2);
    const report = emptyStopReport();
    await detachNetworks(ctx, p, report);
    const args =
      'IgnoreUnknown=true;K8S_POD_NAMESPACE=default;K8S_POD_NAME=fw;K8S_POD_INFRA_CONTAINER_ID=c0ffee';
    expect(readFileSync(calls, 'utf8').trim().split('\n')).toEqual([
      `ADD net1 ${args}`,
      `ADD net2 ${args}`,
      `DEL net2 ${args}`,
      `DEL net1 ${args}`,
    ]);
    expect(report.ports).toEqual([
      { pod: 'default/fw', interface: 'net2' },
      { pod: 'default/fw', interface: 'net1' },
    ]);
  });

  it('a failed ADD fails the step with the attachment already recorded (so teardown DELs it)', async () => {
    const stateDir = join(dir, 'state');
    installFakePlugin(stateDir);
    writeFileSync(join(dir, 'fail-ADD-net1'), '');
    const { ctx } = testContext(stateDir);
    withSwitch(ctx);
    const p = pod();
    await expect(attachNetworks(ctx, specWith('net1'), p)).rejects.toThrow(
      /CNI ADD failed with code 11: refused/,
    );
    expect(p.attachments.map((a) => a.ifname)).toEqual(['net1']);
  });

  it('a failed DEL is logged and the others still go', async () => {
    const stateDir = join(dir, 'state');
    const calls = installFakePlugin(stateDir);
    writeFileSync(join(dir, 'fail-DEL-net2'), '');
    const { ctx, logs } = testContext(stateDir);
    const p = pod();
    p.attachments.push(
      {
        network: 'n',
        ifname: 'net1',
        containerId: 'c0ffee',
        netconf: { type: 'flowline' },
      },
      {
        network: 'n',
        ifname: 'net2',
        containerId: 'c0ffee',
        netconf: { type: 'flowline' },
      },
    );
    const report = emptyStopReport();
    await detachNetworks(ctx, p, report);
    expect(
      readFileSync(calls, 'utf8')
        .trim()
        .split('\n')
        .map((l) => l.split(' ').slice(0, 2).join(' ')),
    ).toEqual(['DEL net2', 'DEL net1']);
    expect(report.ports).toEqual([{ pod: 'default/fw', interface: 'net1' }]);
    expect(logs).toMatchObject([
      {
        level: 'warn',
        msg: 'CNI DEL failed',
        pod: 'default/fw',
        ifname: 'net2',
      },
    ]);
  });
});
