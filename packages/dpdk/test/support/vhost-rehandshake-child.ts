/**
 * The NF side of vhost-rehandshake.test.ts, in a process of its own (server=1 virtio-user
 * waits in accept() while probing, so the test's backend must run elsewhere): opens a
 * server=1 virtio-user port as the NF runtime does (rx interrupts on), but holds between the
 * probe and the configuration until the test has dropped the first connection, as OVS did.
 * Then it reads the link through Port.link() every 50 ms for `seconds` and prints one JSON
 * line: { redone, up }. It exits without closing the port (see vhost-out-child.ts for why).
 *
 *   node --import tsx vhost-rehandshake-child.ts <socket> <file-prefix> <go-file> <seconds>
 */
import { existsSync } from 'node:fs';
import { Mempool, Port, devargs, initEal } from '../../src/index';
import { native } from '../../src/native';

function holdUntil(file: string, timeoutMs: number): void {
  const nap = new Int32Array(new SharedArrayBuffer(4));
  const end = Date.now() + timeoutMs;
  while (!existsSync(file) && Date.now() < end) Atomics.wait(nap, 0, 0, 10);
}

async function main(): Promise<void> {
  const [sock, prefix, goFile, seconds] = process.argv.slice(2) as [string, string, string, string];
  initEal({ filePrefix: prefix, lcores: [0], singleFileSegments: true });
  const pool = Mempool.create({ size: 2047 });
  // The seam: Port.open probes and configures in one call; the test needs the gap between.
  const addon = native() as unknown as Record<string, (...a: unknown[]) => unknown>;
  const configure = addon.portConfigure!;
  addon.portConfigure = (...a: unknown[]) => {
    process.stdout.write('probed\n');
    holdUntil(goFile, 10_000);
    return configure(...a);
  };
  const port = Port.open(
    devargs.virtioUser({ id: 'rh', path: sock, server: true, queueSize: 256 }),
    pool,
    // As pods open them: configuring rx interrupts re-runs the handshake (DPDK's
    // virtio_dev_configure re-initialises the device), the one the dropped connection breaks.
    { rxInterrupts: true },
  );
  const end = Date.now() + Number(seconds) * 1000;
  let up = false;
  while (Date.now() < end) {
    up = port.link().up;
    await new Promise((r) => setTimeout(r, 50));
  }
  process.stdout.write(`${JSON.stringify({ redone: port.vhostHandshakesRedone, up })}\n`);
  process.exit(0);
}

main().catch((e: unknown) => {
  process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
