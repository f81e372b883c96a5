import { describe, expect, it } from 'vitest';
import { formatOvsRemote, OvsRemoteError, parseOvsRemote } from './remote';

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
