import { describe, expect, it } from 'vitest';
import { ManifestError } from './errors';
import { parseNetworkSelection, parsePods } from './manifest';

const POD = `
apiVersion: v1
kind: Pod
metadata:
  name: firewall
  namespace: nfs
  annotations:
    k8s.v1.cni.cncf.io/networks: flowline-net@net1, other/flowline-net
spec:
  containers:
    - name: nf
      image: flowline/firewall:0.1.0
      command: [flowline-firewall]
      args: [--config, /etc/fw.yaml]
      env:
        - { name: FLOWLINE_LCORES, value: "0,1" }
      resources:
        limits:
          flowline.io/hugepages-2Mi: "128"
          hugepages-2Mi: 256Mi
          memory: 1Gi
`;

function refusal(text: string): ManifestError {
  try {
    parsePods(text, 'pod.yaml');
  } catch (err) {
    if (err instanceof ManifestError) return err;
    throw err;
  }
  throw new Error('not refused');
}

describe('pod manifests', () => {
  it('reads the fields the node acts on', () => {
    const [pod] = parsePods(POD, 'fw.yaml');
    expect(pod).toEqual({
      name: 'firewall',
      namespace: 'nfs',
      command: ['flowline-firewall', '--config', '/etc/fw.yaml'],
      env: { FLOWLINE_LCORES: '0,1' },
      devices: { 'flowline.io/hugepages-2Mi': 128 },
      hugepagesMb: 256,
      networks: [
        { name: 'flowline-net', namespace: 'nfs', interface: 'net1' },
        { name: 'flowline-net', namespace: 'other', interface: 'net2' },
      ],
      restartPolicy: 'Always',
      source: 'fw.yaml',
    });
  });

  it('takes the JSON form of the networks annotation', () => {
    expect(
      parseNetworkSelection(
        '[{"name":"a","interface":"east"},{"name":"b","namespace":"x","mac":"02:00:00:00:00:01"}]',
        'ns',
        's',
      ),
    ).toEqual([
      { name: 'a', namespace: 'ns', interface: 'east' },
      { name: 'b', namespace: 'x', interface: 'net2', mac: '02:00:00:00:00:01' },
    ]);
  });

  it('names the field that is wrong', () => {
    expect(refusal(POD.replace('kind: Pod', 'kind: Deployment')).field).toBe('kind');
    expect(refusal(POD.replace('name: firewall', 'name: Fire_wall')).field).toBe('metadata.name');
    expect(refusal(POD.replace('hugepages-2Mi: 256Mi', 'hugepages-2Mi: 3Mi')).field).toBe(
      'spec.containers[0].resources.limits["hugepages-2Mi"]',
    );
    expect(refusal(POD.replace('"128"', '"-1"')).field).toBe(
      'spec.containers[0].resources.limits["flowline.io/hugepages-2Mi"]',
    );
    expect(
      refusal(POD.replace('flowline-net@net1, other/flowline-net', 'a@net1, b@net1')).message,
    ).toMatch(/interface "net1" is used twice/);
    expect(
      refusal(
        POD.replace('command: [flowline-firewall]', 'command: []').replace(
          'args: [--config, /etc/fw.yaml]',
          '',
        ),
      ).field,
    ).toBe('spec.containers[0].command');
    expect(refusal(`${POD}\n---\n${POD}`).message).toMatch(/pod nfs\/firewall appears twice/);
  });
});
