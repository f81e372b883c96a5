import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { PodDeviceError, discoverPodPorts, planEal, loadConfig } from './index';
import { z } from 'zod';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));
function podDir(files: Record<string, unknown>): string {
  const dir = mkdtempSync(join(tmpdir(), 'flowline-pod-'));
  dirs.push(dir);
  for (const [name, content] of Object.entries(files)) {
    writeFileSync(join(dir, name), typeof content === 'string' ? content : JSON.stringify(content));
  }
  return dir;
}

describe('discoverPodPorts (contract 3, docs/architecture.md#nf-boot)', () => {
  it('turns each <ifname>.json into a server-mode virtio-user port', () => {
    const dir = podDir({
      'net1.json': {
        socketPath: '/var/run/flowline/ns_p/net1.sock',
        mac: '02:00:00:00:00:01',
        ips: ['10.0.0.2/24'],
        ovsPort: 'fl-abc-net1',
      },
      'net2.json': {
        socketPath: '/var/run/flowline/ns_p/net2.sock',
        ips: [{ address: 'fd00::2/64' }],
      },
      'net1.sock': '',
    });
    const ports = discoverPodPorts({ podDir: dir, ports: [] }, {});
    expect(ports).toEqual([
      {
        name: 'net1',
        kind: 'virtio-user',
        devargs: [
          `net_virtio_user_net1,path=${join(dir, 'net1.sock')},server=1,queues=1,queue_size=1024,mac=02:00:00:00:00:01`,
        ],
        origin: join(dir, 'net1.json'),
        // Beside the file in the folder this process sees, not the host path the file names.
        socketPath: join(dir, 'net1.sock'),
        mac: '02:00:00:00:00:01',
        ips: ['10.0.0.2/24'],
      },
      expect.objectContaining({ name: 'net2', ips: ['fd00::2/64'] }),
    ]);
  });

  it('turns PCIDEVICE_FLOWLINE_IO_* into PCI ports and allow-lists them for the EAL', () => {
    const ports = discoverPodPorts(
      { ports: [] },
      { PCIDEVICE_FLOWLINE_IO_SRIOV_VF: '0000:3b:02.0,0000:3b:02.1' },
    );
    expect(ports.map((p) => [p.name, p.kind, p.devargs[0]])).toEqual([
      ['sriov_vf0', 'pci', '0000:3b:02.0'],
      ['sriov_vf1', 'pci', '0000:3b:02.1'],
    ]);
    const config = loadConfig({
      kind: 'router',
      nfSchema: z.object({}),
      argv: [],
      env: {},
    }).runtime;
    expect(planEal(config, ports).pciAllow).toEqual(['0000:3b:02.0', '0000:3b:02.1']);
    expect(planEal(config, []).pciAllow).toEqual([]);
  });

  it('offers AF_XDP then AF_PACKET for FLOWLINE_NETDEV_* netdevs', () => {
    const [port] = discoverPodPorts({ ports: [] }, { FLOWLINE_NETDEV_SRIOV_NET: 'ens1f0v3' });
    expect(port!.devargs).toEqual([
      'net_af_xdp_ens1f0v3,iface=ens1f0v3,start_queue=0,queue_count=1',
      'net_af_packet_ens1f0v3,iface=ens1f0v3,qpairs=1',
    ]);
  });

  it('refuses bad device data, naming where it came from', () => {
    expect(() => discoverPodPorts({ ports: [] }, { PCIDEVICE_FLOWLINE_IO_VF: '3b:02.0' })).toThrow(
      /PCIDEVICE_FLOWLINE_IO_VF: "3b:02.0" is not a PCI address/,
    );
    expect(() => discoverPodPorts({ ports: [] }, { FLOWLINE_NETDEV_X: 'a/b' })).toThrow(
      PodDeviceError,
    );
    const broken = podDir({ 'net1.json': '{nope' });
    expect(() => discoverPodPorts({ podDir: broken, ports: [] }, {})).toThrow(
      /net1\.json: not readable JSON/,
    );
    const notObject = podDir({ 'net1.json': '["/etc/passwd"]' });
    expect(() => discoverPodPorts({ podDir: notObject, ports: [] }, {})).toThrow(
      /net1\.json: is not an object/,
    );
    expect(() => discoverPodPorts({ podDir: '/nonexistent/pod', ports: [] }, {})).toThrow(
      /cannot list the pod dir/,
    );
    const badMac = podDir({ 'net1.json': { socketPath: '/s/net1.sock', mac: '02:00:00:00:01' } });
    expect(() => discoverPodPorts({ podDir: badMac, ports: [] }, {})).toThrow(
      /net1\.json: "mac": "02:00:00:00:01" is not a MAC address/,
    );
  });

  it('writes a MAC in the colon form that DPDK devargs read', () => {
    const dir = podDir({ 'net1.json': { socketPath: '/s/net1.sock', mac: '02-AA-00-00-00-01' } });
    const [port] = discoverPodPorts({ podDir: dir, ports: [] }, {});
    expect(port?.mac).toBe('02:aa:00:00:00:01');
    expect(port?.devargs[0]).toMatch(/,mac=02:aa:00:00:00:01$/);
  });

  it('gives interfaces that differ only in ".", "_" or "-" their own DPDK device', () => {
    const dir = podDir(
      Object.fromEntries(
        ['net-1', 'net1', 'net_1', 'net.1', 'net__1'].map((n) => [
          `${n}.json`,
          { socketPath: `/s/${n}.sock` },
        ]),
      ),
    );
    const device = (devargs: string) => devargs.split(',')[0];
    const virtio = discoverPodPorts({ podDir: dir, ports: [] }, {});
    expect(Object.fromEntries(virtio.map((p) => [p.name, device(p.devargs[0]!)]))).toEqual({
      'net-1': 'net_virtio_user_net_h1',
      net1: 'net_virtio_user_net1',
      net_1: 'net_virtio_user_net__1',
      'net.1': 'net_virtio_user_net_d1',
      net__1: 'net_virtio_user_net____1',
    });
    const netdevs = discoverPodPorts({ ports: [] }, { FLOWLINE_NETDEV_VF: 'eth_0,eth0,eth-0' });
    expect(netdevs.map((p) => p.devargs.map(device))).toEqual([
      ['net_af_xdp_eth__0', 'net_af_packet_eth__0'],
      ['net_af_xdp_eth0', 'net_af_packet_eth0'],
      ['net_af_xdp_eth_h0', 'net_af_packet_eth_h0'],
    ]);
    // Within DPDK's RTE_DEV_NAME_MAX_LEN (64 with the NUL), however many characters are escaped.
    const longest = podDir({ '_-_-_-_-_-_-_-_.json': { socketPath: '/s/x.sock' } });
    const [port] = discoverPodPorts({ podDir: longest, ports: [] }, {});
    expect(device(port!.devargs[0]!)!.length).toBeLessThan(64);
  });

  it('refuses two ports on one DPDK device, naming both', () => {
    const dir = podDir({ 'net1.json': { socketPath: '/s/net1.sock' } });
    expect(() =>
      discoverPodPorts(
        { podDir: dir, ports: [{ name: 'in', devargs: 'net_virtio_user_net1,path=/s/in.sock' }] },
        {},
      ),
    ).toThrow(
      new PodDeviceError(
        'config ports',
        `port "in" would probe DPDK device net_virtio_user_net1, which port "net1" (from ${join(dir, 'net1.json')}) probes`,
      ),
    );
    expect(() =>
      discoverPodPorts(
        { ports: [] },
        { PCIDEVICE_FLOWLINE_IO_A: '0000:3b:02.0', PCIDEVICE_FLOWLINE_IO_B: '0000:3B:02.0' },
      ),
    ).toThrow(
      /PCIDEVICE_FLOWLINE_IO_B: port "b0" would probe DPDK device 0000:3b:02\.0, which port "a0" \(from PCIDEVICE_FLOWLINE_IO_A\)/,
    );
  });

  it('refuses two ports with one name', () => {
    const dir = podDir({ 'in.json': { socketPath: '/s/in.sock' } });
    expect(() =>
      discoverPodPorts({ podDir: dir, ports: [{ name: 'in', devargs: 'net_null0' }] }, {}),
    ).toThrow(/port name "in" is also used/);
  });
});
