/**
 * The processes of the NF-bound benchmark, each measured the same way: started, warmed up, two
 * samples of the packets it has taken from its source a window apart, stopped. Only the case
 * being measured polls.
 *
 * - FlowlineNf: the child process of flowline-nf.ts (its own clock stamps each sample).
 * - TestpmdIo: dpdk-testpmd in io forward mode, net_pcap (the same trace) -> net_null.
 * - OvsDpdk: ovs-vswitchd-dpdk (private run dir, datapath_type=netdev, one PMD on core 1,
 *   pmd-maxsleep so an idle PMD sleeps), a net_pcap port per trace and a net_null port; the case
 *   is chosen by which trace port is up (an admin-down DPDK port is not polled) and by the
 *   table-0 flow of that port; live counters from `ovs-ofctl dump-ports`.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { createInterface } from 'node:readline';

import { startOvsDpdk, type OvsDpdk } from '@flowline/ovs';
import { createLogger } from '@flowline/telemetry';

import type { NfPlan, NfSample } from './flowline-nf';
import { Testpmd } from '../dpdk/testpmd';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class FlowlineNf {
  private waiting: ((v: Record<string, unknown>) => void)[] = [];
  private log = '';
  private exited: Promise<number | null>;
  tscHz = 0;

  private constructor(private readonly child: ChildProcess) {
    createInterface({ input: child.stdout! }).on('line', (l) => {
      if (l.startsWith('@@'))
        this.waiting.shift()?.(JSON.parse(l.slice(2)) as Record<string, unknown>);
      else this.log += `${l}\n`;
    });
    child.stderr?.on('data', (b: Buffer) => (this.log += b.toString()));
    this.exited = new Promise((r) => child.once('exit', (c) => r(c)));
  }

  static async start(entry: string[], planFile: string, timeoutMs: number): Promise<FlowlineNf> {
    const child = spawn(process.execPath, [...entry, planFile], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const nf = new FlowlineNf(child);
    const ready = await nf.next(timeoutMs);
    nf.tscHz = Number(ready.tscHz);
    return nf;
  }

  private next(timeoutMs: number): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(
        () =>
          reject(new Error(`Flowline NF: no answer in ${timeoutMs} ms\n${this.log.slice(-3000)}`)),
        timeoutMs,
      );
      void this.exited.then((c) => {
        clearTimeout(t);
        reject(new Error(`Flowline NF exited (${c})\n${this.log.slice(-3000)}`));
      });
      this.waiting.push((v) => {
        clearTimeout(t);
        if (v.ok === false) reject(new Error(`Flowline NF: ${String(v.error)}`));
        else resolve(v);
      });
    });
  }

  async command(cmd: string, id?: string, timeoutMs = 30_000): Promise<Record<string, unknown>> {
    const p = this.next(timeoutMs);
    this.child.stdin!.write(`${JSON.stringify({ cmd, id })}\n`);
    return p;
  }

  async sample(id: string): Promise<NfSample> {
    return (await this.command('sample', id)).sample as NfSample;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    await this.command('quit', undefined, 30_000).catch(() => undefined);
    await Promise.race([this.exited, sleep(15_000)]);
    if (this.child.exitCode === null) {
      this.child.kill('SIGKILL');
      await this.exited;
    }
  }

  get output(): string {
    return this.log;
  }
}

export type { NfPlan };

/** dpdk-testpmd io forward between a net_pcap replay (port 0) and net_null (port 1). */
export class TestpmdIo {
  private constructor(readonly tp: Testpmd) {}

  static async start(o: {
    prefix: string;
    pcap: string;
    length: number;
    burst: number;
  }): Promise<TestpmdIo> {
    const tp = Testpmd.spawn({
      eal: [
        ...['-l', '0,1', '--main-lcore', '0', '--in-memory', '--no-pci'],
        ...['--file-prefix', o.prefix],
        ...['--vdev', `net_pcap_tp,rx_pcap=${o.pcap},infinite_rx=1`],
        ...['--vdev', 'net_null_tp,no-rx=1'],
      ],
      app: [
        ...['-i', '--forward-mode=io', '--nb-cores=1', '--port-topology=paired'],
        `--total-num-mbufs=${o.length + 32_768}`,
        '--mbuf-size=256',
        `--burst=${o.burst}`,
      ],
    });
    await tp.waitFor(/testpmd> /, 120_000);
    // only the pcap -> null stream: the null port has nothing to receive
    await tp.command('set portlist 0,1', /\n/);
    return new TestpmdIo(tp);
  }

  async startFwd(): Promise<void> {
    await this.tp.command('start', /packet forwarding/);
  }

  async sample(): Promise<{ t: number; rx: number }> {
    const t0 = performance.now();
    const s = await this.tp.portStats(0);
    return { t: ((t0 + performance.now()) / 2) * 1000, rx: s.rxPackets };
  }

  async stopFwd(): Promise<void> {
    await this.tp.command('stop', /Done\./);
  }

  async stop(): Promise<void> {
    await this.tp.stop(true);
  }
}

/**
 * OVS-DPDK with one net_pcap port replaying a trace and a net_null output, one PMD on core 1.
 * Between its windows the whole ovs-vswitchd is stopped (SIGSTOP): a DPDK port that is admin
 * down is still polled, and so is an rx queue pinned to a core outside pmd-cpu-mask.
 */
export class OvsPeer {
  private paused = false;

  private constructor(
    private readonly ovs: OvsDpdk,
    readonly ofport: Map<string, number>,
    private readonly mgmt: string,
    private readonly pid: number,
  ) {}

  static async start(o: {
    runDir: string;
    prefix: string;
    trace: { name: string; file: string };
    socketMemMb: number;
  }): Promise<OvsPeer> {
    const ovs = await startOvsDpdk({
      runDir: o.runDir,
      bridge: 'brbench',
      filePrefix: o.prefix,
      socketMemMb: o.socketMemMb,
      pmdCpuMask: '0x2',
      pmdMaxSleepUs: 10_000,
      maxLifetimeSec: 3600,
      startTimeoutMs: 120_000,
      logger: createLogger('bench-ovs', { level: 'warn' }),
    });
    try {
      // megaflows of idle flows must survive between a case's rounds (default 10 s)
      await ovs.vswitch.setOtherConfig({ 'max-idle': '3600000' });
      const ofport = new Map<string, number>();
      const add = async (name: string, devargs: string): Promise<void> => {
        await ovs.vswitch.addPort(ovs.bridge, name, {
          type: 'dpdk',
          options: { 'dpdk-devargs': devargs },
        });
        const end = Date.now() + 120_000;
        for (;;) {
          const i = await ovs.vswitch.getInterface(name);
          if (i?.error) throw new Error(`OVS port ${name}: ${i.error}`);
          if (i?.ofport !== undefined && i.ofport > 0) {
            ofport.set(name, i.ofport);
            break;
          }
          if (Date.now() > end) throw new Error(`OVS port ${name} got no ofport`);
          await sleep(100);
        }
      };
      await add('out', `net_null_${o.trace.name},no-rx=1`);
      await add(o.trace.name, `net_pcap_${o.trace.name},rx_pcap=${o.trace.file},infinite_rx=1`);
      const pid = Number(readFileSync(path.join(ovs.runDir, 'ovs-vswitchd.pid'), 'utf8').trim());
      return new OvsPeer(ovs, ofport, `unix:${ovs.runDir}/${ovs.bridge}.mgmt`, pid);
    } catch (e) {
      await ovs.stop();
      throw e;
    }
  }

  get vswitchdLog(): string {
    return this.ovs.vswitchdLog;
  }

  ofctl(...args: string[]): Promise<string> {
    const [cmd, ...rest] = args;
    return promisify(execFile)('ovs-ofctl', ['-O', 'OpenFlow14', cmd!, this.mgmt, ...rest], {
      timeout: 120_000,
      maxBuffer: 1 << 28,
    }).then((r) => r.stdout);
  }

  appctl(...args: string[]): Promise<string> {
    return promisify(execFile)(
      'ovs-appctl',
      ['-t', path.join(this.ovs.runDir, 'ovs-vswitchd.ctl'), ...args],
      { timeout: 60_000, maxBuffer: 1 << 26 },
    ).then((r) => r.stdout);
  }

  /** Replaces the whole flow table (one bundle). */
  async flows(flows: readonly string[]): Promise<void> {
    await this.ovs.openflow.applyFlows(flows, 'replace');
  }

  /** Sends the trace port's IP packets through `actions` in table 0. */
  async select(port: string, actions: string): Promise<void> {
    await this.ofctl(
      'add-flow',
      `table=0,priority=10,in_port=${this.ofport.get(port)},ip actions=${actions}`,
    );
  }

  /**
   * How often revalidators run (other_config:max-revalidator, ms; OVS's default 500). While
   * OVS is stopped and resumed, a revalidation that spans a stop looks seconds long and makes
   * OVS cut its datapath flow limit (to as little as 1,000 flows): the rounds run with
   * revalidation put off, after a warm-up with it on (which also lets the limit grow).
   */
  async revalidateEveryMs(ms: number): Promise<void> {
    await this.ovs.vswitch.setOtherConfig({ 'max-revalidator': String(ms) });
  }

  /** SIGSTOP: no thread of ovs-vswitchd runs (nothing polls) until resume(). */
  pause(): void {
    if (!this.paused) process.kill(this.pid, 'SIGSTOP');
    this.paused = true;
  }

  resume(): void {
    if (this.paused) process.kill(this.pid, 'SIGCONT');
    this.paused = false;
  }

  /** Live OpenFlow port counters of the port (not the Interface table's 5 s statistics). */
  async sample(port: string): Promise<{ t: number; rx: number }> {
    const t0 = performance.now();
    const stats = await this.ovs.openflow.dumpPorts();
    const t = ((t0 + performance.now()) / 2) * 1000;
    const s = stats.find((x) => x.port === this.ofport.get(port));
    if (!s) throw new Error(`ovs-ofctl dump-ports: no port ${port}`);
    return { t, rx: s.rxPackets };
  }

  /** Packets per flow priority in a table (a rule's flows share its priority). */
  async hitsByPriority(table: number): Promise<Map<number, number>> {
    const out = new Map<number, number>();
    for (const f of await this.ovs.openflow.dumpFlows(`table=${table}`))
      out.set(f.priority, (out.get(f.priority) ?? 0) + f.nPackets);
    return out;
  }

  async stop(): Promise<void> {
    this.resume();
    await this.ovs.stop();
  }
}
