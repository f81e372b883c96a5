import * as grpc from '@grpc/grpc-js';
import { devicePluginV1beta1 as dp } from '@flowline/proto';
import type { Logger } from '@flowline/telemetry';
import { rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { DevicePluginError, DeviceRequestError } from './errors';

/** sun_path holds 108 bytes with the terminating NUL. */
const UNIX_PATH_MAX = 107;
import type { PluginMetrics } from './metrics';
import { endpointOf } from './names';
import { preferredAllocation } from './preferred';
import type { DeviceProvider, ListedDevice } from './providers';

/** The same options go into RegisterRequest and GetDevicePluginOptions (kubelet compares). */
export const PLUGIN_OPTIONS: Readonly<dp.DevicePluginOptions> = Object.freeze({
  preStartRequired: true,
  getPreferredAllocationAvailable: true,
});

export function toWireDevices(devices: ListedDevice[]): dp.Device[] {
  return devices.map((d) => ({
    ID: d.id,
    health: d.problem === undefined ? dp.HEALTHY : dp.UNHEALTHY,
    topology: d.numaNode === undefined ? null : { nodes: [{ ID: d.numaNode }] },
  }));
}

function inodeOf(path: string): number | undefined {
  try {
    const st = statSync(path);
    return st.isSocket() ? st.ino : undefined;
  } catch {
    return undefined;
  }
}

function statusError(code: grpc.status, details: string): grpc.ServiceError {
  return Object.assign(new Error(details), { code, details, metadata: new grpc.Metadata() });
}

function toStatus(err: unknown): grpc.ServiceError {
  if (err instanceof DeviceRequestError) {
    return statusError(
      err.reason === 'unknown' ? grpc.status.NOT_FOUND : grpc.status.FAILED_PRECONDITION,
      err.message,
    );
  }
  if (typeof (err as grpc.ServiceError).code === 'number') return err as grpc.ServiceError;
  return statusError(grpc.status.INTERNAL, (err as Error).message);
}

/**
 * One DevicePlugin gRPC server on <pluginDir>/<endpoint>, for one provider. ListAndWatch streams
 * stay open; publish() sends the full list to each of them whenever it changed.
 */
export class PoolServer {
  readonly endpoint: string;
  readonly socketPath: string;
  private server: grpc.Server | undefined;
  private inode: number | undefined;
  private readonly streams = new Set<
    grpc.ServerWritableStream<dp.Empty__Output, dp.ListAndWatchResponse>
  >();
  private lastSent = '';

  constructor(
    readonly provider: DeviceProvider,
    pluginDir: string,
    private readonly log: Logger,
    private readonly metrics: PluginMetrics,
    private readonly interceptors: grpc.ServerInterceptor[] = [],
  ) {
    this.endpoint = endpointOf(provider.resourceName);
    this.socketPath = join(pluginDir, this.endpoint);
  }

  get resourceName(): string {
    return this.provider.resourceName;
  }

  /** Whether our socket is still the file in the plugin directory (kubelet deletes it on restart). */
  socketIntact(): boolean {
    return (
      this.server !== undefined &&
      this.inode !== undefined &&
      inodeOf(this.socketPath) === this.inode
    );
  }

  async start(): Promise<void> {
    const bytes = Buffer.byteLength(this.socketPath);
    if (bytes > UNIX_PATH_MAX) {
      throw new DevicePluginError(
        `socket path ${this.socketPath} is ${bytes} bytes, over the ${UNIX_PATH_MAX}-byte unix socket limit; ` +
          'use a shorter pool name or plugin directory',
      );
    }
    rmSync(this.socketPath, { force: true });
    const server = new grpc.Server({ interceptors: this.interceptors });
    const { DevicePlugin } = dp.loadDevicePluginV1beta1();
    const handlers: dp.DevicePluginHandlers = {
      GetDevicePluginOptions: (_call, cb) => cb(null, PLUGIN_OPTIONS),
      ListAndWatch: (call) => this.listAndWatch(call),
      GetPreferredAllocation: (call, cb) => {
        try {
          cb(null, this.preferred(call.request));
        } catch (err) {
          cb(err as grpc.ServiceError);
        }
      },
      Allocate: (call, cb) => {
        try {
          cb(null, this.allocate(call.request));
        } catch (err) {
          cb(toStatus(err));
        }
      },
      PreStartContainer: (call, cb) => {
        const known = new Map(this.provider.devices().map((d) => [d.id, d]));
        const missing = call.request.devicesIds.filter((id) => !known.has(id));
        if (missing.length > 0) {
          cb(
            statusError(
              grpc.status.NOT_FOUND,
              `PreStartContainer: devices ${missing.join(', ')} of ${this.resourceName} are gone from the host`,
            ),
          );
          return;
        }
        const unhealthy = call.request.devicesIds.filter(
          (id) => known.get(id)?.problem !== undefined,
        );
        if (unhealthy.length > 0)
          this.log.warn('container starts with Unhealthy devices', { devices: unhealthy });
        cb(null, {});
      },
    };
    server.addService(DevicePlugin.service, handlers);
    await new Promise<void>((resolve, reject) => {
      server.bindAsync(`unix:${this.socketPath}`, grpc.ServerCredentials.createInsecure(), (err) =>
        err ? reject(err) : resolve(),
      );
    });
    this.server = server;
    this.inode = inodeOf(this.socketPath);
    this.log.info('serving', { resource: this.resourceName, socket: this.socketPath });
  }

  async stop(): Promise<void> {
    for (const call of this.streams) call.end();
    this.streams.clear();
    const server = this.server;
    this.server = undefined;
    if (server) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 1000);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    // Remove the socket only if it is still ours (kubelet may have put another file there).
    if (this.inode !== undefined && inodeOf(this.socketPath) === this.inode)
      rmSync(this.socketPath, { force: true });
    this.inode = undefined;
  }

  /** Sends the list to every open ListAndWatch stream if it changed since the last send. */
  publish(force = false): void {
    const response = { devices: toWireDevices(this.provider.devices()) };
    const text = JSON.stringify(response);
    if (!force && text === this.lastSent) return;
    this.lastSent = text;
    for (const call of this.streams) call.write(response);
    this.log.info('devices', {
      resource: this.resourceName,
      healthy: response.devices.filter((d) => d.health === dp.HEALTHY).length,
      unhealthy: response.devices.filter((d) => d.health === dp.UNHEALTHY).length,
      streams: this.streams.size,
    });
  }

  private listAndWatch(
    call: grpc.ServerWritableStream<dp.Empty__Output, dp.ListAndWatchResponse>,
  ): void {
    this.streams.add(call);
    const drop = (): void => {
      this.streams.delete(call);
    };
    call.on('cancelled', drop);
    call.on('close', drop);
    call.on('error', drop);
    call.write({ devices: toWireDevices(this.provider.devices()) });
  }

  private preferred(
    request: dp.PreferredAllocationRequest__Output,
  ): dp.PreferredAllocationResponse {
    const known = this.provider.placements();
    return {
      containerResponses: request.containerRequests.map((req, i) => {
        const size = req.allocationSize;
        if (size <= 0 || size > req.availableDeviceIDs.length) {
          throw statusError(
            grpc.status.INVALID_ARGUMENT,
            `container_requests[${i}].allocation_size ${size} must be 1..${req.availableDeviceIDs.length} (the number of available_deviceIDs)`,
          );
        }
        const notAvailable = req.mustIncludeDeviceIDs.filter(
          (id) => !req.availableDeviceIDs.includes(id),
        );
        if (notAvailable.length > 0) {
          throw statusError(
            grpc.status.INVALID_ARGUMENT,
            `container_requests[${i}].must_include_deviceIDs ${notAvailable.join(', ')} are not in available_deviceIDs`,
          );
        }
        return {
          deviceIDs: preferredAllocation(
            known,
            req.availableDeviceIDs,
            req.mustIncludeDeviceIDs,
            size,
            this.provider.policy,
          ),
        };
      }),
    };
  }

  private allocate(request: dp.AllocateRequest__Output): dp.AllocateResponse {
    if (request.containerRequests.length === 0) {
      throw statusError(
        grpc.status.INVALID_ARGUMENT,
        'container_requests is empty: nothing to allocate',
      );
    }
    const responses = request.containerRequests.map((req, i) => {
      if (req.devicesIds.length === 0) {
        throw statusError(
          grpc.status.INVALID_ARGUMENT,
          `container_requests[${i}].devices_ids is empty`,
        );
      }
      try {
        const response = this.provider.allocate(req.devicesIds);
        this.metrics.allocated(this.resourceName, req.devicesIds.length, true);
        this.log.info('allocated', { resource: this.resourceName, devices: req.devicesIds });
        return response;
      } catch (err) {
        this.metrics.allocated(this.resourceName, req.devicesIds.length, false);
        this.log.warn('allocation refused', {
          resource: this.resourceName,
          error: (err as Error).message,
        });
        // Kubelet's contract: on a failed allocation, send a ListAndWatch update too.
        if (err instanceof DeviceRequestError) this.publish(true);
        throw err;
      }
    });
    return { containerResponses: responses };
  }
}
