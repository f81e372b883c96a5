/**
 * Frames chained over several mbufs (longer than the rx pool's data room): vhost-user's dequeue
 * chains a 600-byte frame over the 128-byte mbufs of a small pool. The stages read headers in
 * place from the first mbuf, so such a frame has a reason of its own (`segmented`), not a
 * malformed one; l2fwd still forwards it whole.
 */
import { rmSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

import { Mempool, Pipeline, Port, buildPacket, devargs } from '../../src/index';
import { dataplaneReady, testPrefix, waitFor } from '../support/env';
import { BACKOFF, aclForward, drain, eachFileEal, settle } from '../support/rig';

eachFileEal('pseg');

describe.skipIf(dataplaneReady())(
  'chained frames through a pipeline (root, hugepages, vhost-user)',
  () => {
    it("are the ACL's 'segmented' drops, not malformed, and l2fwd forwards them whole", async () => {
      const sock = `/tmp/${testPrefix('pseg')}.sock`;
      rmSync(sock, { force: true });
      const big = Mempool.create({ size: 2047 });
      const small = Mempool.create({ size: 4095, dataRoom: 256 });
      const vhost = Port.open(devargs.vhost({ id: 'pseg', iface: sock }), small);
      const virtio = Port.open(devargs.virtioUser({ id: 'pseg', path: sock }), big);
      const out = Port.open(devargs.ring({ id: 'psegout' }), big);
      const long = buildPacket({ src: '10.0.0.1', dst: '10.9.0.1', size: 600 });
      const short = buildPacket({ src: '10.0.0.1', dst: '10.9.0.1', size: 100 });
      const frames = [...Array.from({ length: 8 }, () => long), short, short];
      const send = async (p: Pipeline, total: number): Promise<void> => {
        expect(virtio.send(0, big, frames)).toBe(frames.length);
        await settle(p, total);
      };
      try {
        expect(await waitFor(() => virtio.link().up && vhost.link().up, 10_000)).toBe(true);
        const fw = aclForward(vhost, out, { defaultAction: 'permit' });
        try {
          fw.start();
          await send(fw, frames.length);
          expect(fw.counters().stages[0]).toMatchObject({ name: 'fw', drops: { segmented: 8 } });
          expect(drain(out)).toEqual([short, short]);
        } finally {
          fw.close();
        }
        const l2 = Pipeline.create({
          inputs: [vhost],
          backoff: BACKOFF,
          stages: [{ kind: 'l2fwd', forward: [{ from: vhost, to: out }] }],
        });
        try {
          l2.start();
          await send(l2, frames.length);
          expect(drain(out)).toEqual(frames);
        } finally {
          l2.close();
        }
      } finally {
        out.close();
        virtio.close();
        vhost.close();
        rmSync(sock, { force: true });
      }
    });
  },
);
