import { spawn, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CNI_PATH, CniFixture, PLUGIN_MODES } from '../support/fixture';
import { waitFor } from '../support/wait';

/** Holds host-local-1.1, a 1.1.0 IPAM over Debian's host-local (which speaks up to 1.0.0). */
const TEST_BIN = join(__dirname, '..', 'support', 'cni-bin');

// The plugin executed as a runtime executes it, against a real OVS-DPDK and Debian's host-local:
// through the resident daemon (as deployed) and in-process (no daemon), every case in both.
describe.each(PLUGIN_MODES)(
  'CNI 1.1 protocol against OVS-DPDK and host-local, %s (integration)',
  (mode) => {
    const fx = new CniFixture(mode);
    let netns: string;
    let n = 0;
    const cid = (): string => `c${fx.id}x${++n}`;

    beforeAll(async () => {
      await fx.start();
      netns = fx.netns('spec');
    }, 90_000);
    afterAll(() => fx.stop(), 60_000);

    const add = (containerId: string, conf = fx.conf(), extra: Record<string, string> = {}) =>
      fx.run(
        {
          CNI_COMMAND: 'ADD',
          CNI_CONTAINERID: containerId,
          CNI_NETNS: netns,
          CNI_IFNAME: 'net1',
          ...extra,
        },
        conf,
      );
    const del = (containerId: string, conf = fx.conf(), extra: Record<string, string> = {}) =>
      fx.run(
        {
          CNI_COMMAND: 'DEL',
          CNI_CONTAINERID: containerId,
          CNI_NETNS: netns,
          CNI_IFNAME: 'net1',
          ...extra,
        },
        conf,
      );

    it('VERSION reports 0.4.0, 1.0.0 and 1.1.0 and echoes the input version', async () => {
      for (const v of ['0.4.0', '1.0.0', '1.1.0']) {
        const r = await fx.run({ CNI_COMMAND: 'VERSION' }, { cniVersion: v });
        expect(r.code).toBe(0);
        expect(r.json).toEqual({ cniVersion: v, supportedVersions: ['0.4.0', '1.0.0', '1.1.0'] });
      }
    });

    it('ADD results follow each version: 0.4.0 ips carry version, 1.1.0 interfaces carry socketPath and mtu', async () => {
      const byVersion: Record<string, Record<string, unknown>> = {};
      for (const v of ['0.4.0', '1.0.0', '1.1.0']) {
        const id = cid();
        const r = await add(id, fx.conf({ cniVersion: v }));
        expect(r.code, r.stdout).toBe(0);
        byVersion[v] = r.json!;
        expect((await del(id, fx.conf({ cniVersion: v }))).code).toBe(0);
      }
      const ip0 = (v: string) => (byVersion[v]!.ips as Record<string, unknown>[])[0]!;
      const if0 = (v: string) => (byVersion[v]!.interfaces as Record<string, unknown>[])[0]!;
      expect(byVersion['0.4.0']!.cniVersion).toBe('0.4.0');
      expect(ip0('0.4.0')).toMatchObject({ version: '4', gateway: '10.77.0.1', interface: 0 });
      expect(ip0('1.0.0').version).toBeUndefined();
      expect(if0('1.0.0').socketPath).toBeUndefined();
      expect(if0('1.1.0')).toMatchObject({ name: 'net1', sandbox: netns, mtu: 1500 });
      expect(String(if0('1.1.0').socketPath)).toMatch(
        new RegExp(`^${fx.socketDir}/c${fx.id}x\\d+/net1\\.sock$`),
      );
      expect(String(if0('1.1.0').mac)).toMatch(/^02(:[0-9a-f]{2}){5}$/);
      expect(byVersion['1.1.0']!.routes).toEqual([{ dst: '10.0.0.0/8' }]);
      expect(byVersion['1.1.0']!.dns).toEqual({ nameservers: ['10.77.0.53'] });
    });

    it('picks the highest common version from a cniVersions list', async () => {
      const conf = fx.conf({
        cniVersion: undefined,
        cniVersions: ['0.3.1', '1.0.0', '1.1.0', '9.9.9'],
      });
      const id = cid();
      const r = await add(id, conf);
      expect(r.code, r.stdout).toBe(0);
      expect(r.json!.cniVersion).toBe('1.1.0');
      expect((await del(id, conf)).code).toBe(0);
    });

    it('ADD in a chain appends to prevResult, indexing its own IPs', async () => {
      const prevResult = {
        cniVersion: '1.1.0',
        interfaces: [{ name: 'eth0', mac: '02:00:00:00:00:01', sandbox: netns }],
        ips: [{ address: '192.168.5.2/24', interface: 0 }],
      };
      const id = cid();
      const r = await add(id, fx.conf({ prevResult }));
      expect(r.code, r.stdout).toBe(0);
      expect((r.json!.interfaces as { name: string }[]).map((i) => i.name)).toEqual([
        'eth0',
        'net1',
      ]);
      expect((r.json!.ips as { interface: number }[]).map((i) => i.interface)).toEqual([0, 1]);
      const check = await fx.run(
        { CNI_COMMAND: 'CHECK', CNI_CONTAINERID: id, CNI_NETNS: netns, CNI_IFNAME: 'net1' },
        fx.conf({ prevResult: r.json }),
      );
      expect(check.code, check.stdout).toBe(0);
      expect((await del(id)).code).toBe(0);
    });

    it('CHECK fails when the OVS port has gone, and when prevResult disagrees', async () => {
      const id = cid();
      const r = await add(id);
      expect(r.code).toBe(0);
      const env = {
        CNI_COMMAND: 'CHECK',
        CNI_CONTAINERID: id,
        CNI_NETNS: netns,
        CNI_IFNAME: 'net1',
      };
      const wrongMac = structuredClone(r.json!) as { interfaces: { mac: string }[] };
      wrongMac.interfaces[0]!.mac = '02:11:11:11:11:11';
      const bad = await fx.run(env, fx.conf({ prevResult: wrongMac }));
      expect(bad.json).toMatchObject({ code: 110 });
      const noPrev = await fx.run(env, fx.conf());
      expect(noPrev.json).toMatchObject({ code: 7 });
      expect(String(noPrev.json!.msg)).toContain('prevResult');
      const port = JSON.parse(
        (await import('node:fs')).readFileSync(`${fx.socketDir}/${id}/net1.json`, 'utf8'),
      ).ovsPort as string;
      await fx.ovs.vswitch.delPort(port);
      const missing = await fx.run(env, fx.conf({ prevResult: r.json }));
      expect(missing.code).toBe(1);
      expect(missing.json).toMatchObject({ code: 110 });
      expect(String(missing.json!.msg)).toContain(`OVS port ${port} is missing`);
      expect((await del(id)).code).toBe(0);
    });

    it('DEL is idempotent: unknown attachment, repeated, netns gone, empty prevResult', async () => {
      expect((await del(cid())).code).toBe(0);
      const id = cid();
      const ns = fx.netns('gone');
      const env = { CNI_CONTAINERID: id, CNI_NETNS: ns, CNI_IFNAME: 'net1' };
      expect((await fx.run({ CNI_COMMAND: 'ADD', ...env }, fx.conf())).code).toBe(0);
      fx.deleteNetns(ns);
      for (let i = 0; i < 3; i++) {
        const r = await fx.run({ CNI_COMMAND: 'DEL', ...env }, fx.conf());
        expect(r.code, r.stdout).toBe(0);
        expect(r.stdout).toBe('');
      }
      expect(fx.leases()).toEqual([]);
      expect(await fx.portNames()).toEqual([fx.ovs.bridge]);
    });

    it('a second ADD of the same attachment is refused without touching the first', async () => {
      const id = cid();
      expect((await add(id)).code).toBe(0);
      const again = await add(id);
      expect(again.code).toBe(1);
      expect(again.json).toMatchObject({ code: 101 });
      expect(fx.leases()).toHaveLength(1);
      expect((await del(id)).code).toBe(0);
    });

    it('every error path returns the spec error JSON with its code and a message naming the culprit', async () => {
      const env = { CNI_CONTAINERID: cid(), CNI_NETNS: netns, CNI_IFNAME: 'net1' };
      const cases: {
        name: string;
        env: Record<string, string | undefined>;
        conf: unknown;
        code: number;
        msg: RegExp;
      }[] = [
        {
          name: 'incompatible version',
          env: { CNI_COMMAND: 'ADD', ...env },
          conf: fx.conf({ cniVersion: '0.3.1' }),
          code: 1,
          msg: /cniVersion 0\.3\.1/,
        },
        {
          name: 'STATUS below 1.1.0',
          env: { CNI_COMMAND: 'STATUS' },
          conf: fx.conf({ cniVersion: '1.0.0' }),
          code: 1,
          msg: /STATUS needs cniVersion 1\.1\.0/,
        },
        {
          name: 'unsupported field',
          env: { CNI_COMMAND: 'ADD', ...env },
          conf: fx.conf({ ipMasq: true }),
          code: 2,
          msg: /ipMasq=true/,
        },
        {
          name: 'netns missing',
          env: { CNI_COMMAND: 'ADD', ...env, CNI_NETNS: '/run/netns/flcni-nope' },
          conf: fx.conf(),
          code: 3,
          msg: /CNI_NETNS/,
        },
        { name: 'no CNI_COMMAND', env: { ...env }, conf: fx.conf(), code: 4, msg: /CNI_COMMAND/ },
        {
          name: 'bad command',
          env: { CNI_COMMAND: 'UP', ...env },
          conf: fx.conf(),
          code: 4,
          msg: /CNI_COMMAND/,
        },
        {
          name: 'no container id',
          env: { CNI_COMMAND: 'ADD', CNI_NETNS: netns, CNI_IFNAME: 'net1' },
          conf: fx.conf(),
          code: 4,
          msg: /CNI_CONTAINERID/,
        },
        {
          name: 'bad container id',
          env: { CNI_COMMAND: 'ADD', ...env, CNI_CONTAINERID: '../etc' },
          conf: fx.conf(),
          code: 4,
          msg: /CNI_CONTAINERID/,
        },
        {
          name: 'ifname too long',
          env: { CNI_COMMAND: 'ADD', ...env, CNI_IFNAME: 'a-very-long-ifname' },
          conf: fx.conf(),
          code: 4,
          msg: /CNI_IFNAME/,
        },
        {
          name: 'ifname traversal',
          env: { CNI_COMMAND: 'ADD', ...env, CNI_IFNAME: '..' },
          conf: fx.conf(),
          code: 4,
          msg: /CNI_IFNAME/,
        },
        {
          name: 'CNI_ARGS pod traversal',
          env: {
            CNI_COMMAND: 'ADD',
            ...env,
            CNI_ARGS: 'K8S_POD_NAMESPACE=default;K8S_POD_NAME=../../etc',
          },
          conf: fx.conf(),
          code: 4,
          msg: /K8S_POD_NAME/,
        },
        {
          name: 'CNI_ARGS namespace too long',
          env: {
            CNI_COMMAND: 'ADD',
            ...env,
            CNI_ARGS: `K8S_POD_NAMESPACE=${'a'.repeat(64)};K8S_POD_NAME=p`,
          },
          conf: fx.conf(),
          code: 4,
          msg: /K8S_POD_NAMESPACE/,
        },
        {
          name: 'CNI_ARGS malformed',
          env: { CNI_COMMAND: 'ADD', ...env, CNI_ARGS: 'novalue' },
          conf: fx.conf(),
          code: 4,
          msg: /CNI_ARGS/,
        },
        {
          name: 'CNI_ARGS unknown key',
          env: { CNI_COMMAND: 'ADD', ...env, CNI_ARGS: 'FOO=1' },
          conf: fx.conf(),
          code: 4,
          msg: /FOO/,
        },
        {
          name: 'GC without CNI_PATH',
          env: { CNI_COMMAND: 'GC', CNI_PATH: '' },
          conf: fx.conf({ 'cni.dev/valid-attachments': [] }),
          code: 4,
          msg: /CNI_PATH/,
        },
        {
          name: 'socketDir not a directory',
          env: { CNI_COMMAND: 'ADD', ...env },
          conf: fx.conf({ socketDir: `${fx.base}/afile` }),
          code: 5,
          msg: /socketDir/,
        },
        {
          name: 'undecodable stdin',
          env: { CNI_COMMAND: 'ADD', ...env },
          conf: '{"cniVersion": "1.1.0", ',
          code: 6,
          msg: /decode/,
        },
        {
          name: 'stdin not an object',
          env: { CNI_COMMAND: 'ADD', ...env },
          conf: '[1,2]',
          code: 6,
          msg: /not a JSON object/,
        },
        {
          name: 'socket path over 107 bytes',
          env: { CNI_COMMAND: 'ADD', ...env },
          conf: fx.conf({ socketDir: `/tmp/${'d'.repeat(90)}` }),
          code: 7,
          msg: /socketDir .* 107/,
        },
        {
          name: 'socketDir missing',
          env: { CNI_COMMAND: 'ADD', ...env },
          conf: fx.conf({ socketDir: undefined }),
          code: 7,
          msg: /socketDir/,
        },
        {
          name: 'bad mtu',
          env: { CNI_COMMAND: 'ADD', ...env },
          conf: fx.conf({ mtu: 20 }),
          code: 7,
          msg: /mtu/,
        },
        {
          name: 'unknown bridge',
          env: { CNI_COMMAND: 'ADD', ...env },
          conf: fx.conf({ bridge: 'br-nope' }),
          code: 7,
          msg: /bridge br-nope/,
        },
        {
          name: 'IPAM plugin missing',
          env: { CNI_COMMAND: 'ADD', ...env },
          conf: fx.conf({ ipam: { type: 'no-such-ipam' } }),
          code: 7,
          msg: /ipam\.type "no-such-ipam"/,
        },
        {
          name: 'OVS unreachable',
          env: { CNI_COMMAND: 'ADD', ...env },
          conf: fx.conf({ ovsdbSocket: `${fx.base}/no.sock` }),
          code: 11,
          msg: /ovsdbSocket/,
        },
        {
          name: 'STATUS, OVS unreachable',
          env: { CNI_COMMAND: 'STATUS' },
          conf: fx.conf({ ovsdbSocket: `${fx.base}/no.sock` }),
          code: 50,
          msg: /OVS is not reachable/,
        },
        {
          name: 'STATUS, bridge missing',
          env: { CNI_COMMAND: 'STATUS' },
          conf: fx.conf({ bridge: 'br-nope' }),
          code: 50,
          msg: /bridge br-nope does not exist/,
        },
        {
          name: 'STATUS, IPAM missing',
          env: { CNI_COMMAND: 'STATUS' },
          conf: fx.conf({ ipam: { type: 'no-such-ipam' } }),
          code: 50,
          msg: /no-such-ipam/,
        },
      ];
      writeFileSync(`${fx.base}/afile`, 'x');
      for (const c of cases) {
        const r = await fx.run(c.env, c.conf);
        expect(r.code, c.name).toBe(1);
        expect(r.json, `${c.name}: ${r.stdout}`).toMatchObject({
          code: c.code,
          cniVersion: expect.any(String),
        });
        expect(String(r.json!.msg), c.name).toMatch(c.msg);
      }
      // Nothing was left behind by any of them.
      expect(await fx.portNames()).toEqual([fx.ovs.bridge]);
      expect(fx.leases()).toEqual([]);
      expect(fx.socketTree()).toEqual([]);
    });

    it('ADD waiting on a busy pod lock fails with 11 (try again later)', async () => {
      const id = cid();
      const lock = `${fx.socketDir}/.locks/${id}.lock`;
      mkdirSync(`${fx.socketDir}/.locks`, { recursive: true });
      // Another process (util-linux flock) holds the pod's lock until its stdin closes.
      const holder = spawn('flock', [lock, 'cat'], { stdio: ['pipe', 'ignore', 'inherit'] });
      try {
        await waitFor(
          () => spawnSync('flock', ['-n', lock, 'true']).status === 1,
          'the other process to hold the lock',
        );
        const r = await add(id, fx.conf({ lockTimeoutMs: 200 }));
        expect(r.json).toMatchObject({ code: 11 });
        expect(String(r.json!.msg)).toContain(`${id}.lock`);
      } finally {
        holder.stdin.end();
        await new Promise((r) => holder.once('close', r));
      }
      rmSync(lock, { force: true });
    });

    it('a failed ADD undoes its OVS port, pod folder and IPAM lease', async () => {
      const id = cid();
      // Make the final step (writing <ifname>.json) fail after IPAM and OVS succeeded.
      mkdirSync(`${fx.socketDir}/${id}/net1.json/blocker`, { recursive: true });
      const r = await add(id);
      expect(r.json, r.stdout).toMatchObject({ code: 5 });
      expect(await fx.portNames()).toEqual([fx.ovs.bridge]);
      expect(fx.leases()).toEqual([]);
      (await import('node:fs')).rmSync(`${fx.socketDir}/${id}`, { recursive: true });
      // IPAM failure (range exhausted): nothing of the second ADD remains.
      const tiny = fx.conf({
        ipam: { type: 'host-local', dataDir: fx.ipamDir, ranges: [[{ subnet: '10.78.0.0/30' }]] },
      });
      const first = cid();
      expect((await add(first, tiny)).code).toBe(0);
      const second = cid();
      const full = await add(second, tiny);
      expect(full.code).toBe(1);
      expect(String(full.json!.msg)).toContain('host-local');
      expect(existsSync(`${fx.socketDir}/${second}`)).toBe(false);
      expect((await fx.portNames()).length).toBe(2);
      expect((await del(first, tiny)).code).toBe(0);
    });

    it('STATUS succeeds when OVS, the bridge, ovs-vswitchd and the IPAM plugin can serve ADD', async () => {
      const r = await fx.run({ CNI_COMMAND: 'STATUS' }, fx.conf());
      expect(r.code, r.stdout).toBe(0);
      expect(r.stdout).toBe('');
    });

    it('GC removes ports, socket folders and leases of attachments not listed, under either key', async () => {
      const ids = [cid(), cid(), cid(), cid()];
      for (const id of ids) expect((await add(id)).code).toBe(0);
      // A lease with no port or files (e.g. left by a crash) is found in host-local's store.
      writeFileSync(`${fx.ipamDir}/${fx.network}/10.77.0.250`, `orphan${fx.id}\r\nnet1`);
      expect(fx.leases()).toHaveLength(5);
      const gc = await fx.run(
        { CNI_COMMAND: 'GC' },
        fx.conf({
          'cni.dev/valid-attachments': [
            { containerID: ids[0], ifname: 'net1' },
            { containerID: ids[1], ifname: 'net1' },
          ],
        }),
      );
      expect(gc.code, gc.stdout).toBe(0);
      expect(fx.leases()).toHaveLength(2);
      expect(fx.socketTree()).toEqual(
        [ids[0], `${ids[0]}/net1.json`, ids[1], `${ids[1]}/net1.json`].sort(),
      );
      expect(await fx.portNames()).toHaveLength(3);
      const gcOld = await fx.run(
        { CNI_COMMAND: 'GC' },
        fx.conf({ 'cni.dev/attachments': [{ containerID: ids[1], ifname: 'net1' }] }),
      );
      expect(gcOld.code, gcOld.stdout).toBe(0);
      expect(fx.socketTree()).toEqual([ids[1], `${ids[1]}/net1.json`]);
      expect(fx.leases()).toHaveLength(1);
      const none = await fx.run({ CNI_COMMAND: 'GC' }, fx.conf());
      expect(none.json).toMatchObject({ code: 7 });
      expect((await del(ids[1]!)).code).toBe(0);
      expect(readdirSync(`${fx.ipamDir}/${fx.network}`).filter((f) => /^\d/.test(f))).toEqual([]);
    });

    it('STATUS is 51 when existing pods may have lost connectivity: bridge gone under them, ovs-vswitchd stuck', async () => {
      const id = cid();
      expect((await add(id)).code).toBe(0);
      const noBridge = await fx.run({ CNI_COMMAND: 'STATUS' }, fx.conf({ bridge: 'br-gone' }));
      expect(noBridge.code).toBe(1);
      expect(noBridge.json).toMatchObject({ code: 51 });
      expect(String(noBridge.json!.msg)).toMatch(
        /bridge br-gone does not exist.*ovs-vsctl add-br br-gone.*limited connectivity/,
      );
      expect((await del(id)).code).toBe(0);

      const pid = Number(readFileSync(join(fx.ovs.runDir, 'ovs-vswitchd.pid'), 'utf8').trim());
      process.kill(pid, 'SIGSTOP');
      let stuck;
      try {
        stuck = await fx.run({ CNI_COMMAND: 'STATUS' }, fx.conf());
      } finally {
        process.kill(pid, 'SIGCONT');
      }
      expect(stuck.code).toBe(1);
      expect(stuck.json).toMatchObject({ code: 51 });
      expect(String(stuck.json!.msg)).toMatch(
        /ovs-vswitchd is not running or not applying configuration.*start \(or restart\) ovs-vswitchd/,
      );
      const back = await fx.run({ CNI_COMMAND: 'STATUS' }, fx.conf());
      expect(back.code, back.stdout).toBe(0);
    });

    it('STATUS and GC are passed on to a 1.1.0 IPAM plugin; its STATUS failure is reported as 50', async () => {
      const callLog = join(fx.base, 'ipam11-calls.jsonl');
      const failFlag = join(fx.base, 'ipam11-down');
      const conf = fx.conf({
        ipam: {
          type: 'host-local-1.1',
          dataDir: fx.ipamDir,
          ranges: [[{ subnet: '10.77.0.0/24' }]],
          callLog,
          failStatusIf: failFlag,
        },
      });
      const path = { CNI_PATH: `${TEST_BIN}:${CNI_PATH}` };
      const calls = (): { env: Record<string, string>; conf: Record<string, unknown> }[] =>
        existsSync(callLog)
          ? readFileSync(callLog, 'utf8')
              .trim()
              .split('\n')
              .map((l) => JSON.parse(l))
          : [];

      const ok = await fx.run({ CNI_COMMAND: 'STATUS', ...path }, conf);
      expect(ok.code, ok.stdout).toBe(0);
      const status = calls().filter((c) => c.env.CNI_COMMAND === 'STATUS');
      expect(status).toHaveLength(1);
      expect(status[0]!.conf).toMatchObject({
        cniVersion: '1.1.0',
        name: fx.network,
        ipam: { type: 'host-local-1.1' },
      });
      expect(status[0]!.env.CNI_CONTAINERID).toBeUndefined();

      writeFileSync(failFlag, '');
      const down = await fx.run({ CNI_COMMAND: 'STATUS', ...path }, conf);
      expect(down.code).toBe(1);
      expect(down.json).toMatchObject({ code: 50 });
      expect(String(down.json!.msg)).toMatch(
        /IPAM plugin host-local-1\.1 is not available: .*address pool offline/,
      );
      rmSync(failFlag);

      const keep = cid();
      const drop = cid();
      for (const id of [keep, drop])
        expect(
          (
            await fx.run(
              {
                CNI_COMMAND: 'ADD',
                CNI_CONTAINERID: id,
                CNI_NETNS: netns,
                CNI_IFNAME: 'net1',
                ...path,
              },
              conf,
            )
          ).code,
        ).toBe(0);
      expect(fx.leases()).toHaveLength(2);
      const valid = [{ containerID: keep, ifname: 'net1' }];
      const gc = await fx.run(
        { CNI_COMMAND: 'GC', ...path },
        { ...conf, 'cni.dev/valid-attachments': valid },
      );
      expect(gc.code, gc.stdout).toBe(0);
      const gcCalls = calls().filter((c) => c.env.CNI_COMMAND === 'GC');
      expect(gcCalls).toHaveLength(1);
      expect(gcCalls[0]!.conf).toMatchObject({
        cniVersion: '1.1.0',
        'cni.dev/valid-attachments': valid,
      });
      // The stale lease was released by DEL on its attachment; the kept one stays.
      const dels = calls().filter((c) => c.env.CNI_COMMAND === 'DEL');
      expect(dels.map((c) => c.env.CNI_CONTAINERID)).toEqual([drop]);
      expect(fx.leases()).toHaveLength(1);
      expect(fx.socketTree()).toEqual([keep, `${keep}/net1.json`]);
      expect(
        (
          await fx.run(
            {
              CNI_COMMAND: 'DEL',
              CNI_CONTAINERID: keep,
              CNI_NETNS: netns,
              CNI_IFNAME: 'net1',
              ...path,
            },
            conf,
          )
        ).code,
      ).toBe(0);
      expect(fx.leases()).toEqual([]);
    });

    it('GC keeps going past an attachment it cannot remove, and reports that one', async () => {
      const ids = [cid(), cid(), cid()];
      for (const id of ids) expect((await add(id)).code).toBe(0);
      // The middle attachment's socket path is a non-empty folder: removing it fails.
      mkdirSync(`${fx.socketDir}/${ids[1]}/net1.sock/held`, { recursive: true });
      const gc = await fx.run({ CNI_COMMAND: 'GC' }, fx.conf({ 'cni.dev/valid-attachments': [] }));
      expect(gc.code).toBe(1);
      expect(gc.json).toMatchObject({ code: 120 });
      expect(String(gc.json!.msg)).toMatch(/removed 2 of 3 stale attachments/);
      expect(String(gc.json!.details)).toContain(`${ids[1]}/net1`);
      // Everything else of all three is gone: ports, leases, the other folders.
      expect(await fx.portNames()).toEqual([fx.ovs.bridge]);
      expect(fx.leases()).toEqual([]);
      expect(fx.socketTree().filter((p) => !p.startsWith(ids[1]!))).toEqual([]);
      rmSync(`${fx.socketDir}/${ids[1]}`, { recursive: true });
    });

    it('an SR-IOV VF attachment (runtimeConfig.deviceID) reports its pciID, makes no OVS port, and checks the device', async () => {
      // A sysfs tree as the kernel lays it out: one PF with two VFs, one of them with a netdev.
      const sys = join(fx.base, 'sys');
      const devices = join(sys, 'bus', 'pci', 'devices');
      const pf = '0000:03:00.0';
      mkdirSync(join(devices, pf), { recursive: true });
      for (const vf of ['0000:03:02.0', '0000:03:02.1']) {
        mkdirSync(join(devices, vf), { recursive: true });
        symlinkSync(`../${pf}`, join(devices, vf, 'physfn'));
      }
      mkdirSync(join(devices, '0000:03:02.1', 'net', 'enp3s2f1'), { recursive: true });
      writeFileSync(
        join(devices, '0000:03:02.1', 'net', 'enp3s2f1', 'address'),
        '02:aa:bb:cc:dd:01\n',
      );
      const portsBefore = await fx.portNames();

      const id = cid();
      const conf = fx.conf({ sysfsRoot: sys, runtimeConfig: { deviceID: '0000:03:02.0' } });
      const r = await add(id, conf);
      expect(r.code, r.stdout).toBe(0);
      expect(r.json!.interfaces).toEqual([{ name: 'net1', sandbox: netns, pciID: '0000:03:02.0' }]);
      expect((r.json!.ips as { address: string }[])[0]!.address).toMatch(/^10\.77\.0\.\d+\/24$/);
      expect(await fx.portNames()).toEqual(portsBefore);
      expect(fx.socketTree()).toEqual([]);
      expect(fx.leases()).toHaveLength(1);
      const env = {
        CNI_COMMAND: 'CHECK',
        CNI_CONTAINERID: id,
        CNI_NETNS: netns,
        CNI_IFNAME: 'net1',
      };
      expect((await fx.run(env, { ...conf, prevResult: r.json })).code).toBe(0);
      const otherVf = await fx.run(
        env,
        fx.conf({
          sysfsRoot: sys,
          runtimeConfig: { deviceID: '0000:03:02.1' },
          prevResult: r.json,
        }),
      );
      expect(otherVf.json).toMatchObject({ code: 110 });
      expect(String(otherVf.json!.msg)).toContain(
        'pciID 0000:03:02.0 differs from deviceID 0000:03:02.1',
      );
      // Below 1.1.0 the result has no pciID field.
      const olderId = cid();
      const olderConf = fx.conf({
        cniVersion: '1.0.0',
        sysfsRoot: sys,
        runtimeConfig: { deviceID: '0000:03:02.1' },
      });
      const older = await add(olderId, olderConf);
      expect(older.json!.interfaces).toEqual([
        { name: 'net1', mac: '02:aa:bb:cc:dd:01', sandbox: netns },
      ]);
      expect((await del(olderId, olderConf)).code).toBe(0);
      for (let i = 0; i < 2; i++) expect((await del(id, conf)).code).toBe(0);
      expect(fx.leases()).toEqual([]);

      const notVf = await add(cid(), fx.conf({ sysfsRoot: sys, runtimeConfig: { deviceID: pf } }));
      expect(notVf.json).toMatchObject({ code: 7 });
      expect(String(notVf.json!.msg)).toMatch(/deviceID 0000:03:00\.0 is not an SR-IOV VF/);
      const absent = await add(
        cid(),
        fx.conf({ sysfsRoot: sys, runtimeConfig: { deviceID: '0000:04:00.1' } }),
      );
      expect(absent.json).toMatchObject({ code: 7 });
      expect(String(absent.json!.msg)).toMatch(
        /runtimeConfig\.deviceID 0000:04:00\.1 is not a PCI device of this node/,
      );
      expect(fx.leases()).toEqual([]);
    });

    it('20 concurrent ADDs then DELs leave OVS and the IPAM store exactly as before', async () => {
      const portsBefore = await fx.portNames();
      const leasesBefore = fx.leases();
      const treeBefore = fx.socketTree();
      const pods = Array.from({ length: 20 }, (_, i) => ({
        CNI_CONTAINERID: cid(),
        CNI_NETNS: netns,
        CNI_IFNAME: 'net1',
        CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=load;K8S_POD_NAME=pod-${i}`, // as kubelet's runtimes send it
      }));
      const adds = await Promise.all(
        pods.map((p) => fx.run({ CNI_COMMAND: 'ADD', ...p }, fx.conf())),
      );
      for (const a of adds) expect(a.code, a.stdout).toBe(0);
      const ips = adds.map((a) => (a.json!.ips as { address: string }[])[0]!.address);
      expect(new Set(ips).size).toBe(20);
      const sockets = adds.map(
        (a) => (a.json!.interfaces as { socketPath: string }[])[0]!.socketPath,
      );
      expect(new Set(sockets).size).toBe(20);
      expect((await fx.portNames()).length).toBe(portsBefore.length + 20);
      expect(fx.leases().length).toBe(leasesBefore.length + 20);
      const dels = await Promise.all(
        pods.map((p) => fx.run({ CNI_COMMAND: 'DEL', ...p }, fx.conf())),
      );
      for (const d of dels) expect(d.code, d.stdout).toBe(0);
      expect(await fx.portNames()).toEqual(portsBefore);
      expect(fx.leases()).toEqual(leasesBefore);
      expect(fx.socketTree()).toEqual(treeBefore);
    }, 120_000);
  },
);
