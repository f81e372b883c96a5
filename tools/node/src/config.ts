// The local node's configuration: where its state lives, the switch, the emulated NICs, the
// device plugin's pools and the network attachments pods may name. Every field has a default,
// so `flowline up` works with no file at all.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { z } from 'zod';
import { NodeConfigError } from './errors';

const emulatedPf = z.object({
  pf: z
    .string()
    .regex(/^[a-z][a-z0-9]{0,9}$/, 'must be a short interface-style name such as ens1f0'),
  vfs: z.number().int().min(1).max(16),
  numa: z.number().int().min(0).max(7).default(0),
});

const nodeConfigSchema = z.object({
  stateDir: z.string().startsWith('/').default('/var/run/flowline-node'),
  bridge: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,15}$/)
    .default('br-flowline'),
  hugepagesDir: z.string().startsWith('/').default('/dev/hugepages'),
  ovs: z
    .object({
      pmdCpuMask: z
        .string()
        .regex(/^0x[0-9a-fA-F]+$/)
        .default('0x2'),
      /**
       * other_config:dpdk-socket-mem, also its limit. OVS 3.1's shared mempool for MTU 1500
       * asks 262144 mbufs first and halves the count after each failure; each failed try fills
       * the whole heap for a few ms, and a vhost-user handshake then in flight fails (OVS:
       * "failed to allocate memory for vq internal data") and is dropped. 1024 holds the first
       * try; 256 broke a pod port in 2 of 50 node starts (tools/node/README.md).
       */
      socketMemMb: z.number().int().min(64).max(4096).default(1024),
      /**
       * other_config:pmd-maxsleep. OVS 3.1's PMD sleeps while no rx queue gives it half a
       * burst, 10 µs longer each empty round up to this. 500 µs: an idle PMD costs ~3 % of a
       * core instead of ~20 % (at 50), and the burst that piles up meanwhile (0.5 ms at
       * 1 Mpps is 500 packets) still fits the 1024-descriptor vhost rings; under load the PMD
       * does not sleep at all. (Measured with `flowline bench chain`, tools/node/README.md.)
       */
      pmdMaxSleepUs: z.number().int().min(0).max(10000).default(500),
    })
    .prefault({}),
  emulatedNics: z.array(emulatedPf).default([{ pf: 'ens1f0', vfs: 4, numa: 0 }]),
  /** The device plugin's pool config, passed to it unchanged (device-plugin/README.md). */
  devicePlugin: z.record(z.string(), z.unknown()).default({
    pools: [
      {
        name: 'sriov_vf',
        deviceType: 'netdevice',
        selectors: { pfNames: ['ens1f0'] },
        hugepagesMb: 256,
      },
    ],
    hugepages: {
      // Pods here are processes without a mount namespace: a mount would not be applied (the
      // node sets FLOWLINE_HUGEPAGES_DIR itself, pod-process.ts), and the plugin would make an
      // empty per-allocation folder in the host's hugetlbfs for each Allocate.
      mount: false,
      resource: true,
      hostPath: '/dev/hugepages',
      containerPath: '/dev/hugepages',
    },
  }),
  /** Network attachments by name: the CNI config each one runs (socketDir and ovsdbSocket are filled in). */
  networks: z
    .record(z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/), z.record(z.string(), z.unknown()))
    .default({ 'flowline-net': { cniVersion: '1.1.0', type: 'flowline', mtu: 1500 } }),
  /**
   * Every gRPC listener on the node is mutual TLS from the node's CA (under <stateDir>/pki);
   * `insecure: true` makes them plaintext instead (each process warns at start).
   */
  security: z
    .object({
      insecure: z.boolean().default(false),
      trustDomain: z
        .string()
        .regex(/^[a-z0-9]([-a-z0-9.]{0,253}[a-z0-9])?$/)
        .default('flowline'),
    })
    .prefault({}),
  controller: z
    .object({
      /** Chain controller's listen address; default unix:<stateDir>/chain-controller.sock */
      grpcAddress: z.string().optional(),
      reconcileMs: z.number().int().min(100).default(1000),
    })
    .prefault({}),
});

export type NodeConfig = z.output<typeof nodeConfigSchema>;

/** Paths under the state dir; `down` finds everything from these alone. */
export interface NodePaths {
  stateDir: string;
  stateFile: string;
  manifests: string;
  logs: string;
  sockets: string;
  ipam: string;
  pluginDir: string;
  sysfs: string;
  ovsRunDir: string;
  netconfs: string;
  pods: string;
  chainState: string;
  devicePluginConfig: string;
  devinfo: string;
}

export function nodePaths(stateDir: string): NodePaths {
  return {
    stateDir,
    stateFile: join(stateDir, 'state.json'),
    manifests: join(stateDir, 'manifests'),
    logs: join(stateDir, 'logs'),
    sockets: join(stateDir, 'sockets'),
    ipam: join(stateDir, 'ipam'),
    pluginDir: join(stateDir, 'device-plugins'),
    sysfs: join(stateDir, 'sysfs'),
    ovsRunDir: join(stateDir, 'ovs'),
    netconfs: join(stateDir, 'net.d'),
    pods: join(stateDir, 'pods'),
    chainState: join(stateDir, 'chains.json'),
    devicePluginConfig: join(stateDir, 'device-plugin.json'),
    devinfo: join(stateDir, 'devinfo'),
  };
}

export function parseNodeConfig(raw: unknown): NodeConfig {
  const result = nodeConfigSchema.safeParse(raw ?? {});
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new NodeConfigError(issue.path.join('.') || '(root)', issue.message);
  }
  return result.data;
}

export function loadNodeConfig(file?: string): NodeConfig {
  if (!file) return parseNodeConfig({});
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new NodeConfigError(file, `cannot be read: ${(err as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = parse(text);
  } catch (err) {
    throw new NodeConfigError(file, `is not valid YAML: ${(err as Error).message}`);
  }
  return parseNodeConfig(raw);
}

/** The CNI network config of an attachment, completed with the node's socket dir, bridge and OVS. */
export function netconfFor(
  config: NodeConfig,
  paths: NodePaths,
  network: string,
  ovsdbSocket: string,
): Record<string, unknown> {
  const base = config.networks[network];
  if (!base)
    throw new NodeConfigError(
      `networks.${network}`,
      `is not defined (known: ${Object.keys(config.networks).join(', ') || 'none'})`,
    );
  return {
    cniVersion: '1.1.0',
    type: 'flowline',
    bridge: config.bridge,
    mtu: 1500,
    ...base,
    name: network,
    socketDir: paths.sockets,
    ovsdbSocket,
    ...(base.ipam && typeof base.ipam === 'object'
      ? { ipam: { dataDir: paths.ipam, ...(base.ipam as Record<string, unknown>) } }
      : {}),
  };
}
