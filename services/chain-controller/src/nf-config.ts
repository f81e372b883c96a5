// Configures a hop's NF through the NF's own gRPC API (flowline.firewall.v1, flowline.router.v1,
// flowline.ipsec.v1)
// with what the chain's HopConfig asks for, and knows how to take back exactly what it added.
import * as grpc from '@grpc/grpc-js';
import { DEFAULT_TRUST_DOMAIN, type TransportSecurity } from '@flowline/grpc-auth';
import {
  type UnaryMethod,
  type chainV1,
  firewallV1,
  ipsecV1,
  routerV1,
  unaryCall,
} from '@flowline/proto';
import { HopConfigError } from './errors';
import { nfChannelCredentials, type NfWorkload } from './nf-identity';

/**
 * Takes a hop's config back off its NF: called, every item (the chain is going); `rollback`, only
 * the items that call added, for a change that failed, so an item the NF had already (put there
 * by an earlier run, or by its operator) stays. Without `rollback` the whole undo is the rollback.
 */
export type NfConfigUndo = (() => Promise<void>) & { rollback?: () => Promise<void> };

/** Applies a hop's settings; resolves to the undo of what it did. Errors are HopConfigErrors. */
export interface NfConfigurator {
  /** `workload`: whose identity the NF at `address` must prove (src/nf-identity.ts). */
  apply(
    address: string,
    config: chainV1.HopConfig,
    at: string,
    workload?: NfWorkload,
  ): Promise<NfConfigUndo>;
}

function call<Req>(fn: UnaryMethod<Req, unknown>, req: Req, timeoutMs: number): Promise<void> {
  return unaryCall(fn, req, timeoutMs).then(() => undefined);
}

const isConflict = (err: unknown): boolean =>
  (err as grpc.ServiceError).code === grpc.status.ALREADY_EXISTS;

export function hasHopConfig(config: chainV1.HopConfig | null | undefined): boolean {
  return Boolean(
    config &&
    ((config.firewallRules?.length ?? 0) > 0 ||
      (config.routes?.length ?? 0) > 0 ||
      (config.ipsecPolicies?.length ?? 0) > 0),
  );
}

/** One kind of item a hop config holds: its field's name, and how one is added and taken back. */
interface ItemKind {
  field: string;
  count: number;
  add(i: number): Promise<void>;
  remove(i: number): Promise<void>;
}

/**
 * The gRPC configurator: each firewall rule by AddRule, each route by AddRoute, each IPsec
 * policy by AddPolicy (the SAs they name are the gateway's own, installed by its operator or an
 * IKE daemon: keys never travel in a chain). An item the NF already has (ALREADY_EXISTS, e.g.
 * after a controller restart) counts as applied: the undo takes it back with the chain, but a
 * refusal, and the returned rollback, take back only the items this call added. A refusal names
 * the item (`<at>.firewall_rules[2]: ...`). With mutual TLS the controller presents its
 * certificate and the NF must prove its workload's identity; one that proves another is not
 * configured (UNAVAILABLE naming both identities).
 */
export class GrpcNfConfigurator implements NfConfigurator {
  constructor(
    private readonly security: TransportSecurity,
    private readonly trustDomain = DEFAULT_TRUST_DOMAIN,
    private readonly timeoutMs = 5000,
  ) {}

  async apply(
    address: string,
    config: chainV1.HopConfig,
    at: string,
    workload?: NfWorkload,
  ): Promise<NfConfigUndo> {
    let creds: grpc.ChannelCredentials;
    try {
      creds = nfChannelCredentials(this.security, this.trustDomain, workload);
    } catch (err) {
      throw new HopConfigError(at, (err as Error).message);
    }
    const undos: { remove: () => Promise<void>; added: boolean }[] = [];
    const undoAll = async (onlyAdded: boolean): Promise<void> => {
      for (const u of undos.splice(0).reverse())
        if (u.added || !onlyAdded) await u.remove().catch(() => undefined);
    };
    const rules = config.firewallRules ?? [];
    const routes = config.routes ?? [];
    const policies = config.ipsecPolicies ?? [];
    const fw = rules.length
      ? new (firewallV1.loadFirewallV1().Firewall)(address, creds)
      : undefined;
    const rt = routes.length ? new (routerV1.loadRouterV1().Router)(address, creds) : undefined;
    const gw = policies.length
      ? new (ipsecV1.loadIpsecV1().IpsecGateway)(address, creds)
      : undefined;
    const close = (): void => {
      fw?.close();
      rt?.close();
      gw?.close();
    };
    const t = this.timeoutMs;
    const kinds: ItemKind[] = [
      {
        field: 'firewall_rules',
        count: rules.length,
        add: (i) =>
          call(fw!.AddRule.bind(fw) as UnaryMethod<unknown, unknown>, { rule: rules[i] }, t),
        remove: (i) =>
          call(
            fw!.DeleteRule.bind(fw) as UnaryMethod<unknown, unknown>,
            { id: rules[i]!.id ?? '' },
            t,
          ),
      },
      {
        field: 'routes',
        count: routes.length,
        add: (i) =>
          call(rt!.AddRoute.bind(rt) as UnaryMethod<unknown, unknown>, { route: routes[i] }, t),
        remove: (i) =>
          call(
            rt!.DeleteRoute.bind(rt) as UnaryMethod<unknown, unknown>,
            { prefix: routes[i]!.prefix ?? '' },
            t,
          ),
      },
      {
        field: 'ipsec_policies',
        count: policies.length,
        add: (i) =>
          call(gw!.AddPolicy.bind(gw) as UnaryMethod<unknown, unknown>, { policy: policies[i] }, t),
        remove: (i) =>
          call(
            gw!.DeletePolicy.bind(gw) as UnaryMethod<unknown, unknown>,
            { id: policies[i]!.id ?? '' },
            t,
          ),
      },
    ];
    try {
      for (const kind of kinds)
        for (let i = 0; i < kind.count; i++) {
          let added = true;
          try {
            await kind.add(i);
          } catch (err) {
            if (!isConflict(err))
              throw new HopConfigError(
                `${at}.${kind.field}[${i}]`,
                (err as grpc.ServiceError).details ?? String(err),
              );
            added = false;
          }
          undos.push({ remove: () => kind.remove(i), added });
        }
    } catch (err) {
      await undoAll(true);
      close();
      throw err;
    }
    // The clients stay open for the undo; it closes them.
    const undo = (onlyAdded: boolean) => async (): Promise<void> => {
      try {
        await undoAll(onlyAdded);
      } finally {
        close();
      }
    };
    return Object.assign(undo(false), { rollback: undo(true) });
  }
}
