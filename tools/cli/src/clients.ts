// gRPC clients the CLI uses: the chain controller's ChainService and each NF's
// NetworkFunction API, with unary calls as promises that carry a deadline.
import * as grpc from '@grpc/grpc-js';
import {
  type UnaryMethod,
  chainV1,
  loadNetworkFunctionV1,
  type nfV1,
  unaryCall,
} from '@flowline/proto';

/** Unary calls as promises with a deadline (the shared helper of @flowline/proto). */
export { unaryCall as unary } from '@flowline/proto';

export function chainClient(address: string): chainV1.ChainServiceClient {
  const { ChainService } = chainV1.loadChainV1();
  return new ChainService(address, grpc.credentials.createInsecure());
}

export type NfClient = InstanceType<ReturnType<typeof loadNetworkFunctionV1>['NetworkFunction']>;

export function nfClient(address: string): NfClient {
  const { NetworkFunction } = loadNetworkFunctionV1();
  return new NetworkFunction(address, grpc.credentials.createInsecure());
}

export async function nfInfo(
  address: string,
  timeoutMs = 3000,
): Promise<nfV1.NetworkFunctionInfo__Output> {
  const client = nfClient(address);
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

/** A gRPC error as one line: the status name and the server's message (which names the field). */
export function grpcMessage(err: unknown): string {
  const e = err as Partial<grpc.ServiceError>;
  if (typeof e.code === 'number')
    return `${grpc.status[e.code] ?? e.code}: ${e.details ?? e.message ?? ''}`;
  return (err as Error).message ?? String(err);
}
