// A traffic sender on its own thread (a worker_thread, not an EAL lcore): it sends the given
// frames round-robin into a port's queue 0 until told to stop, and reports exactly how many of
// each it sent. It uses the addon loaded in this process by handle (pool and port ids), so the
// main thread stays free to swap tables while traffic keeps flowing.
import { createRequire } from 'node:module';
import { parentPort, workerData } from 'node:worker_threads';

const addon = createRequire(import.meta.url)(workerData.addon);
const { port, pool, burst } = workerData;
const flag = new Int32Array(workerData.stop);
const frames = workerData.frames.map((f) => Buffer.from(f));
const perFrame = new Array(frames.length).fill(0);
let next = 0;
let sent = 0;
let full = 0;
const out = Array.from({ length: burst });
while (Atomics.load(flag, 0) === 0) {
  for (let k = 0; k < burst; k++) out[k] = frames[(next + k) % frames.length];
  let n = 0;
  try {
    n = addon.txCopy(port, 0, pool, out);
  } catch {
    n = 0; // the pool is momentarily empty: the pipeline is behind
  }
  for (let k = 0; k < n; k++) perFrame[(next + k) % frames.length]++;
  next = (next + n) % frames.length;
  sent += n;
  if (n < burst) {
    full++;
    Atomics.wait(flag, 0, 0, 0.05);
  }
}
parentPort.postMessage({ sent, perFrame, full });
