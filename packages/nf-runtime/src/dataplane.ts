/**
 * What the runtime needs to see of an NF's dataplane. The DPDK-backed implementation reads
 * these from the native addon's counters without stopping workers; tests may pass plain data.
 */
export interface PortView {
  name: string;
  portId: number;
  driver: string;
  devargs: string;
  mac: string;
  mtu: number;
  linkUp: boolean;
  linkSpeedMbps: number;
}

export interface PortCounters {
  name: string;
  rxPackets: bigint;
  txPackets: bigint;
  rxBytes: bigint;
  txBytes: bigint;
  /** Dropped by the PMD for lack of rx descriptors. */
  rxMissed: bigint;
  rxErrors: bigint;
  txErrors: bigint;
}

export interface StageCounters {
  name: string;
  packetsIn: bigint;
  packetsOut: bigint;
  punted: bigint;
  droppedByReason: Record<string, bigint>;
}

export interface DataplaneView {
  ports(): PortView[];
  workerLcores(): number[];
  counters(): { ports: PortCounters[]; stages: StageCounters[] };
}
