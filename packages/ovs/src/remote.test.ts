import { describe, expect, it } from 'vitest';
import {
  certificateNames,
  checkPeerName,
  formatOvsRemote,
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
