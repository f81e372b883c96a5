// gRPC clients the CLI uses: the chain controller's ChainService and each NF's APIs, over mutual
// TLS as the operator (spiffe://<td>/flowline/operator), checking that each server proves the
// identity it should (the controller's, or the NF's for that pod). Unary calls are promises with
// a deadline.
import { existsSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import {
  type TransportSecurity,
  channelCredentials,
  controllerId,
  nfId,
  transportSecurityFromEnv,
} from '@flowline/grpc-auth';
import { operatorTlsFiles } from '@flowline/node';
import {
  type UnaryMethod,
  chainV1,
  loadNetworkFunctionV1,
  type nfV1,
  unaryCall,
} from '@flowline/proto';

/** Unary calls as promises with a deadline (the shared helper of @flowline/proto). */
export { unaryCall as unary } from '@flowline/proto';

export type NfClient = InstanceType<ReturnType<typeof loadNetworkFunctionV1>['NetworkFunction']>;

const warnOnce = { warn: (msg: string) => process.stderr.write(`flowline: warning: ${msg}\n`) };

/** How the CLI authenticates, and whom it expects to reach. */
export class OperatorCredentials {
  constructor(
    readonly security: TransportSecurity,
    readonly trustDomain: string,
  ) {}

  /**
   * FLOWLINE_TLS_CA/CERT/KEY or FLOWLINE_INSECURE=1 when set; otherwise the operator certificate
   * `flowline up` issued under the node's state dir. Without either, a clear error.
   */
  static resolve(stateDir: string, env: NodeJS.ProcessEnv = process.env): OperatorCredentials {
    const trustDomain = env.FLOWLINE_TRUST_DOMAIN || 'flowline';
    const fromEnv = transportSecurityFromEnv(env);
    if (fromEnv) return new OperatorCredentials(fromEnv, trustDomain);
    const files = operatorTlsFiles(stateDir);
    if (!existsSync(files.certFile))
      throw new Error(
        `no operator certificate at ${files.certFile} (flowline up issues it); set FLOWLINE_TLS_CA, FLOWLINE_TLS_CERT and FLOWLINE_TLS_KEY, or FLOWLINE_INSECURE=1 for a node running without TLS`,
      );
    return new OperatorCredentials(files, trustDomain);
  }

  /** Credentials for the chain controller. */
  toController(): grpc.ChannelCredentials {
    return channelCredentials(this.security, controllerId(this.trustDomain), warnOnce);
  }

  /** Credentials for the NF of pod `namespace/name`. */
  toNf(podKey: string): grpc.ChannelCredentials {
    const [namespace, name] = podKey.split('/');
    if (!namespace || !name) throw new Error(`"${podKey}" is not namespace/name`);
    return channelCredentials(this.security, nfId(namespace, name, this.trustDomain), warnOnce);
  }
}

export function chainClient(
  address: string,
  creds: OperatorCredentials,
): chainV1.ChainServiceClient {
  const { ChainService } = chainV1.loadChainV1();
  return new ChainService(address, creds.toController());
}

export function nfClient(address: string, podKey: string, creds: OperatorCredentials): NfClient {
  const { NetworkFunction } = loadNetworkFunctionV1();
  return new NetworkFunction(address, creds.toNf(podKey));
}

export async function nfInfo(
  address: string,
  podKey: string,
  creds: OperatorCredentials,
  timeoutMs = 3000,
): Promise<nfV1.NetworkFunctionInfo__Output> {
  const client = nfClient(address, podKey, creds);
  try {
    return await unaryCall(
      client.GetInfo.bind(client) as UnaryMethod<object, nfV1.NetworkFunctionInfo__Output>,
      {},
      timeoutMs,
    );
  } finally {
    client.close();
  }
}

/**
 * Waits until the NF of pod `what` answers GetInfo with every link up (after `apply` its process
 * runs, but it serves only once its ports are open), or throws after timeoutMs saying so.
 */
export async function waitServing(
  address: string,
  what: string,
  creds: OperatorCredentials,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  for (;;) {
    try {
      const info = await nfInfo(address, what, creds, 2000);
      if (info.ports.length > 0 && info.ports.every((p) => p.linkUp)) return;
      last = `ports ${info.ports.map((p) => `${p.name}(${p.linkUp ? 'up' : 'down'})`).join(' ') || 'none'}`;
    } catch (err) {
      last = grpcMessage(err);
    }
    if (Date.now() > deadline)
      throw new Error(
        `${what} did not serve with every link up within ${timeoutMs / 1000} s (${last}); flowline logs ${what} shows why`,
      );
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** A gRPC error as one line: the status name and the server's message (which names the field). */
export function grpcMessage(err: unknown): string {
  const e = err as Partial<grpc.ServiceError>;
  if (typeof e.code === 'number')
    return `${grpc.status[e.code] ?? e.code}: ${e.details ?? e.message ?? ''}`;
  return (err as Error).message ?? String(err);
}
