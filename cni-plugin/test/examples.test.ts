import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { decodeConfig, parseNetConf } from '../src/config';
import { parseCniArgs, validateIfname } from '../src/env';
import { attachmentPaths } from '../src/naming';

// The Multus example: its NetworkAttachmentDefinition's config must pass the plugin's own
// validation, and its pod must ask for that network in a way the plugin accepts.
const file = join(__dirname, '..', 'examples', 'multus-l2-network.yaml');

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace: string; annotations?: Record<string, string> };
  spec: Record<string, unknown>;
}

const docs = [...parseAllDocuments(readFileSync(file, 'utf8'))].map((d) => {
  expect(d.errors).toEqual([]);
  return d.toJSON() as Manifest; // toJSON: in both yaml 1 (hoisted here) and 2
});
const nad = docs.find((d) => d.kind === 'NetworkAttachmentDefinition')!;
const pod = docs.find((d) => d.kind === 'Pod')!;

describe('examples/multus-l2-network.yaml', () => {
  it('is a Multus NetworkAttachmentDefinition whose config the plugin accepts', () => {
    expect(nad.apiVersion).toBe('k8s.cni.cncf.io/v1');
    expect(Object.keys(nad.spec)).toEqual(['config']);
    const conf = parseNetConf(decodeConfig(nad.spec.config as string));
    expect(conf).toMatchObject({
      cniVersion: '1.1.0',
      type: 'flowline',
      name: nad.metadata.name,
      bridge: 'br-flowline',
      mtu: 9000,
    });
    expect(conf.ipam).toBeUndefined();
  });

  it('has a pod that asks for that network, mounting the folder the plugin puts its sockets in', () => {
    const conf = parseNetConf(decodeConfig(nad.spec.config as string));
    const requests = JSON.parse(pod.metadata.annotations!['k8s.v1.cni.cncf.io/networks']!) as {
      name: string;
      namespace: string;
      interface: string;
    }[];
    expect(requests.map((r) => r.interface)).toEqual(['net1', 'net2']);
    // Multus passes the pod identity in CNI_ARGS as kubelet's runtimes do.
    const { pod: identity } = parseCniArgs(
      `IgnoreUnknown=1;K8S_POD_NAMESPACE=${pod.metadata.namespace};K8S_POD_NAME=${pod.metadata.name}`,
    );
    for (const r of requests) {
      expect([r.name, r.namespace]).toEqual([nad.metadata.name, nad.metadata.namespace]);
      validateIfname(r.interface);
      const paths = attachmentPaths(conf, {
        containerId: 'c',
        ifname: r.interface,
        ...(identity ? { pod: identity } : {}),
      });
      expect(paths.podDir).toBe(`${conf.socketDir}/default_firewall-0`);
    }
    const spec = pod.spec as {
      volumes: { name: string; hostPath?: { path: string } }[];
      containers: { volumeMounts: { name: string; subPathExpr?: string }[] }[];
    };
    expect(spec.volumes.find((v) => v.name === 'pod-dir')?.hostPath?.path).toBe(conf.socketDir);
    expect(spec.containers[0]!.volumeMounts.find((m) => m.name === 'pod-dir')?.subPathExpr).toBe(
      '$(POD_NAMESPACE)_$(POD_NAME)',
    );
  });
});
