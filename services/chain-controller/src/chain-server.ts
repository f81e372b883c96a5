import * as grpc from '@grpc/grpc-js';
import {
  authorizationInterceptor,
  serverCredentials,
  type SecurityLog,
  type TransportSecurity,
} from '@flowline/grpc-auth';
import type { HealthService } from '@flowline/proto';
import type { ChainController } from './controller';
import { chainServicePolicy } from './security';
import { chainService, type ChainServiceOptions } from './service';

export interface ChainServerOptions {
  controller: ChainController;
  security: TransportSecurity;
  trustDomain: string;
  log: SecurityLog;
  /** Names the listener in the warning a plaintext one logs. */
  listener: string;
  /** Run after the authorization check (telemetry's). */
  interceptors?: grpc.ServerInterceptor[];
  health?: HealthService;
  service?: ChainServiceOptions;
}

/**
 * The ChainService's gRPC server as the controller serves it: its credentials (mutual TLS
 * requiring a client certificate from the CA, or plaintext when configured, warned) and the
 * authorization interceptor first, so that a call from any identity but the operator's gets
 * PERMISSION_DENIED naming the identity before a handler runs (chainServicePolicy).
 */
export function createChainServer(options: ChainServerOptions): {
  server: grpc.Server;
  credentials: grpc.ServerCredentials;
} {
  // Credentials first: unreadable certificate files fail here, before anything listens.
  const credentials = serverCredentials(options.security, options.log, options.listener);
  const server = new grpc.Server({
    interceptors: [
      authorizationInterceptor(chainServicePolicy(options.trustDomain), {
        insecure: options.security.insecure === true,
      }),
      ...(options.interceptors ?? []),
    ],
  });
  const svc = chainService(options.controller, options.service ?? {});
  server.addService(svc.definition, svc.implementation);
  options.health?.addTo(server);
  return { server, credentials };
}
