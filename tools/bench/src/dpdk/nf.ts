/**
 * The Flowline NF under test, as its own process (one EAL per process): one virtio-user port in
 * server mode (as Flowline pods have; or a net_vhost client port with --nf-port vhost),
 * everything it receives sent back out of the same port by
 * (a) the pipeline's l2fwd stage, (b) a 1,000-rule ACL then l2fwd, (c) a 10,000-route LPM stage,
 * (d) the pure-JavaScript forwarder on the batch API, or (e) l2fwd after a stage that burns
 * CONTROL_BURN_CYCLES per packet (the control). It prints one JSON line when it is
 * forwarding and its counters when it is stopped (SIGTERM, or its stdin closing: the bench that
 * started it is gone).
 */
import {
  Mempool,
  Pipeline,
  Port,
  createJsForwarder,
  devargs,
  initEal,
  type StageSpec,
} from '@flowline/dpdk';

import { CONTROL_BURN_CYCLES } from './control';
import { benchAcl, benchRoutes, parseAcl, parseRoutes } from './tables';

export type NfCase = 'forward' | 'acl' | 'lpm' | 'js' | 'burn';
export type NfPort = 'virtio-user' | 'vhost';
/** The vhost-user link's virtqueues (the virtio-user side asks for packed ones). */
export type VirtioRing = 'packed' | 'split';

interface NfArgs {
  case: NfCase;
  port: NfPort;
  ring: VirtioRing;
  socket: string;
  prefix: string;
  burst: number;
}

async function main(): Promise<void> {
  const args = JSON.parse(process.argv[2] ?? '{}') as NfArgs;
  // The worker lcore runs on core 1; for the JS forwarder this thread is the poller, on core 1.
  const eal = initEal({ filePrefix: args.prefix, lcores: args.case === 'js' ? [1] : [0, 1] });
  const pool = Mempool.create({ size: 16383 });
  const port = Port.open(
    args.port === 'vhost'
      ? devargs.vhost({ id: 0, iface: args.socket, client: true })
      : devargs.virtioUser({
          id: 0,
          path: args.socket,
          server: true,
          queueSize: 1024,
          packed: args.ring === 'packed',
        }),
    pool,
    { rxDescriptors: 1024, txDescriptors: 1024 },
  );
  const end = Date.now() + 10_000;
  while (!port.link().up && Date.now() < end) await new Promise((r) => setTimeout(r, 10));

  let report: () => unknown;
  let hz = 0;
  let halt: () => Promise<void>;
  if (args.case === 'js') {
    // Every case's NF is up for the whole benchmark on the core the measured NF polls: idle,
    // this one sleeps up to 20 ms between short bursts of polls (the warm-up wakes it).
    const fwd = createJsForwarder({
      rx: port,
      tx: port,
      pool,
      burst: args.burst,
      idlePolls: 64,
      idleSleepMaxMs: 20,
    });
    fwd.start(20);
    let result: unknown;
    report = () => result;
    halt = async () => {
      result = await fwd.stop();
      fwd.close();
    };
  } else {
    const l2: StageSpec = { kind: 'l2fwd', forward: [{ from: port, to: port }] };
    const stages: StageSpec[] =
      args.case === 'forward'
        ? [l2]
        : args.case === 'acl'
          ? [{ kind: 'acl', name: 'acl', defaultAction: 'deny' }, l2]
          : args.case === 'burn'
            ? [{ kind: 'burn', name: 'burn', cycles: CONTROL_BURN_CYCLES }, l2]
            : [
                {
                  kind: 'lpm',
                  name: 'lpm',
                  table: parseRoutes(benchRoutes(port.id)),
                  noRoute: 'drop',
                },
              ];
    // idle, the worker sleeps up to 20 ms at a time (the warm-up wakes it), not the default
    // 0.5 ms: the idle NFs of the other cases share the measured NF's core
    const p = Pipeline.create({
      inputs: [port],
      stages,
      burst: args.burst,
      backoff: { sleepMaxUs: 20_000 },
    });
    if (args.case === 'acl') await p.updateAcl('acl', parseAcl(benchAcl())); // built off the event loop
    p.start();
    hz = p.cycles().hz;
    report = () => ({
      counters: p.counters(),
      cycles: p.cycles(),
      ...(args.case === 'acl' ? { generatorRuleHits: p.aclHits('acl').at(-2)?.hits } : {}),
    });
    halt = async () => p.stop();
  }
  // the TSC rate, for the control's expected drop (the JS forwarder has no pipeline to ask)
  const tscHz = args.case === 'js' ? 0 : hz;
  process.stdout.write(`${JSON.stringify({ ready: true, link: port.link().up, tscHz })}\n`);
  let stopping = false;
  const finish = (): void => {
    if (stopping) return;
    stopping = true;
    void halt().then(() => {
      process.stdout.write(
        `${JSON.stringify({ done: true, report: report(), port: port.stats() })}\n`,
      );
      eal.cleanup();
      process.exit(0);
    });
  };
  process.once('SIGTERM', finish);
  // The bench holds this process's stdin. It closes when the bench is gone however it went
  // (killed, crashed): then this NF stops too rather than poll on, holding its hugepages.
  process.stdin.once('end', finish);
  process.stdin.resume();
}

main().catch((e: unknown) => {
  process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
