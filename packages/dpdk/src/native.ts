/** The compiled addon (build/Release/flowline_dpdk.node) and its raw, untyped-by-C++ surface. */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import type { EspSaCounters } from './esp';
import type { ConntrackCounters } from './pipeline';

export interface NativeLink {
  up: boolean;
  speedMbps: number;
  fullDuplex: boolean;
  autoneg: boolean;
}
export interface NativePortInfo {
  name: string;
  driver: string;
  maxRxQueues: number;
  maxTxQueues: number;
  minMtu: number;
  maxMtu: number;
  socket: number;
  linkStateInterrupts: boolean;
}
export interface NativeStats {
  rxPackets: number;
  txPackets: number;
  rxBytes: number;
  txBytes: number;
  rxMissed: number;
  rxErrors: number;
  txErrors: number;
  rxNoMbuf: number;
}
export interface NativePoolInfo {
  size: number;
  available: number;
  inUse: number;
  cacheSize: number;
  dataRoom: number;
  socket: number;
  viewable: boolean;
}
export interface NativeParsed {
  reason: string;
  l3: 'ipv4' | 'ipv6' | 'arp' | 'none';
  ethertype: number;
  proto: number;
  ttl: number;
  fragment: boolean;
  laterFragment: boolean;
  hasL4: boolean;
  sport: number;
  dport: number;
  icmpType: number;
  l3Offset: number;
  l4Offset: number;
}

export interface NativeAddon {
  ealInit(args: string[]): string;
  ealCleanup(): void;
  ealState(): 'uninitialized' | 'running' | 'cleaned-up' | 'failed';
  lcores(): { main: number; workers: number[] };
  poolCreate(name: string, size: number, cache: number, dataRoom: number, socket: number): number;
  poolFree(pool: number): void;
  poolInfo(pool: number): NativePoolInfo;
  poolView(pool: number): ArrayBuffer | null;
  portProbe(devargs: string): number;
  portFind(name: string): number | null;
  portInfo(port: number): NativePortInfo;
  portConfigure(
    port: number,
    conf: {
      pool: number;
      rxQueues: number;
      txQueues: number;
      rxDescriptors: number;
      txDescriptors: number;
      mtu?: number;
      rxInterrupts: boolean;
    },
  ): void;
  portStart(port: number): void;
  portStop(port: number): void;
  portClose(port: number): void;
  portStatsReset(port: number): void;
  portLink(port: number): NativeLink;
  /** A server=1 virtio-user socket path whose handshake DPDK reported broken (then forgotten). */
  vhostTakeBroken(path: string): boolean;
  /** Shuts down this process's connections accepted on the unix socket path; how many. */
  vhostKick(path: string): number;
  portMac(port: number, set?: Buffer): Buffer;
  portMtu(port: number, set?: number): number;
  portPromisc(port: number, set?: boolean): boolean;
  portStats(port: number): NativeStats;
  portXstats(port: number): Record<string, number>;
  batchCreate(capacity: number, meta: Int32Array, pool: number): number;
  batchFree(batch: number): void;
  batchRelease(batch: number): void;
  batchCount(batch: number): number;
  rxBurst(port: number, queue: number, batch: number): number;
  txBurst(port: number, queue: number, batch: number): number;
  txCopy(port: number, queue: number, pool: number, packets: Buffer[]): number;
  rxCopy(port: number, queue: number, max: number): Buffer[];
  pipelineCreate(conf: unknown): number;
  pipelineAddStage(pipeline: number, type: string, conf: unknown): number;
  /** Built on libuv's thread pool, swapped in on the JS thread; retired table's hits. */
  pipelineSetAcl(pipeline: number, stage: number, rules: Buffer, sync?: false): Promise<number[]>;
  /** Built on the JS thread (small initial tables only). */
  pipelineSetAcl(pipeline: number, stage: number, rules: Buffer, sync: true): number[];
  /** null when every worker of the pipeline can send on the port, else why not. */
  pipelineCheckPort(pipeline: number, port: number): string | null;
  /** Advances a manualClock pipeline's clock; returns its now in TSC cycles (0: not manual). */
  pipelineAdvanceClock(pipeline: number, ns: number): number;
  pipelineSetLpm(pipeline: number, stage: number, table: unknown): void;
  pipelineStart(pipeline: number): void;
  pipelineStop(pipeline: number): void;
  pipelineFree(pipeline: number): void;
  pipelineCounters(pipeline: number): Float64Array;
  rxIntrArm(port: number, queue: number, on: boolean): number;
  rxIntrWait(port: number, queue: number, timeoutMs: number): Promise<boolean>;
  /** [waits in epoll, waits a queue's kick ended, workers waiting on rx interrupts] */
  pipelineRxWaits(pipeline: number): Float64Array;
  /** Busy TSC cycles: busy, rx, parse, tx, sampled packets, then one per stage. */
  pipelineCycles(pipeline: number): Float64Array;
  pipelineLpmHits(pipeline: number, stage: number): Float64Array;
  tscHz(): number;
  heapBytes(): number;
  lcoreRoundTrip(lcore: number, rounds: number): number;
  pipelineAclHits(pipeline: number, stage: number): number[];
  pipelineCtCounters(pipeline: number, stage: number): ConntrackCounters;
  pipelineCtFlush(pipeline: number, stage: number): void;
  pipelinePunt(pipeline: number, batch: number): number;
  pipelineInject(pipeline: number, batch: number, port: number): number;
  parsePacket(packet: Buffer): NativeParsed;
  /** direction: 1 outbound, 0 inbound; returns the stage index. */
  pipelineAddEsp(
    pipeline: number,
    direction: number,
    opts: { spd: boolean; inPorts: number[] },
  ): number;
  espAddSa(pipeline: number, stage: number, sa: Record<string, unknown>): void;
  espDelSa(pipeline: number, stage: number, spi: number): EspSaCounters;
  espSaCounters(pipeline: number, stage: number, spi: number): EspSaCounters;
  espSpis(pipeline: number, stage: number): number[];
  /** Returns the old policies' final counts (then: no policy matched). */
  espSetPolicies(
    pipeline: number,
    stage: number,
    selectors: Buffer,
    actions: Buffer,
    policies: number,
  ): Float64Array;
  espPolicyHits(pipeline: number, stage: number): Float64Array;
  constants: {
    reasons: string[];
    metaInts: number;
    stageCounters: number;
    maxBurst: number;
    maxAclRules: number;
  };
}

let addon: NativeAddon | undefined;

/** The addon's file: build/Release, or FLOWLINE_DPDK_ADDON when set. */
export function addonFile(): string {
  return (
    process.env.FLOWLINE_DPDK_ADDON ??
    path.resolve(__dirname, '..', 'build', 'Release', 'flowline_dpdk.node')
  );
}

/**
 * Loads the addon once; a missing build says how to make it. FLOWLINE_DPDK_ADDON names another
 * build of it (the AddressSanitizer build of test/integration/sanitizers.test.ts).
 */
export function native(): NativeAddon {
  if (addon) return addon;
  const file = addonFile();
  if (!existsSync(file))
    throw new Error(
      `the native addon ${file} is not built: run "npm run build -w packages/dpdk" ` +
        '(needs libdpdk-dev and pkg-config; tools/setup/setup.sh installs them)',
    );
  addon = createRequire(__filename)(file) as NativeAddon;
  return addon;
}
