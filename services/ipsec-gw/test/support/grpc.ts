/**
 * The gateway's gRPC service on a unix socket in a temp folder, over mutual TLS with the NF
 * access policy (as an NF serves it), with a client calling as the operator and one as another
 * tenant's NF.
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
import { ipsecV1 } from '@flowline/proto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IpsecStore } from '../../src/store';
import { ipsecService } from '../../src/service';

export interface ServedGateway {
  operator: ipsecV1.IpsecGatewayClient;
  otherTenant: ipsecV1.IpsecGatewayClient;
  close(): Promise<void>;
}

export async function serveGateway(store: IpsecStore): Promise<ServedGateway> {
  const dir = mkdtempSync(join(tmpdir(), 'flowline-ipsec-'));
  const pki = new LocalPki(join(dir, 'pki'));
  const svc = ipsecService(store);
  const server = new grpc.Server({
    interceptors: [
      authorizationInterceptor(nfAccessPolicy('flowline', [svc]), { insecure: false }),
    ],
  });
  server.addService(svc.definition, svc.implementation);
  const address = `unix://${join(dir, 'gw.sock')}`;
  const files = pki.nf('default', 'gw');
  await certificatesLoaded(files);
  await new Promise<void>((res, rej) =>
    server.bindAsync(
      address,
      serverCredentials(files, { warn: () => undefined }, 'ipsec-gw'),
      (e) => (e ? rej(e) : res()),
    ),
  );
  const Client = ipsecV1.loadIpsecV1().IpsecGateway;
  const operator = new Client(address, channelCredentials(pki.operator(), nfId('default', 'gw')));
  const other = pki.nf('tenant-b', 'spy');
  await certificatesLoaded(other);
  const otherTenant = new Client(address, channelCredentials(other, nfId('default', 'gw')));
  return {
    operator,
    otherTenant,
    async close() {
      operator.close();
      otherTenant.close();
      await new Promise<void>((r) => server.tryShutdown(() => r()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

type Unary<Req, Res> = (req: Req, cb: (e: grpc.ServiceError | null, r?: Res) => void) => unknown;

/** One unary call as a promise. */
export function call<Req, Res>(fn: Unary<Req, Res>, req: Req): Promise<Res> {
  return new Promise((resolve, reject) => fn(req, (e, r) => (e ? reject(e) : resolve(r!))));
}

/** The error of a call that must fail. */
export async function refusal<Req, Res>(fn: Unary<Req, Res>, req: Req): Promise<grpc.ServiceError> {
  const r = await call(fn, req).then(
    () => undefined,
    (e: grpc.ServiceError) => e,
  );
  if (!r) throw new Error('the call succeeded');
  return r;
}
