#!/usr/bin/env node
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { TRANSPORT_FLAGS } from '@flowline/grpc-auth';
import { checkRemoteTemplate } from './node-switches';
import { securityFromSettings, type SecuritySettings } from './security';
import { startChainController, type SwitchConfig } from './server';

const HELP = `flowline-chain-controller: the flowline.chain.v1 ChainService

  --listen <addr>          FLOWLINE_GRPC_ADDRESS   default 0.0.0.0:50060 (or unix:///path)
  --tls-ca <file>          FLOWLINE_TLS_CA         mutual TLS: the CA of operator's and NFs' certificates
  --tls-cert <file>        FLOWLINE_TLS_CERT       this controller's certificate (its SPIFFE ID
                                                   spiffe://<trust domain>/flowline/controller),
                                                   served on the ChainService and shown to the NFs
  --tls-key <file>         FLOWLINE_TLS_KEY        its private key (all three re-read every 60 s)
  --insecure               FLOWLINE_INSECURE=1     instead: plaintext gRPC both ways (warned at start)
  --trust-domain <d>       FLOWLINE_TRUST_DOMAIN   default flowline
  --health-address <addr>  FLOWLINE_HEALTH_ADDRESS plaintext grpc.health.v1 only (kubelet's probes)
                           One of --tls-* and --insecure is required. The ChainService (every
                           method) accepts the operator's identity only; NFs must prove
                           spiffe://<trust domain>/ns/<namespace>/nf/<StatefulSet or pod>.
  --ovsdb <socket>         FLOWLINE_OVSDB_SOCKET   default /var/run/openvswitch/db.sock
  --ovsdb-remote <r>       FLOWLINE_OVSDB_REMOTE   instead: unix:<socket>, tcp: or ssl:<host>:<port>,
                                                   or ssl:{nodeIP}:<port> for each NF node's OVS
  --ovs-run-dir <dir>      FLOWLINE_OVS_RUNDIR     default /var/run/openvswitch
  --openflow-remote <r>    FLOWLINE_OPENFLOW_REMOTE  instead of <run dir>/<bridge>.mgmt: unix:,
                                                   tcp: or ssl:<host>:<port>, or ssl:{nodeIP}:<port>
                           With {nodeIP} (both remotes), the controller programs the bridge of
                           every node its NF pods run on (needs --kubernetes); a chain's NFs
                           and endpoints must then share a node.
  --ovs-tls-dir <dir>      FLOWLINE_OVS_TLS_DIR    for ssl: remotes: tls.key, tls.crt (this
                                                   controller's) and ca.crt (the switches' CA),
                                                   as a kubernetes.io/tls Secret mounts them
                                                   The switches' certificates name their node
                                                   (CN or DNS SAN ovs-switch.<node>): with
                                                   {nodeIP}, the node the NF pods there run on
  --ovs-switch-node <n>    FLOWLINE_OVS_SWITCH_NODE  one ssl: switch (no {nodeIP}): its node, so
                                                   that it must present ovs-switch.<n>; without
                                                   it only its CA is checked (warned at start)
  --bridge <name>          FLOWLINE_BRIDGE         default br-flowline
  --socket-dir <dir>       FLOWLINE_SOCKET_DIR     default /var/run/flowline (the CNI's socketDir)
  --state-file <file>      FLOWLINE_CHAIN_STATE    default /var/lib/flowline/chains.json
  --nf-addresses <file>    FLOWLINE_NF_ADDRESSES   JSON {"<nf>": "<grpc address>"} for health
  --default-action <a>     normal (default) or drop, for traffic no chain claims
  --reconcile-ms <ms>      default 2000
  --underlay-mtu <bytes>   FLOWLINE_UNDERLAY_MTU  the node underlay's MTU (576-65535), with a
                                                   switch per node: a chain's packets too long
                                                   for a tunnel between nodes are dropped and
                                                   counted (a meter per crossing) at the sending
                                                   node (default: unset, nothing checked)
  --metrics-port <port>    FLOWLINE_METRICS_PORT   default 9465; "off" disables
  --kubernetes             FLOWLINE_KUBERNETES=1   reconcile ServiceChain resources; NFs are pods
  --watch-namespace <ns>   FLOWLINE_WATCH_NAMESPACE  default "" (every namespace)
  --kubeconfig <file>      default $KUBECONFIG, else the in-cluster service account`;

function fail(message: string): never {
  process.stderr.write(
    `${JSON.stringify({ level: 'error', component: 'chain-controller', msg: message })}\n`,
  );
  process.exit(2);
}

const { values: flags } = parseArgs({
  options: {
    listen: { type: 'string' },
    ...TRANSPORT_FLAGS,
    ovsdb: { type: 'string' },
    'ovsdb-remote': { type: 'string' },
    'ovs-run-dir': { type: 'string' },
    'openflow-remote': { type: 'string' },
    'ovs-tls-dir': { type: 'string' },
    'ovs-switch-node': { type: 'string' },
    bridge: { type: 'string' },
    'socket-dir': { type: 'string' },
    'state-file': { type: 'string' },
    'nf-addresses': { type: 'string' },
    'default-action': { type: 'string' },
    'reconcile-ms': { type: 'string' },
    'underlay-mtu': { type: 'string' },
    'metrics-port': { type: 'string' },
    kubernetes: { type: 'boolean' },
    'watch-namespace': { type: 'string' },
    kubeconfig: { type: 'string' },
    help: { type: 'boolean' },
  },
  strict: true,
});
if (flags.help) {
  process.stdout.write(`${HELP}\n`);
  process.exit(0);
}
const env = process.env;
let transport: SecuritySettings;
try {
  transport = securityFromSettings(flags, env);
} catch (err) {
  fail((err as Error).message);
}
const defaultAction = flags['default-action'] ?? 'normal';
if (defaultAction !== 'normal' && defaultAction !== 'drop')
  fail(`--default-action: "${defaultAction}" must be normal or drop`);
const reconcileMs = Number(flags['reconcile-ms'] ?? 2000);
if (!Number.isInteger(reconcileMs) || reconcileMs < 100)
  fail(`--reconcile-ms: "${flags['reconcile-ms']}" must be an integer of at least 100`);
const underlayMtuRaw = flags['underlay-mtu'] ?? (env.FLOWLINE_UNDERLAY_MTU || undefined);
const underlayMtu = underlayMtuRaw === undefined ? undefined : Number(underlayMtuRaw);
if (
  underlayMtu !== undefined &&
  (!Number.isInteger(underlayMtu) || underlayMtu < 576 || underlayMtu > 65535)
)
  fail(`--underlay-mtu: "${underlayMtuRaw}" must be an integer 576-65535`);
const metricsRaw = flags['metrics-port'] ?? env.FLOWLINE_METRICS_PORT ?? '9465';
const metricsPort = metricsRaw === 'off' ? false : Number(metricsRaw);
if (
  metricsPort !== false &&
  (!Number.isInteger(metricsPort) || metricsPort < 0 || metricsPort > 65535)
)
  fail(`--metrics-port: "${metricsRaw}" is not a port`);

const bridge = flags.bridge ?? env.FLOWLINE_BRIDGE ?? 'br-flowline';
const ovsdbRemote = flags['ovsdb-remote'] ?? (env.FLOWLINE_OVSDB_REMOTE || undefined);
const openflowRemote = flags['openflow-remote'] ?? (env.FLOWLINE_OPENFLOW_REMOTE || undefined);
/** Validates a remote (a {nodeIP} template with sample addresses filled in). */
function checkRemote(name: string, value: string): string {
  try {
    checkRemoteTemplate(value);
  } catch (err) {
    fail(`${name}: ${(err as Error).message}`);
  }
  return value;
}
const templated = [ovsdbRemote, openflowRemote].filter((r) => r?.includes('{nodeIP}')).length;
if (templated === 1)
  fail(
    'FLOWLINE_OVSDB_REMOTE and FLOWLINE_OPENFLOW_REMOTE: give both as {nodeIP} templates (a switch per node) or neither',
  );
const tlsDir = flags['ovs-tls-dir'] ?? (env.FLOWLINE_OVS_TLS_DIR || undefined);
const tls = tlsDir
  ? {
      privateKey: join(tlsDir, 'tls.key'),
      certificate: join(tlsDir, 'tls.crt'),
      caCert: join(tlsDir, 'ca.crt'),
    }
  : undefined;
const switchNode = flags['ovs-switch-node'] ?? (env.FLOWLINE_OVS_SWITCH_NODE || undefined);
if (switchNode !== undefined) {
  if (!/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(switchNode))
    fail(`--ovs-switch-node (FLOWLINE_OVS_SWITCH_NODE): "${switchNode}" is not a node name`);
  if (!tls)
    fail('--ovs-switch-node (FLOWLINE_OVS_SWITCH_NODE): needs --ovs-tls-dir and ssl: remotes');
}
if (tls)
  for (const file of Object.values(tls))
    if (!existsSync(file)) fail(`FLOWLINE_OVS_TLS_DIR: ${file} does not exist`);
if (!tls && [ovsdbRemote, openflowRemote].some((r) => r?.startsWith('ssl:')))
  fail(
    'FLOWLINE_OVS_TLS_DIR: ssl: remotes need the key, certificate and CA (tls.key, tls.crt, ca.crt)',
  );
const runDir = flags['ovs-run-dir'] ?? env.FLOWLINE_OVS_RUNDIR ?? '/var/run/openvswitch';
const switchConfig: SwitchConfig = {
  ...(templated === 2
    ? {
        mode: 'per-node',
        ovsdbRemote: checkRemote('FLOWLINE_OVSDB_REMOTE', ovsdbRemote!),
        openflowRemote: checkRemote('FLOWLINE_OPENFLOW_REMOTE', openflowRemote!),
      }
    : {
        mode: 'local',
        ovsdbRemote: checkRemote(
          'FLOWLINE_OVSDB_REMOTE',
          flags.ovsdb
            ? `unix:${flags.ovsdb}`
            : (ovsdbRemote ??
                `unix:${env.FLOWLINE_OVSDB_SOCKET ?? '/var/run/openvswitch/db.sock'}`),
        ),
        openflowRemote: checkRemote(
          'FLOWLINE_OPENFLOW_REMOTE',
          openflowRemote ?? `unix:${join(runDir, `${bridge}.mgmt`)}`,
        ),
        socketDir: flags['socket-dir'] ?? env.FLOWLINE_SOCKET_DIR ?? '/var/run/flowline',
      }),
  ...(tls ? { tls } : {}),
  ...(switchNode ? { switchNode } : {}),
};
const kubernetes =
  flags.kubernetes === true ||
  ['1', 'true'].includes((env.FLOWLINE_KUBERNETES ?? '').toLowerCase());
if (switchConfig.mode === 'per-node' && switchNode)
  fail(
    '--ovs-switch-node (FLOWLINE_OVS_SWITCH_NODE): with {nodeIP} remotes each node is named by its pods; give it only for one switch',
  );
if (switchConfig.mode === 'per-node' && !kubernetes)
  fail(
    'FLOWLINE_OVSDB_REMOTE: {nodeIP} templates need --kubernetes (FLOWLINE_KUBERNETES=1): the nodes are those the NF pods run on',
  );
// Without --kubeconfig, client-node's default: $KUBECONFIG, then the in-cluster service account.
const kubeconfig = flags.kubeconfig;

startChainController({
  listen: flags.listen ?? env.FLOWLINE_GRPC_ADDRESS ?? '0.0.0.0:50060',
  security: transport.security,
  trustDomain: transport.trustDomain,
  ...(transport.healthAddress ? { healthAddress: transport.healthAddress } : {}),
  switch: switchConfig,
  bridge,
  stateFile: flags['state-file'] ?? env.FLOWLINE_CHAIN_STATE ?? '/var/lib/flowline/chains.json',
  nfAddressesFile: flags['nf-addresses'] ?? env.FLOWLINE_NF_ADDRESSES,
  defaultAction,
  reconcileMs,
  ...(underlayMtu !== undefined ? { underlayMtu } : {}),
  metricsPort,
  ...(kubernetes
    ? {
        kubernetes: {
          namespace: flags['watch-namespace'] ?? env.FLOWLINE_WATCH_NAMESPACE ?? '',
          ...(kubeconfig ? { kubeconfig } : {}),
        },
      }
    : {}),
}).then(
  (running) => {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      process.once(signal, () => {
        running.stop().then(
          () => process.exit(0),
          () => process.exit(1),
        );
      });
    }
  },
  (err: unknown) => fail(`failed to start: ${(err as Error).message}`),
);
