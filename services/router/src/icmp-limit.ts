/**
 * A token bucket for the ICMP errors the router sends (time exceeded, fragmentation needed,
 * packet too big): RFC 4443 §2.4(f) requires a limit on ICMPv6 errors, and an unlimited router
 * answers a flood of expiring or oversize packets with one of its own. Linux's defaults: 1,000
 * a second (net.ipv4.icmp_msgs_per_sec), bursts of 50 (icmp_msgs_burst).
 */
export interface IcmpErrorLimitConfig {
  perSecond: number;
  burst: number;
}

export const DEFAULT_ICMP_ERROR_LIMIT: IcmpErrorLimitConfig = { perSecond: 1000, burst: 50 };

export class IcmpErrorLimit {
  private tokens: number;
  private at: number | undefined;

  constructor(private readonly config: IcmpErrorLimitConfig = DEFAULT_ICMP_ERROR_LIMIT) {
    this.tokens = config.burst;
  }

  /** Whether one more error may go out at `nowMs` (takes a token if so). */
  take(nowMs: number): boolean {
    if (this.at !== undefined && nowMs > this.at)
      this.tokens = Math.min(
        this.config.burst,
        this.tokens + ((nowMs - this.at) * this.config.perSecond) / 1000,
      );
    this.at = nowMs;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
