/**
 * flowline.match.v1 is the one match: firewall.v1 Rule and chain.v1 Classifier carry its
 * fields flat (names and types), and its PortRange encodes as the PortRange each of them
 * declared before it moved (the same bytes: wire compatible).
 */
import * as protoLoader from '@grpc/proto-loader';
import { describe, expect, it } from 'vitest';
import { loadChainV1 } from './chain-v1';
import { loadFirewallV1 } from './firewall-v1';
import { LOADER_OPTIONS } from './loader';

interface FieldDescriptor {
  name: string;
  number: number;
  type: string;
  typeName: string;
}

/** A message's fields by name, message types resolved to their full names. */
function fields(file: string, message: string): Map<string, FieldDescriptor> {
  const definitions = protoLoader.loadSync(file, LOADER_OPTIONS);
  const definition = definitions[message];
  if (!definition || !('type' in definition)) throw new Error(`${message} is not in ${file}`);
  // Type names are relative to the message's scope, as protobuf resolves them.
  const scopes = message.split('.').map((_, i, parts) => parts.slice(0, parts.length - i - 1));
  const resolve = (typeName: string): string =>
    scopes.map((s) => [...s, typeName].join('.')).find((full) => full in definitions) ?? typeName;
  const type = definition.type as { field: FieldDescriptor[] };
  return new Map(
    type.field.map((f) => [f.name, { ...f, typeName: f.typeName && resolve(f.typeName) }]),
  );
}

const match = fields('flowline/match/v1/match.proto', 'flowline.match.v1.Match');

describe('flowline.match.v1.Match', () => {
  it.each([
    ['flowline/firewall/v1/firewall.proto', 'flowline.firewall.v1.Rule'],
    ['flowline/chain/v1/chain.proto', 'flowline.chain.v1.Classifier'],
  ])('%s %s carries every Match field with its type', (file, message) => {
    const carried = fields(file, message);
    expect(match.size).toBe(6);
    expect(match.get('srcPorts')?.typeName).toBe('flowline.match.v1.PortRange');
    for (const [name, field] of match) {
      expect(carried.get(name), `${message}.${name}`).toMatchObject({
        type: field.type,
        typeName: field.typeName,
      });
    }
  });

  it('keeps the v1 field numbers of Rule and Classifier', () => {
    const numbers = (m: Map<string, FieldDescriptor>) =>
      Object.fromEntries([...match.keys()].map((name) => [name, m.get(name)?.number]));
    expect(
      numbers(fields('flowline/firewall/v1/firewall.proto', 'flowline.firewall.v1.Rule')),
    ).toEqual({
      srcPrefix: 4,
      dstPrefix: 5,
      protocol: 6,
      srcPorts: 7,
      dstPorts: 8,
      ipVersion: 9,
    });
    expect(
      numbers(fields('flowline/chain/v1/chain.proto', 'flowline.chain.v1.Classifier')),
    ).toEqual({
      ipVersion: 2,
      srcPrefix: 3,
      dstPrefix: 4,
      protocol: 5,
      srcPorts: 6,
      dstPorts: 7,
    });
  });

  it('encodes port ranges in the bytes of the v1 PortRange (fields 1 and 2, varints)', () => {
    const addRule = loadFirewallV1().Firewall.service.AddRule;
    const rule = addRule.requestSerialize({
      rule: { id: 'a', dstPorts: { first: 80, last: 443 } },
    });
    // AddRuleRequest.rule (1) { id (1) "a", dst_ports (8) { first (1) 80, last (2) 443 } }
    expect(rule.toString('hex')).toBe('0a0a' + '0a0161' + '4205' + '0850' + '10bb03');
    const createChain = loadChainV1().ChainService.service.CreateChain;
    const chain = createChain.requestSerialize({
      spec: { classifier: { srcPorts: { first: 53, last: 53 } } },
    });
    // CreateChainRequest.spec (2) { classifier (1) { src_ports (6) { first 53, last 53 } } }
    expect(chain.toString('hex')).toBe('1208' + '0a06' + '3204' + '0835' + '1035');
    expect(addRule.requestDeserialize(rule).rule?.dstPorts).toEqual({ first: 80, last: 443 });
  });
});
