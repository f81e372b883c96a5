#!/usr/bin/env node
// flowline: the command line of a Flowline node. Every command takes --help; --json prints
// machine-readable output for scripts. Exit status: 0 done, 1 failed, 64 bad command line.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { chainV1 } from '@flowline/proto';
import {
  applyManifests,
  deleteManifests,
  nodeDown,
  nodeStatus,
  nodeUp,
  nodePaths,
  type NodeStatus,
  type PodStatus,
} from '@flowline/node';
import { ChainApplyError, applyChainDocuments } from './chain-apply';
import { checkChainPods, parseChainFile } from './chain-file';
import {
  OperatorCredentials,
  chainClient,
  grpcMessage,
  nfInfo,
  unary,
  waitServing,
} from './clients';
import { runBenchChain } from './bench-chain';
import { runDemo } from './demo';
import { renderStopReport } from './down';
import { StatsCollector, crossingRows, renderCrossings, renderStats } from './stats';
import { renderTable } from './table';
import {
  type TrafficFlags,
  buildStartRequest,
  findGenerator,
  flowRows,
  renderResults,
  sendingTimeMs,
  startTraffic,
  stopTraffic,
  trafficClient,
  trafficResults,
} from './traffic';

const DEFAULT_STATE_DIR = process.env.FLOWLINE_STATE_DIR ?? '/var/run/flowline-node';

class UsageError extends Error {}

const COMMON = {
  'state-dir': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

const HELP: Record<string, string> = {
  '': `flowline — Flowline's command line

  flowline up [--config node.yaml] [-f pod.yaml ...]   start the local node (and pods)
  flowline down                                         stop it and list what it stopped
  flowline status                                       the node, its daemons and pods
  flowline apply -f pod.yaml ...                        run pods (Kubernetes Pod YAML)
  flowline delete <manifest> ...                        stop pods by manifest file name
  flowline chain create|update -f chain.yaml            chains through the gRPC ChainService
  flowline chain list | get <name> | delete <name>
  flowline nf list                                      NF instances and their ports
  flowline stats [--watch] [--interval ms]              Mpps and drops per hop, crossing and port
  flowline traffic start -f flows.yaml [--rate pps] [--count n] [--size 64|imix] [--wait]
  flowline traffic results | stop                       per flow: sent, received, loss, p50/p99
  flowline logs <pod|agent|chain-controller|device-plugin> [--tail n] [--follow]
  flowline demo [--seconds n] [--rate auto|pps]         the end-to-end demo
  flowline bench chain [--trial-seconds n] [--out dir]  NDR/PDR search, latency, idle cost

Common options: --state-dir DIR (env FLOWLINE_STATE_DIR, default /var/run/flowline-node),
--json, --help. Run \`flowline <command> --help\` for one command.`,
  up: `flowline up [--config node.yaml] [-f pod.yaml ...] [--json]
  Starts the node agent in the background: OVS-DPDK (br-flowline), the device plugin over
  emulated NICs, the chain controller; then runs the given pods. Returns when ready.`,
  down: `flowline down [--json]
  Stops pods (CNI DEL, netns), the chain controller, the device plugin and OVS, removes sockets
  and hugepage files, and lists what it stopped: processes with their pids, switch ports,
  network namespaces. Works after a crash too; a second run finds nothing left.`,
  status: `flowline status [--json]\n  The node agent, its daemons and every pod with its phase.`,
  apply: `flowline apply -f pod.yaml [-f ...] [--json]
  Hands pod manifests (Kubernetes Pod YAML) to the node and waits until each pod's NF serves
  with its links up. A FLOWLINE_CONFIG path relative to the manifest is taken from the
  manifest's folder (examples/fw.yaml names fw-config.yaml beside it).`,
  delete: `flowline delete <manifest file name> ...\n  Removes manifests; the node stops their pods.`,
  chain: `flowline chain create -f chain.yaml | update -f chain.yaml | list | get <name> | delete <name> | watch
  chain.yaml: {name, spec: {classifier: {ingressPort, ipVersion, protocol, dstPorts, ...},
  hops: [{nf, ingressInterface, egressInterface}], egressPort, failurePolicy: FAIL_CLOSED|BYPASS}}`,
  nf: `flowline nf list [--json]\n  Each NF pod's kind, version, ports and link state (NetworkFunction.GetInfo).`,
  stats: `flowline stats [--watch] [--interval ms] [--json]
  Port and hop rates from each NF's WatchStats stream and the chain controller, and for a
  chain across nodes each crossing (from → to, step, tunnel port, packets received). --watch
  refreshes a terminal table each interval (default 1000 ms) until Ctrl-C.`,
  logs: `flowline logs <pod|agent|chain-controller|device-plugin> [--tail n] [--follow]`,
  traffic: `flowline traffic start [-f flows.yaml] [flags] [--wait] [--pod ns/name] [--json]
flowline traffic results [--pod ns/name] [--json]
flowline traffic stop [--pod ns/name] [--json]
  Drives a traffic-gen pod (the only one running, or --pod) through flowline.trafficgen.v1 over
  mutual TLS as the operator. flows.yaml is the generator's StartRequest: flows (name, txPort,
  protocol, srcIp, dstIp, srcPort, dstPort, srcMac, dstMac, frameSize, imix, ratePps, count, ttl,
  tcpFlags; the .proto's snake_case names work too), totalRatePps, rxPorts (examples/flows.yaml).
  Flags, applied to every flow of the file:
    --rate PPS           total packets per second over all flows, split evenly
    --count N            packets per flow (0: until stopped)
    --size N|imix        frame size with FCS (64..1518), or IMIX 64/594/1518 in 7:4:1
    --tx-port IF         the generator's port to send on; --rx-port IF (repeatable) to count on
  Without -f, one flow from --src-ip, --dst-ip [--dst-port] [--src-port] [--protocol udp|tcp]
  [--dst-mac] [--name]. --wait returns when every packet is sent and the chain has drained, and
  prints the results. Results per flow: sent, received, not received (loss), loss %, latency
  p50 and p99 in µs.`,
  bench: `flowline bench chain [--trial-seconds 5] [--short-seconds 1] [--min-pps 20000]
    [--max-pps 4000000] [--resolution 0.05] [--max-trials 40] [--trials-per-load 1]
    [--idle-seconds 5] [--stall-seconds 3] [--flows 4]
    [--node-config node.yaml] [--out dir] [--json]
  On a node of its own (--state-dir, default /var/run/flowline-bench): the demo's chain
  gen → fw → rtr → gen through OVS-DPDK. Measures the CPU of the idle chain per process, and
  how long the machine takes a CPU from a thread spinning on it (a packet in flight there waits
  as long; 0 skips it), then
  searches the NDR (no loss) and PDR (loss ≤ 0.5 %) with the traffic generator (RFC 2544,
  MLRsearch-style: --short-seconds trials narrow, --trial-seconds trials decide; loss counted
  per flow from count-limited flows; --trials-per-load 3: the majority of up to 3 final
  trials decides a load, for a noisy host), then latency p50/p90/p99 at 10/50/90 % of the PDR, and
  per-hop counters with drops by reason. Prints a table (or JSON) and writes chain-bench.json
  and chain-bench.svg (loss and latency against offered load) to --out (default a new folder
  under the temp dir). Takes the dataplane for a few minutes: run it alone.`,
  demo: `flowline demo [--seconds n] [--rate auto|pps] [--json]
  Brings up a node with traffic-gen → firewall → router → sink, creates the chain through the
  gRPC API, runs traffic under the live stats table, changes a firewall rule mid-run, prints a
  summary and tears everything down. The load offered is derived from this machine: a short
  NDR/PDR search on the chain first (1 s trials, about 15 s) and half the PDR it finds (60000
  pps if it finds none); --rate <pps> sets it instead.`,
};

type Values = Record<string, string | boolean | string[] | undefined>;

function parse(
  command: string,
  args: string[],
  options: ParseArgsConfig['options'] = {},
): { values: Values; positionals: string[] } {
  try {
    const parsed = parseArgs({
      args,
      options: { ...COMMON, ...options },
      allowPositionals: true,
      strict: true,
    });
    if (parsed.values.help) {
      process.stdout.write(`${HELP[command] ?? HELP['']}\n`);
      process.exit(0);
    }
    return parsed;
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\n\n${HELP[command] ?? HELP['']}`);
  }
}

/** `chain list`: a row per chain, then, if any chain spans nodes, its crossings. */
export function renderChainList(chains: readonly chainV1.Chain__Output[]): string {
  const crossings = crossingRows(chains);
  return [
    renderTable(
      ['name', 'phase', 'hops', 'classified', 'message'],
      chains.map((c) => [
        c.name,
        String(c.status?.phase ?? ''),
        (c.spec?.hops ?? []).map((h) => h.nf).join(' → '),
        String(c.status?.classifiedPackets ?? 0),
        c.status?.message ?? '',
      ]),
    ),
    ...(crossings.length ? [renderCrossings(crossings, false)] : []),
  ].join('\n\n');
}

function print(json: boolean | undefined, value: unknown, text: () => string): void {
  process.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : `${text()}\n`);
}

function controllerAddress(stateDir: string): string {
  const status = runningNode(stateDir);
  if (!status.controller) throw new Error(`the node at ${stateDir} has no chain controller`);
  return status.controller.address;
}

async function chainCommand(args: string[]): Promise<void> {
  const [action, ...rest] = args;
  const { values, positionals } = parse('chain', rest, { file: { type: 'string', short: 'f' } });
  const stateDir = (values['state-dir'] as string | undefined) ?? DEFAULT_STATE_DIR;
  if (!action || action === '--help') throw new UsageError(HELP.chain!);
  const client = chainClient(controllerAddress(stateDir), OperatorCredentials.resolve(stateDir));
  type Fn<Req, Res> = Parameters<typeof unary<Req, Res>>[0];
  try {
    switch (action) {
      case 'create':
      case 'update': {
        const file = values.file as string | undefined;
        if (!file) throw new UsageError(`-f chain.yaml is required\n\n${HELP.chain}`);
        const docs = parseChainFile(readFileSync(file, 'utf8'), file);
        checkChainPods(docs, nodeStatus(stateDir).pods, file);
        type ChainCall = Fn<{ name: string; spec: chainV1.ChainSpec }, chainV1.Chain__Output>;
        const made = await applyChainDocuments(
          {
            create: (d) => unary(client.CreateChain.bind(client) as ChainCall, d),
            update: (d) => unary(client.UpdateChain.bind(client) as ChainCall, d),
            get: (name) =>
              unary(client.GetChain.bind(client) as Fn<{ name: string }, chainV1.Chain__Output>, {
                name,
              }),
            delete: async (name) => {
              await unary(client.DeleteChain.bind(client) as Fn<{ name: string }, object>, {
                name,
              });
            },
          },
          action,
          docs,
        );
        print(values.json as boolean, made, () =>
          made
            .map((c) => `chain ${c.name} ${action}d: ${c.status?.phase} ${c.status?.message ?? ''}`)
            .join('\n'),
        );
        return;
      }
      case 'list': {
        const { chains } = await unary(
          client.ListChains.bind(client) as Fn<object, { chains: chainV1.Chain__Output[] }>,
          {},
        );
        print(values.json as boolean, chains, () => renderChainList(chains));
        return;
      }
      case 'get': {
        const name = positionals[0];
        if (!name) throw new UsageError(`chain get <name>\n\n${HELP.chain}`);
        const chain = await unary(
          client.GetChain.bind(client) as Fn<{ name: string }, chainV1.Chain__Output>,
          { name },
        );
        print(values.json as boolean, chain, () => JSON.stringify(chain, null, 2));
        return;
      }
      case 'delete': {
        if (positionals.length === 0)
          throw new UsageError(`chain delete <name> ...\n\n${HELP.chain}`);
        for (const name of positionals)
          await unary(client.DeleteChain.bind(client) as Fn<{ name: string }, object>, { name });
        print(
          values.json as boolean,
          { deleted: positionals },
          () => `deleted ${positionals.join(', ')}`,
        );
        return;
      }
      case 'watch': {
        const stream = client.WatchChains({});
        await new Promise<void>((resolve, reject) => {
          stream.on('data', (e: chainV1.ChainEvent__Output) =>
            print(
              values.json as boolean,
              e,
              () =>
                `${e.type} ${e.chain?.name} ${e.chain?.status?.phase} ${e.chain?.status?.message ?? ''}`,
            ),
          );
          stream.on('error', reject);
          stream.on('end', resolve);
          process.once('SIGINT', () => {
            stream.cancel();
            resolve();
          });
        }).catch((err: unknown) => {
          if ((err as { code?: number }).code !== 1) throw err;
        });
        return;
      }
      default:
        throw new UsageError(`unknown chain action "${action}"\n\n${HELP.chain}`);
    }
  } catch (err) {
    if (err instanceof UsageError || err instanceof ChainApplyError) throw err;
    throw new Error(grpcMessage(err));
  } finally {
    client.close();
  }
}

async function nfList(stateDir: string, json: boolean | undefined): Promise<void> {
  const status = nodeStatus(stateDir);
  const creds = OperatorCredentials.resolve(stateDir);
  const rows = await Promise.all(
    status.pods.map(async (p) => {
      try {
        const info = await nfInfo(p.grpcAddress, p.key, creds);
        return {
          pod: p.key,
          phase: p.phase,
          kind: info.kind,
          version: info.version,
          ports: info.ports.map((q) => ({
            name: q.name,
            driver: q.driver,
            mac: q.mac,
            linkUp: q.linkUp,
          })),
        };
      } catch (err) {
        return { pod: p.key, phase: p.phase, error: grpcMessage(err) };
      }
    }),
  );
  print(json, rows, () =>
    renderTable(
      ['pod', 'phase', 'kind', 'version', 'ports'],
      rows.map((r) => [
        r.pod,
        r.phase,
        'kind' in r ? (r.kind ?? '') : '?',
        'version' in r ? (r.version ?? '') : '',
        'ports' in r && r.ports
          ? r.ports.map((q) => `${q.name}(${q.linkUp ? 'up' : 'down'})`).join(' ')
          : 'error' in r
            ? (r.error ?? '')
            : '',
      ]),
    ),
  );
}

async function stats(args: string[]): Promise<void> {
  const { values } = parse('stats', args, {
    watch: { type: 'boolean', short: 'w' },
    interval: { type: 'string' },
  });
  const stateDir = (values['state-dir'] as string | undefined) ?? DEFAULT_STATE_DIR;
  const interval = Number(values.interval ?? 1000);
  if (!Number.isInteger(interval) || interval < 100)
    throw new UsageError('--interval must be an integer of at least 100 (ms)');
  const status = runningNode(stateDir);
  const collector = new StatsCollector(
    status.pods.map((p) => ({ name: p.key, grpcAddress: p.grpcAddress })),
    status.controller?.address,
    OperatorCredentials.resolve(stateDir),
    interval,
  );
  const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
  try {
    await sleep(interval + 200);
    if (!values.watch) {
      const view = await collector.read();
      print(values.json as boolean, view, () => renderStats(view));
      // Nothing answered: an empty table is not a reading.
      const answered = view.ports.length + view.chains.length > 0;
      if (!answered && Object.keys(view.errors).length)
        throw new Error(
          `stats: nothing answered (${Object.entries(view.errors)
            .map(([who, why]) => `${who}: ${why}`)
            .join('; ')})`,
        );
      return;
    }
    let stop = false;
    process.once('SIGINT', () => (stop = true));
    while (!stop) {
      const view = await collector.read();
      if (values.json) process.stdout.write(`${JSON.stringify(view)}\n`);
      else
        process.stdout.write(
          `\x1b[2J\x1b[H${new Date().toISOString()}  (Ctrl-C to stop)\n\n${renderStats(view)}\n`,
        );
      await sleep(interval);
    }
  } finally {
    collector.close();
  }
}

/** Hands manifests to the node and waits until each pod's NF serves with its links up. */
async function applyAndServe(stateDir: string, files: string[]): Promise<PodStatus[]> {
  const pods = await applyManifests(stateDir, files);
  const creds = OperatorCredentials.resolve(stateDir);
  try {
    await Promise.all(pods.map((p) => waitServing(p.grpcAddress, p.key, creds)));
  } catch (err) {
    // A process that keeps exiting is the likely cause: say so with what the node knows.
    const restarting = nodeStatus(stateDir)
      .pods.filter((p) => p.restarts > 0 && pods.some((q) => q.key === p.key))
      .map((p) => `${p.key} restarted ${p.restarts} time(s)${p.message ? `: ${p.message}` : ''}`);
    throw new Error(
      `${(err as Error).message}${restarting.length ? `; ${restarting.join('; ')}` : ''}`,
      { cause: err },
    );
  }
  return pods;
}

/** The node here, or an error that says how to start one. */
function runningNode(stateDir: string): NodeStatus {
  const status = nodeStatus(stateDir);
  if (!status.up)
    throw new Error(`no node runs here (state dir ${stateDir}); flowline up starts one`);
  return status;
}

async function traffic(args: string[]): Promise<void> {
  const [action, ...rest] = args;
  if (action === '--help' || action === '-h') {
    process.stdout.write(`${HELP.traffic}\n`);
    return;
  }
  const { values } = parse('traffic', rest, {
    file: { type: 'string', short: 'f' },
    pod: { type: 'string' },
    wait: { type: 'boolean' },
    rate: { type: 'string' },
    count: { type: 'string' },
    size: { type: 'string' },
    name: { type: 'string' },
    protocol: { type: 'string' },
    'src-ip': { type: 'string' },
    'dst-ip': { type: 'string' },
    'src-port': { type: 'string' },
    'dst-port': { type: 'string' },
    'dst-mac': { type: 'string' },
    'tx-port': { type: 'string' },
    'rx-port': { type: 'string', multiple: true },
  });
  if (action !== 'start' && action !== 'stop' && action !== 'results')
    throw new UsageError(HELP.traffic!);
  const stateDir = (values['state-dir'] as string | undefined) ?? DEFAULT_STATE_DIR;
  const json = values.json as boolean | undefined;
  let request: ReturnType<typeof buildStartRequest> | undefined;
  let waitMs: number | undefined;
  if (action === 'start') {
    const file = values.file as string | undefined;
    const s = (k: string): string | undefined => values[k] as string | undefined;
    const flags: TrafficFlags = {
      rate: s('rate'),
      count: s('count'),
      size: s('size'),
      name: s('name'),
      protocol: s('protocol'),
      srcIp: s('src-ip'),
      dstIp: s('dst-ip'),
      srcPort: s('src-port'),
      dstPort: s('dst-port'),
      dstMac: s('dst-mac'),
      txPort: s('tx-port'),
      rxPort: values['rx-port'] as string[] | undefined,
    };
    try {
      request = buildStartRequest(
        file ? { text: readFileSync(file, 'utf8'), source: file } : undefined,
        flags,
      );
    } catch (err) {
      throw new UsageError(`${(err as Error).message}\n\n${HELP.traffic}`);
    }
    waitMs = sendingTimeMs(request);
    if (values.wait && waitMs === undefined)
      throw new UsageError("--wait needs count-limited flows: set --count or each flow's count");
  }
  const status = runningNode(stateDir);
  const creds = OperatorCredentials.resolve(stateDir);
  const pod = await findGenerator(status.pods, creds, values.pod as string | undefined);
  const client = trafficClient(pod, creds);
  const show = (r: Awaited<ReturnType<typeof trafficResults>>): void =>
    print(json, { pod: pod.key, results: r, flows: flowRows(r) }, () => renderResults(pod.key, r));
  try {
    if (!request) return show(await (action === 'stop' ? stopTraffic : trafficResults)(client));
    const started = await startTraffic(client, request);
    const rate = Number(request.totalRatePps ?? 0);
    const said = `traffic started on ${pod.key}: run ${started.runId}, ${started.flowCount} flow(s)${rate ? ` at ${rate} pps in all` : ''}`;
    if (!values.wait || waitMs === undefined) {
      print(
        json,
        { pod: pod.key, ...started },
        () => `${said}; flowline traffic results shows how it goes`,
      );
      return;
    }
    if (!json)
      process.stdout.write(
        `${said}; waiting about ${Math.ceil(waitMs / 1000)} s until all is sent\n`,
      );
    // Sending takes waitMs; a host short of CPU may take longer, but not without bound.
    const budgetMs = waitMs * 2 + 30_000;
    const deadline = Date.now() + budgetMs;
    while (!(await trafficResults(client)).txDone) {
      if (Date.now() > deadline)
        throw new Error(
          `not everything was sent within ${budgetMs / 1000} s; flowline traffic results shows where it stands`,
        );
      await new Promise((r) => setTimeout(r, 200));
    }
    // What is still crossing the chain arrives within a moment.
    await new Promise((r) => setTimeout(r, 1000));
    show(await trafficResults(client));
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new Error(grpcMessage(err));
  } finally {
    client.close();
  }
}

async function logs(args: string[]): Promise<void> {
  const { values, positionals } = parse('logs', args, {
    tail: { type: 'string' },
    follow: { type: 'boolean', short: 'f' },
  });
  const stateDir = (values['state-dir'] as string | undefined) ?? DEFAULT_STATE_DIR;
  const who = positionals[0];
  if (!who) throw new UsageError(HELP.logs!);
  const tailText = (values.tail as string | undefined) ?? '50';
  if (!/^\d{1,9}$/.test(tailText))
    throw new UsageError(`--tail: "${tailText}" is not a count of lines (0 or more)`);
  const tail = Number(tailText);
  const dir = nodePaths(stateDir).logs;
  const candidates = [`${who}.log`, `${who.replace('/', '_')}.log`, `default_${who}.log`];
  const file = candidates.map((c) => join(dir, c)).find((f) => existsSync(f));
  if (!file) throw new Error(`no log for "${who}" in ${dir}`);
  const lines = readFileSync(file, 'utf8').split('\n');
  // The last line is what follows the file's last newline (usually empty): tail + 1 entries.
  process.stdout.write(`${lines.slice(-tail - 1).join('\n')}`);
  if (values.follow) {
    let size = statSync(file).size;
    for (;;) {
      await new Promise((r) => setTimeout(r, 500));
      const now = statSync(file).size;
      if (now > size) {
        process.stdout.write(readFileSync(file).subarray(size, now).toString());
        size = now;
      }
    }
  }
}

export async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case undefined:
    case '--help':
    case '-h':
    case 'help':
      process.stdout.write(`${HELP['']}\n`);
      return;
    case 'up': {
      const { values } = parse('up', rest, {
        config: { type: 'string' },
        file: { type: 'string', short: 'f', multiple: true },
      });
      const stateDir = (values['state-dir'] as string | undefined) ?? DEFAULT_STATE_DIR;
      await nodeUp({ stateDir, ...(values.config ? { configFile: values.config as string } : {}) });
      const files = (values.file as string[] | undefined) ?? [];
      if (files.length) await applyAndServe(stateDir, files);
      const status = nodeStatus(stateDir);
      print(
        values.json as boolean,
        status,
        () => `node up (state ${stateDir}); ${status.pods.length} pod(s) running`,
      );
      return;
    }
    case 'down': {
      const { values } = parse('down', rest);
      const stateDir = (values['state-dir'] as string | undefined) ?? DEFAULT_STATE_DIR;
      const result = await nodeDown({ stateDir });
      print(values.json as boolean, result, () => renderStopReport(result.stopped));
      return;
    }
    case 'status': {
      const { values } = parse('status', rest);
      const status = nodeStatus((values['state-dir'] as string | undefined) ?? DEFAULT_STATE_DIR);
      print(values.json as boolean, status, () =>
        [
          `node: ${status.up ? (status.ready ? 'ready' : 'starting') : 'down'}${status.agentPid ? ` (agent pid ${status.agentPid})` : ''}`,
          status.controller
            ? `chain controller: ${status.controller.alive ? 'running' : 'DOWN'} at ${status.controller.address}`
            : '',
          status.devicePlugin
            ? `device plugin: ${status.devicePlugin.alive ? 'running' : 'DOWN'}`
            : '',
          status.cniDaemon
            ? `CNI daemon: ${status.cniDaemon.alive ? 'running' : 'DOWN (CNI runs in-process)'} at ${status.cniDaemon.socket}`
            : '',
          status.ovs ? `switch: ${status.ovs.bridge} (ovsdb ${status.ovs.dbSocket})` : '',
          status.pods.length
            ? renderTable(
                ['pod', 'phase', 'pid', 'restarts', 'interfaces', 'message'],
                status.pods.map((p) => [
                  p.key,
                  p.alive ? p.phase : `${p.phase} (exited)`,
                  p.pid ?? '',
                  p.restarts,
                  p.interfaces.join(','),
                  p.message ?? '',
                ]),
              )
            : '',
          ...Object.entries(status.problems).map(([k, v]) => `problem ${k}: ${v}`),
        ]
          .filter(Boolean)
          .join('\n'),
      );
      return;
    }
    case 'apply': {
      const { values } = parse('apply', rest, {
        file: { type: 'string', short: 'f', multiple: true },
      });
      const files = (values.file as string[] | undefined) ?? [];
      if (!files.length) throw new UsageError(`-f pod.yaml is required\n\n${HELP.apply}`);
      const stateDir = (values['state-dir'] as string | undefined) ?? DEFAULT_STATE_DIR;
      const pods = await applyAndServe(stateDir, files);
      print(values.json as boolean, pods, () =>
        pods.map((p) => `pod ${p.key} running (pid ${p.pid})`).join('\n'),
      );
      return;
    }
    case 'delete': {
      const { values, positionals } = parse('delete', rest);
      if (!positionals.length) throw new UsageError(HELP.delete!);
      const removed = deleteManifests(
        (values['state-dir'] as string | undefined) ?? DEFAULT_STATE_DIR,
        positionals,
      );
      // A name that matched no manifest (a typo) fails the command, after the others are gone.
      const unmatched = positionals.filter(
        (n) => !removed.some((f) => f === n || f === `${n}.yaml`),
      );
      print(values.json as boolean, { removed, unmatched }, () =>
        [
          ...(removed.length ? [`removed ${removed.join(', ')}`] : []),
          ...(unmatched.length ? [`no such manifest: ${unmatched.join(', ')}`] : []),
        ].join('\n'),
      );
      if (unmatched.length) throw new Error(`delete: no manifest named ${unmatched.join(', ')}`);
      return;
    }
    case 'chain':
      return chainCommand(rest);
    case 'nf': {
      const [action, ...more] = rest;
      const { values } = parse('nf', more);
      if (action !== 'list') throw new UsageError(HELP.nf!);
      return nfList(
        (values['state-dir'] as string | undefined) ?? DEFAULT_STATE_DIR,
        values.json as boolean,
      );
    }
    case 'stats':
      return stats(rest);
    case 'logs':
      return logs(rest);
    case 'traffic':
      return traffic(rest);
    case 'demo': {
      const { values } = parse('demo', rest, {
        seconds: { type: 'string' },
        rate: { type: 'string' },
      });
      const seconds = Number(values.seconds ?? 20);
      if (!Number.isFinite(seconds) || seconds < 4)
        throw new UsageError('--seconds must be a number of at least 4');
      const rate = values.rate === undefined ? 'auto' : String(values.rate);
      if (rate !== undefined && rate !== 'auto' && !(Number(rate) >= 1))
        throw new UsageError('--rate must be a number of packets per second, or auto');
      const summary = await runDemo({
        stateDir: (values['state-dir'] as string | undefined) ?? '/var/run/flowline-demo',
        seconds,
        json: Boolean(values.json),
        ...(rate === 'auto' ? { autoRate: true } : { ratePps: Number(rate) }),
      });
      if (values.json) process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
      return;
    }
    case 'bench': {
      const [what, ...more] = rest;
      const { values } = parse('bench', more, {
        'trial-seconds': { type: 'string' },
        'short-seconds': { type: 'string' },
        'min-pps': { type: 'string' },
        'max-pps': { type: 'string' },
        resolution: { type: 'string' },
        'max-trials': { type: 'string' },
        'trials-per-load': { type: 'string' },
        'idle-seconds': { type: 'string' },
        'stall-seconds': { type: 'string' },
        flows: { type: 'string' },
        out: { type: 'string' },
        'node-config': { type: 'string' },
      });
      if (what !== 'chain') throw new UsageError(HELP.bench!);
      const number = (name: string, dflt: number, ok: (v: number) => boolean): number => {
        const v = values[name] === undefined ? dflt : Number(values[name]);
        if (!Number.isFinite(v) || !ok(v))
          throw new UsageError(`--${name}: ${String(values[name])} is out of range`);
        return v;
      };
      const trialSeconds = number('trial-seconds', 5, (v) => v > 0);
      const shortS = values['short-seconds'] === undefined ? '1' : String(values['short-seconds']);
      const shortSeconds = shortS === '' ? [] : shortS.split(',').map(Number);
      if (shortSeconds.some((v) => !(v > 0) || v > trialSeconds))
        throw new UsageError('--short-seconds: comma-separated durations, each ≤ --trial-seconds');
      await runBenchChain({
        stateDir: (values['state-dir'] as string | undefined) ?? '/var/run/flowline-bench',
        trialSeconds,
        shortSeconds,
        minPps: number('min-pps', 20_000, (v) => v > 0),
        maxPps: number('max-pps', 4_000_000, (v) => v > 0),
        resolution: number('resolution', 0.05, (v) => v > 0 && v < 1),
        maxTrials: number('max-trials', 40, (v) => v >= 1),
        trialsPerLoad: number('trials-per-load', 1, (v) => Number.isInteger(v) && v >= 1),
        idleSeconds: number('idle-seconds', 5, (v) => v >= 0),
        stallSeconds: number('stall-seconds', 3, (v) => v >= 0 && v <= 60),
        flows: number('flows', 4, (v) => Number.isInteger(v) && v >= 1 && v <= 64),
        ...(values.out ? { outDir: String(values.out) } : {}),
        ...(values['node-config'] ? { nodeConfig: String(values['node-config']) } : {}),
        json: Boolean(values.json),
      });
      return;
    }
    default:
      throw new UsageError(`unknown command "${command}"\n\n${HELP['']}`);
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`flowline: ${(err as Error).message}\n`);
      process.exit(err instanceof UsageError ? 64 : 1);
    },
  );
}
