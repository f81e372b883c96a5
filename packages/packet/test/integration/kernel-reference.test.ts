import { execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { arpFrame, flowFrame, neighborSolicitationFrame, parseFrame } from '../../src/index';

/**
 * The Linux kernel as the reference peer: it answers our ARP requests and Neighbor
 * Solicitations only if they are well formed, and delivers our UDP datagrams only if their
 * checksums are right. Two namespaces joined by a veth pair; we speak raw frames on one end.
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

async function udpDelivered(frame: Buffer, addr: string): Promise<string[]> {
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
  await sendRecv([frame], 0.2);
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
        flowFrame({ ...base, src: '10.77.0.1', dst: '10.77.0.2', payload: Buffer.from('v4 ok') }),
        '10.77.0.2',
      ),
    ).toEqual(['v4 ok']);
    expect(
      await udpDelivered(
        flowFrame({ ...base, src: 'fd77::1', dst: 'fd77::2', payload: Buffer.from('v6 ok') }),
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
    expect(await udpDelivered(bad, '10.77.0.2')).toEqual([]);
  });
});
