import { createServer, type AddressInfo, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { OvsConnectTimeoutError } from './errors';
import {
  certificateNames,
  checkPeerName,
  formatOvsRemote,
  openOvsSocket,
  OvsRemoteError,
  parseOvsRemote,
  switchName,
} from './remote';

describe('OVS remotes', () => {
  it('parses unix and tcp remotes in OVS syntax, IPv6 in brackets, and formats them back', () => {
    for (const [text, parsed] of [
      ['unix:/var/run/openvswitch/db.sock', { kind: 'unix', path: '/var/run/openvswitch/db.sock' }],
      ['tcp:10.0.0.5:6640', { kind: 'tcp', host: '10.0.0.5', port: 6640 }],
      ['tcp:[fd00::5]:6653', { kind: 'tcp', host: 'fd00::5', port: 6653 }],
      ['tcp:ovs.node-1.example:6640', { kind: 'tcp', host: 'ovs.node-1.example', port: 6640 }],
      ['ssl:10.0.0.5:6640', { kind: 'ssl', host: '10.0.0.5', port: 6640 }],
    ] as const) {
      expect(parseOvsRemote(text)).toEqual(parsed);
      expect(formatOvsRemote(parseOvsRemote(text))).toBe(text);
    }
  });

  it('refuses what OVS would not connect to, saying the syntax', () => {
    for (const [text, message] of [
      ['ptcp:6640', /not supported; use unix:<path>, tcp:<host>:<port> or ssl:<host>:<port>/],
      ['pssl:6640', /not supported/],
      ['ssl:10.0.0.5', /is not ssl:<host>:<port>/],
      ['unix:db.sock', /must be absolute/],
      ['tcp:10.0.0.5', /is not tcp:<host>:<port>/],
      ['tcp:10.0.0.5:0', /is not tcp:<host>:<port>/],
      ['tcp:10.0.0.5:70000', /is not tcp:<host>:<port>/],
      ['tcp:fd00::5:6640', /is not tcp:<host>:<port>/],
      ['tcp:[10.0.0.5]:6640', /is not an IPv6 address/],
      ['10.0.0.5:6640', /not supported/],
    ] as const)
      expect(() => parseOvsRemote(text), text).toThrow(message);
    expect(() => parseOvsRemote('x')).toThrow(OvsRemoteError);
  });
});

describe('switch names (which node a switch certificate is for)', () => {
  const cert = (subjectaltname: string | undefined, cn: string) =>
    ({ subjectaltname, subject: { CN: cn } }) as unknown as import('node:tls').PeerCertificate;

  it('names a node ovs-switch.<node> and refuses what is not a node name', () => {
    expect(switchName('node-a')).toBe('ovs-switch.node-a');
    expect(() => switchName('Node_A')).toThrow(OvsRemoteError);
  });

  it('reads DNS SANs, else the CN; the check wants the exact name', () => {
    expect(certificateNames(cert('DNS:ovs-switch.a, IP Address:10.0.0.1', 'x'))).toEqual([
      'ovs-switch.a',
    ]);
    expect(certificateNames(cert(undefined, 'ovs-switch.a'))).toEqual(['ovs-switch.a']);
    const check = checkPeerName('ovs-switch.a');
    expect(check('10.0.0.1', cert('DNS:ovs-switch.a', 'x'))).toBeUndefined();
    expect(check('10.0.0.1', cert(undefined, 'ovs-switch.a'))).toBeUndefined();
    expect(check('10.0.0.1', cert('DNS:ovs-switch.b', 'ovs-switch.a'))?.message).toBe(
      "the switch's certificate names ovs-switch.b, not ovs-switch.a: it is not that node's switch",
    );
    expect(check('10.0.0.1', cert('DNS:*.a', 'x'))).toBeInstanceOf(Error);
  });
});

describe('openOvsSocket', () => {
  it('gives up a TLS handshake the peer never completes at timeoutMs, and when aborted', async () => {
    const accepted: Socket[] = [];
    const server = createServer((s) => {
      accepted.push(s);
      s.on('error', () => undefined).resume();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const remote = {
        kind: 'ssl',
        host: '127.0.0.1',
        port: (server.address() as AddressInfo).port,
      } as const;
      const start = Date.now();
      const err = await openOvsSocket(remote, undefined, undefined, { timeoutMs: 100 }).catch(
        (e: unknown) => e,
      );
      expect(Date.now() - start).toBeLessThan(1000);
      expect(err).toBeInstanceOf(OvsConnectTimeoutError);
      expect((err as Error).message).toBe(
        `the TLS handshake with ${formatOvsRemote(remote)} did not complete within 100 ms (the peer accepted the connection but did not finish TLS: is it an ssl: listener?)`,
      );
      expect((err as OvsConnectTimeoutError).context).toEqual({
        remote: formatOvsRemote(remote),
        timeoutMs: 100,
        phase: 'tls-handshake',
      });

      const abort = new AbortController();
      const cancelled = openOvsSocket(remote, undefined, undefined, { signal: abort.signal });
      while (accepted.length < 2) await new Promise((r) => setTimeout(r, 5));
      abort.abort(new Error('no longer wanted'));
      await expect(cancelled).rejects.toThrow('no longer wanted');
      await expect(
        openOvsSocket(remote, undefined, undefined, { signal: abort.signal }),
      ).rejects.toThrow('no longer wanted');
    } finally {
      for (const s of accepted) s.destroy();
      await new Promise((r) => server.close(r));
    }
  });
});
