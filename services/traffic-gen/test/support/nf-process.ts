/**
 * Starts the real traffic-gen process (node dist/main.js) for integration tests: a unix-socket
 * gRPC address, a free metrics port, explicit vdev ports, its JSON log collected; resolves
 * once it logs "serving" (or rejects with its last lines when it exits first).
 */
import * as grpc from '@grpc/grpc-js';
import { LocalPki, channelCredentials, nfId } from '@flowline/grpc-auth';
import { trafficGenV1 } from '@flowline/proto';
import { type ChildProcess, spawn } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { leftoverFiles } from '@flowline/dpdk';
import { join } from 'node:path';

export const MAIN = join(__dirname, '..', '..', 'dist', 'main.js');

export interface NfProcess {
  child: ChildProcess;
  exited: Promise<number | null>;
  logs: Record<string, unknown>[];
  metricsUrl: string;
  client: trafficGenV1.TrafficGeneratorClient;
  /** SIGKILL if still running, close the client, remove what the EAL may have left. */
  kill(): Promise<void>;
}

type Unary<Req, Res> = (req: Req, cb: (e: grpc.ServiceError | null, r?: Res) => void) => unknown;
export function call<Req, Res>(fn: Unary<Req, Res>, req: Req): Promise<Res> {
  return new Promise((resolve, reject) => fn(req, (e, r) => (e ? reject(e) : resolve(r!))));
}

/** Hugepage files and runtime dirs under a file prefix (or one that extends it). */
export function leftovers(prefix: string): string[] {
  return leftoverFiles(prefix, { match: 'family' });
}

export async function startTrafficGen(o: {
  name: string;
  dir: string;
  filePrefix: string;
  ports: string[];
  /** The `eal:` section of a config file, e.g. extraArgs. */
  eal?: Record<string, unknown>;
}): Promise<NfProcess> {
  const grpcAddress = `unix://${join(o.dir, `${o.name}.sock`)}`;
  const pki = new LocalPki(join(o.dir, 'pki'));
  const args = [
    MAIN,
    '--name',
    o.name,
    '--grpc-address',
    grpcAddress,
    '--metrics-port',
    '0',
    '--lcores',
    '0,1',
    '--memory-mb',
    '128',
    '--file-prefix',
    o.filePrefix,
    ...o.ports.flatMap((p) => ['--port', p]),
    // mTLS as in a cluster: the generator holds its NF identity, the test calls as the operator.
    ...LocalPki.flags(pki.nf('default', o.name)),
  ];
  if (o.eal) {
    const file = join(o.dir, `${o.name}.json`);
    writeFileSync(file, JSON.stringify({ eal: o.eal }));
    args.push('--config', file);
  }
  const child = spawn(process.execPath, args, {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, FLOWLINE_LOG_LEVEL: 'info' },
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const logs: Record<string, unknown>[] = [];
  let buf = '';
  child.stderr!.on('data', (d: Buffer) => {
    buf += d.toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      try {
        logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        logs.push({ msg: line }); // DPDK's own lines
      }
    }
  });
  const kill = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
    for (const f of leftovers(o.filePrefix)) rmSync(f, { recursive: true, force: true });
  };
  let serving: Record<string, unknown>;
  try {
    serving = await new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setInterval(() => {
        const s = logs.find((l) => l.msg === 'serving');
        if (s) {
          clearInterval(timer);
          resolve(s);
        }
      }, 20);
      void exited.then((code) => {
        clearInterval(timer);
        reject(new Error(`${o.name} exited ${code}: ${JSON.stringify(logs.slice(-5))}`));
      });
    });
  } catch (e) {
    await kill();
    throw e;
  }
  const client = new (trafficGenV1.loadTrafficGenV1().TrafficGenerator)(
    grpcAddress,
    channelCredentials(pki.operator(), nfId('default', o.name)),
  );
  return {
    child,
    exited,
    logs,
    metricsUrl: String(serving.metricsUrl),
    client,
    kill: async () => {
      client.close();
      await kill();
    },
  };
}

/** Polls GetResults until done(results) or timeoutMs; returns the last results. */
export async function resultsWhen(
  client: trafficGenV1.TrafficGeneratorClient,
  done: (r: trafficGenV1.Results__Output) => boolean,
  timeoutMs = 20_000,
): Promise<trafficGenV1.Results__Output> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const r = await call(client.GetResults.bind(client), {});
    if (done(r) || Date.now() > end) return r;
    await new Promise((res) => setTimeout(res, 50));
  }
}
