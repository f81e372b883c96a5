/**
 * The chain benchmark's outputs: a text table, a JSON document, and an SVG of loss and latency
 * against offered load.
 */
import type { ChainBenchResult } from './bench';

const mpps = (pps: number | undefined): string =>
  pps === undefined ? '-' : (pps / 1e6).toFixed(3);

function table(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  // a width per header: a cell beyond the headers is not padded
  const line = (r: string[]): string => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ');
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...cells.slice(1).map(line)].join(
    '\n',
  );
}

export interface Targets {
  pdrPps: number;
  ndrPps: number;
  p99AtHalfPdrUs: number;
  idlePercent: number;
}

export const ISSUE_TARGETS: Targets = {
  pdrPps: 1_000_000,
  ndrPps: 500_000,
  p99AtHalfPdrUs: 500,
  idlePercent: 10,
};

export interface TargetCheck {
  what: string;
  target: string;
  measured: string;
  met: boolean | undefined;
}

export function checkTargets(r: ChainBenchResult, t: Targets = ISSUE_TARGETS): TargetCheck[] {
  const half = r.latency.find((l) => l.fraction === 0.5)?.latencyUs?.p99;
  return [
    {
      what: 'PDR',
      target: `≥ ${mpps(t.pdrPps)} Mpps`,
      measured: `${mpps(r.search.pdr.lowerPps)} Mpps`,
      met: r.search.pdr.lowerPps >= t.pdrPps,
    },
    {
      what: 'NDR',
      target: `≥ ${mpps(t.ndrPps)} Mpps`,
      measured: `${mpps(r.search.ndr.lowerPps)} Mpps`,
      met: r.search.ndr.lowerPps >= t.ndrPps,
    },
    {
      what: 'p99 at 50 % of PDR',
      target: `≤ ${t.p99AtHalfPdrUs} µs`,
      measured: half === undefined ? '-' : `${half.toFixed(1)} µs`,
      met: half === undefined ? undefined : half <= t.p99AtHalfPdrUs,
    },
    {
      what: 'idle chain CPU',
      target: `≤ ${t.idlePercent} % of a core`,
      measured: r.idle ? `${r.idle.totalPercent.toFixed(1)} %` : '-',
      met: r.idle ? r.idle.totalPercent <= t.idlePercent : undefined,
    },
  ];
}

export function renderChainBench(r: ChainBenchResult): string {
  const s = r.search;
  const out: string[] = [];
  out.push(
    `chain ${r.chain}: NDR ${mpps(s.ndr.lowerPps)} Mpps (fails at ${mpps(s.ndr.upperPps)}), ` +
      `PDR (loss ≤ ${(s.pdrLossRatio * 100).toFixed(2)} %) ${mpps(s.pdr.lowerPps)} Mpps ` +
      `(fails at ${mpps(s.pdr.upperPps)}); resolution ${(s.relativeResolution * 100).toFixed(1)} %, ` +
      `${s.trials.length} trials${s.converged ? '' : ', NOT converged (trial limit)'}`,
  );
  out.push('');
  out.push(
    table(
      ['phase', 'offered Mpps', 'seconds', 'sent', 'lost', 'loss %', 'achieved Mpps'],
      s.trials.map((t) => [
        t.phase,
        mpps(t.offeredPps),
        t.durationS,
        t.sent,
        t.lost,
        (t.lossRatio * 100).toFixed(4),
        mpps(t.achievedPps),
      ]),
    ),
  );
  if (r.latency.length > 0) {
    out.push('');
    out.push(
      table(
        ['load', 'offered Mpps', 'lost', 'p50 µs', 'p90 µs', 'p99 µs', 'max µs'],
        r.latency.map((l) => [
          `${l.fraction * 100} % PDR`,
          mpps(l.offeredPps),
          l.lost,
          l.latencyUs?.p50.toFixed(1) ?? '-',
          l.latencyUs?.p90.toFixed(1) ?? '-',
          l.latencyUs?.p99.toFixed(1) ?? '-',
          l.latencyUs?.max.toFixed(1) ?? '-',
        ]),
      ),
    );
  }
  out.push('');
  out.push(
    table(
      ['hop', 'packets', 'dropped'],
      r.counters.hops.map((h) => [h.hop, h.packets, h.dropped]),
    ),
  );
  const drops = Object.entries(r.counters.drops);
  if (drops.length > 0) {
    out.push('');
    out.push(table(['dropped by', 'packets'], drops));
  }
  if (r.idle) {
    out.push('');
    out.push(
      table(
        ['idle process', 'pid', '% of a core', 'busiest threads (%)'],
        [
          ...r.idle.processes.map((p) => [
            p.name,
            p.pid,
            p.cpuPercent.toFixed(1),
            (p.threads ?? []).map((t) => `${t.name} ${t.cpuPercent.toFixed(1)}`).join(', '),
          ]),
          ['total', '', r.idle.totalPercent.toFixed(1), ''],
        ],
      ),
    );
  }
  if (r.stalls) {
    out.push('');
    out.push(
      table(
        ['CPU stalls (spinning thread)', 'max µs', '> 0.1 ms', '> 0.5 ms', '> 1 ms', 'stalled ms'],
        r.stalls.map((c) => [
          `CPU ${c.cpu}, ${c.seconds} s`,
          c.maxUs,
          c.over100Us,
          c.over500Us,
          c.over1Ms,
          c.stalledMs.toFixed(1),
        ]),
      ),
    );
  }
  out.push('');
  out.push(
    table(
      ['target', 'wanted', 'measured', 'met'],
      checkTargets(r).map((c) => [
        c.what,
        c.target,
        c.measured,
        c.met === undefined ? '-' : c.met ? 'yes' : 'no',
      ]),
    ),
  );
  return out.join('\n');
}

/** The JSON document (trials without their per-flow extras' bulk kept: they are small). */
export function chainBenchJson(r: ChainBenchResult): object {
  return { ...r, targets: checkTargets(r) };
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');

/**
 * Two panels side by side: loss ratio (log scale, 0 drawn on the axis) of every final-phase
 * trial, and p50/p90/p99 latency at the latency points, both against offered Mpps; the NDR and
 * PDR as vertical lines.
 */
export function chainBenchSvg(r: ChainBenchResult): string {
  const W = 900;
  const H = 360;
  const pw = 380;
  const ph = 260;
  const top = 50;
  const lossLeft = 60;
  const latLeft = 510;
  const final = Math.max(...r.search.trials.map((t) => t.phase), 0);
  const trials = r.search.trials.filter((t) => t.phase === final);
  // Each panel spans its own loads: the final trials (not the short ones far above), and the
  // latency points up to the PDR.
  const lossSpan = Math.max(1, ...trials.map((t) => t.offeredPps)) * 1.1;
  const latSpan = Math.max(1, r.search.pdr.lowerPps, ...r.latency.map((l) => l.offeredPps)) * 1.1;
  const span = (left: number): number => (left === lossLeft ? lossSpan : latSpan);
  const x = (left: number, pps: number): number => left + (pps / span(left)) * pw;
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="18" text-anchor="middle" font-size="13">${esc(`chain ${r.chain}: loss and latency against offered load (${r.at})`)}</text>`,
  );
  // Loss panel: log10 loss ratio from 1e-6 to 1.
  const yLoss = (ratio: number): number => {
    const l = Math.log10(Math.max(ratio, 1e-6));
    return top + ph - ((l + 6) / 6) * ph;
  };
  const maxLat = Math.max(10, ...r.latency.map((l) => l.latencyUs?.p99 ?? 0)) * 1.1;
  const yLat = (us: number): number => top + ph - (us / maxLat) * ph;
  for (const [left, title, ylabel] of [
    [lossLeft, 'loss ratio (final-duration trials)', 'loss ratio (log; 0 on the axis)'],
    [latLeft, 'latency at 10/50/90 % of PDR', 'µs'],
  ] as const) {
    parts.push(
      `<rect x="${left}" y="${top}" width="${pw}" height="${ph}" fill="none" stroke="#444"/>`,
      `<text x="${left + pw / 2}" y="${top - 8}" text-anchor="middle">${esc(title)}</text>`,
      `<text x="${left + pw / 2}" y="${top + ph + 32}" text-anchor="middle">offered Mpps</text>`,
      `<text x="${left - 40}" y="${top + ph / 2}" transform="rotate(-90 ${left - 40} ${top + ph / 2})" text-anchor="middle">${esc(ylabel)}</text>`,
    );
    for (let i = 0; i <= 4; i++) {
      const pps = (span(left) * i) / 4;
      parts.push(
        `<text x="${x(left, pps)}" y="${top + ph + 14}" text-anchor="middle">${(pps / 1e6).toFixed(2)}</text>`,
      );
    }
    for (const [pps, label, color, dy] of [
      [r.search.ndr.lowerPps, 'NDR', '#2a7', 12],
      [r.search.pdr.lowerPps, 'PDR', '#c60', 24],
    ] as const) {
      if (pps <= 0) continue;
      parts.push(
        `<line x1="${x(left, pps)}" y1="${top}" x2="${x(left, pps)}" y2="${top + ph}" stroke="${color}" stroke-dasharray="4 3"/>`,
        x(left, pps) > left + pw * 0.7
          ? `<text x="${x(left, pps) - 3}" y="${top + dy}" fill="${color}" text-anchor="end">${label} ${mpps(pps)}</text>`
          : `<text x="${x(left, pps) + 3}" y="${top + dy}" fill="${color}">${label} ${mpps(pps)}</text>`,
      );
    }
  }
  for (let e = -6; e <= 0; e += 2)
    parts.push(
      `<text x="${lossLeft - 4}" y="${yLoss(10 ** e) + 4}" text-anchor="end">1e${e}</text>`,
    );
  for (const t of trials)
    parts.push(
      `<circle cx="${x(lossLeft, t.offeredPps)}" cy="${yLoss(t.lossRatio)}" r="4" fill="${t.lost === 0 ? '#2a7' : '#c33'}"><title>${esc(`${mpps(t.offeredPps)} Mpps: lost ${t.lost} of ${t.sent}`)}</title></circle>`,
    );
  for (let i = 0; i <= 4; i++) {
    const us = (maxLat * i) / 4;
    parts.push(
      `<text x="${latLeft - 4}" y="${yLat(us) + 4}" text-anchor="end">${us.toFixed(0)}</text>`,
    );
  }
  const series = [
    ['p50', '#36c'],
    ['p90', '#93c'],
    ['p99', '#c33'],
  ] as const;
  series.forEach(([key, color], i) => {
    const pts = r.latency.flatMap((l) =>
      l.latencyUs ? [`${x(latLeft, l.offeredPps)},${yLat(l.latencyUs[key])}`] : [],
    );
    if (pts.length > 0)
      parts.push(
        `<polyline points="${pts.join(' ')}" fill="none" stroke="${color}" stroke-width="2"/>`,
        ...pts.map((p) => {
          const [cx, cy] = p.split(',');
          return `<circle cx="${cx}" cy="${cy}" r="3" fill="${color}"/>`;
        }),
      );
    parts.push(
      `<text x="${latLeft + 8 + i * 40}" y="${top + ph + 48}" fill="${color}">${key}</text>`,
    );
  });
  parts.push('</svg>');
  return parts.join('\n');
}
