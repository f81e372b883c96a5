import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import { cpuInfo, formatCpu } from './machine';

const roots: string[] = [];
afterEach(() => {
  for (const r of roots.splice(0)) rmSync(r, { recursive: true, force: true });
});

function fakeRoot(cpuinfo: string, caches: [string, string, string, string][]): string {
  const root = mkdtempSync(path.join(tmpdir(), 'bench-cpu-'));
  roots.push(root);
  mkdirSync(path.join(root, 'proc'));
  writeFileSync(path.join(root, 'proc/cpuinfo'), cpuinfo);
  caches.forEach(([level, type, size, shared], i) => {
    const d = path.join(root, `sys/devices/system/cpu/cpu0/cache/index${i}`);
    mkdirSync(d, { recursive: true });
    writeFileSync(path.join(d, 'level'), `${level}\n`);
    writeFileSync(path.join(d, 'type'), `${type}\n`);
    writeFileSync(path.join(d, 'size'), `${size}\n`);
    writeFileSync(path.join(d, 'shared_cpu_list'), `${shared}\n`);
  });
  return root;
}

const twoCpus = ['0', '1']
  .map(
    (n) =>
      `processor\t: ${n}\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 17\n` +
      `model name\t: AMD EPYC 9R14 96-Core Processor\nstepping\t: 1\n\n`,
  )
  .join('');

describe('cpuInfo', () => {
  it('names the model, its CPUID numbers, the CPUs and cpu0 caches by level', () => {
    const root = fakeRoot(twoCpus, [
      ['3', 'Unified', '32768K', '0-1'],
      ['1', 'Instruction', '32K', '0'],
      ['1', 'Data', '32K', '0'],
      ['2', 'Unified', '1024K', '0'],
    ]);
    const c = cpuInfo(root);
    expect(c.model).toBe('AMD EPYC 9R14 96-Core Processor');
    expect(c.id).toBe('family 25 model 17 stepping 1');
    expect(c.cpus).toBe(2);
    expect(c.caches.map((k) => `${k.level}${k.type[0]}`)).toEqual(['1D', '1I', '2U', '3U']);
    expect(formatCpu(c)).toBe(
      'AMD EPYC 9R14 96-Core Processor (family 25 model 17 stepping 1), 2 CPUs, ' +
        'L1d 32K (CPUs 0), L1i 32K (CPUs 0), L2 1024K (CPUs 0), L3 32768K (CPUs 0-1)',
    );
  });

  it('gives the model alone when sysfs has no caches, and says so when cpuinfo has no model', () => {
    const c = cpuInfo(fakeRoot(twoCpus, []));
    expect(c.caches).toEqual([]);
    expect(formatCpu(c)).toBe(
      'AMD EPYC 9R14 96-Core Processor (family 25 model 17 stepping 1), 2 CPUs',
    );
    const none = cpuInfo(fakeRoot('processor\t: 0\n', []));
    expect(none.model).toBe('unknown processor');
    expect(formatCpu(none)).toBe('unknown processor, 1 CPU');
  });
});
