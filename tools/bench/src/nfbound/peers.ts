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
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';

import { startOvsDpdk, type OvsDpdk } from '@flowline/ovs';
import { createLogger } from '@flowline/telemetry';

import type { NfPlan, NfSample } from './flowline-nf';
import { Testpmd } from '../dpdk/testpmd';
import { LineChild } from '../line-child';
import { must } from '../must';
import { upcallsIn } from './checks';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class FlowlineNf {
  tscHz = 0;
  /** a cache line's round trip between the NF's two lcores, measured at start (TSC cycles) */
  lcoreRoundTripCycles: number | undefined;

  private constructor(private readonly io: LineChild) {}

  /** env: added to this process's environment (FLOWLINE_DPDK_ADDON: another build) */
  static async start(
    entry: string[],
    planFile: string,
    timeoutMs: number,
    env: Record<string, string> = {},
  ): Promise<FlowlineNf> {
    const nf = new FlowlineNf(LineChild.spawn('Flowline NF', [...entry, planFile], env));
    const ready = await nf.io.next(timeoutMs);
    nf.tscHz = Number(ready.tscHz);
    if (typeof ready.lcoreRoundTripCycles === 'number')
      nf.lcoreRoundTripCycles = ready.lcoreRoundTripCycles;
    return nf;
  }

  async command(cmd: string, id?: string, timeoutMs = 30_000): Promise<Record<string, unknown>> {
    return this.io.request({ cmd, id }, timeoutMs);
  }

  async sample(id: string): Promise<NfSample> {
    return (await this.command('sample', id)).sample as NfSample;
  }

  /**
   * One measured window of case `id`: started, `warmupMs` of warm-up, samples `windowMs` apart,
   * stopped. `window`: the trace port's packets from start to stop.
   */
  async measure(
    id: string,
    warmupMs: number,
    windowMs: number,
  ): Promise<{ a: NfSample; b: NfSample; window: { from: number; count: number } }> {
    await this.command('start', id);
    await sleep(warmupMs);
    const a = await this.sample(id);
    await sleep(windowMs);
    const b = await this.sample(id);
    const window = (await this.command('stop', id)).window as { from: number; count: number };
    return { a, b, window };
  }

  async stop(): Promise<void> {
    await this.io.stop({ cmd: 'quit' }, 30_000);
  }

  get output(): string {
    return this.io.output;
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
    /** mbuf size (headroom included); default 256, for 60-66-byte frames */
    mbufSize?: number;
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
        `--mbuf-size=${o.mbufSize ?? 256}`,
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

  /** One measured window: forwarding `warmupMs`, then Mpps over `windowMs`, then stopped. */
  async measure(warmupMs: number, windowMs: number): Promise<number> {
    await this.startFwd();
    await sleep(warmupMs);
    const a = await this.sample();
    await sleep(windowMs);
    const b = await this.sample();
    await this.stopFwd();
    return (b.rx - a.rx) / (b.t - a.t);
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

  ofctl(cmd: string, ...rest: string[]): Promise<string> {
    return promisify(execFile)('ovs-ofctl', ['-O', 'OpenFlow14', cmd, this.mgmt, ...rest], {
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

  /**
   * One measured window of `ms` on the port: its rate from the live port counters, and the PMDs'
   * statistics over it (cleared before), with their upcalls.
   */
  async window(
    port: string,
    ms: number,
  ): Promise<{ mpps: number; upcalls: number; pmdStats: string }> {
    await this.appctl('dpif-netdev/pmd-stats-clear');
    const a = await this.sample(port);
    await sleep(ms);
    const b = await this.sample(port);
    const pmdStats = await this.appctl('dpif-netdev/pmd-stats-show');
    return { mpps: (b.rx - a.rx) / (b.t - a.t), upcalls: upcallsIn(pmdStats), pmdStats };
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

const run = (cmd: string, args: string[], input?: string): Promise<string> =>
  new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { timeout: 60_000, maxBuffer: 1 << 26 }, (e, out, err) =>
      e ? reject(new Error(`${cmd} ${args.join(' ')}: ${err || e.message}`)) : resolve(out),
    );
    if (input !== undefined) must(child.stdin, `${cmd}'s stdin`).end(input);
  });

/**
 * The Linux kernel as a peer: a network namespace that forwards IPv4 between two veths through
 * an nftables ruleset (or none), fed the same trace by dpdk-testpmd (net_pcap replay -> net_af_packet
 * on the outer veth, io forward on core 1). The kernel's work (af_packet transmit, the veth,
 * the IPv4 forward, nftables, conntrack) runs in softirq on the core that sends, so the kernel
 * and its source share one core as the other peers do. The forwarded packets go out of a second
 * veth whose peer, in the same namespace, drops them at once (they are addressed to another
 * host's MAC). Throughput is what the namespace's inner veth received per second (every one of
 * those packets went through the forward path and the ruleset); the forwarded and dropped counts
 * say what happened to them.
 */
export class KernelPeer {
  private constructor(
    private readonly tp: Testpmd,
    readonly netns: string,
    private readonly outer: string,
    private readonly inner: string,
  ) {}

  /** dst MAC of the trace's frames (trace.ts), given to the namespace's receiving veth. */
  static readonly TRACE_DST_MAC = '02:00:00:00:00:02';

  static async start(o: {
    /** a short name (at most 8 characters: interface names are derived from it) */
    name: string;
    prefix: string;
    pcap: string;
    length: number;
    burst: number;
    /** the ruleset (`nft -f` text); none: plain forwarding */
    nft?: string;
  }): Promise<KernelPeer> {
    const ns = `flnb-${o.name}`;
    const outer = `fk${o.name}o`;
    const inner = `fk${o.name}i`;
    const ip = (...a: string[]): Promise<string> => run('ip', a);
    const inNs = (...a: string[]): Promise<string> => run('ip', ['netns', 'exec', ns, ...a]);
    await KernelPeer.remove(ns, outer);
    try {
      await ip('netns', 'add', ns);
      await ip('link', 'add', outer, 'type', 'veth', 'peer', 'name', inner, 'netns', ns);
      await ip('-n', ns, 'link', 'add', 'out0', 'type', 'veth', 'peer', 'name', 'out1');
      await run('sysctl', ['-qw', `net.ipv6.conf.${outer}.disable_ipv6=1`]);
      for (const [k, v] of [
        ['net.ipv4.ip_forward', '1'],
        ['net.ipv4.conf.all.rp_filter', '0'],
        ['net.ipv4.conf.default.rp_filter', '0'],
        ['net.ipv6.conf.all.disable_ipv6', '1'],
        ['net.ipv6.conf.default.disable_ipv6', '1'],
      ] as const)
        await inNs('sysctl', '-qw', `${k}=${v}`);
      await ip('-n', ns, 'link', 'set', inner, 'address', KernelPeer.TRACE_DST_MAC);
      for (const dev of [inner, 'out0', 'out1', 'lo']) await ip('-n', ns, 'link', 'set', dev, 'up');
      await inNs('sysctl', '-qw', `net.ipv4.conf.${inner}.rp_filter=0`);
      await ip('-n', ns, 'addr', 'add', '192.168.251.1/30', 'dev', 'out0');
      await ip('-n', ns, 'addr', 'add', '192.168.250.1/30', 'dev', inner);
      // every destination leaves by out0 to a neighbour whose MAC is nobody's: out1 drops it
      await ip(
        '-n',
        ns,
        'neigh',
        'add',
        '192.168.251.2',
        'lladdr',
        '02:00:00:00:00:99',
        'dev',
        'out0',
        'nud',
        'permanent',
      );
      await ip('-n', ns, 'route', 'add', 'default', 'via', '192.168.251.2', 'dev', 'out0');
      await ip('link', 'set', outer, 'up');
      if (o.nft) await run('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], o.nft);
      const tp = Testpmd.spawn({
        eal: [
          ...['-l', '0,1', '--main-lcore', '0', '--in-memory', '--no-pci'],
          ...['--file-prefix', o.prefix],
          ...['--vdev', `net_pcap_k${o.name},rx_pcap=${o.pcap},infinite_rx=1`],
          ...['--vdev', `net_af_packet_k${o.name},iface=${outer},qdisc_bypass=1,framecnt=4096`],
        ],
        app: [
          ...['-i', '--forward-mode=io', '--nb-cores=1', '--port-topology=paired'],
          `--total-num-mbufs=${o.length + 32_768}`,
          '--mbuf-size=2176',
          `--burst=${o.burst}`,
        ],
      });
      try {
        await tp.waitFor(/testpmd> /, 120_000);
        await tp.command('set portlist 0,1', /\n/);
      } catch (e) {
        await tp.stop(true).catch(() => undefined);
        throw e;
      }
      return new KernelPeer(tp, ns, outer, inner);
    } catch (e) {
      await KernelPeer.remove(ns, outer);
      throw e;
    }
  }

  private static async remove(ns: string, outer: string): Promise<void> {
    await run('ip', ['link', 'del', outer]).catch(() => undefined);
    await run('ip', ['netns', 'del', ns]).catch(() => undefined);
  }

  async startFwd(): Promise<void> {
    await this.tp.command('start', /packet forwarding/);
  }

  async stopFwd(): Promise<void> {
    await this.tp.command('stop', /Done\./);
  }

  /** Live counters of the namespace's veths: received (rx), forwarded, dropped on the way in. */
  async sample(): Promise<{ t: number; rx: number; forwarded: number; rxDropped: number }> {
    const t0 = performance.now();
    const links = JSON.parse(await run('ip', ['-n', this.netns, '-s', '-j', 'link', 'show'])) as {
      ifname: string;
      stats64: { rx: { packets: number; dropped: number }; tx: { packets: number } };
    }[];
    const t = ((t0 + performance.now()) / 2) * 1000;
    const dev = (n: string): (typeof links)[number] => {
      const l = links.find((x) => x.ifname === n);
      if (!l) throw new Error(`netns ${this.netns}: no ${n}`);
      return l;
    };
    const inner = dev(this.inner);
    return {
      t,
      rx: inner.stats64.rx.packets,
      rxDropped: inner.stats64.rx.dropped,
      forwarded: dev('out0').stats64.tx.packets,
    };
  }

  /** The ruleset with its counters (`nft -j list ruleset`). */
  async ruleset(): Promise<unknown> {
    return JSON.parse(
      await run('ip', ['netns', 'exec', this.netns, 'nft', '-j', 'list', 'ruleset']),
    );
  }

  async stop(): Promise<void> {
    await this.tp.stop(true).catch(() => undefined);
    await KernelPeer.remove(this.netns, this.outer);
  }
}
