/*
 * The traffic generator and sink (see fl_gen.h). Frames are prebuilt per flow and size with a
 * zero payload, so each packet costs one copy, a 16-byte tag and a checksum fix-up from a
 * precomputed partial sum. The sink finds the tag behind the L4 header and keeps per-flow
 * state: the highest sequence seen, a bitmap window of recent sequences (duplicates versus
 * late arrivals) and a log-linear latency histogram in TSC cycles.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <unistd.h>

#include <rte_byteorder.h>
#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_memcpy.h>
#include <rte_pause.h>

#include "fl_gen.h"

#define fail fl_fail
#define WIN 2048 /* sequences remembered per flow for duplicate detection */
#define MAX_FRAME 1518
#define N_SIZES 3

static const uint16_t imix_sizes[N_SIZES] = {64, 594, 1518};
/* Index into imix_sizes for seq % 12: seven 64s, four 594s, one 1518, interleaved. */
static const uint8_t imix_pattern[FL_GEN_IMIX_PERIOD] = {0, 1, 0, 0, 1, 0, 2, 0, 1, 0, 0, 1};

struct tmpl {
  uint16_t len;      /* bytes in the mbuf (frame size minus FCS) */
  uint16_t tag_off;  /* where the tag goes */
  uint16_t csum_off; /* L4 checksum field */
  uint8_t udp;       /* a zero UDP checksum is sent as 0xffff */
  uint32_t partial;  /* pseudo header + L4 header, unfolded */
  uint8_t data[MAX_FRAME];
};

struct tx_flow {
  struct fl_gen_flow c;
  double per_cycle; /* packets per TSC cycle; 0: unpaced */
  uint64_t sent, bytes;
  uint8_t done;
  uint8_t n_tmpl;
  struct tmpl *t[N_SIZES];
};

struct rx_flow {
  uint64_t c[FL_GEN_FLOW_CTRS];
  uint8_t seen;
  uint64_t win[WIN / 64];
  uint64_t hist[FL_GEN_HIST];
};

struct fl_gen {
  struct fl_gen_conf c;
  struct tx_flow *tx;
  struct rx_flow *rx; /* FL_GEN_MAX_FLOWS */
  uint32_t max_flow_seen;
  uint64_t g[FL_GEN_G_CTRS];
  volatile int stop;
  int running;
  uint64_t start_tsc;
};

uint32_t fl_gen_min_frame(int family, int proto) {
  uint32_t l = 14 + (family == 6 ? 40 : 20) + (proto == 6 ? 20 : 8) + FL_GEN_TAG_LEN + FL_GEN_FCS;
  return l < 64 ? 64 : l;
}

static inline unsigned bucket(uint64_t v) {
  if (v < 16) return (unsigned)v;
  unsigned e = 63 - (unsigned)__builtin_clzll(v);
  unsigned b = (e - 3) * 16 + (unsigned)((v >> (e - 4)) & 15);
  return b < FL_GEN_HIST ? b : FL_GEN_HIST - 1;
}

static uint32_t fold(uint32_t s) {
  s = (s >> 16) + (s & 0xffff);
  s = (s >> 16) + (s & 0xffff);
  return s;
}

/* Builds the frame of `size` bytes (with FCS) for a flow: headers, zero payload. */
static struct tmpl *build(const struct fl_gen_flow *f, uint32_t size) {
  struct tmpl *t = calloc(1, sizeof(*t));
  if (!t) return NULL;
  uint32_t min = fl_gen_min_frame(f->family, f->proto);
  if (size < min) size = min;
  t->len = (uint16_t)(size - FL_GEN_FCS);
  uint8_t *p = t->data;
  memcpy(p, f->dst_mac, 6);
  memcpy(p + 6, f->src_mac, 6);
  uint16_t l3 = 14, l4;
  if (f->family == 4) {
    struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(p + l3);
    *(uint16_t *)(p + 12) = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
    ip->version_ihl = 0x45;
    ip->total_length = rte_cpu_to_be_16((uint16_t)(t->len - l3));
    ip->fragment_offset = rte_cpu_to_be_16(RTE_IPV4_HDR_DF_FLAG);
    ip->time_to_live = f->ttl;
    ip->next_proto_id = f->proto;
    memcpy(&ip->src_addr, f->src_ip, 4);
    memcpy(&ip->dst_addr, f->dst_ip, 4);
    ip->hdr_checksum = rte_ipv4_cksum(ip);
    l4 = l3 + 20;
  } else {
    struct rte_ipv6_hdr *ip = (struct rte_ipv6_hdr *)(p + l3);
    *(uint16_t *)(p + 12) = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV6);
    ip->vtc_flow = rte_cpu_to_be_32(0x60000000);
    ip->payload_len = rte_cpu_to_be_16((uint16_t)(t->len - l3 - 40));
    ip->proto = f->proto;
    ip->hop_limits = f->ttl;
    memcpy(ip->src_addr, f->src_ip, 16);
    memcpy(ip->dst_addr, f->dst_ip, 16);
    l4 = l3 + 40;
  }
  uint16_t hl;
  if (f->proto == 17) {
    struct rte_udp_hdr *u = (struct rte_udp_hdr *)(p + l4);
    u->src_port = rte_cpu_to_be_16(f->sport);
    u->dst_port = rte_cpu_to_be_16(f->dport);
    u->dgram_len = rte_cpu_to_be_16((uint16_t)(t->len - l4));
    hl = 8;
    t->udp = 1;
    t->csum_off = l4 + 6;
  } else {
    struct rte_tcp_hdr *h = (struct rte_tcp_hdr *)(p + l4);
    h->src_port = rte_cpu_to_be_16(f->sport);
    h->dst_port = rte_cpu_to_be_16(f->dport);
    h->data_off = 5 << 4;
    h->tcp_flags = f->tcp_flags;
    h->rx_win = rte_cpu_to_be_16(65535);
    hl = 20;
    t->csum_off = l4 + 16;
  }
  t->tag_off = l4 + hl;
  uint32_t ph = f->family == 4 ? rte_ipv4_phdr_cksum((struct rte_ipv4_hdr *)(p + l3), 0)
                               : rte_ipv6_phdr_cksum((struct rte_ipv6_hdr *)(p + l3), 0);
  t->partial = ph + rte_raw_cksum(p + l4, hl);
  return t;
}

static void free_tx(struct fl_gen *g) {
  if (!g->tx) return;
  for (uint32_t i = 0; i < g->c.n_flows; i++)
    for (int k = 0; k < N_SIZES; k++) free(g->tx[i].t[k]);
  free(g->tx);
  g->tx = NULL;
}

struct fl_gen *fl_gen_create(const struct fl_gen_conf *c, char *err) {
  if (c->n_flows == 0 && c->n_rx == 0) {
    fail(err, -EINVAL, "a generator needs flows to send or rx queues to count");
    return NULL;
  }
  if (c->n_flows > FL_GEN_MAX_FLOWS) {
    fail(err, -EINVAL, "%u flows: at most %u", c->n_flows, FL_GEN_MAX_FLOWS);
    return NULL;
  }
  if (c->n_rx > FL_GEN_MAX_RX) {
    fail(err, -EINVAL, "%u rx queues: at most %u", c->n_rx, FL_GEN_MAX_RX);
    return NULL;
  }
  if (c->burst == 0 || c->burst > FL_MAX_BURST) {
    fail(err, -EINVAL, "burst %u must be in 1..%u", c->burst, FL_MAX_BURST);
    return NULL;
  }
  if (c->n_flows && !c->pool) {
    fail(err, -EINVAL, "a generator with flows needs a mempool");
    return NULL;
  }
  uint32_t room = c->pool ? rte_pktmbuf_data_room_size(c->pool) - RTE_PKTMBUF_HEADROOM : 0;
  for (uint32_t i = 0; i < c->n_flows; i++) {
    const struct fl_gen_flow *f = &c->flows[i];
    if (!rte_eth_dev_is_valid_port(f->port)) {
      fail(err, -ENODEV, "flow %u: port %u is not attached", i, f->port);
      return NULL;
    }
    if ((f->family != 4 && f->family != 6) || (f->proto != 6 && f->proto != 17)) {
      fail(err, -EINVAL, "flow %u: family %u / protocol %u (want 4|6, 6|17)", i, f->family,
           f->proto);
      return NULL;
    }
    uint32_t min = fl_gen_min_frame(f->family, f->proto);
    if (f->size &&
        (f->size < min || f->size > MAX_FRAME || (uint32_t)f->size - FL_GEN_FCS > room)) {
      fail(err, -EINVAL, "flow %u: frame size %u outside %u..%u (mbuf room %u)", i, f->size, min,
           MAX_FRAME, room);
      return NULL;
    }
    if (!f->size && MAX_FRAME - FL_GEN_FCS > room) {
      fail(err, -EINVAL, "flow %u: IMIX needs %u-byte mbufs, the pool has %u", i,
           MAX_FRAME - FL_GEN_FCS, room);
      return NULL;
    }
    if (f->rate_pps < 0) {
      fail(err, -EINVAL, "flow %u: negative rate", i);
      return NULL;
    }
    struct rte_eth_dev_info di;
    int rc = rte_eth_dev_info_get(f->port, &di);
    if (rc < 0) {
      fail(err, rc, "flow %u: rte_eth_dev_info_get(port %u)", i, f->port);
      return NULL;
    }
    /* rte_eth_tx_burst does not check the queue: one never set up is NULL to the lcore */
    if (c->tx_queue >= di.nb_tx_queues) {
      fail(err, -EINVAL, "txQueue: port %u of flow %u has %u tx queue%s, not queue %u", f->port, i,
           di.nb_tx_queues, di.nb_tx_queues == 1 ? "" : "s", c->tx_queue);
      return NULL;
    }
  }
  for (uint16_t i = 0; i < c->n_rx; i++) {
    if (!rte_eth_dev_is_valid_port(c->rx[i].port)) {
      fail(err, -ENODEV, "rx %u: port %u is not attached", i, c->rx[i].port);
      return NULL;
    }
    struct rte_eth_dev_info di;
    int rc = rte_eth_dev_info_get(c->rx[i].port, &di);
    if (rc < 0) {
      fail(err, rc, "rx %u: rte_eth_dev_info_get(port %u)", i, c->rx[i].port);
      return NULL;
    }
    if (c->rx[i].queue >= di.nb_rx_queues) {
      fail(err, -EINVAL, "rx[%u].queue: port %u has %u rx queue%s, not queue %u", i, c->rx[i].port,
           di.nb_rx_queues, di.nb_rx_queues == 1 ? "" : "s", c->rx[i].queue);
      return NULL;
    }
  }
  struct fl_gen *g = calloc(1, sizeof(*g));
  if (!g) {
    fail(err, -ENOMEM, "generator");
    return NULL;
  }
  g->c = *c;
  g->c.flows = NULL;
  g->rx = calloc(FL_GEN_MAX_FLOWS, sizeof(*g->rx));
  g->tx = calloc(c->n_flows ? c->n_flows : 1, sizeof(*g->tx));
  if (!g->rx || !g->tx) goto nomem;
  for (uint32_t i = 0; i < FL_GEN_MAX_FLOWS; i++) g->rx[i].c[FL_GEN_LAT_MIN] = UINT64_MAX;
  double hz = (double)rte_get_tsc_hz();
  for (uint32_t i = 0; i < c->n_flows; i++) {
    struct tx_flow *t = &g->tx[i];
    t->c = c->flows[i];
    t->per_cycle = t->c.rate_pps > 0 ? t->c.rate_pps / hz : 0;
    t->n_tmpl = t->c.size ? 1 : N_SIZES;
    for (int k = 0; k < t->n_tmpl; k++) {
      t->t[k] = build(&t->c, t->c.size ? t->c.size : imix_sizes[k]);
      if (!t->t[k]) goto nomem;
    }
  }
  g->g[FL_GEN_G_TSC_HZ] = rte_get_tsc_hz();
  return g;
nomem:
  fail(err, -ENOMEM, "generator state");
  free_tx(g);
  free(g->rx);
  free(g);
  return NULL;
}

/* Sends what is due for one flow; returns packets sent. */
static uint32_t tx_flow(struct fl_gen *g, struct tx_flow *f, uint64_t now) {
  uint64_t due =
      f->per_cycle > 0 ? (uint64_t)((double)(now - g->start_tsc) * f->per_cycle) + 1 : UINT64_MAX;
  if (f->c.count && due > f->c.count) due = f->c.count;
  if (f->sent >= due) return 0;
  uint32_t n = (uint32_t)RTE_MIN(due - f->sent, (uint64_t)g->c.burst);
  struct rte_mbuf *ms[FL_MAX_BURST];
  uint16_t sizes[FL_MAX_BURST];
  if (rte_pktmbuf_alloc_bulk(g->c.pool, ms, n) < 0) {
    FL_ADD(g->g[FL_GEN_G_ALLOC_FAILED], 1);
    return 0;
  }
  uint16_t flow_id = (uint16_t)(f - g->tx);
  for (uint32_t i = 0; i < n; i++) {
    uint64_t seq = f->sent + i;
    const struct tmpl *t = f->t[f->n_tmpl == 1 ? 0 : imix_pattern[seq % FL_GEN_IMIX_PERIOD]];
    struct rte_mbuf *m = ms[i];
    uint8_t *d = rte_pktmbuf_mtod(m, uint8_t *);
    rte_memcpy(d, t->data, t->len);
    m->data_len = m->pkt_len = t->len;
    uint8_t *tag = d + t->tag_off;
    tag[0] = FL_GEN_MAGIC;
    tag[1] = g->c.run;
    uint32_t seq32 = (uint32_t)seq;
    memcpy(tag + 2, &flow_id, 2);
    memcpy(tag + 4, &seq32, 4);
    memcpy(tag + 8, &now, 8);
    uint16_t ck = (uint16_t)~fold(t->partial + rte_raw_cksum(tag, FL_GEN_TAG_LEN));
    if (t->udp && ck == 0) ck = 0xffff;
    memcpy(d + t->csum_off, &ck, 2);
    sizes[i] = (uint16_t)(t->len + FL_GEN_FCS);
  }
  uint16_t sent = rte_eth_tx_burst(f->c.port, g->c.tx_queue, ms, (uint16_t)n);
  if (sent < n) {
    /* Not lost: the unsent sequence numbers are built again next time. */
    rte_pktmbuf_free_bulk(ms + sent, n - sent);
    FL_ADD(g->g[FL_GEN_G_TX_BACKPRESSURE], 1);
  }
  uint64_t bytes = 0;
  for (uint16_t i = 0; i < sent; i++) bytes += sizes[i];
  f->sent += sent;
  f->bytes += bytes;
  if (f->c.count && f->sent >= f->c.count) f->done = 1;
  return sent;
}

static inline void win_clear(struct rx_flow *r, uint64_t from, uint64_t to) {
  if (to - from >= WIN) {
    memset(r->win, 0, sizeof(r->win));
    return;
  }
  for (uint64_t s = from; s < to; s++) r->win[(s % WIN) / 64] &= ~(1ULL << (s % 64));
}

static inline int win_test_set(struct rx_flow *r, uint64_t s) {
  uint64_t *w = &r->win[(s % WIN) / 64], bit = 1ULL << (s % 64);
  int was = (*w & bit) != 0;
  *w |= bit;
  return was;
}

static void rx_one(struct fl_gen *g, struct rte_mbuf *m, uint64_t now) {
  /* A chained frame is read whole: parsed from its first 128 bytes, the IP length fields would
   * say it was cut short, and every such arrival counted as untagged (a loss that was none). */
  static __thread uint8_t whole[65536];
  uint32_t len = m->pkt_len;
  const uint8_t *d = m->nb_segs == 1 ? rte_pktmbuf_mtod(m, const uint8_t *)
                                     : rte_pktmbuf_read(m, 0, RTE_MIN(len, sizeof(whole)), whole);
  uint32_t avail = m->nb_segs == 1 ? m->data_len : RTE_MIN(len, (uint32_t)sizeof(whole));
  struct fl_parsed h;
  if (!d || fl_parse(d, avail, &h) != FL_R_OK || !(h.flags & FL_F_L4) ||
      (h.proto != 6 && h.proto != 17) || (h.flags & FL_F_FRAG)) {
    FL_ADD(g->g[FL_GEN_G_RX_UNTAGGED], 1);
    return;
  }
  uint32_t off = h.l4_off + (h.proto == 17 ? 8 : (uint32_t)(d[h.l4_off + 12] >> 4) * 4);
  if (off + FL_GEN_TAG_LEN > avail || d[off] != FL_GEN_MAGIC) {
    FL_ADD(g->g[FL_GEN_G_RX_UNTAGGED], 1);
    return;
  }
  uint16_t flow;
  uint32_t seq32;
  uint64_t tsc;
  memcpy(&flow, d + off + 2, 2);
  memcpy(&seq32, d + off + 4, 4);
  memcpy(&tsc, d + off + 8, 8);
  if (flow >= FL_GEN_MAX_FLOWS || (!g->c.accept_any_run && d[off + 1] != g->c.run)) {
    FL_ADD(g->g[FL_GEN_G_RX_FOREIGN], 1);
    return;
  }
  struct rx_flow *r = &g->rx[flow];
  uint64_t *c = r->c;
  if (flow + 1u > g->max_flow_seen) FL_ST(g->max_flow_seen, flow + 1u);
  FL_ADD(c[FL_GEN_RX_PACKETS], 1);
  FL_ADD(c[FL_GEN_RX_BYTES], len + FL_GEN_FCS);
  FL_ST(c[FL_GEN_RX_LAST_TSC], now);
  /* The 32-bit sequence extends to 64 bits relative to the highest one seen. */
  uint64_t next = c[FL_GEN_RX_EXPECTED];
  int64_t s;
  if (!r->seen) {
    s = seq32;
  } else {
    uint64_t hi = next - 1;
    s = (int64_t)hi + (int32_t)(seq32 - (uint32_t)hi);
  }
  if (!r->seen || (s >= 0 && (uint64_t)s >= next)) {
    win_clear(r, r->seen ? next : 0, (uint64_t)s + 1);
    win_test_set(r, (uint64_t)s);
    FL_ST(c[FL_GEN_RX_EXPECTED], (uint64_t)s + 1);
    r->seen = 1;
  } else if (s < 0 || next - (uint64_t)s > WIN) {
    FL_ADD(c[FL_GEN_RX_LATE], 1);
    FL_ADD(c[FL_GEN_RX_REORDERED], 1);
  } else if (win_test_set(r, (uint64_t)s)) {
    FL_ADD(c[FL_GEN_RX_DUPLICATES], 1);
    return; /* a duplicate's latency says nothing new */
  } else {
    FL_ADD(c[FL_GEN_RX_REORDERED], 1);
  }
  uint64_t lat = now > tsc ? now - tsc : 0;
  if (lat < c[FL_GEN_LAT_MIN]) FL_ST(c[FL_GEN_LAT_MIN], lat);
  if (lat > c[FL_GEN_LAT_MAX]) FL_ST(c[FL_GEN_LAT_MAX], lat);
  FL_ADD(c[FL_GEN_LAT_SUM], lat);
  FL_ADD(r->hist[bucket(lat)], 1);
}

static int gen_main(void *arg) {
  struct fl_gen *g = arg;
  const struct fl_backoff *bo = &g->c.backoff;
  struct rte_mbuf *ms[FL_MAX_BURST];
  uint32_t idle = 0, sleep_us = bo->sleep_min_us ? bo->sleep_min_us : 1;
  double hz = (double)rte_get_tsc_hz();
  g->start_tsc = rte_rdtsc();
  FL_ST(g->g[FL_GEN_G_STOP_TSC], 0);
  FL_ST(g->g[FL_GEN_G_START_TSC], g->start_tsc);
  while (!__atomic_load_n(&g->stop, __ATOMIC_RELAXED)) {
    uint32_t progress = 0;
    uint64_t now = rte_rdtsc();
    for (uint16_t i = 0; i < g->c.n_rx; i++) {
      uint16_t n = rte_eth_rx_burst(g->c.rx[i].port, g->c.rx[i].queue, ms, g->c.burst);
      if (!n) continue;
      progress += n;
      /* Read after the burst: a frame stamped by another process since `now` is not "early". */
      uint64_t t = rte_rdtsc();
      for (uint16_t k = 0; k < n; k++) rx_one(g, ms[k], t);
      rte_pktmbuf_free_bulk(ms, n);
    }
    uint64_t next_due = UINT64_MAX;
    uint32_t all_done = g->c.n_flows > 0; /* cleared below by any flow still sending */
    for (uint32_t i = 0; i < g->c.n_flows; i++) {
      struct tx_flow *f = &g->tx[i];
      if (f->done) continue;
      uint32_t n = tx_flow(g, f, now);
      if (n) {
        progress += n;
        uint64_t *c = g->rx[i].c; /* tx counters live beside the flow's rx counters */
        FL_ST(c[FL_GEN_TX_PACKETS], f->sent);
        FL_ST(c[FL_GEN_TX_BYTES], f->bytes);
        if (f->done) {
          FL_ST(c[FL_GEN_TX_END_TSC], rte_rdtsc());
          FL_ST(c[FL_GEN_TX_DONE], 1);
        }
      }
      if (!f->done) {
        all_done = 0;
        /* Unpaced flows set no deadline: when their queue is full they back off too. */
        if (f->per_cycle > 0) {
          uint64_t t = g->start_tsc + (uint64_t)((double)f->sent / f->per_cycle);
          if (t < next_due) next_due = t;
        }
      }
    }
    if (all_done && !g->g[FL_GEN_G_TX_DONE]) FL_ST(g->g[FL_GEN_G_TX_DONE], 1);
    if (progress) {
      idle = 0;
      sleep_us = bo->sleep_min_us ? bo->sleep_min_us : 1;
      if (bo->share_core && progress < g->c.burst) sched_yield(); /* caught up: see fl.h */
    } else if (++idle <= bo->spin_polls) {
      if (bo->share_core)
        sched_yield();
      else
        rte_pause();
    } else {
      uint64_t us = sleep_us;
      /* Wake for the next paced packet; one already due but not sent (a full queue, a peer
       * gone) waits out the back-off like an idle rx queue. */
      uint64_t t = rte_rdtsc();
      if (next_due != UINT64_MAX && next_due > t) {
        uint64_t wait = (uint64_t)((double)(next_due - t) * 1e6 / hz);
        if (wait < us) us = wait;
      }
      if (us) {
        usleep((useconds_t)us);
        FL_ADD(g->g[FL_GEN_G_SLEEPS], 1);
      } else {
        rte_pause();
      }
      sleep_us = sleep_us * 2 > bo->sleep_max_us ? bo->sleep_max_us : sleep_us * 2;
      if (sleep_us == 0) sleep_us = 1;
    }
  }
  FL_ST(g->g[FL_GEN_G_STOP_TSC], rte_rdtsc());
  return 0;
}

int fl_gen_start(struct fl_gen *g, char *err) {
  if (g->running) return fail(err, -EALREADY, "generator already running");
  g->stop = 0;
  int rc = fl_worker_launch(g->c.lcore, gen_main, g, err);
  if (rc < 0) return rc;
  g->running = 1;
  FL_ST(g->g[FL_GEN_G_RUNNING], 1);
  return 0;
}

int fl_gen_stop(struct fl_gen *g) {
  if (!g->running) return 0;
  __atomic_store_n(&g->stop, 1, __ATOMIC_RELEASE);
  rte_eal_wait_lcore(g->c.lcore);
  g->running = 0;
  FL_ST(g->g[FL_GEN_G_RUNNING], 0);
  return 0;
}

void fl_gen_free(struct fl_gen *g) {
  if (!g) return;
  fl_gen_stop(g);
  free_tx(g);
  free(g->rx);
  free(g);
}

uint32_t fl_gen_flow_counters(struct fl_gen *g, uint64_t *out, uint32_t n) {
  if (n > FL_GEN_MAX_FLOWS) n = FL_GEN_MAX_FLOWS;
  for (uint32_t i = 0; i < n; i++)
    for (int k = 0; k < FL_GEN_FLOW_CTRS; k++) out[i * FL_GEN_FLOW_CTRS + k] = FL_LD(g->rx[i].c[k]);
  uint32_t seen = FL_LD(g->max_flow_seen);
  return seen > g->c.n_flows ? seen : g->c.n_flows;
}

int fl_gen_histogram(struct fl_gen *g, uint32_t flow, uint64_t *out) {
  if (flow >= FL_GEN_MAX_FLOWS) return -EINVAL;
  for (int k = 0; k < FL_GEN_HIST; k++) out[k] = FL_LD(g->rx[flow].hist[k]);
  return FL_GEN_HIST;
}

void fl_gen_global(struct fl_gen *g, uint64_t *out) {
  for (int k = 0; k < FL_GEN_G_CTRS; k++) out[k] = FL_LD(g->g[k]);
  out[FL_GEN_G_NOW_TSC] = rte_rdtsc();
}
