// Kubelet's side of the device plugin API v1beta1, as kubelet's device manager speaks it: it
// serves Registration on <plugin dir>/kubelet.sock; inside Register it checks the version and the
// resource name, dials the plugin's endpoint and calls GetDevicePluginOptions before answering;
// then it streams ListAndWatch and can call GetPreferredAllocation, Allocate and
// PreStartContainer; restart() deletes every socket in the plugin directory and serves
// kubelet.sock anew, as a restarting kubelet does. tools/node uses it where there is no kubelet;
// the daemon's tests use it to drive the real daemon process.
import * as grpc from '@grpc/grpc-js';
import { devicePluginV1beta1 as dp } from '@flowline/proto';
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

export interface PluginConnection {
  resourceName: string;
  endpoint: string;
  registerOptions: dp.DevicePluginOptions__Output | null;
  /** What GetDevicePluginOptions answered during Register */
  dialedOptions: dp.DevicePluginOptions__Output;
  client: dp.DevicePluginClient;
  /** Every ListAndWatch response, in order */
  updates: dp.Device__Output[][];
  streamEnded: boolean;
  stream: grpc.ClientReadableStream<dp.ListAndWatchResponse__Output>;
}

/** Kubelet's IsExtendedResourceName, written independently of the plugin's own check. */
function isExtendedResourceName(name: string): boolean {
  const [domain, part, extra] = name.split('/');
  if (!domain || !part || extra !== undefined) return false;
  if (
    domain === 'kubernetes.io' ||
    domain.endsWith('.kubernetes.io') ||
    name.startsWith('requests.')
  )
    return false;
  return (
    /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(domain) &&
    part.length <= 63 &&
    /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/.test(part)
  );
}

function unary<Req, Res>(
  fn: (
    req: Req,
    opts: grpc.CallOptions,
    cb: (err: grpc.ServiceError | null, res?: Res) => void,
  ) => unknown,
  req: Req,
): Promise<Res> {
  return new Promise((resolve, reject) =>
    fn(req, { deadline: Date.now() + 5000 }, (err, res) =>
      err ? reject(err) : resolve(res as Res),
    ),
  );
}

export class KubeletPeer {
  readonly connections = new Map<string, PluginConnection>();
  /** Every Register call, accepted or not */
  readonly registrations: dp.RegisterRequest__Output[] = [];
  private server: grpc.Server | undefined;

  constructor(readonly pluginDir: string) {}

  get socketPath(): string {
    return join(this.pluginDir, dp.KUBELET_SOCKET);
  }

  async start(): Promise<void> {
    const { Registration } = dp.loadDevicePluginV1beta1();
    const server = new grpc.Server();
    const handlers: dp.RegistrationHandlers = {
      Register: (call, cb) => {
        this.register(call.request).then(
          () => cb(null, {}),
          (err: Error) =>
            cb({
              code: grpc.status.INVALID_ARGUMENT,
              details: err.message,
              name: 'Error',
              message: err.message,
              metadata: new grpc.Metadata(),
            }),
        );
      },
    };
    server.addService(Registration.service, handlers);
    await new Promise<void>((resolve, reject) =>
      server.bindAsync(`unix:${this.socketPath}`, grpc.ServerCredentials.createInsecure(), (err) =>
        err ? reject(err) : resolve(),
      ),
    );
    this.server = server;
  }

  private async register(req: dp.RegisterRequest__Output): Promise<void> {
    this.registrations.push(req);
    if (req.version !== dp.DEVICE_PLUGIN_API_VERSION)
      throw new Error(`unsupported version ${req.version}`);
    if (!isExtendedResourceName(req.resourceName))
      throw new Error(`invalid resource name ${req.resourceName}`);
    const { DevicePlugin } = dp.loadDevicePluginV1beta1();
    const client = new DevicePlugin(
      `unix:${join(this.pluginDir, req.endpoint)}`,
      grpc.credentials.createInsecure(),
    );
    let dialedOptions: dp.DevicePluginOptions__Output;
    try {
      dialedOptions = await unary(client.GetDevicePluginOptions.bind(client), {});
    } catch (err) {
      client.close();
      throw new Error(`cannot dial back ${req.endpoint}: ${(err as Error).message}`);
    }
    const old = this.connections.get(req.resourceName);
    if (old) this.disconnect(old);
    const stream = client.ListAndWatch({});
    const conn: PluginConnection = {
      resourceName: req.resourceName,
      endpoint: req.endpoint,
      registerOptions: req.options,
      dialedOptions,
      client,
      updates: [],
      streamEnded: false,
      stream,
    };
    stream.on('data', (msg: dp.ListAndWatchResponse__Output) => conn.updates.push(msg.devices));
    stream.on('error', () => (conn.streamEnded = true));
    stream.on('end', () => (conn.streamEnded = true));
    this.connections.set(req.resourceName, conn);
  }

  private disconnect(conn: PluginConnection): void {
    conn.stream.cancel();
    conn.client.close();
  }

  /** The latest device list of a resource (undefined before the first ListAndWatch message). */
  devices(resourceName: string): dp.Device__Output[] | undefined {
    const updates = this.connections.get(resourceName)?.updates;
    return updates?.[updates.length - 1];
  }

  connection(resourceName: string): PluginConnection {
    const conn = this.connections.get(resourceName);
    if (!conn) throw new Error(`${resourceName} is not registered`);
    return conn;
  }

  allocate(resourceName: string, ...containers: string[][]): Promise<dp.AllocateResponse__Output> {
    const c = this.connection(resourceName).client;
    return unary(c.Allocate.bind(c), {
      containerRequests: containers.map((ids) => ({ devicesIds: ids })),
    });
  }

  preferred(
    resourceName: string,
    available: string[],
    mustInclude: string[],
    size: number,
  ): Promise<string[]> {
    const c = this.connection(resourceName).client;
    return unary<dp.PreferredAllocationRequest, dp.PreferredAllocationResponse__Output>(
      c.GetPreferredAllocation.bind(c),
      {
        containerRequests: [
          {
            availableDeviceIDs: available,
            mustIncludeDeviceIDs: mustInclude,
            allocationSize: size,
          },
        ],
      },
    ).then((r) => r.containerResponses[0]?.deviceIDs ?? []);
  }

  preStart(resourceName: string, ids: string[]): Promise<dp.PreStartContainerResponse__Output> {
    const c = this.connection(resourceName).client;
    return unary(c.PreStartContainer.bind(c), { devicesIds: ids });
  }

  /** Kubelet restart: stop, delete every socket in the plugin dir (kubelet keeps its checkpoint), serve anew. */
  async restart(): Promise<void> {
    await this.stop();
    for (const name of readdirSync(this.pluginDir)) {
      if (name !== 'kubelet_internal_checkpoint')
        rmSync(join(this.pluginDir, name), { force: true });
    }
    await this.start();
  }

  async stop(): Promise<void> {
    for (const conn of this.connections.values()) this.disconnect(conn);
    this.connections.clear();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
  }
}
