/*
 * Flowline traffic generator and sink: one poller on one worker lcore sends configured flows
 * (rate-paced from the TSC, optional packet count) and counts what arrives on its rx queues per
 * flow: packets, bytes, loss and reordering by sequence number, duplicates, and a latency
 * histogram from the TSC stamped into each packet. No DPDK header leaks through this API.
 *
 * Every generated frame carries a 16-byte tag right after its UDP/TCP header, little-endian:
 *   u8 magic (FL_GEN_MAGIC), u8 run, u16 flow, u32 sequence (low 32 bits), u64 TSC at send.
 * Frame sizes count the 4-byte FCS (RFC 2544): a "64-byte" frame is 60 bytes in the mbuf.
 */
#ifndef FL_GEN_H
#define FL_GEN_H

#include <stdint.h>

#include "fl.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FL_GEN_MAGIC 0xF1
#define FL_GEN_TAG_LEN 16
#define FL_GEN_MAX_FLOWS 1024
#define FL_GEN_MAX_RX 16
#define FL_GEN_HIST 1024 /* latency buckets: exact below 16 cycles, then 16 per power of two */
#define FL_GEN_FCS 4
#define FL_GEN_IMIX_PERIOD 12 /* 64/594/1518 in 7:4:1, interleaved over 12 packets */

struct fl_gen_flow {
  uint16_t port;  /* tx port */
  uint8_t family; /* 4 or 6 */
  uint8_t proto;  /* 17 (UDP) or 6 (TCP) */
  uint8_t src_mac[6], dst_mac[6];
  uint8_t src_ip[16], dst_ip[16]; /* IPv4 in the first 4 bytes */
  uint16_t sport, dport;
  uint16_t size;     /* frame size with FCS; 0: IMIX */
  uint8_t ttl;       /* TTL / hop limit */
  uint8_t tcp_flags; /* TCP flags byte (e.g. 0x10 ACK) */
  double rate_pps;   /* 0: as fast as the tx queue takes them */
  uint64_t count;    /* packets to send; 0: until stopped */
};

struct fl_gen_conf {
  unsigned lcore;
  uint16_t tx_queue, burst;
  uint8_t run;            /* written into every tag */
  uint8_t accept_any_run; /* sink: count tags of any run (another process generates) */
  void *pool;             /* mbufs for generated frames */
  struct fl_backoff backoff;
  uint32_t n_flows;
  const struct fl_gen_flow *flows;
  uint16_t n_rx;
  struct fl_input rx[FL_GEN_MAX_RX];
};

/* Per-flow counters, FL_GEN_FLOW_CTRS values per flow. */
enum {
  FL_GEN_TX_PACKETS = 0,
  FL_GEN_TX_BYTES,
  FL_GEN_RX_PACKETS, /* every tagged arrival, duplicates included */
  FL_GEN_RX_BYTES,
  FL_GEN_RX_EXPECTED, /* highest sequence seen + 1 */
  FL_GEN_RX_DUPLICATES,
  FL_GEN_RX_REORDERED, /* arrived after a higher sequence number */
  FL_GEN_RX_LATE,      /* older than the duplicate window: counted as reordered, not checked */
  FL_GEN_LAT_MIN,      /* cycles; UINT64_MAX while nothing arrived */
  FL_GEN_LAT_MAX,
  FL_GEN_LAT_SUM,
  FL_GEN_TX_DONE,     /* 1 when a count-limited flow has sent all its packets */
  FL_GEN_TX_END_TSC,  /* TSC when it had (0 before): its rate is over the time it was sending */
  FL_GEN_RX_LAST_TSC, /* TSC of the flow's last tagged arrival (0 before) */
  FL_GEN_FLOW_CTRS
};

/* Whole-generator counters. */
enum {
  FL_GEN_G_RX_UNTAGGED = 0, /* packets without a tag (not UDP/TCP, no magic, too short) */
  FL_GEN_G_RX_FOREIGN,      /* tagged by another run, or a flow id out of range */
  FL_GEN_G_TX_BACKPRESSURE, /* bursts the tx queue took only partly */
  FL_GEN_G_ALLOC_FAILED,    /* bursts skipped for want of mbufs */
  FL_GEN_G_SLEEPS,
  FL_GEN_G_RUNNING,
  FL_GEN_G_TX_DONE, /* every flow has a count and has sent it */
  FL_GEN_G_TSC_HZ,
  FL_GEN_G_START_TSC, /* TSC when the poller started (0 before) */
  FL_GEN_G_STOP_TSC,  /* TSC when it stopped (0 while it runs) */
  FL_GEN_G_NOW_TSC,   /* TSC when these counters were read */
  FL_GEN_G_CTRS
};

struct fl_gen;
/* Validates the configuration and builds every frame template; does not start. */
struct fl_gen *fl_gen_create(const struct fl_gen_conf *conf, char *err);
int fl_gen_start(struct fl_gen *g, char *err);
int fl_gen_stop(struct fl_gen *g); /* waits for the lcore; counters stay readable */
void fl_gen_free(struct fl_gen *g);
/* Fills out[FL_GEN_FLOW_CTRS * n] for flows 0..n-1 (n <= FL_GEN_MAX_FLOWS) and returns the
 * number of flows with anything to report: max(configured flows, highest flow id seen + 1). */
uint32_t fl_gen_flow_counters(struct fl_gen *g, uint64_t *out, uint32_t n);
/* Latency histogram of one flow (FL_GEN_HIST values, cycles bucketed by fl_gen_bucket_low). */
int fl_gen_histogram(struct fl_gen *g, uint32_t flow, uint64_t *out);
void fl_gen_global(struct fl_gen *g, uint64_t *out);
/* Smallest frame (with FCS) a flow of this family and protocol can carry its tag in. */
uint32_t fl_gen_min_frame(int family, int proto);

#ifdef __cplusplus
}
#endif
#endif
