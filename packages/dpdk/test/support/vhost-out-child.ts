/**
 * The l2fwd-over-vhost-user check in a process of its own (pipeline-l2-acl.test.ts runs it):
 * 300 tagged frames go in on a net_ring port, l2fwd sends them out of a net_virtio_user port
 * (server=1) and they are read back on the net_vhost port it serves. Prints one JSON line with
 * what came out, then exits without closing the vhost-user ports or cleaning up the EAL: DPDK
 * 22.11's virtio-user PMD can leave a closed connection's descriptor registered with the EAL
 * interrupt thread when its peer disconnects, and that thread panics at its next rebuild (a CI
 * fork died so; see also pod-dataplane.ts in nf-runtime, which leaves such ports to process exit
 * for the same reason). The parent removes the prefix's files.
 *
 *   node --import tsx vhost-out-child.ts <socket> <file-prefix>
 */
import { Mempool, Pipeline, Port, devargs, initEal } from '../../src/index';
import { BACKOFF, sendAll, settle, tagOf, tagged } from './io';
import { waitFor } from './env';

async function main(): Promise<void> {
  const [sock, prefix] = process.argv.slice(2) as [string, string];
  initEal({ filePrefix: prefix, lcores: [0, 1] });
  const pool = Mempool.create({ size: 8191 });
  const a = Port.open(devargs.ring({ id: 'vco' }), pool, { rxDescriptors: 1024 });
  // virtio-user in server mode waits in accept() while probing: the vhost client (which
  // retries in its own thread) must exist first.
  const vhost = Port.open(devargs.vhost({ id: 'pl', iface: sock, client: true }), pool);
  const virtio = Port.open(
    devargs.virtioUser({ id: 'pl', path: sock, server: true, queueSize: 1024 }),
    pool,
  );
  const p = Pipeline.create({
    inputs: [a],
    backoff: BACKOFF,
    stages: [{ kind: 'l2fwd', forward: [{ from: a, to: virtio }] }],
  });
  const linked = await waitFor(() => virtio.link().up && vhost.link().up, 5000);
  p.start();
  const pkts = Array.from({ length: 300 }, (_, i) =>
    tagged(i, { src: '10.0.0.1', dst: '10.0.0.2', size: 80 + (i % 7) }),
  );
  const got: Buffer[] = [];
  // the vhost side is drained while sending: a full virtqueue would drop (tx_full)
  for (let i = 0; i < pkts.length && linked; i += 100) {
    await sendAll(a, pool, pkts.slice(i, i + 100));
    await waitFor(() => {
      got.push(...vhost.receive(0, 256));
      return got.length >= i + 100;
    }, 5000);
  }
  if (linked) await settle(p, 300);
  const counters = p.counters();
  p.stop();
  process.stdout.write(
    `${JSON.stringify({
      linked,
      tags: got.map((f) => tagOf(f, 8)),
      same: got.length === pkts.length && got.every((f, i) => f.equals(pkts[i]!)),
      counters: { rx: counters.rx, tx: counters.tx, drops: counters.drops },
    })}\n`,
  );
  process.exit(0);
}

main().catch((e: unknown) => {
  process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
