/**
 * The firewall's gRPC service on a unix socket in a temp folder, with a client, for tests: over
 * mutual TLS with the NF access policy, as an NF serves it, the client calling as the operator.
 */
import * as grpc from '@grpc/grpc-js';
import {
  LocalPki,
  authorizationInterceptor,
  certificatesLoaded,
  channelCredentials,
  nfId,
  serverCredentials,
} from '@flowline/grpc-auth';
import { nfAccessPolicy } from '@flowline/nf-runtime';
import { firewallV1 } from '@flowline/proto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { type AclTable, RuleStore } from '../../src/rule-store';
import type { AclRuleSet } from '../../src/rules';
import { type FirewallCounterSource, firewallService } from '../../src/service';

export interface ServedFirewall {
  client: firewallV1.FirewallClient;
  close(): Promise<void>;
}

export async function serveFirewall(
  store: RuleStore,
  counters: FirewallCounterSource,
  /** Told the method's name when a call reaches its handler (the order the server sees). */
  onCall?: (method: string) => void,
): Promise<ServedFirewall> {
  const dir = mkdtempSync(join(tmpdir(), 'flowline-fw-'));
  const pki = new LocalPki(join(dir, 'pki'));
  const svc = firewallService(store, counters);
  const server = new grpc.Server({
    interceptors: [
      authorizationInterceptor(nfAccessPolicy('flowline', [svc]), { insecure: false }),
    ],
  });
  const implementation = onCall
    ? Object.fromEntries(
        Object.entries(svc.implementation).map(([name, handler]) => [
          name,
          (...args: unknown[]) => {
            onCall(name);
            return (handler as (...a: unknown[]) => unknown)(...args);
          },
        ]),
      )
    : svc.implementation;
  server.addService(svc.definition, implementation as grpc.UntypedServiceImplementation);
  const address = `unix://${join(dir, 'fw.sock')}`;
  const files = pki.nf('default', 'fw');
  await certificatesLoaded(files);
  const tls = serverCredentials(files, { warn: () => undefined }, 'firewall');
  await new Promise<void>((res, rej) =>
    server.bindAsync(address, tls, (e) => (e ? rej(e) : res())),
  );
  const client = new (firewallV1.loadFirewallV1().Firewall)(
    address,
    channelCredentials(pki.operator(), nfId('default', 'fw')),
  );
  return {
    client,
    async close() {
      client.close();
      await new Promise<void>((r) => server.tryShutdown(() => r()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Counters that must not be asked for (tests of rules only). */
export const noCounters: FirewallCounterSource = {
  counters: () => {
    throw new Error('counters are tested against the real pipeline');
  },
};

type Unary<Req, Res> = (req: Req, cb: (e: grpc.ServiceError | null, r?: Res) => void) => unknown;

/** One unary call as a promise. */
export function call<Req, Res>(fn: Unary<Req, Res>, req: Req): Promise<Res> {
  return new Promise((resolve, reject) => fn(req, (e, r) => (e ? reject(e) : resolve(r!))));
}

/** Records what reaches the table, and can be told to refuse (as a failed rte_acl build). */
export class RecordingTable implements AclTable {
  applied: AclRuleSet[] = [];
  refuse = false;
  async apply(set: AclRuleSet): Promise<void> {
    if (this.refuse) throw new Error('rte_acl_build: out of memory');
    this.applied.push(set);
  }
}

/**
 * For a describe block: a rule store over a RecordingTable, served over gRPC from beforeAll to
 * afterAll (counters are not served: they are tested against the real pipeline).
 */
export function servedRuleStore(): {
  table: RecordingTable;
  store: RuleStore;
  client: () => firewallV1.FirewallClient;
} {
  const table = new RecordingTable();
  const store = new RuleStore(table);
  let served: ServedFirewall | undefined;
  beforeAll(async () => {
    await store.init();
    served = await serveFirewall(store, noCounters);
  });
  afterAll(() => served?.close());
  return { table, store, client: () => served!.client };
}
