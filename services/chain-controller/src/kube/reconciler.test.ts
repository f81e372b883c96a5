import { ATTACHMENT_EXTERNAL_IDS } from '@flowline/ovs';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import rbac from './rbac.json';
import {
  FakeApiServer,
  PODS,
  SERVICECHAINS,
  type RequestRecord,
} from '../../test/support/fake-apiserver';
import type { ChainSwitch } from '../chain-switch';
import { ChainController } from '../controller';
import { AttachmentDirectory, type SwitchPortRecord } from '../directory';
import { chainKey } from '../flows';
import { MemoryChainStore } from '../store';
import { loadKube, serviceChainApi } from './client';
import { PodDirectory } from './pod-directory';
import { ServiceChainReconciler } from './reconciler';
import { FINALIZER, type ServiceChain, chainNameFor } from './servicechain';
import { recordingLogger } from '../../test/support/recording-logger';
import { until } from '../../test/support/until';

/**
 * The reconciler through @kubernetes/client-node (KubeConfig, CustomObjectsApi, CoreV1Api,
 * Watch) against a fake apiserver speaking the REST wire protocol, programming a
 * ChainController over an in-memory switch. Pods come from the API, OVS port names from
 * attachment files in the CNI plugin's layout.
 */
class MemorySwitch implements ChainSwitch {
  table: string[] = [];
  applied = 0;
  ports = new Set(['gen1', 'fw1', 'fw2', 'fw1b', 'fw2b', 'rt1', 'sink1']);
  async apply(flows: string[]) {
    this.table = flows;
    this.applied++;
  }
  async flowStats() {
    return [];
  }
  async portNames() {
    return this.ports;
  }
  /** Where traffic entering on `port` goes first. */
  next(port: string): string | undefined {
    return /actions=output:(\w+)/.exec(
      this.table.find((f) => f.includes(`in_port=${port},`)) ?? '',
    )?.[1];
  }
}

const NS = 'nfs';
const ATTACHMENTS: Record<string, Record<string, string>> = {
  gen: { net1: 'gen1' },
  fw: { net1: 'fw1', net2: 'fw2' },
  router: { net1: 'rt1' },
  sink: { net1: 'sink1' },
};

const pod = (name: string, ip: string) => ({
  metadata: { name },
  spec: {
    nodeName: 'node-a',
    containers: [{ name: 'nf', ports: [{ name: 'grpc', containerPort: 50051 }] }],
  },
  status: { podIP: ip, phase: 'Running' },
});

const chain = (name: string, hops: { nf: string; ingress: string; egress: string }[]) => ({
  metadata: { name },
  spec: {
    classifier: { ingress: { nf: 'gen', interface: 'net1' }, match: { protocol: 'udp' } },
    hops,
    egress: { nf: 'sink', interface: 'net1' },
    failurePolicy: 'bypass',
  },
});
const FW = { nf: 'fw', ingress: 'net1', egress: 'net2' };
const ROUTER = { nf: 'router', ingress: 'net1', egress: 'net1' };

/** A request as the RBAC verb and resource it needs ("patch servicechains/status"). */
function verbOf(r: RequestRecord): string {
  const parts = r.path.split('/').filter(Boolean);
  const [group, rest] = parts[0] === 'api' ? ['', parts.slice(2)] : [parts[1], parts.slice(3)];
  const [plural, name, sub] = rest[0] === 'namespaces' ? rest.slice(2) : rest;
  const verb =
    r.method === 'GET'
      ? name === undefined
        ? r.watch
          ? 'watch'
          : 'list'
        : 'get'
      : (
          { PUT: 'update', PATCH: 'patch', POST: 'create', DELETE: 'delete' } as Record<
            string,
            string
          >
        )[r.method];
  return `${group}:${verb} ${plural}${sub ? `/${sub}` : ''}`;
}
const calls = new Set<string>();

describe('ServiceChainReconciler against a fake apiserver', () => {
  let work: string;
  let fake: FakeApiServer;
  let sw: MemorySwitch;
  let controller: ChainController;
  let reconciler: ServiceChainReconciler;
  let directory: PodDirectory;
  let health: Map<string, (healthy: boolean, message: string) => void>;
  let newReconciler: () => ServiceChainReconciler;
  let log: ReturnType<typeof recordingLogger>;
  /** The OVS ports the CNI plugin made, with the external_ids it sets. */
  let attached: SwitchPortRecord[];
  /** What the CNI plugin does for a pod's interface: the OVS port, then the attachment file. */
  const attach = (p: string, iface: string, ovsPort: string) => {
    const ids = ATTACHMENT_EXTERNAL_IDS;
    attached = attached.filter(
      (a) => !(a.externalIds[ids.podName] === p && a.externalIds[ids.ifname] === iface),
    );
    attached.push({
      name: ovsPort,
      externalIds: { [ids.podNamespace]: NS, [ids.podName]: p, [ids.ifname]: iface },
    });
    writeFileSync(join(work, `${NS}_${p}`, `${iface}.json`), JSON.stringify({ ovsPort }));
  };
  const newController = (maxChains?: number) =>
    new ChainController({
      store: new MemoryChainStore(),
      directory,
      switch: sw,
      health: (address, onChange) => {
        health.set(address, onChange);
        return () => health.delete(address);
      },
      ...(maxChains !== undefined ? { maxChains } : {}),
    });

  const get = (name: string) => fake.get('servicechains', NS, name) as ServiceChain | undefined;
  const condition = (name: string, type: string) =>
    get(name)?.status?.conditions?.find((c) => c.type === type);
  const observed = (name: string, generation: number) =>
    get(name)?.status?.observedGeneration === generation ? get(name) : undefined;

  beforeEach(async () => {
    work = mkdtempSync(join(tmpdir(), 'flowline-kube-'));
    attached = [];
    for (const [p, ifaces] of Object.entries(ATTACHMENTS)) {
      mkdirSync(join(work, `${NS}_${p}`));
      for (const [iface, ovsPort] of Object.entries(ifaces)) attach(p, iface, ovsPort);
    }
    fake = new FakeApiServer([SERVICECHAINS, PODS]);
    await fake.start();
    for (const [i, p] of Object.keys(ATTACHMENTS).entries())
      fake.create('pods', NS, pod(p, `10.1.0.${i + 1}`));
    sw = new MemorySwitch();
    health = new Map();
    directory = new PodDirectory(new AttachmentDirectory(work, async () => attached));
    controller = newController();
    await controller.start();
    const k8s = await loadKube();
    const kc = new k8s.KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'fake', server: fake.url, skipTLSVerify: true }],
      users: [{ name: 'test' }],
      contexts: [{ name: 'fake', cluster: 'fake', user: 'test' }],
      currentContext: 'fake',
    });
    const api = serviceChainApi(k8s, kc, '');
    log = recordingLogger();
    newReconciler = () =>
      new ServiceChainReconciler({
        api,
        controller,
        directory,
        backoff: { initialMs: 20, maxMs: 200 },
        retryMs: 50,
        logger: log,
      });
    reconciler = newReconciler();
  });

  afterEach(async () => {
    await reconciler.stop();
    for (const r of fake.requests) calls.add(verbOf(r));
    controller.stop();
    await fake.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it('adds the finalizer, programs the chain and reports status through /status', async () => {
    fake.create('servicechains', NS, chain('demo', [FW]));
    await reconciler.start();
    const sc = await until('status of generation 1', () => observed('demo', 1));
    expect(sc.metadata.finalizers).toEqual([FINALIZER]);
    expect(sc.status).toMatchObject({
      observedGeneration: 1,
      phase: 'Active',
      hopCount: 1,
      hops: [
        {
          nf: 'fw',
          node: 'node-a',
          healthy: true,
          bypassed: false,
          ingressPort: 'fw1',
          egressPort: 'fw2',
        },
      ],
    });
    expect(condition('demo', 'Ready')).toMatchObject({
      status: 'True',
      reason: 'Programmed',
      observedGeneration: 1,
    });
    expect(condition('demo', 'Degraded')).toMatchObject({
      status: 'False',
      reason: 'AllHopsHealthy',
    });
    expect(sw.next('gen1')).toBe('fw1');
    expect(sw.next('fw2')).toBe('sink1');
    expect(controller.get(chainNameFor(NS, 'demo')).spec?.hops?.[0]?.nf).toBe('nfs/fw');
    // The finalizer went on before the chain was programmed, and writes used the wire formats.
    const writes = fake.requests.filter((r) => r.method !== 'GET');
    expect(writes[0]).toEqual({
      method: 'PUT',
      path: `/apis/flowline.io/v1alpha1/namespaces/${NS}/servicechains/demo`,
      contentType: 'application/json',
    });
    expect(writes).toContainEqual({
      method: 'PATCH',
      path: `/apis/flowline.io/v1alpha1/namespaces/${NS}/servicechains/demo/status`,
      contentType: 'application/merge-patch+json',
    });
    // The hop's health is watched at the pod's IP and its "grpc" container port.
    await until('fw health watch', () => health.get('10.1.0.2:50051'));
  });

  it('a finalizer write that conflicts (409) reads the object again and keeps the other change', async () => {
    fake.create('servicechains', NS, chain('demo', [FW]));
    let raced = false;
    fake.beforeRequest = (r) => {
      if (r.method !== 'PUT' || raced) return;
      raced = true; // someone else labels the chain just before the controller's update lands
      fake.patch('servicechains', NS, 'demo', 'application/merge-patch+json', {
        metadata: { labels: { team: 'blue' } },
      });
    };
    await reconciler.start();
    const sc = await until('generation 1', () => observed('demo', 1));
    expect(raced).toBe(true);
    expect(sc.metadata).toMatchObject({ finalizers: [FINALIZER], labels: { team: 'blue' } });
    expect(fake.requests.map((r) => r.method)).toEqual(
      expect.arrayContaining(['PUT', 'GET', 'PUT']),
    );
    expect(
      fake.requests.some((r) => r.method === 'GET' && r.path.endsWith('/servicechains/demo')),
    ).toBe(true);
  });

  it('re-programs on a spec change and reports hop health as Degraded', async () => {
    fake.create('servicechains', NS, chain('demo', [FW]));
    await reconciler.start();
    await until('generation 1', () => observed('demo', 1));
    fake.patch('servicechains', NS, 'demo', 'application/merge-patch+json', {
      spec: { hops: [FW, ROUTER] },
    });
    expect(get('demo')?.metadata.generation).toBe(2);
    const sc = await until('generation 2', () => observed('demo', 2));
    expect(sc.status?.hopCount).toBe(2);
    expect(sw.next('fw2')).toBe('rt1');
    expect(sw.next('rt1')).toBe('sink1');
    expect(controller.get(chainNameFor(NS, 'demo')).generation).toBe('2');
    // A status write does not bump the generation; a hop going down does not either.
    await until('router health watch', () => health.get('10.1.0.3:50051'));
    health.get('10.1.0.3:50051')!(false, 'NOT_SERVING');
    await until('Degraded', () => condition('demo', 'Degraded')?.status === 'True');
    expect(get('demo')?.metadata.generation).toBe(2);
    expect(get('demo')?.status).toMatchObject({
      phase: 'Degraded',
      hops: [
        { nf: 'fw', healthy: true },
        { nf: 'router', healthy: false, bypassed: true },
      ],
    });
    expect(condition('demo', 'Ready')).toMatchObject({ status: 'False', reason: 'HopDown' });
    expect(sw.next('fw2')).toBe('sink1'); // bypassed
    health.get('10.1.0.3:50051')!(true, 'SERVING');
    await until('Ready again', () => condition('demo', 'Ready')?.status === 'True');
    expect(sw.next('fw2')).toBe('rt1');
  });

  it('an invalid spec is InvalidSpec naming the CR field, and nothing is programmed', async () => {
    fake.create('servicechains', NS, chain('bad', [FW, ROUTER, FW]));
    await reconciler.start();
    const sc = await until('status', () => observed('bad', 1));
    expect(sc.status?.phase).toBe('Failed');
    expect(condition('bad', 'Ready')).toMatchObject({
      status: 'False',
      reason: 'InvalidSpec',
      message: expect.stringMatching(/^spec\.hops\[2\]\.nf: "nfs\/fw" is also hops\[0\]/),
    });
    expect(controller.list()).toEqual([]);
    expect(sw.next('gen1')).toBeUndefined();
    // Fixing the spec programs it.
    fake.patch('servicechains', NS, 'bad', 'application/json-patch+json', [
      { op: 'remove', path: '/spec/hops/2' },
    ]);
    await until(
      'generation 2 ready',
      () => observed('bad', 2) && condition('bad', 'Ready')?.status === 'True',
    );
    expect(sw.next('gen1')).toBe('fw1');
  });

  it("tenancy: a raw OVS port or another namespace's NF is InvalidSpec naming the field; nothing is programmed; the operator's path still takes raw ports", async () => {
    // Another tenant's firewall exists; naming it from this namespace must not reach it.
    fake.create('pods', 'tenant-b', { ...pod('fw', '10.2.0.1'), metadata: { name: 'fw' } });
    const raw = chain('raw-egress', [FW]);
    raw.spec.egress = { ovsPort: 'sink1' } as unknown as typeof raw.spec.egress;
    const rawIngress = chain('raw-ingress', [FW]);
    rawIngress.spec.classifier.ingress = {
      ovsPort: 'gen1',
    } as unknown as typeof rawIngress.spec.classifier.ingress;
    const across = chain('across', [{ ...FW, nf: 'tenant-b/fw' }]);
    for (const sc of [raw, rawIngress, across]) fake.create('servicechains', NS, sc);
    await reconciler.start();
    for (const [name, field, why] of [
      ['raw-egress', 'spec\\.egress\\.ovsPort', 'a raw OVS port is not allowed in a ServiceChain'],
      [
        'raw-ingress',
        'spec\\.classifier\\.ingress\\.ovsPort',
        'a raw OVS port is not allowed in a ServiceChain',
      ],
      ['across', 'spec\\.hops\\[0\\]\\.nf', '"tenant-b/fw" names another namespace'],
    ] as const) {
      const sc = await until(`${name} status`, () => observed(name, 1));
      expect(sc.status?.phase).toBe('Failed');
      expect(condition(name, 'Ready')).toMatchObject({
        status: 'False',
        reason: 'InvalidSpec',
        message: expect.stringMatching(new RegExp(`^${field}: ${why}`)),
      });
    }
    expect(controller.list()).toEqual([]);
    expect(sw.table.filter((f) => !f.startsWith('priority=0'))).toEqual([]);
    // The operator (the ChainService, whose every method only the operator's identity may
    // call) may name raw ports.
    const made = await controller.create('operator-raw', {
      classifier: { ingressPort: 'gen1', protocol: 'udp' },
      hops: [{ nf: `${NS}/fw`, ingressInterface: 'net1', egressInterface: 'net2' }],
      egressPort: 'sink1',
    });
    expect(made.status?.phase).toBe('ACTIVE');
    expect(sw.next('gen1')).toBe('fw1');
  });

  it("a chain past the controller's limit is LimitExceeded naming chains, programmed once there is room", async () => {
    controller.stop();
    controller = newController(1);
    await controller.start();
    reconciler = newReconciler();
    fake.create('servicechains', NS, chain('first', [FW]));
    await reconciler.start();
    await until('first Ready', () => condition('first', 'Ready')?.status === 'True');
    fake.create('servicechains', NS, chain('second', [ROUTER]));
    const full = await until('second refused', () => observed('second', 1));
    expect(full.status?.phase).toBe('Failed');
    expect(condition('second', 'Ready')).toMatchObject({
      status: 'False',
      reason: 'LimitExceeded',
      message: expect.stringMatching(/^chains: the controller holds 1 chains, its limit/),
    });
    expect(controller.list().map((c) => c.name)).toEqual([chainNameFor(NS, 'first')]);
    fake.delete('servicechains', NS, 'first');
    await until('second Ready', () => condition('second', 'Ready')?.status === 'True');
    expect(sw.next('gen1')).toBe('rt1');
  });

  it('a hop whose pod is not there yet is PortsUnresolved, programmed when the pod appears', async () => {
    fake.delete('pods', NS, 'router');
    fake.create('servicechains', NS, chain('wait', [FW, ROUTER]));
    await reconciler.start();
    await until('PortsUnresolved', () => condition('wait', 'Ready')?.reason === 'PortsUnresolved');
    expect(condition('wait', 'Ready')?.message).toMatch(
      /^spec\.hops\[1\]\.ingress: NF "nfs\/router" has no interface net1/,
    );
    expect(controller.list()).toEqual([]);
    fake.create('pods', NS, pod('router', '10.1.0.9'));
    await until('Ready', () => condition('wait', 'Ready')?.status === 'True');
    expect(sw.next('rt1')).toBe('sink1');
  });

  it('a hop pod recreated with new OVS ports and IP is re-programmed and watched at its new address', async () => {
    fake.create('servicechains', NS, chain('demo', [FW]));
    await reconciler.start();
    await until('generation 1', () => observed('demo', 1));
    await until('fw health watch', () => health.get('10.1.0.2:50051'));
    // The StatefulSet's pod comes back: a new sandbox, so new OVS ports from the CNI plugin.
    fake.delete('pods', NS, 'fw');
    attach('fw', 'net1', 'fw1b');
    attach('fw', 'net2', 'fw2b');
    fake.create('pods', NS, pod('fw', '10.1.0.20'));
    await until('new ports', () => sw.next('gen1') === 'fw1b');
    expect(sw.next('fw2b')).toBe('sink1');
    await until(
      'status of the new ports',
      () => get('demo')?.status?.hops?.[0]?.ingressPort === 'fw1b',
    );
    expect(get('demo')?.status?.hops?.[0]).toMatchObject({ egressPort: 'fw2b' });
    await until('health at the new address', () => health.get('10.1.0.20:50051'));
    expect(health.has('10.1.0.2:50051')).toBe(false);
  });

  it('removes chains of ServiceChains deleted while it was down, and leaves gRPC chains alone', async () => {
    const grpcSpec = {
      classifier: { ingressPort: 'nfs/gen/net1', protocol: 'tcp' },
      hops: [{ nf: 'nfs/router', ingressInterface: 'net1', egressInterface: 'net1' }],
      egressPort: 'nfs/sink/net1',
    };
    directory.replace(fake.list('pods', NS)); // as an earlier run knew them
    await controller.create('made-by-grpc', grpcSpec);
    // Programmed by an earlier run for nfs/ghost, whose finalizer was then stripped and which
    // was deleted: no event will ever name it.
    await controller.create(
      chainNameFor(NS, 'ghost'),
      { ...grpcSpec, priority: 200 },
      'ServiceChain/nfs/ghost',
    );
    fake.create('servicechains', NS, chain('demo', [FW]));
    await reconciler.start();
    const names = () => controller.list().map((c) => c.name);
    await until(
      'ghost removed, demo added',
      () =>
        !names().includes(chainNameFor(NS, 'ghost')) && names().includes(chainNameFor(NS, 'demo')),
    );
    expect(
      controller
        .list()
        .map((c) => c.name)
        .sort(),
    ).toEqual([chainNameFor(NS, 'demo'), 'made-by-grpc'].sort());
    expect(controller.owners()).toEqual(
      new Map([[chainNameFor(NS, 'demo'), 'ServiceChain/nfs/demo']]),
    );
  });

  it.each([
    ["another ServiceChain's", 'ServiceChain/victim/prod'],
    ['an API-made', undefined],
  ])(
    "never changes or deletes %s chain under the resource's chain name: NameConflict, the owner not named",
    async (_, owner) => {
      const theirs = {
        classifier: { ingressPort: 'nfs/gen/net1', protocol: 'tcp' },
        hops: [{ nf: 'nfs/router', ingressInterface: 'net1', egressInterface: 'net1' }],
        egressPort: 'nfs/sink/net1',
      };
      directory.replace(fake.list('pods', NS));
      // Another resource's chain under the name this one maps to (a clash of the cut name and
      // its hash), as a takeover would need it.
      const name = chainNameFor(NS, 'demo');
      await controller.create(name, theirs, owner);
      // Its resource exists (elsewhere: its pods are not here, so its own reconcile changes
      // nothing), or the reconciler would remove the chain of a resource that is gone.
      if (owner) fake.create('servicechains', 'victim', chain('prod', [FW]));
      const before = controller.get(name);
      fake.create('servicechains', NS, chain('demo', [FW]));
      await reconciler.start();
      const ready = await until('NameConflict', () =>
        condition('demo', 'Ready')?.reason === 'NameConflict'
          ? condition('demo', 'Ready')
          : undefined,
      );
      expect(ready).toMatchObject({ status: 'False' });
      expect(ready.message).toMatch(/rename this ServiceChain/);
      expect(ready.message).not.toMatch(/victim/);
      expect(get('demo')?.status?.phase).toBe('Failed');
      expect(controller.get(name)).toEqual(before);
      expect(controller.owners().get(name)).toBe(owner);
      // Its deletion leaves the other chain in place too.
      fake.delete('servicechains', NS, 'demo');
      await until('object gone', () => get('demo') === undefined);
      await reconciler.idle();
      expect(controller.get(name)).toEqual(before);
      expect(sw.next('gen1')).toBe('rt1');
      expect(log.lines.filter((l) => /does not own/.test(l.msg))).toHaveLength(1);
    },
  );

  it("a resource whose chain would share another chain's flow key is NameConflict, programmed once the key is free", async () => {
    // Two names in one namespace whose chain names share a 32-bit flow key (a birthday search).
    expect(chainKey(chainNameFor(NS, 'sc-18uw'))).toBe(chainKey(chainNameFor(NS, 'sc-18qv')));
    fake.create('servicechains', NS, chain('sc-18qv', [FW]));
    await reconciler.start();
    await until('sc-ghs active', () =>
      get('sc-18qv')?.status?.phase === 'Active' ? true : undefined,
    );
    fake.create('servicechains', NS, chain('sc-18uw', [FW]));
    const ready = await until('NameConflict', () =>
      condition('sc-18uw', 'Ready')?.reason === 'NameConflict'
        ? condition('sc-18uw', 'Ready')
        : undefined,
    );
    expect(ready.message).toMatch(/flow key/);
    expect(ready.message).not.toContain(chainNameFor(NS, 'sc-18qv'));
    expect(controller.list().map((c) => c.name)).toEqual([chainNameFor(NS, 'sc-18qv')]);
    fake.delete('servicechains', NS, 'sc-18qv');
    await until('sc-vwf active', () =>
      get('sc-18uw')?.status?.phase === 'Active' ? true : undefined,
    );
    expect(controller.list().map((c) => c.name)).toEqual([chainNameFor(NS, 'sc-18uw')]);
  });

  it('a chain made before 64-bit chain names keeps its name: updated in place, deleted with its resource', async () => {
    directory.replace(fake.list('pods', NS));
    const legacy = 'nfs-demo-1a2b3c4d'; // as chainNameFor made it with 8 hex digits
    await controller.create(
      legacy,
      {
        classifier: { ingressPort: 'nfs/gen/net1', protocol: 'tcp' },
        hops: [{ nf: 'nfs/router', ingressInterface: 'net1', egressInterface: 'net1' }],
        egressPort: 'nfs/sink/net1',
      },
      'ServiceChain/nfs/demo',
    );
    fake.create('servicechains', NS, chain('demo', [FW]));
    await reconciler.start();
    await until('programmed', () =>
      condition('demo', 'Ready')?.reason === 'Programmed' ? true : undefined,
    );
    expect(controller.list().map((c) => c.name)).toEqual([legacy]);
    expect(controller.get(legacy).spec?.hops?.[0]?.nf).toBe('nfs/fw');
    expect(sw.next('gen1')).toBe('fw1');
    fake.delete('servicechains', NS, 'demo');
    await until('object gone', () => get('demo') === undefined);
    await reconciler.idle();
    expect(controller.list()).toEqual([]);
  });

  it('deletion removes the chain from the switch, then the finalizer', async () => {
    fake.create('servicechains', NS, chain('demo', [FW]));
    await reconciler.start();
    await until('generation 1', () => observed('demo', 1));
    const deleting = fake.delete('servicechains', NS, 'demo');
    expect(deleting.metadata.deletionTimestamp).toBeDefined(); // held by the finalizer
    await until('object gone', () => get('demo') === undefined);
    expect(controller.list()).toEqual([]);
    expect(sw.next('gen1')).toBeUndefined();
    expect(fake.requests).toContainEqual({
      method: 'PATCH',
      path: `/apis/flowline.io/v1alpha1/namespaces/${NS}/servicechains/demo`,
      contentType: 'application/json-patch+json',
    });
  });

  it('a watch ended by 410 Gone re-lists and loses no change made meanwhile', async () => {
    fake.create('servicechains', NS, chain('kept', [FW]));
    fake.create('servicechains', NS, chain('changed', [ROUTER]));
    fake.create('servicechains', NS, chain('forced', [FW]));
    await reconciler.start();
    for (const n of ['kept', 'changed', 'forced']) await until(n, () => observed(n, 1));
    await until('watches open', () => fake.openWatches === 2);
    expect(reconciler.lists.chains).toBe(1);
    // While the watch is gone and the history compacted: a new chain, a spec change, and a
    // chain removed outright (finalizer stripped, then deleted) that only a re-list reveals.
    fake.expire();
    fake.create('servicechains', NS, chain('added', [ROUTER]));
    fake.patch('servicechains', NS, 'changed', 'application/merge-patch+json', {
      spec: { hops: [FW] },
    });
    fake.patch('servicechains', NS, 'forced', 'application/merge-patch+json', {
      metadata: { finalizers: null },
    });
    fake.delete('servicechains', NS, 'forced');
    await until(
      'added',
      () => observed('added', 1) && condition('added', 'Ready')?.status === 'True',
    );
    await until('changed', () => observed('changed', 2));
    await until('forced chain removed', () =>
      controller.list().every((c) => c.name !== chainNameFor(NS, 'forced')),
    );
    expect(reconciler.lists.chains).toBeGreaterThanOrEqual(2);
    expect(
      controller
        .list()
        .map((c) => c.name)
        .sort(),
    ).toEqual(['added', 'changed', 'kept'].map((n) => chainNameFor(NS, n)).sort());
    expect(controller.get(chainNameFor(NS, 'changed')).spec?.hops?.[0]?.nf).toBe('nfs/fw');
  });

  it('reconnects after an apiserver restart and resumes from its resourceVersion', async () => {
    fake.create('servicechains', NS, chain('before', [FW]));
    await reconciler.start();
    await until('before', () => observed('before', 1));
    await fake.stop();
    // Written while the apiserver is down (as etcd keeps them); the history is kept.
    fake.create('servicechains', NS, chain('during', [ROUTER]));
    // A few reconnects fail while it is down.
    const failed = () =>
      log.lines.filter((l) => l.msg === 'watch failed; reconnecting' && l.part === 'servicechains');
    const before = failed().length;
    await until('two failed reconnects', () => failed().length >= before + 2);
    await fake.start();
    await until(
      'during',
      () => observed('during', 1) && condition('during', 'Ready')?.status === 'True',
      15_000,
    );
    expect(reconciler.lists.chains).toBe(1); // resumed by resourceVersion, no re-list needed
    fake.create('servicechains', NS, chain('after', [FW]));
    await until('after', () => observed('after', 1));
  });

  it('a watch refused with HTTP 410 Gone after an outage re-lists', async () => {
    fake.create('servicechains', NS, chain('before', [FW]));
    await reconciler.start();
    await until('before', () => observed('before', 1));
    await fake.stop();
    fake.create('servicechains', NS, chain('during', [ROUTER]));
    fake.expire(); // the outage outlived the history: resuming is refused
    fake.expiredAs = 'http';
    await fake.start();
    await until('during', () => observed('during', 1), 15_000);
    expect(reconciler.lists.chains).toBeGreaterThanOrEqual(2);
    expect(fake.requests).toContainEqual(
      expect.objectContaining({
        method: 'GET',
        path: '/apis/flowline.io/v1alpha1/servicechains',
        watch: true,
      }),
    );
  });

  it('BOOKMARKs advance the resume point without events', async () => {
    await reconciler.start();
    await until('watches open', () => fake.openWatches === 2);
    fake.create('pods', 'elsewhere', pod('x', '10.9.9.9'));
    fake.bookmark();
    await reconciler.idle();
    fake.create('servicechains', NS, chain('late', [FW]));
    await until('late', () => observed('late', 1));
    expect(reconciler.lists.chains).toBe(1);
  });

  it('made exactly the calls its RBAC rules allow (rbac.json, which the chart is checked against)', () => {
    const allowed = rbac.rules.flatMap((rule) =>
      rule.resources.flatMap((res) => rule.verbs.map((v) => `${rule.apiGroups[0]}:${v} ${res}`)),
    );
    expect([...calls].sort()).toEqual(allowed.sort());
  });
});
