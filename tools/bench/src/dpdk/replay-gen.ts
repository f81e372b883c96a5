/**
 * The vhost-user topology's generator, as its own process (one EAL per process): a FrameReplay
 * (@flowline/dpdk) on core 0 sends prebuilt 60-byte UDP frames (64 on the wire) on one port at a
 * time and frees what comes back unread. Its ports are given as devargs: the reference's first,
 * then one per NF. It took the place of testpmd flowgen, whose refcount clones cost an atomic
 * decrement per packet (32 % of its cycles in a profile on the Zen 5 VM of stop 45).
 *
 * Protocol (line-child.ts): "@@" and a JSON line out when every port is open ({"ready":true,
 * "frameBytes":60}), then one for each line in: {"select":k|null} -> {"ok":true}; {"counters":k}
 * -> {"tried","sent","received"}; {"link":k} -> {"up"}; a refusal is {"ok":false,"error"}. It
 * stops when its stdin closes.
 */
import { createInterface } from 'node:readline';

import { FrameReplay, Mempool, Port, initEal } from '@flowline/dpdk';

import { generatorFrames } from './tables';

interface GenArgs {
  prefix: string;
  /** devargs of the ports, the reference's first */
  ports: string[];
  burst: number;
  /** virtio-user ports need --single-file-segments */
  singleFileSegments: boolean;
}

type Request = { select: number | null } | { counters: number } | { link: number };

function main(): void {
  const args = JSON.parse(process.argv[2] ?? '{}') as GenArgs;
  // this thread (main lcore) on core 1 only answers requests; the replay polls on core 0
  const eal = initEal({
    filePrefix: args.prefix,
    lcores: [1, 0],
    ...(args.singleFileSegments ? { extraArgs: ['--single-file-segments'] } : {}),
  });
  const rxPool = Mempool.create({ size: 16383 });
  // every port's tx ring can hold up to 1024 of the replay's mbufs while it is not selected
  const replayPool = Mempool.create({ size: 1024 * args.ports.length + 8191 });
  const ports = args.ports.map((d) =>
    Port.open(d, rxPool, { rxDescriptors: 1024, txDescriptors: 1024 }),
  );
  const frames = generatorFrames();
  const replay = FrameReplay.create({
    lcore: 0,
    ports,
    pool: replayPool,
    frames,
    burst: args.burst,
  });
  replay.start();
  const reply = (o: object): void => void process.stdout.write(`@@${JSON.stringify(o)}\n`);
  const portAt = (k: number): Port => {
    const p = ports[k];
    if (!p) throw new RangeError(`port ${k}: the generator has ${ports.length}`);
    return p;
  };
  reply({ ready: true, frameBytes: frames[0]?.length });
  const rl = createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    try {
      const q = JSON.parse(line) as Request;
      if ('select' in q) {
        replay.select(q.select === null ? null : portAt(q.select));
        reply({ ok: true });
      } else if ('counters' in q) {
        portAt(q.counters);
        reply(replay.counters()[q.counters] ?? {});
      } else if ('link' in q) {
        reply({ up: portAt(q.link).link().up });
      } else throw new Error(`unknown request ${line}`);
    } catch (e) {
      reply({ ok: false, error: (e as Error).message });
    }
  });
  // The bench holds this process's stdin: when it closes (the bench is gone, however it went),
  // this generator stops rather than poll on, holding its hugepages.
  rl.once('close', () => {
    replay.stop();
    replay.close(); // before its ports: a port refuses to close while the replay sends on it
    for (const p of ports) p.close();
    eal.cleanup();
    process.exit(0);
  });
}

try {
  main();
} catch (e: unknown) {
  process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
}
