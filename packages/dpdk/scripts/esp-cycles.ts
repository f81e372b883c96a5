/**
 * Cycles per packet of the ESP stage, measured in the worker (Pipeline.cycles: the stage's TSC
 * cycles in one burst of 16 over those bursts' packets) for each algorithm, 64-byte and
 * 1400-byte frames, outbound and inbound. One worker between net_ring ports: JavaScript fills
 * the input ring while the worker is stopped, then the worker drains it in full bursts of 32.
 * Inbound replays what outbound made (replay window off, so a packet may come again).
 * With --policies N the stages run with N policies, the one that matches last (N - 1 IPv4
 * policies before it that do not match: the linear scan's worst case for that many).
 *
 *   flock /tmp/flowline-heavy.lock npx tsx scripts/esp-cycles.ts [--packets N] [--only alg:size]
 *     [--policies N]
 *   (root, hugepages)
 */
import { randomBytes } from 'node:crypto';

import { validateMatch } from '@flowline/packet';

import {
  ESP_ALGORITHMS,
  ESP_VDEVS,
  Mempool,
  Pipeline,
  Port,
  buildPacket,
  devargs,
  initEal,
  type EspAlgorithm,
  type EspPolicy,
  type EspSa,
} from '../src/index';
import { scrubPrefix } from '../test/support/env';

const arg = process.argv.indexOf('--packets');
const PACKETS = arg > 0 ? Number(process.argv[arg + 1]) : 200_000;
const only = process.argv.indexOf('--only'); // e.g. --only aes-gcm-128:64 (one case, for perf)
const ONLY = only > 0 ? process.argv[only + 1] : undefined;
const pol = process.argv.indexOf('--policies');
const POLICIES = pol > 0 ? Number(process.argv[pol + 1]) : 0;
const SIZES = [64, 1400];

/**
 * N policies, the last protecting with spi what the frames carry (to 10.2.0.1; inbound, the
 * decrypted packets are the same), the others not matching them.
 */
function policies(spi: number): EspPolicy[] {
  const m = (dst: string) => validateMatch({ dstPrefix: dst }, 'match');
  return Array.from({ length: POLICIES }, (_, i) =>
    i < POLICIES - 1
      ? { id: `miss${i}`, action: 'discard' as const, match: m(`10.3.${i % 256}.0/24`) }
      : { id: 'hit', action: 'protect' as const, spi, match: m('10.2.0.0/16') },
  );
}
const CHUNK = 256;
const ROUND = 2048; /* packets per fill of the input ring (it has 4096 slots) */

function frames(size: number, n: number): Buffer[] {
  return Array.from({ length: n }, (_, i) =>
    buildPacket({
      src: '10.1.0.1',
      dst: '10.2.0.1',
      sport: 1000 + (i % 1000),
      dport: 53,
      size,
      payload: randomBytes(Math.max(0, size - 42)),
    }),
  );
}

/**
 * Sends total packets (cycling through set) through p in rounds: the input ring is filled while
 * the worker is stopped, then the worker drains it in full bursts (JavaScript alone cannot keep
 * a worker's bursts full). Returns the first `keep` packets that came out of b.
 */
function pump(
  p: Pipeline,
  a: Port,
  b: Port,
  pool: Mempool,
  set: Buffer[],
  total: number,
  keep: number,
) {
  const kept: Buffer[] = [];
  let sent = 0;
  const end = Date.now() + 120_000;
  while (sent < total) {
    const round = Math.min(ROUND, total - sent);
    const before = sent;
    while (sent < before + round) {
      const chunk = Array.from(
        { length: Math.min(CHUNK, before + round - sent) },
        (_, i) => set[(sent + i) % set.length] as Buffer,
      );
      const n = a.send(0, pool, chunk);
      if (n === 0) break;
      sent += n;
    }
    p.start();
    while (p.counters().rx < sent) {
      if (Date.now() > end) throw new Error(`only ${p.counters().rx} of ${sent} taken in 120 s`);
    }
    p.stop();
    for (;;) {
      const got = b.receive(0, 256);
      if (got.length === 0) break;
      if (kept.length < keep) kept.push(...got.slice(0, keep - kept.length));
    }
  }
  return kept;
}

function stageCycles(p: Pipeline): number {
  const c = p.cycles();
  const esp = c.stages.find((s) => s.name === 'esp');
  if (!esp) throw new Error('no esp stage');
  return esp.cycles / c.sampledPackets;
}

function run(
  a: Port,
  b: Port,
  pool: Mempool,
  direction: 'outbound' | 'inbound',
  sa: EspSa,
  input: Buffer[],
  keep: number,
): { cycles: number; kept: Buffer[]; out: number } {
  const p = Pipeline.create({
    inputs: [a],
    rxMode: 'poll',
    stages: [
      { kind: 'esp', name: 'esp', direction, policies: POLICIES > 0 },
      { kind: 'l2fwd', forward: [{ from: a, to: b }] },
    ],
  });
  try {
    p.addSa('esp', sa);
    if (POLICIES > 0) p.setEspPolicies('esp', policies(sa.spi));
    const kept = pump(p, a, b, pool, input, PACKETS, keep);
    return { cycles: stageCycles(p), kept, out: p.saCounters('esp', sa.spi).packets };
  } finally {
    p.close();
  }
}

const prefix = `fl-espcyc-${process.pid}`;
const eal = initEal({ filePrefix: prefix, lcores: [0, 1], vdevs: [...ESP_VDEVS] });
try {
  const pool = Mempool.create({ size: 16383 });
  const [a, b] = [0, 1].map((i) =>
    Port.open(devargs.ring({ id: `espcyc${i}` }), pool, { rxDescriptors: 4096 }),
  ) as [Port, Port];
  console.log(
    `packets per case: ${PACKETS}; policies: ${POLICIES || 'none'}; cycles of the esp stage per packet (worker TSC)`,
  );
  console.log('algorithm                 | frame B | outbound cyc/pkt | inbound cyc/pkt');
  let spi = 0x4000;
  for (const alg of Object.keys(ESP_ALGORITHMS) as EspAlgorithm[]) {
    const k = ESP_ALGORITHMS[alg];
    const sa = (): EspSa => ({
      spi,
      algorithm: alg,
      key,
      ...(k.authKey ? { authKey } : {}),
      innerFamily: 4,
      tunnel: { src: '192.0.2.1', dst: '192.0.2.2' },
      replayWindow: 0,
    });
    const key = randomBytes(k.key);
    const authKey = randomBytes(32);
    for (const size of SIZES) {
      if (ONLY && ONLY !== `${alg}:${size}`) continue;
      spi++;
      const out = run(a, b, pool, 'outbound', sa(), frames(size, 1024), 4096);
      const inb = run(a, b, pool, 'inbound', sa(), out.kept, 0);
      if (inb.out !== PACKETS) throw new Error(`inbound took ${inb.out} of ${PACKETS}`);
      console.log(
        `${alg.padEnd(25)} | ${String(size).padStart(7)} | ${out.cycles.toFixed(0).padStart(16)} | ${inb.cycles.toFixed(0).padStart(15)}`,
      );
    }
  }
} finally {
  eal.cleanup();
  scrubPrefix(prefix);
}
