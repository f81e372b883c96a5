import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

/**
 * The IPsec gateway benchmark (src/ipsec/main.ts) run short, as `npm run bench:ipsec` runs it
 * long: every case measured, and its own checks pass (each SA took exactly the packets its
 * pipeline took, none failed authentication or the trailer check, all went out; the inbound
 * traces were encrypted by node:crypto, so the ESP stage decrypted another implementation's
 * packets). Figures are not checked here: speed is the benchmark's to report.
 */
const root = process.getuid?.() === 0;

describe.skipIf(!root)('the IPsec benchmark (integration)', () => {
  const out = mkdtempSync(join(tmpdir(), 'flowline-ipsec-bench-test-'));
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it('measures every case, and its SA counter checks pass', () => {
    const r = spawnSync(
      process.execPath,
      [
        ...['--import', 'tsx', join(__dirname, '../../src/ipsec/main.ts')],
        ...['--rounds', '1', '--warmup-ms', '100', '--window-ms', '200', '--flows', '256'],
        ...['--out', out],
      ],
      { cwd: join(__dirname, '../..'), encoding: 'utf8', timeout: 240_000 },
    );
    expect(r.status, `${r.stdout}\n${r.stderr}`.slice(-4000)).toBe(0);
    expect(r.stdout).toContain('all SA counter checks passed');
    const report = JSON.parse(readFileSync(join(out, 'ipsec.json'), 'utf8')) as {
      results: { id: string; mpps: number; check?: string; cryptoAloneCycles?: number }[];
      failures: string[];
    };
    expect(report.failures).toEqual([]);
    // testpmd io at both sizes, and the ESP stage both ways with both ciphers at both sizes
    expect(report.results.map((x) => x.id).sort()).toEqual(
      [
        'testpmd64',
        'testpmd1400',
        ...['gcm128', 'cbc128'].flatMap((a) =>
          [64, 1400].flatMap((s) => [`out-${a}-${s}`, `in-${a}-${s}`]),
        ),
        // AES-GCM-128 at 64 B with an SPD of 1 and of 16 policies too
        ...['out', 'in'].flatMap((d) => [`${d}-gcm128-64-spd1`, `${d}-gcm128-64-spd16`]),
      ].sort(),
    );
    for (const x of report.results) {
      expect(x.mpps, x.id).toBeGreaterThan(0);
      if (x.id !== 'testpmd64' && x.id !== 'testpmd1400') {
        expect(x.check, x.id).toMatch(
          x.id.includes('-spd')
            ? /^(\d+) of \1 through the SA, \1 out, 0 failed, \1 by its policy, 0 by others or none$/
            : /^(\d+) of \1 through the SA, \1 out, 0 failed$/,
        );
        expect(x.cryptoAloneCycles, x.id).toBeGreaterThan(0);
      }
    }
    // every DPDK process it ran (its file prefixes start flib<its pid>) left nothing behind
    const mine = (dir: string): string[] =>
      existsSync(dir) ? readdirSync(dir).filter((f) => f.startsWith(`flib${r.pid}`)) : [];
    expect([...mine('/var/run/dpdk'), ...mine('/dev/hugepages')]).toEqual([]);
  }, 300_000);
});
