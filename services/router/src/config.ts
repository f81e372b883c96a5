import { z } from 'zod';

/** One router interface: a pod port by name, its addresses (CIDR) and optionally its MAC. */
export const interfaceConfigSchema = z.object({
  /** The pod port (the <ifname>.json name, or a config port's name). */
  name: z.string().min(1),
  /** "10.0.1.1/24", "2001:db8:1::1/64"; default: the IPs the CNI plugin wrote for the port. */
  addresses: z.array(z.string()).optional(),
  /** Default: the port's own MAC (virtio-user takes it from the CNI plugin's file). */
  mac: z.string().optional(),
  /**
   * The largest IP packet sent out of it, bytes (default 1500): smaller on links that carry
   * encapsulation, such as a chain across nodes (Geneve takes 58 bytes). At least 1280 when it
   * has an IPv6 address. Longer packets get ICMP fragmentation needed / packet too big, or are
   * fragmented (IPv4 without DF).
   */
  mtu: z
    .int({ error: 'must be a whole number of bytes' })
    .min(68, { error: 'must be at least 68 bytes (the smallest IPv4 MTU, RFC 791)' })
    .max(65_535, { error: 'must be at most 65535 bytes (the largest IPv4 packet)' })
    .optional(),
});

export const routeConfigSchema = z.object({
  prefix: z.string(),
  nextHop: z.string().optional(),
  interface: z.string().optional(),
});

/** The router's own section of the config file (`nf:`). */
export const routerConfigSchema = z.object({
  /** Default: every pod port, addressed from the CNI plugin's IPs. */
  interfaces: z.array(interfaceConfigSchema).optional(),
  routes: z.array(routeConfigSchema).default([]),
  /** Configured neighbours (static ARP/ND) for next hops that answer neither, e.g. a sink. */
  staticNeighbors: z
    .array(z.object({ address: z.string(), mac: z.string(), interface: z.string() }))
    .default([]),
  /** How often punted packets are taken from the pipeline while punts come in, ms. */
  puntPollMs: z.int().min(1).max(1000).default(2),
  /**
   * After an empty poll the interval doubles up to this (ms), so an idle router does not wake
   * 500 times a second; a punt brings it back to puntPollMs.
   */
  puntPollIdleMaxMs: z.int().min(1).max(1000).default(32),
  /** How often neighbours are aged and probed, ms. */
  neighborTickMs: z.int().min(10).max(60_000).default(500),
  /** Neighbour timers (RFC 4861 names); defaults from the control plane. */
  neighbors: z
    .object({
      reachableMs: z.int().min(100),
      retransMs: z.int().min(10),
      maxProbes: z.int().min(1).max(10),
      staleProbeMs: z.int().min(100),
      failedHoldMs: z.int().min(100),
    })
    .partial()
    .default({}),
  /** mbufs in the pod's pool. */
  mempoolSize: z.int().min(1023).default(8191),
  /**
   * ICMP errors the router sends (time exceeded, fragmentation needed, packet too big), as a
   * token bucket: at most perSecond, in bursts of at most burst (Linux's defaults, 1000 and 50).
   */
  icmpErrors: z
    .object({ perSecond: z.int().min(1).max(1_000_000), burst: z.int().min(1).max(10_000) })
    .strict()
    .default({ perSecond: 1000, burst: 50 }),
});

export type RouterConfig = z.infer<typeof routerConfigSchema>;
export type InterfaceConfig = z.infer<typeof interfaceConfigSchema>;
