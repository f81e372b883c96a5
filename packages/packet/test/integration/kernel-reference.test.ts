import { execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ETH_P_IPV4,
  ETH_P_IPV6,
  IPPROTO_ICMP,
  IPPROTO_ICMPV6,
  arpFrame,
  ethernetHeader,
  flowFrame,
  fragmentIpv4,
  ipv4Header,
  ipv6Header,
  neighborSolicitationFrame,
  packetTooBigFrame,
  parseFrame,
} from '../../src/index';

/**
 * The Linux kernel as the reference peer: it answers our ARP requests and Neighbor
 * Solicitations only if they are well formed, delivers our UDP datagrams only if their
 * checksums are right (and only if it can reassemble them from our fragments), and takes the
 * MTU from our ICMP errors only if they are right. Two namespaces joined by a veth pair; we
 * speak raw frames on one end.
 */
const root = process.getuid?.() === 0;
const tag = `flpk${process.pid % 100000}`;
const nsWire = `${tag}w`;
const nsHost = `${tag}h`;
const wire = join(__dirname, 'wire.py');
const ourMac = '02:00:00:00:77:01';
let hostMac = '';

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: 'pipe' }).toString();
const inNs = (ns: string, ...args: string[]) => ip('netns', 'exec', ns, ...args);

function sendRecv(frames: Buffer[], seconds = 1.0): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const p = spawn('ip', [
      'netns',
      'exec',
      nsWire,
      'python3',
      wire,
      'send-recv',
      'w0',
      String(seconds),
    ]);
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.on('error', reject);
    p.on('exit', (code) =>
      code === 0
        ? resolve(
            out
              .split('\n')
              .filter(Boolean)
              .map((h) => Buffer.from(h, 'hex')),
          )
        : reject(new Error(`wire.py exited ${code}`)),
    );
    p.stdin.end(frames.map((f) => f.toString('hex')).join('\n'));
  });
}

async function udpDelivered(frames: Buffer[], addr: string): Promise<string[]> {
  const listener = spawn('ip', [
    'netns',
    'exec',
    nsHost,
    'python3',
    wire,
    'udp-listen',
    addr,
    '9999',
    '1.5',
  ]);
  let out = '';
  listener.stdout.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise<void>((resolve) => {
    const check = () => (out.includes('ready') ? resolve() : setTimeout(check, 20));
    check();
  });
  await sendRecv(frames, 0.2);
  await new Promise((r) => listener.on('exit', r));
  return out
    .split('\n')
    .filter((l) => l && l !== 'ready')
    .map((h) => Buffer.from(h, 'hex').toString());
}

describe.skipIf(!root)('packets against the Linux kernel (root: netns + veth)', () => {
  beforeAll(() => {
    ip('netns', 'add', nsWire);
    ip('netns', 'add', nsHost);
    ip('link', 'add', `${tag}a`, 'type', 'veth', 'peer', 'name', `${tag}b`);
    ip('link', 'set', `${tag}a`, 'netns', nsWire, 'name', 'w0');
    ip('link', 'set', `${tag}b`, 'netns', nsHost, 'name', 'h0');
    inNs(nsWire, 'ip', 'link', 'set', 'w0', 'address', ourMac, 'up');
    inNs(nsHost, 'ip', 'link', 'set', 'h0', 'up');
    inNs(nsHost, 'ip', 'addr', 'add', '10.77.0.2/24', 'dev', 'h0');
    inNs(nsHost, 'ip', 'addr', 'add', 'fd77::2/64', 'dev', 'h0', 'nodad');
    hostMac = /link\/ether ([0-9a-f:]{17})/.exec(inNs(nsHost, 'ip', 'link', 'show', 'h0'))![1]!;
  });
  afterAll(() => {
    for (const ns of [nsWire, nsHost]) {
      try {
        ip('netns', 'del', ns);
      } catch {
        // already gone
      }
    }
  });

  it('the kernel answers our ARP request', async () => {
    const replies = (
      await sendRecv([
        arpFrame({
          op: 'request',
          senderMac: ourMac,
          senderIp: '10.77.0.1',
          targetMac: '00:00:00:00:00:00',
          targetIp: '10.77.0.2',
        }),
      ])
    )
      .map(parseFrame)
      .filter((f) => f.arp?.op === 2);
    expect(replies[0]?.arp).toEqual({
      op: 2,
      senderMac: hostMac,
      senderIp: '10.77.0.2',
      targetMac: ourMac,
      targetIp: '10.77.0.1',
    });
  });

  it('the kernel answers our Neighbor Solicitation with a valid advertisement', async () => {
    const answers = (
      await sendRecv([
        neighborSolicitationFrame({ srcMac: ourMac, src: 'fd77::1', target: 'fd77::2' }),
      ])
    )
      .map(parseFrame)
      .filter((f) => f.l4?.icmpType === 136);
    expect(answers[0]).toMatchObject({
      dstMac: ourMac,
      srcMac: hostMac,
      ipv6: { src: 'fd77::2', dst: 'fd77::1', hopLimit: 255 },
      l4: { checksumOk: true },
    });
  });

  it('the kernel delivers our UDP over IPv4 and IPv6, and drops a corrupted checksum', async () => {
    const base = {
      srcMac: ourMac,
      dstMac: hostMac,
      protocol: 'udp' as const,
      srcPort: 4000,
      dstPort: 9999,
    };
    expect(
      await udpDelivered(
        [flowFrame({ ...base, src: '10.77.0.1', dst: '10.77.0.2', payload: Buffer.from('v4 ok') })],
        '10.77.0.2',
      ),
    ).toEqual(['v4 ok']);
    expect(
      await udpDelivered(
        [flowFrame({ ...base, src: 'fd77::1', dst: 'fd77::2', payload: Buffer.from('v6 ok') })],
        'fd77::2',
      ),
    ).toEqual(['v6 ok']);
    const bad = flowFrame({
      ...base,
      src: '10.77.0.1',
      dst: '10.77.0.2',
      payload: Buffer.from('bad'),
    });
    bad.writeUInt16BE(bad.readUInt16BE(40) ^ 0x00ff, 40); // UDP checksum at 14 + 20 + 6
    expect(await udpDelivered([bad], '10.77.0.2')).toEqual([]);
  });

  it('the kernel reassembles a datagram from our fragments, and not when one is missing', async () => {
    const text = Array.from({ length: 300 }, (_, i) => `chunk ${i};`).join('');
    const frame = flowFrame({
      srcMac: ourMac,
      dstMac: hostMac,
      src: '10.77.0.1',
      dst: '10.77.0.2',
      protocol: 'udp',
      srcPort: 4000,
      dstPort: 9999,
      df: false,
      payload: Buffer.from(text),
    });
    const eth = ethernetHeader(hostMac, ourMac, ETH_P_IPV4);
    const frags = fragmentIpv4(frame.subarray(14), 576).map((f) => Buffer.concat([eth, f]));
    expect(frags.length).toBeGreaterThan(4);
    // sent last first: reassembly must not depend on the order
    expect(await udpDelivered([...frags].reverse(), '10.77.0.2')).toEqual([text]);
    expect(await udpDelivered(frags.slice(1), '10.77.0.2')).toEqual([]);
  });

  it('the kernel caches the MTU our fragmentation needed / packet too big carry', async () => {
    // Traffic of the host to 10.78.0.0/16 and fd78::/64 goes through us (10.77.0.1, fd77::1).
    inNs(nsHost, 'ip', 'route', 'add', '10.78.0.0/16', 'via', '10.77.0.1');
    inNs(nsHost, 'ip', '-6', 'route', 'add', 'fd78::/64', 'via', 'fd77::1');
    // An echo reply of the host's (IPv4: the kernel takes the MTU of errors quoting the echo
    // replies it sends itself, icmp_err) and an echo request (IPv6: any, icmpv6_err) that we
    // could not send on: they reach no socket, the route's MTU is cached all the same.
    const echo = (family: 4 | 6, src: string, dst: string): Buffer => {
      const icmp = Buffer.from([family === 4 ? 0 : 128, 0, 0, 0, 0, 1, 0, 1]);
      const ip =
        family === 4
          ? ipv4Header({ src, dst, protocol: IPPROTO_ICMP, payloadLength: 1480 })
          : ipv6Header({ src, dst, nextHeader: IPPROTO_ICMPV6, payloadLength: 1460 });
      return Buffer.concat([
        ethernetHeader(ourMac, hostMac, family === 4 ? ETH_P_IPV4 : ETH_P_IPV6),
        ip,
        icmp,
      ]);
    };
    await sendRecv(
      [
        packetTooBigFrame(echo(4, '10.77.0.2', '10.78.0.5'), ourMac, '10.77.0.1', 1400),
        packetTooBigFrame(echo(6, 'fd77::2', 'fd78::5'), ourMac, 'fd77::1', 1300),
      ],
      0.2,
    );
    expect(inNs(nsHost, 'ip', 'route', 'get', '10.78.0.5')).toMatch(/ mtu 1400\b/);
    expect(inNs(nsHost, 'ip', '-6', 'route', 'get', 'fd78::5')).toMatch(/ mtu 1300\b/);
    // another destination through us keeps the link's MTU
    expect(inNs(nsHost, 'ip', 'route', 'get', '10.78.0.6')).not.toMatch(/ mtu /);
  });
});
