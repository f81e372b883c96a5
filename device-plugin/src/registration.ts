import * as grpc from '@grpc/grpc-js';
import { devicePluginV1beta1 as dp } from '@flowline/proto';
import { join } from 'node:path';
import { RegistrationError } from './errors';

/**
 * Registers one resource with kubelet: calls Registration.Register on <pluginDir>/kubelet.sock.
 * Kubelet dials back the endpoint and asks GetDevicePluginOptions before it answers, so the
 * endpoint must be serving already.
 */
export async function registerWithKubelet(
  pluginDir: string,
  request: dp.RegisterRequest,
  timeoutMs = 10_000,
  interceptors: grpc.Interceptor[] = [],
): Promise<void> {
  const socket = join(pluginDir, dp.KUBELET_SOCKET);
  const { Registration } = dp.loadDevicePluginV1beta1();
  const client = new Registration(`unix:${socket}`, grpc.credentials.createInsecure(), {
    interceptors,
  });
  try {
    await new Promise<void>((resolve, reject) => {
      client.Register(request, { deadline: Date.now() + timeoutMs }, (err) => {
        if (err)
          reject(
            new RegistrationError(request.resourceName ?? '', socket, err.details || err.message, {
              cause: err,
            }),
          );
        else resolve();
      });
    });
  } finally {
    client.close();
  }
}
