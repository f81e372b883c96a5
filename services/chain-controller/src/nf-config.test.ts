import * as grpc from '@grpc/grpc-js';
import {
  authorizationInterceptor,
  controllerId,
  onlyIdentities,
  operatorId,
  certificatesLoaded,
  serverCredentials,
  type TransportSecurity,
} from '@flowline/grpc-auth';
import { firewallV1, ipsecV1, routerV1 } from '@flowline/proto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { TestPki } from '../test/support/pki';
import type { ChainSwitch } from './chain-switch';
import { ChainController } from './controller';
import type { NfDirectory, NfRecord } from './directory';
import { HopConfigConflictError, HopConfigError } from './errors';
import { GrpcNfConfigurator } from './nf-config';
import { toStatus } from './service';
import { MemoryChainStore } from './store';

const work = mkdtempSync(join(tmpdir(), 'flowline-nfcfg-'));
const pki = new TestPki(join(work, 'pki'));
const controllerTls = pki.controller();
afterAll(() => rmSync(work, { recursive: true, force: true }));

/**
 * Hop configs reach the NFs through their own gRPC APIs over mutual TLS: a firewall.v1 and a
 * router.v1 server on the wire (the NFs' side is played by servers that keep rules and routes,
 * refuse what the real NFs refuse, and open their methods to the controller and the operator as
 * nf-runtime does), the controller over an in-memory switch presenting its certificate.
 */
class Nf {
  readonly rules = new Map<string, firewallV1.Rule__Output>();
  readonly routes = new Map<string, routerV1.Route__Output>();
  readonly policies = new Map<string, ipsecV1.Policy__Output>();
  /** The gateway's SAs, installed by its operator (never by a chain). */
  readonly sas = new Set<number>([0x1001]);
  readonly calls: string[] = [];
  /** Refuses every AddRule (an NF that cannot take config for now). */
  refuseRules = false;
  private readonly server: grpc.Server;
  address = '';

  constructor(private readonly security: TransportSecurity) {
    const configurers = onlyIdentities(controllerId(), operatorId());
    this.server = new grpc.Server({
      interceptors: [
        authorizationInterceptor(
          {
            '/flowline.firewall.v1.Firewall/*': configurers,
            '/flowline.router.v1.Router/*': configurers,
            '/flowline.ipsec.v1.IpsecGateway/*': configurers,
          },
          { insecure: false },
        ),
      ],
    });
  }

  async start(): Promise<this> {
    const bad = (cb: grpc.sendUnaryData<unknown>, details: string) =>
      cb({ code: grpc.status.INVALID_ARGUMENT, details } as grpc.ServiceError);
    this.server.addService(firewallV1.loadFirewallV1().Firewall.service, {
      AddRule: (
        call: grpc.ServerUnaryCall<{ rule: firewallV1.Rule__Output }, unknown>,
        cb: grpc.sendUnaryData<unknown>,
      ) => {
        const r = call.request.rule;
        this.calls.push(`AddRule ${r.id}`);
        if (r.priority < 1) return bad(cb, 'rule.priority: must be 1-536870910 (got 0)');
        if (this.refuseRules)
          return cb({ code: grpc.status.UNAVAILABLE, details: 'busy' } as grpc.ServiceError);
        if (this.rules.has(r.id))
          return cb({ code: grpc.status.ALREADY_EXISTS, details: r.id } as grpc.ServiceError);
        this.rules.set(r.id, r);
        cb(null, { generation: String(this.rules.size), ruleCount: this.rules.size });
      },
      DeleteRule: (
        call: grpc.ServerUnaryCall<{ id: string }, unknown>,
        cb: grpc.sendUnaryData<unknown>,
      ) => {
        this.calls.push(`DeleteRule ${call.request.id}`);
        if (!this.rules.delete(call.request.id))
          return cb({ code: grpc.status.NOT_FOUND } as grpc.ServiceError);
        cb(null, { generation: '0', ruleCount: this.rules.size });
      },
    });
    this.server.addService(routerV1.loadRouterV1().Router.service, {
      AddRoute: (
        call: grpc.ServerUnaryCall<{ route: routerV1.Route__Output }, unknown>,
        cb: grpc.sendUnaryData<unknown>,
      ) => {
        const r = call.request.route;
        this.calls.push(`AddRoute ${r.prefix}`);
        if (!/\/\d+$/.test(r.prefix)) return bad(cb, `route.prefix: "${r.prefix}" is not a prefix`);
        this.routes.set(r.prefix, r);
        cb(null, { generation: '1', routeCount: this.routes.size });
      },
      DeleteRoute: (
        call: grpc.ServerUnaryCall<{ prefix: string }, unknown>,
        cb: grpc.sendUnaryData<unknown>,
      ) => {
        this.calls.push(`DeleteRoute ${call.request.prefix}`);
        this.routes.delete(call.request.prefix);
        cb(null, { generation: '2', routeCount: this.routes.size });
      },
    });
    this.server.addService(ipsecV1.loadIpsecV1().IpsecGateway.service, {
      AddPolicy: (
        call: grpc.ServerUnaryCall<{ policy: ipsecV1.Policy__Output }, unknown>,
        cb: grpc.sendUnaryData<unknown>,
      ) => {
        const p = call.request.policy;
        this.calls.push(`AddPolicy ${p.id}`);
        if (p.action === 'PROTECT' && !this.sas.has(p.saSpi))
          return bad(cb, `policy.sa_spi: no SA with SPI ${p.saSpi} of this direction`);
        if (this.policies.has(p.id))
          return cb({ code: grpc.status.ALREADY_EXISTS, details: p.id } as grpc.ServiceError);
        this.policies.set(p.id, p);
        cb(null, { generation: String(this.policies.size) });
      },
      DeletePolicy: (
        call: grpc.ServerUnaryCall<{ id: string }, unknown>,
        cb: grpc.sendUnaryData<unknown>,
      ) => {
        this.calls.push(`DeletePolicy ${call.request.id}`);
        if (!this.policies.delete(call.request.id))
          return cb({ code: grpc.status.NOT_FOUND } as grpc.ServiceError);
        cb(null, { generation: '0' });
      },
    });
    await certificatesLoaded(this.security);
    const port = await new Promise<number>((res, rej) =>
      this.server.bindAsync(
        '127.0.0.1:0',
        serverCredentials(this.security, { warn: () => undefined }, 'nf'),
        (e, p) => (e ? rej(e) : res(p)),
      ),
    );
    this.address = `127.0.0.1:${port}`;
    return this;
  }

  stop(): void {
    this.server.forceShutdown();
  }
}

class Switch implements ChainSwitch {
  tables: string[][] = [];
  refuse = false;
  async apply(flows: string[]) {
    if (this.refuse) throw new Error('the switch refused the bundle');
    this.tables.push(flows);
  }
  async flowStats() {
    return [];
  }
  async portNames() {
    return new Set(['gen1', 'fw1', 'fw2', 'rt1', 'rt2', 'sink1']);
  }
}

const nfs: Nf[] = [];
afterEach(() => {
  for (const nf of nfs.splice(0)) nf.stop();
});

/**
 * The firewall serves with the certificate of `fwServes` (default its own, default/fw); the
 * directory says its workload is default/fw, as the pod's namespace and name do.
 */
async function setup(fwServes = pki.nf('default', 'fw')) {
  const fw = await new Nf(fwServes).start();
  const rt = await new Nf(pki.nf('default', 'rt')).start();
  nfs.push(fw, rt);
  const directory: NfDirectory = {
    lookup: async (nf) =>
      (<Record<string, NfRecord>>{
        'default/gen': { name: nf, interfaces: { net1: 'gen1' } },
        'default/fw': {
          name: nf,
          interfaces: { net1: 'fw1', net2: 'fw2' },
          grpcAddress: fw.address,
          workload: { namespace: 'default', name: 'fw' },
        },
        'default/rt': {
          name: nf,
          interfaces: { net1: 'rt1', net2: 'rt2' },
          grpcAddress: rt.address,
          workload: { namespace: 'default', name: 'rt' },
        },
        'default/sink': { name: nf, interfaces: { net1: 'sink1' } },
      })[nf],
  };
  const sw = new Switch();
  const controller = new ChainController({
    store: new MemoryChainStore(),
    directory,
    switch: sw,
    nfConfig: new GrpcNfConfigurator(controllerTls),
  });
  await controller.start();
  return { fw, rt, sw, controller, directory };
}

const rule = (id: string, priority = 100): firewallV1.Rule => ({
  id,
  priority,
  action: 'PERMIT',
  protocol: 'udp',
  dstPorts: { first: 53, last: 53 },
});

const spec = (rules: firewallV1.Rule[], routes: routerV1.Route[]) => ({
  classifier: { ingressPort: 'default/gen/net1' },
  hops: [
    {
      nf: 'default/fw',
      ingressInterface: 'net1',
      egressInterface: 'net2',
      config: { firewallRules: rules },
    },
    { nf: 'default/rt', ingressInterface: 'net1', egressInterface: 'net2', config: { routes } },
  ],
  egressPort: 'default/sink/net1',
});

describe('hop configs through the NFs gRPC APIs', () => {
  it('create gives each NF its config, update swaps it, delete takes it back', async () => {
    const { fw, rt, controller } = await setup();
    await controller.create(
      'c',
      spec([rule('dns')], [{ prefix: '10.9.0.0/16', interface: 'net2' }]),
    );
    expect([...fw.rules.keys()]).toEqual(['dns']);
    expect([...rt.routes.keys()]).toEqual(['10.9.0.0/16']);
    await controller.update(
      'c',
      spec([rule('web')], [{ prefix: '10.8.0.0/16', interface: 'net2' }]),
    );
    expect([...fw.rules.keys()]).toEqual(['web']);
    expect([...rt.routes.keys()]).toEqual(['10.8.0.0/16']);
    await controller.delete('c');
    expect(fw.rules.size).toBe(0);
    expect(rt.routes.size).toBe(0);
  });

  it('a refused item fails the call naming it, and nothing is left changed', async () => {
    const { fw, rt, sw, controller } = await setup();
    const tablesBefore = sw.tables.length;
    const err = await controller
      .create(
        'c',
        spec([rule('dns'), rule('bad', 0)], [{ prefix: '10.9.0.0/16', interface: 'net2' }]),
      )
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HopConfigError);
    expect((err as Error).message).toBe(
      'spec.hops[0].config.firewall_rules[1]: rule.priority: must be 1-536870910 (got 0)',
    );
    expect(fw.rules.size).toBe(0);
    expect(rt.calls).toEqual([]);
    expect(sw.tables.length).toBe(tablesBefore);
    expect(controller.list()).toEqual([]);

    // A failing update keeps the old chain and gives its NFs their old config back.
    await controller.create(
      'c',
      spec([rule('dns')], [{ prefix: '10.9.0.0/16', interface: 'net2' }]),
    );
    const refused = await controller
      .update('c', spec([rule('web')], [{ prefix: 'nonsense', interface: 'net2' }]))
      .catch((e: unknown) => e);
    expect((refused as Error).message).toMatch(
      /^spec\.hops\[1\]\.config\.routes\[0\]: route\.prefix: "nonsense" is not a prefix$/,
    );
    expect([...fw.rules.keys()]).toEqual(['dns']);
    expect([...rt.routes.keys()]).toEqual(['10.9.0.0/16']);
    expect(controller.get('c').generation).toBe('1');
  });

  it('a failed change takes back only what it added: a rule the NF already had stays', async () => {
    const { fw, sw, controller } = await setup();
    fw.rules.set('dns', { ...rule('dns'), id: 'dns' } as firewallV1.Rule__Output); // its operator's
    // refused by the NF: the call's own rule goes, the operator's stays
    await expect(controller.create('c', spec([rule('dns'), rule('bad', 0)], []))).rejects.toThrow(
      HopConfigError,
    );
    expect([...fw.rules.keys()]).toEqual(['dns']);
    // refused by the switch after the NF took the config: the same
    sw.refuse = true;
    await expect(controller.create('c', spec([rule('dns'), rule('web')], []))).rejects.toThrow(
      /refused/,
    );
    expect([...fw.rules.keys()]).toEqual(['dns']);
    // only the rule it added: the refused one was never there, the operator's stays
    expect(fw.calls.filter((c) => c.startsWith('DeleteRule'))).toEqual(['DeleteRule web']);
    expect(controller.list()).toEqual([]);
  });

  it("a rule id another chain gives the same NF is refused naming the item (deleting either would take the other's)", async () => {
    const { fw, controller } = await setup();
    await controller.create('a', spec([rule('dns')], []));
    const other = { ...spec([rule('web'), rule('dns')], []), priority: 200 };
    const err = await controller.create('b', other).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HopConfigConflictError);
    expect((err as Error).message).toBe(
      'spec.hops[0].config.firewall_rules[1]: chain "a" gives default/fw its firewall rule dns already; give this one another id',
    );
    expect(toStatus(err).code).toBe(grpc.status.ALREADY_EXISTS);
    // nothing was sent to the NF, and an update of "a" itself may keep its own rule
    expect(fw.calls).toEqual(['AddRule dns']);
    await controller.update('a', spec([rule('dns'), rule('web')], []));
    expect([...fw.rules.keys()].sort()).toEqual(['dns', 'web']);
    await controller.create('b', { ...spec([rule('ntp')], []), priority: 200 });
    await controller.delete('b');
    expect([...fw.rules.keys()].sort()).toEqual(['dns', 'web']);
  });

  it("a failed update whose old config cannot be put back leaves the old chain's hop down, until a reconcile configures it", async () => {
    const { fw, controller } = await setup();
    await controller.create('c', spec([rule('dns')], []));
    fw.refuseRules = true; // the new config, and then the old one, are refused
    await expect(controller.update('c', spec([rule('web')], []))).rejects.toThrow(HopConfigError);
    expect(fw.rules.size).toBe(0);
    const down = controller.get('c');
    expect(down.generation).toBe('1');
    expect(down.status?.phase).not.toBe('ACTIVE');
    expect(down.status?.hops?.[0]).toMatchObject({ nf: 'default/fw', healthy: false });
    fw.refuseRules = false;
    await controller.reconcile();
    expect([...fw.rules.keys()]).toEqual(['dns']);
    const back = controller.get('c');
    expect(back.status?.phase).toBe('ACTIVE');
    expect(back.status?.hops?.[0]).toMatchObject({ healthy: true });
  });

  it("an IPsec gateway hop gets the chain's policies, naming the gateway's own SAs, and loses them with the chain", async () => {
    const { fw, controller } = await setup();
    const policy = (id: string, saSpi: number): ipsecV1.Policy => ({
      id,
      priority: 100,
      direction: 'OUTBOUND',
      match: { protocol: 'udp', dstPorts: { first: 53, last: 53 } },
      action: 'PROTECT',
      saSpi,
    });
    const gwSpec = (policies: ipsecV1.Policy[]) => ({
      classifier: { ingressPort: 'default/gen/net1' },
      hops: [
        {
          nf: 'default/fw',
          ingressInterface: 'net1',
          egressInterface: 'net2',
          config: { ipsecPolicies: policies },
        },
      ],
      egressPort: 'default/sink/net1',
    });
    await controller.create('gw', gwSpec([policy('dns-out', 0x1001)]));
    expect([...fw.policies.keys()]).toEqual(['dns-out']);
    expect(fw.policies.get('dns-out')).toMatchObject({ action: 'PROTECT', saSpi: 0x1001 });
    // a policy naming an SA the gateway does not have: refused, named, nothing changed
    const err = await controller
      .update('gw', gwSpec([policy('dns-out-2', 0x1001), policy('web-out', 0x2002)]))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HopConfigError);
    expect((err as Error).message).toBe(
      'spec.hops[0].config.ipsec_policies[1]: policy.sa_spi: no SA with SPI 8194 of this direction',
    );
    expect([...fw.policies.keys()]).toEqual(['dns-out']);
    await controller.delete('gw');
    expect(fw.policies.size).toBe(0);
    expect(fw.calls.filter((c) => c.includes('Policy'))).toEqual([
      'AddPolicy dns-out',
      'DeletePolicy dns-out',
      'AddPolicy dns-out-2',
      'AddPolicy web-out',
      'DeletePolicy dns-out-2',
      'AddPolicy dns-out',
      'DeletePolicy dns-out',
    ]);
  });

  it('an NF without a known gRPC address is named', async () => {
    const { controller } = await setup();
    const s = spec([], []);
    s.hops[0] = {
      nf: 'default/sink',
      ingressInterface: 'net1',
      egressInterface: 'net1',
      config: { firewallRules: [rule('x')] },
    };
    await expect(controller.create('c', s)).rejects.toThrow(
      'spec.hops[0].nf: "default/sink" has no known gRPC address, so its config cannot be applied',
    );
  });

  it('an NF proving another identity is not configured: the call fails naming the hop, nothing changed', async () => {
    // The firewall's address answers with the router's certificate (another workload's pod).
    const { fw, rt, sw, controller } = await setup(pki.nf('default', 'rt'));
    const tablesBefore = sw.tables.length;
    const err = await controller
      .create('c', spec([rule('dns')], [{ prefix: '10.9.0.0/16', interface: 'net2' }]))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HopConfigError);
    expect((err as Error).message).toMatch(
      /^spec\.hops\[0\]\.config\.firewall_rules\[0\]: .*server proved identity spiffe:\/\/flowline\/ns\/default\/nf\/rt, expected spiffe:\/\/flowline\/ns\/default\/nf\/fw/,
    );
    expect(fw.calls).toEqual([]);
    expect(rt.calls).toEqual([]);
    expect(sw.tables.length).toBe(tablesBefore);
    expect(controller.list()).toEqual([]);
  });

  it('a controller without an NF client refuses hop configs naming the hop', async () => {
    const { fw, directory } = await setup();
    const bare = new ChainController({
      store: new MemoryChainStore(),
      directory,
      switch: new Switch(),
    });
    await bare.start();
    await expect(bare.create('c', spec([rule('dns')], []))).rejects.toThrow(
      /^spec\.hops\[0\]\.config: this controller has no NF client configured/,
    );
    expect(fw.calls).toEqual([]);
  });
});
