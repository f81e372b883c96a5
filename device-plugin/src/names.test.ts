import { describe, expect, it } from 'vitest';
import { endpointOf, extendedResourceNameProblem, netdevEnvName, pciEnvName } from './names';

describe('resource and env names', () => {
  it("applies kubelet's extended-resource-name rules", () => {
    for (const ok of [
      'flowline.io/sriov_vf',
      'flowline.io/vf-numa0',
      'flowline.io/hugepages-2Mi',
      'flowline.io/a.b',
    ]) {
      expect(extendedResourceNameProblem(ok)).toBeUndefined();
    }
    expect(extendedResourceNameProblem('sriov_vf')).toMatch(/<domain>\/<name>/);
    expect(extendedResourceNameProblem('kubernetes.io/x')).toMatch(/reserved/);
    expect(extendedResourceNameProblem('requests.flowline.io/x')).toMatch(/requests/);
    expect(extendedResourceNameProblem('Flowline.io/x')).toMatch(/DNS/);
    expect(extendedResourceNameProblem('flowline.io/-x')).toMatch(/start and end/);
    expect(extendedResourceNameProblem(`flowline.io/${'a'.repeat(64)}`)).toMatch(/1-63/);
  });

  it('derives the contract-1 env names (docs/architecture.md#device-plugin-to-pod) and the socket name', () => {
    expect(pciEnvName('flowline.io/sriov_vf')).toBe('PCIDEVICE_FLOWLINE_IO_SRIOV_VF');
    expect(netdevEnvName('flowline.io/vf-numa0.a')).toBe('FLOWLINE_NETDEV_VF_NUMA0_A');
    expect(endpointOf('flowline.io/sriov_vf')).toBe('flowline-sriov_vf.sock');
  });
});
