import { describe, expect, it } from 'vitest';
import { parseNodeConfig } from './config';
import { poolResources } from './device-plugin';

describe("the node's device plugin", () => {
  it('is up once each pool of its config registered as flowline.io/<pool>', () => {
    expect(poolResources(parseNodeConfig({}).devicePlugin)).toEqual(['flowline.io/sriov_vf']);
    expect(poolResources({ pools: [{ name: 'a' }, { name: 'b' }] })).toEqual([
      'flowline.io/a',
      'flowline.io/b',
    ]);
    expect(poolResources({})).toEqual([]);
  });
});
