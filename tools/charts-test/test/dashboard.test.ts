import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { find, render } from '../src/helm';
import { chartsDir, repoRoot } from '../src/paths';

interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  targets?: { expr: string; refId: string }[];
}
const file = join(chartsDir, 'flowline', 'dashboards', 'flowline.json');
const dashboard = JSON.parse(readFileSync(file, 'utf8')) as {
  uid: string;
  panels: Panel[];
  templating: { list: { name: string }[] };
};
const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));

/** The metric names a PromQL expression reads (identifiers followed by { or [). */
const metricsIn = (expr: string) =>
  [...expr.matchAll(/\b(flowline_[a-z0-9_]+)\s*[{[]/g)].map((m) => m[1] ?? '');

describe('the Grafana dashboard', () => {
  it('charts every metric of contract 6 (docs/architecture.md#metrics) with its labels', () => {
    const used = new Set(exprs.flatMap(metricsIn));
    for (const m of [
      'flowline_port_rx_packets_total',
      'flowline_port_tx_packets_total',
      'flowline_port_dropped_packets_total',
      'flowline_stage_packets_in_total',
      'flowline_stage_dropped_packets_total',
      'flowline_chain_hop_healthy',
      'flowline_chain_hop_packets_total',
      'flowline_cni_requests_total',
      'flowline_cni_request_duration_seconds_bucket',
    ]) {
      expect(used, m).toContain(m);
    }
    const drops = exprs.find((e) =>
      e.startsWith('sum by (nf, port, reason) (rate(flowline_port_dropped_packets_total'),
    );
    expect(drops).toBeDefined();
    expect(
      exprs.some((e) => e.startsWith('sum by (nf, port) (rate(flowline_port_rx_packets_total')),
    ).toBe(true);
    expect(
      exprs.some((e) =>
        e.startsWith('sum by (chain, hop, nf) (rate(flowline_chain_hop_packets_total'),
      ),
    ).toBe(true);
  });

  it('queries only metrics the code exports (instrument names in the sources)', () => {
    // Each instrument's creation and the line after it (prettier may wrap the name there).
    const sources = execFileSync(
      'git',
      [
        'grep',
        '--untracked',
        '-h',
        '-A1',
        '-E',
        'create(Observable)?(Counter|Gauge|Histogram|UpDownCounter)\\(',
        '--',
        '*.ts',
        ':!*.test.ts',
      ],
      { cwd: repoRoot, encoding: 'utf8' },
    );
    const exported = new Set([...sources.matchAll(/'(flowline_[a-z0-9_]+)'/g)].map((m) => m[1]!));
    expect(exported.size).toBeGreaterThan(10);
    // Prometheus names: counters end in _total, histograms in _bucket/_sum/_count.
    const base = (m: string) => m.replace(/_(total|bucket|sum|count)$/, '');
    const missing = [...new Set(exprs.flatMap(metricsIn))].filter((m) => !exported.has(base(m)));
    expect(missing).toEqual([]);
  });

  it('has well-formed panels: unique ids, queries with balanced brackets, counters read through rate()', () => {
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of dashboard.panels.filter((x) => x.type !== 'row')) {
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
      expect(p.gridPos.x + p.gridPos.w, p.title).toBeLessThanOrEqual(24);
    }
    for (const e of exprs) {
      for (const [open, close] of ['()', '{}', '[]'])
        expect(e.split(open!).length, e).toBe(e.split(close!).length);
      for (const m of e.matchAll(/(flowline_[a-z0-9_]+_total)\{[^}]*\}(\[[^\]]+\])?/g))
        expect(m[2], `${m[1]} must be read through rate(): ${e}`).toBeDefined();
    }
    expect(dashboard.templating.list.map((v) => v.name)).toEqual(['datasource', 'nf', 'chain']);
  });

  it('ships in the chart as a ConfigMap holding the same JSON', () => {
    const cm = find(render('flowline'), 'ConfigMap', 'test-metrics-dashboard');
    expect(JSON.parse((cm.data as Record<string, string>)['flowline.json']!)).toEqual(dashboard);
  });
});
