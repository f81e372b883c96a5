// Configures a hop's NF through the NF's own gRPC API (flowline.firewall.v1, flowline.router.v1)
// with what the chain's HopConfig asks for, and knows how to take back exactly what it added.
import * as grpc from '@grpc/grpc-js';
import { DEFAULT_TRUST_DOMAIN, type TransportSecurity } from '@flowline/grpc-auth';
import { type UnaryMethod, type chainV1, firewallV1, routerV1, unaryCall } from '@flowline/proto';
import { HopConfigError } from './errors';
import { nfChannelCredentials, type NfWorkload } from './nf-identity';

/** Applies a hop's settings; resolves to the undo of what it did. Errors are HopConfigErrors. */
export interface NfConfigurator {
  /** `workload`: whose identity the NF at `address` must prove (src/nf-identity.ts). */
  apply(
    address: string,
    config: chainV1.HopConfig,
    at: string,
    workload?: NfWorkload,
  ): Promise<() => Promise<void>>;
}

function call<Req>(fn: UnaryMethod<Req, unknown>, req: Req, timeoutMs: number): Promise<void> {
  return unaryCall(fn, req, timeoutMs).then(() => undefined);
}

const isConflict = (err: unknown): boolean =>
  (err as grpc.ServiceError).code === grpc.status.ALREADY_EXISTS;

export function hasHopConfig(config: chainV1.HopConfig | null | undefined): boolean {
  return Boolean(
    config && ((config.firewallRules?.length ?? 0) > 0 || (config.routes?.length ?? 0) > 0),
  );
}

/**
 * The gRPC configurator: each firewall rule by AddRule, each route by AddRoute. An item the NF
 * already has (ALREADY_EXISTS, e.g. after a controller restart) counts as applied. A refusal
 * undoes the items this call added and names the item (`<at>.firewall_rules[2]: ...`). With
 * mutual TLS the controller presents its certificate and the NF must prove its workload's
 * identity; one that proves another is not configured (UNAVAILABLE naming both identities).
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
  ): Promise<() => Promise<void>> {
    let creds: grpc.ChannelCredentials;
    try {
      creds = nfChannelCredentials(this.security, this.trustDomain, workload);
    } catch (err) {
      throw new HopConfigError(at, (err as Error).message);
    }
    const undos: (() => Promise<void>)[] = [];
    const undoAll = async (): Promise<void> => {
      for (const undo of undos.splice(0).reverse()) await undo().catch(() => undefined);
    };
    const rules = config.firewallRules ?? [];
    const routes = config.routes ?? [];
    const fw = rules.length
      ? new (firewallV1.loadFirewallV1().Firewall)(address, creds)
      : undefined;
    const rt = routes.length ? new (routerV1.loadRouterV1().Router)(address, creds) : undefined;
    const close = (): void => {
      fw?.close();
      rt?.close();
    };
    try {
      for (const [i, rule] of rules.entries()) {
        try {
          await call(
            fw!.AddRule.bind(fw) as UnaryMethod<{ rule: firewallV1.Rule }, unknown>,
            { rule },
            this.timeoutMs,
          );
        } catch (err) {
          if (!isConflict(err))
            throw new HopConfigError(
              `${at}.firewall_rules[${i}]`,
              (err as grpc.ServiceError).details ?? String(err),
            );
        }
        undos.push(() =>
          call(
            fw!.DeleteRule.bind(fw) as UnaryMethod<{ id: string }, unknown>,
            { id: rule.id ?? '' },
            this.timeoutMs,
          ),
        );
      }
      for (const [i, route] of routes.entries()) {
        try {
          await call(
            rt!.AddRoute.bind(rt) as UnaryMethod<{ route: routerV1.Route }, unknown>,
            { route },
            this.timeoutMs,
          );
        } catch (err) {
          if (!isConflict(err))
            throw new HopConfigError(
              `${at}.routes[${i}]`,
              (err as grpc.ServiceError).details ?? String(err),
            );
        }
        undos.push(() =>
          call(
            rt!.DeleteRoute.bind(rt) as UnaryMethod<{ prefix: string }, unknown>,
            { prefix: route.prefix ?? '' },
            this.timeoutMs,
          ),
        );
      }
    } catch (err) {
      await undoAll();
      close();
      throw err;
    }
    // The clients stay open for the undo; it closes them.
    return async () => {
      try {
        await undoAll();
      } finally {
        close();
      }
    };
  }
}
