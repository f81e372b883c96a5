/*
 * The native pipeline engine. Each worker lcore polls its inputs in bursts, runs every packet of
 * the burst through the stages in order (run to completion), then sends, punts or frees each
 * packet according to its fate. Tables (ACL, LPM) are read through a pointer protected by QSBR
 * RCU: the control thread builds a new table aside, publishes it, waits until every worker has
 * reported a quiescent state after the swap, and only then frees the old one.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <rte_acl.h>
#include <rte_byteorder.h>
#include <rte_common.h>
#include <rte_cycles.h>
#include <rte_epoll.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_lpm.h>
#include <rte_lpm6.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_pause.h>
#include <rte_prefetch.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>

#include "fl.h"
#include "fl_stage.h"

#define MAX_STAGES 16
#define MAX_WORKERS 16
#define MAX_L2_PORTS 64
#define PREFETCH_AHEAD 4

struct fl_acl_table {
  struct rte_acl_ctx *ctx4, *ctx6;
  uint32_t n, stride, n_workers;
  uint8_t *actions;
  uint64_t *hits; /* [worker][stride]; index n counts the default action */
};

struct worker {
  struct fl_pipeline *p;
  unsigned idx;
  int wake_fd;                    /* eventfd: stop and inject wake a worker waiting in epoll */
  int intr_ok;                    /* every input's rx interrupt is in this thread's epoll */
  struct rte_epoll_event wake_ev; /* stays registered while the worker runs */
  uint64_t waits, wakeups_rx;     /* epoll waits, and those a queue's kick ended */
  struct fl_worker_conf c;
  struct stage_ctr ctr[MAX_STAGES + 1];
  /* Busy TSC cycles (polls that returned packets only): FL_CYC_* then one per stage. */
  uint64_t cyc[FL_CYC_FIXED + MAX_STAGES];
  uint64_t bursts;
};

struct fl_pipeline {
  struct fl_pipeline_conf c;
  struct stage stages[MAX_STAGES];
  int n_stages, needs_parse, running;
  int plain_l2; /* the only stage is l2fwd: bursts whose output rewrites nothing skip per-packet
                   work */
  volatile int stop;
  struct worker *w[MAX_WORKERS];
  struct rte_rcu_qsbr *rcu;
  struct rte_ring *punt, *inject;
  uint64_t swaps;
  unsigned id;
  int socket;
  uint64_t now; /* manual clock (c.manual_clock), TSC cycles; written by the control thread */
};

static unsigned name_seq;

#define fail fl_fail

/* The conntrack stage's now: the TSC, or the manual clock tests advance. */
static inline uint64_t pipeline_now(const struct fl_pipeline *p) {
  return p->c.manual_clock ? __atomic_load_n(&p->now, __ATOMIC_ACQUIRE) : rte_rdtsc();
}

/* ---- stages ---- */
static void run_l2fwd(struct stage *s, struct stage_ctr *c, struct pkt *pk, uint16_t n,
                      uint16_t in_port) {
  const struct fl_l2fwd_conf *l2 = &s->c.l2;
  uint16_t out = in_port < MAX_L2_PORTS ? l2->out_port[in_port] : FL_NO_PORT;
  int rewrite = out != FL_NO_PORT && (l2->set_dst[out] || l2->set_src[out]);
  uint64_t seen = 0, fwd = 0;
  for (uint16_t i = 0; i < n; i++) {
    struct pkt *k = &pk[i];
    if (k->fate != FATE_FWD) continue;
    seen++;
    if (out == FL_NO_PORT) {
      set_fate(c, k, FL_ACT_DROP, FL_R_NO_OUTPUT);
      continue;
    }
    if (rewrite && k->m->data_len >= 12) {
      uint8_t *eth = rte_pktmbuf_mtod(k->m, uint8_t *);
      if (l2->set_dst[out]) memcpy(eth, l2->dst_mac[out], 6);
      if (l2->set_src[out]) memcpy(eth + 6, l2->src_mac[out], 6);
    }
    k->out = out;
    fwd++;
  }
  c->in += seen;
  c->out += fwd;
}

struct acl4_key {
  uint8_t proto, pad[3];
  uint32_t src, dst;
  uint16_t sport, dport;
};
struct acl6_key {
  uint8_t proto, pad[3];
  uint8_t src[16], dst[16];
  uint16_t sport, dport;
};

static void run_acl(struct worker *w, struct stage *s, struct stage_ctr *c, struct pkt *pk,
                    uint16_t n) {
  const struct fl_acl_table *t =
      __atomic_load_n((struct fl_acl_table **)&s->table, __ATOMIC_ACQUIRE);
  uint64_t *hits = t->hits + (size_t)w->idx * t->stride;
  struct fl_ct *ct = s > w->p->stages && s[-1].type == FL_STAGE_CONNTRACK ? s[-1].table : NULL;
  uint64_t now = ct ? pipeline_now(w->p) : 0;
  if (ct) fl_ct_acl_table(ct, t);
  struct acl4_key k4[FL_MAX_BURST];
  struct acl6_key k6[FL_MAX_BURST];
  const uint8_t *d4[FL_MAX_BURST], *d6[FL_MAX_BURST];
  uint16_t i4[FL_MAX_BURST], i6[FL_MAX_BURST];
  uint32_t r4[FL_MAX_BURST], r6[FL_MAX_BURST];
  uint16_t n4 = 0, n6 = 0;
  for (uint16_t i = 0; i < n; i++) {
    struct pkt *k = &pk[i];
    if (k->fate != FATE_FWD || k->tracked) continue;
    c->in++;
    const struct fl_parsed *h = &k->h;
    if (h->reason) {
      set_fate(c, k, FL_ACT_DROP, h->reason);
      continue;
    }
    if (h->l3 != FL_L3_IPV4 && h->l3 != FL_L3_IPV6) {
      set_fate(c, k, s->c.acl.non_ip_action, h->l3 == FL_L3_ARP ? FL_R_ARP : FL_R_NOT_IP);
      continue;
    }
    if (h->flags & FL_F_FRAG_LATER) {
      set_fate(c, k, s->c.acl.fragment_action, FL_R_FRAGMENT);
      if (k->fate != FATE_FWD) continue;
    }
    if (h->l3 == FL_L3_IPV4) {
      struct acl4_key *key = &k4[n4];
      key->proto = h->proto;
      memcpy(&key->src, h->src, 4);
      memcpy(&key->dst, h->dst, 4);
      key->sport = h->sport;
      key->dport = h->dport;
      d4[n4] = (const uint8_t *)key;
      i4[n4++] = i;
    } else {
      struct acl6_key *key = &k6[n6];
      key->proto = h->proto;
      memcpy(key->src, h->src, 16);
      memcpy(key->dst, h->dst, 16);
      key->sport = h->sport;
      key->dport = h->dport;
      d6[n6] = (const uint8_t *)key;
      i6[n6++] = i;
    }
  }
  if (n4) {
    if (t->ctx4)
      rte_acl_classify(t->ctx4, d4, r4, n4, 1);
    else
      memset(r4, 0, sizeof(uint32_t) * n4);
  }
  if (n6) {
    if (t->ctx6)
      rte_acl_classify(t->ctx6, d6, r6, n6, 1);
    else
      memset(r6, 0, sizeof(uint32_t) * n6);
  }
  for (int fam = 0; fam < 2; fam++) {
    uint16_t cnt = fam ? n6 : n4;
    const uint32_t *res = fam ? r6 : r4;
    const uint16_t *idx = fam ? i6 : i4;
    for (uint16_t j = 0; j < cnt; j++) {
      uint32_t r = res[j];
      int act;
      if (r) {
        hits[r - 1]++;
        act = t->actions[r - 1];
      } else {
        hits[t->n]++;
        act = s->c.acl.default_action;
      }
      struct pkt *k = &pk[idx[j]];
      set_fate(c, k, act, FL_R_ACL_DENY);
      if (ct && act == FL_ACT_PASS &&
          fl_ct_commit(ct, &k->h, rte_pktmbuf_mtod(k->m, const uint8_t *), k->m->data_len, now) < 0)
        set_fate(c, k, FL_ACT_DROP, FL_R_CT_FULL);
    }
  }
  for (uint16_t i = 0; i < n; i++)
    if (pk[i].fate == FATE_FWD && !pk[i].tracked) c->out++;
}

/* Looks every packet up in the flow table; the ACL stage that follows commits new flows. */
static void run_conntrack(struct worker *w, struct stage *s, struct stage_ctr *c, struct pkt *pk,
                          uint16_t n) {
  struct fl_ct *ct = s->table;
  uint64_t now = pipeline_now(w->p);
  /* A flush requested after an ACL swap happens before any lookup of this burst. */
  fl_ct_acl_table(ct, __atomic_load_n(&s[1].table, __ATOMIC_ACQUIRE));
  struct fl_ct_lookup q[FL_MAX_BURST];
  uint16_t idx[FL_MAX_BURST], m = 0;
  for (uint16_t i = 0; i < n; i++) {
    struct pkt *k = &pk[i];
    if (k->fate != FATE_FWD) continue;
    q[m].h = &k->h;
    q[m].pkt = rte_pktmbuf_mtod(k->m, const uint8_t *);
    q[m].len = k->m->data_len;
    idx[m++] = i;
  }
  fl_ct_track_bulk(ct, q, m, now);
  for (uint16_t j = 0; j < m; j++) pk[idx[j]].tracked = q[j].tracked;
  c->in += m;
  c->out += m;
  fl_ct_sweep(ct, now, 32);
}

/* The sensitivity control: burns a known number of TSC cycles per packet, so a benchmark can
 * check that it sees a known cost. */
static void run_burn(struct stage *s, struct stage_ctr *c, struct pkt *pk, uint16_t n) {
  uint32_t k = 0;
  for (uint16_t i = 0; i < n; i++) k += pk[i].fate == FATE_FWD;
  uint64_t end = rte_rdtsc() + (uint64_t)k * s->c.burn.cycles;
  while (rte_rdtsc() < end) rte_pause();
  c->in += k;
  c->out += k;
}

/* ---- worker ---- */
static void send_to(struct stage_ctr *pc, uint16_t port, uint16_t q, struct rte_mbuf **ms,
                    uint16_t n) {
  uint16_t sent = rte_eth_tx_burst(port, q, ms, n);
  pc->out += sent;
  if (sent < n) {
    pc->drop[FL_R_TX_FULL] += n - sent;
    rte_pktmbuf_free_bulk(ms + sent, n - sent);
  }
}

static void finish(struct worker *w, struct pkt *pk, uint16_t n, struct rte_mbuf **ms) {
  struct fl_pipeline *p = w->p;
  struct stage_ctr *pc = &w->ctr[0];
  /* The common case: every packet of the burst goes out of one port, in order. */
  uint16_t first = pk[0].out;
  int uniform = first != FL_NO_PORT;
  for (uint16_t i = 0; i < n && uniform; i++)
    uniform = pk[i].fate == FATE_FWD && pk[i].out == first;
  if (uniform) {
    send_to(pc, first, w->c.tx_queue, ms, n);
    return;
  }
  uint16_t ports[8], counts[8], np = 0;
  struct rte_mbuf *tx[8][FL_MAX_BURST];
  struct rte_mbuf *punt[FL_MAX_BURST], *drop[FL_MAX_BURST];
  uint16_t npunt = 0, ndrop = 0;
  for (uint16_t i = 0; i < n; i++) {
    struct pkt *k = &pk[i];
    if (k->fate == FATE_FWD && k->out == FL_NO_PORT) {
      k->fate = FATE_DROP;
      pc->drop[FL_R_NO_OUTPUT]++;
    }
    if (k->fate == FATE_DROP) {
      drop[ndrop++] = k->m;
    } else if (k->fate == FATE_PUNT) {
      k->m->hash.usr = k->reason;
      punt[npunt++] = k->m;
    } else {
      uint16_t j = 0;
      while (j < np && ports[j] != k->out) j++;
      if (j == np) {
        if (np == 8) { /* too many distinct outputs in one burst: flush the first */
          send_to(pc, ports[0], w->c.tx_queue, tx[0], counts[0]);
          counts[0] = 0;
          ports[0] = k->out;
          j = 0;
        } else {
          ports[np] = k->out;
          counts[np++] = 0;
        }
      }
      tx[j][counts[j]++] = k->m;
    }
  }
  for (uint16_t j = 0; j < np; j++)
    if (counts[j]) send_to(pc, ports[j], w->c.tx_queue, tx[j], counts[j]);
  if (npunt) {
    unsigned q = rte_ring_enqueue_burst(p->punt, (void **)punt, npunt, NULL);
    for (unsigned i = 0; i < npunt; i++) {
      if (i < q)
        pc->punt[punt[i]->hash.usr]++;
      else
        pc->drop[FL_R_PUNT_FULL]++;
    }
    if (q < npunt) rte_pktmbuf_free_bulk(punt + q, npunt - q);
  }
  if (ndrop) rte_pktmbuf_free_bulk(drop, ndrop);
}

/* t: the TSC after the rx burst when this burst is one of the sampled ones (FL_CYC_SAMPLE), whose
 * parts are timed; 0 otherwise. */
static void process(struct worker *w, uint16_t in_port, struct rte_mbuf **ms, uint16_t n,
                    uint64_t t) {
  struct fl_pipeline *p = w->p;
  w->ctr[0].in += n;
  if (p->plain_l2) {
    /* A plain forward (one l2fwd stage, no parsing, no rewrite on this output): the burst goes
     * out as it came in, nothing per packet. */
    const struct fl_l2fwd_conf *l2 = &p->stages[0].c.l2;
    uint16_t out = in_port < MAX_L2_PORTS ? l2->out_port[in_port] : FL_NO_PORT;
    if (out != FL_NO_PORT && !l2->set_dst[out] && !l2->set_src[out]) {
      w->ctr[1].in += n;
      w->ctr[1].out += n;
      uint64_t t1 = t ? rte_rdtsc() : 0;
      if (t) w->cyc[FL_CYC_FIXED] += t1 - t;
      send_to(&w->ctr[0], out, w->c.tx_queue, ms, n);
      if (t) w->cyc[FL_CYC_TX] += rte_rdtsc() - t1;
      return;
    }
  }
  struct pkt pk[FL_MAX_BURST];
  /* The headers were just written by another core (the vhost peer's copy, or the NIC): fetch
   * them a few packets ahead of the parser so that its reads do not stall one by one. */
  if (p->needs_parse)
    for (uint16_t i = 0; i < n && i < PREFETCH_AHEAD; i++)
      rte_prefetch0(rte_pktmbuf_mtod(ms[i], void *));
  for (uint16_t i = 0; i < n; i++) {
    if (p->needs_parse && i + PREFETCH_AHEAD < n)
      rte_prefetch0(rte_pktmbuf_mtod(ms[i + PREFETCH_AHEAD], void *));
    pk[i].m = ms[i];
    pk[i].out = FL_NO_PORT;
    pk[i].fate = FATE_FWD;
    pk[i].reason = 0;
    pk[i].tracked = 0;
    ms[i]->port = in_port;
    if (p->needs_parse)
      fl_parse(rte_pktmbuf_mtod(ms[i], const uint8_t *), ms[i]->data_len, &pk[i].h);
  }
  uint64_t t1;
  if (t) {
    t1 = rte_rdtsc();
    w->cyc[FL_CYC_PARSE] += t1 - t;
    t = t1;
  }
  for (int s = 0; s < p->n_stages; s++) {
    struct stage *st = &p->stages[s];
    struct stage_ctr *c = &w->ctr[s + 1];
    switch (st->type) {
    case FL_STAGE_L2FWD:
      run_l2fwd(st, c, pk, n, in_port);
      break;
    case FL_STAGE_ACL:
      run_acl(w, st, c, pk, n);
      break;
    case FL_STAGE_LPM:
      fl_lpm_run(st, c, pk, n, w->idx);
      break;
    case FL_STAGE_CONNTRACK:
      run_conntrack(w, st, c, pk, n);
      break;
    case FL_STAGE_BURN:
      run_burn(st, c, pk, n);
      break;
    }
    if (t) {
      t1 = rte_rdtsc();
      w->cyc[FL_CYC_FIXED + s] += t1 - t;
      t = t1;
    }
  }
  finish(w, pk, n, ms);
  if (t) w->cyc[FL_CYC_TX] += rte_rdtsc() - t;
}

static void drain_inject(struct worker *w) {
  struct rte_mbuf *ms[FL_MAX_BURST];
  unsigned n = rte_ring_dequeue_burst(w->p->inject, (void **)ms, w->p->c.burst, NULL);
  for (unsigned i = 0; i < n;) {
    unsigned j = i + 1;
    while (j < n && ms[j]->port == ms[i]->port) j++;
    send_to(&w->ctr[0], ms[i]->port, w->c.tx_queue, ms + i, (uint16_t)(j - i));
    i = j;
  }
}

/* Events one epoll wait takes: every input (at most 32) and the wake eventfd. */
#define FL_WAIT_EVENTS 33

/* One poll of every input (and worker 0's inject ring); returns what it found. */
static inline uint32_t poll_inputs(struct worker *w, struct rte_mbuf **ms) {
  struct fl_pipeline *p = w->p;
  uint32_t total = 0;
  for (uint16_t i = 0; i < w->c.n_inputs; i++) {
    const struct fl_input *in = &w->c.inputs[i];
    uint64_t t0 = rte_rdtsc();
    uint16_t n = rte_eth_rx_burst(in->port, in->queue, ms, p->c.burst);
    if (n) {
      uint64_t t1 = 0;
      /* every burst's busy cycles are counted; its parts only in sampled bursts, so that the
       * timing itself (a few rdtsc per burst) costs little */
      if ((w->bursts++ & (FL_CYC_SAMPLE - 1)) == 0) {
        t1 = rte_rdtsc();
        w->cyc[FL_CYC_RX] += t1 - t0;
        w->cyc[FL_CYC_SAMPLED] += n;
      }
      total += n;
      process(w, in->port, ms, n, t1);
      w->cyc[FL_CYC_BUSY] += rte_rdtsc() - t0;
    }
  }
  if (w->idx == 0 && !rte_ring_empty(p->inject)) {
    drain_inject(w);
    total++;
  }
  return total;
}

/* Puts every input's rx interrupt and the wake eventfd in this thread's epoll; on any refusal
 * (a driver without rx interrupts) undoes it and returns 0: the timer back-off then. */
static int rx_intr_setup(struct worker *w) {
  uint16_t i;
  for (i = 0; i < w->c.n_inputs; i++) {
    const struct fl_input *in = &w->c.inputs[i];
    if (rte_eth_dev_rx_intr_ctl_q(in->port, in->queue, RTE_EPOLL_PER_THREAD, RTE_INTR_EVENT_ADD,
                                  NULL) < 0)
      break;
  }
  if (i == w->c.n_inputs) {
    memset(&w->wake_ev, 0, sizeof(w->wake_ev));
    w->wake_ev.epdata.event = EPOLLIN;
    w->wake_ev.epdata.data = w;
    if (rte_epoll_ctl(RTE_EPOLL_PER_THREAD, EPOLL_CTL_ADD, w->wake_fd, &w->wake_ev) == 0) return 1;
  }
  while (i-- > 0)
    rte_eth_dev_rx_intr_ctl_q(w->c.inputs[i].port, w->c.inputs[i].queue, RTE_EPOLL_PER_THREAD,
                              RTE_INTR_EVENT_DEL, NULL);
  return 0;
}

static void rx_intr_teardown(struct worker *w) {
  for (uint16_t i = 0; i < w->c.n_inputs; i++)
    rte_eth_dev_rx_intr_ctl_q(w->c.inputs[i].port, w->c.inputs[i].queue, RTE_EPOLL_PER_THREAD,
                              RTE_INTR_EVENT_DEL, NULL);
  rte_epoll_ctl(RTE_EPOLL_PER_THREAD, EPOLL_CTL_DEL, w->wake_fd, &w->wake_ev);
}

static void rx_intr_set(struct worker *w, int on) {
  for (uint16_t i = 0; i < w->c.n_inputs; i++) {
    const struct fl_input *in = &w->c.inputs[i];
    if (on)
      rte_eth_dev_rx_intr_enable(in->port, in->queue);
    else
      rte_eth_dev_rx_intr_disable(in->port, in->queue);
  }
}

/* Idle: arm the rx interrupts, poll once more (a burst that landed before arming raised no
 * kick), and if still nothing, sleep in epoll until a queue's kick, a wake (stop, inject) or
 * the timeout. Returns what the extra poll found. */
static uint32_t rx_intr_wait(struct worker *w, struct rte_mbuf **ms) {
  struct fl_pipeline *p = w->p;
  rx_intr_set(w, 1);
  uint32_t got = poll_inputs(w, ms);
  if (!got && !__atomic_load_n(&p->stop, __ATOMIC_RELAXED)) {
    struct rte_epoll_event ev[FL_WAIT_EVENTS];
    w->waits++; /* counted when it starts: a test sees a worker that is asleep now */
    rte_rcu_qsbr_thread_offline(p->rcu, w->idx);
    int n = rte_epoll_wait(RTE_EPOLL_PER_THREAD, ev, FL_WAIT_EVENTS,
                           p->c.backoff.intr_wait_ms ? (int)p->c.backoff.intr_wait_ms : 100);
    rte_rcu_qsbr_thread_online(p->rcu, w->idx);
    int rx = 0;
    for (int k = 0; k < n; k++) {
      if (ev[k].fd == w->wake_fd) {
        eventfd_t v;
        (void)eventfd_read(w->wake_fd, &v);
      } else {
        rx = 1; /* the queue's eventfd was read by EAL's callback */
      }
    }
    w->wakeups_rx += (uint64_t)rx;
  }
  rx_intr_set(w, 0);
  return got;
}

static int worker_main(void *arg) {
  struct worker *w = arg;
  struct fl_pipeline *p = w->p;
  const struct fl_backoff *bo = &p->c.backoff;
  struct rte_mbuf *ms[FL_MAX_BURST];
  uint32_t idle = 0, sleep_us = bo->sleep_min_us;
  /* Linux stretches every sleep by the thread's timer slack (50 us by default): with it, a
   * 1 us back-off sleep would take 50 us and let the rx ring overflow under bursty traffic. */
  prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
  w->intr_ok = bo->rx_mode == FL_RX_ADAPTIVE && rx_intr_setup(w);
  rte_rcu_qsbr_thread_online(p->rcu, w->idx);
  while (!__atomic_load_n(&p->stop, __ATOMIC_RELAXED)) {
    uint32_t total = poll_inputs(w, ms);
    rte_rcu_qsbr_quiescent(p->rcu, w->idx);
    if (total) {
      idle = 0;
      sleep_us = bo->sleep_min_us;
    } else if (bo->rx_mode == FL_RX_POLL || ++idle <= bo->spin_polls) {
      rte_pause();
    } else if (w->intr_ok) {
      if (rx_intr_wait(w, ms)) idle = 0;
    } else {
      /* Offline while asleep: a table swap does not wait for a sleeping worker. */
      rte_rcu_qsbr_thread_offline(p->rcu, w->idx);
      usleep(sleep_us);
      rte_rcu_qsbr_thread_online(p->rcu, w->idx);
      sleep_us = sleep_us * 2 > bo->sleep_max_us ? bo->sleep_max_us : sleep_us * 2;
      if (sleep_us == 0) sleep_us = 1;
    }
  }
  rte_rcu_qsbr_thread_offline(p->rcu, w->idx);
  if (w->intr_ok) rx_intr_teardown(w);
  return 0;
}

/* ---- tables ---- */
RTE_ACL_RULE_DEF(acl6_rule, 11);

static void acl4_defs(struct rte_acl_config *cfg) {
  memset(cfg, 0, sizeof(*cfg));
  cfg->num_categories = 1;
  cfg->num_fields = 5;
  struct rte_acl_field_def d[5] = {
      {RTE_ACL_FIELD_TYPE_BITMASK, 1, 0, 0, offsetof(struct acl4_key, proto)},
      {RTE_ACL_FIELD_TYPE_MASK, 4, 1, 1, offsetof(struct acl4_key, src)},
      {RTE_ACL_FIELD_TYPE_MASK, 4, 2, 2, offsetof(struct acl4_key, dst)},
      {RTE_ACL_FIELD_TYPE_RANGE, 2, 3, 3, offsetof(struct acl4_key, sport)},
      {RTE_ACL_FIELD_TYPE_RANGE, 2, 4, 3, offsetof(struct acl4_key, dport)},
  };
  memcpy(cfg->defs, d, sizeof(d));
}

static void acl6_defs(struct rte_acl_config *cfg) {
  memset(cfg, 0, sizeof(*cfg));
  cfg->num_categories = 1;
  cfg->num_fields = 11;
  struct rte_acl_field_def *d = cfg->defs;
  d[0] = (struct rte_acl_field_def){RTE_ACL_FIELD_TYPE_BITMASK, 1, 0, 0,
                                    offsetof(struct acl6_key, proto)};
  for (int i = 0; i < 4; i++) {
    d[1 + i] =
        (struct rte_acl_field_def){RTE_ACL_FIELD_TYPE_MASK, 4, (uint8_t)(1 + i), (uint8_t)(1 + i),
                                   (uint32_t)(offsetof(struct acl6_key, src) + 4 * i)};
    d[5 + i] =
        (struct rte_acl_field_def){RTE_ACL_FIELD_TYPE_MASK, 4, (uint8_t)(5 + i), (uint8_t)(5 + i),
                                   (uint32_t)(offsetof(struct acl6_key, dst) + 4 * i)};
  }
  d[9] = (struct rte_acl_field_def){RTE_ACL_FIELD_TYPE_RANGE, 2, 9, 9,
                                    offsetof(struct acl6_key, sport)};
  d[10] = (struct rte_acl_field_def){RTE_ACL_FIELD_TYPE_RANGE, 2, 10, 9,
                                     offsetof(struct acl6_key, dport)};
}

#define be32 fl_be32

void fl_acl_table_free(struct fl_acl_table *t) {
  if (!t) return;
  rte_acl_free(t->ctx4);
  rte_acl_free(t->ctx6);
  free(t->actions);
  free(t->hits);
  free(t);
}

static struct rte_acl_ctx *acl_ctx(int socket, int fam, uint32_t max, char *err) {
  char name[RTE_ACL_NAMESIZE];
  snprintf(name, sizeof(name), "fl_acl%d_%u", fam,
           __atomic_fetch_add(&name_seq, 1, __ATOMIC_RELAXED));
  struct rte_acl_param prm = {name, socket, fam == 4 ? RTE_ACL_RULE_SZ(5) : RTE_ACL_RULE_SZ(11),
                              max};
  struct rte_acl_ctx *ctx = rte_acl_create(&prm);
  if (!ctx) fail(err, -rte_errno, "rte_acl_create(%s, %u rules)", name, max);
  return ctx;
}

/* One rule in the field layout of acl4_defs/acl6_defs: proto, src words, dst words, ports. */
static int acl_add(struct rte_acl_ctx *ctx, const struct fl_acl_rule *r, uint32_t i) {
  struct acl6_rule ar; /* large enough for both layouts */
  memset(&ar, 0, sizeof(ar));
  int words = r->family == 4 ? 1 : 4;
  ar.data.category_mask = 1;
  ar.data.priority = r->priority;
  ar.data.userdata = i + 1;
  ar.field[0].value.u8 = r->proto;
  ar.field[0].mask_range.u8 = r->proto_mask;
  for (int j = 0; j < words; j++) {
    int sl = (int)r->src_len - 32 * j, dl = (int)r->dst_len - 32 * j;
    sl = sl < 0 ? 0 : sl > 32 ? 32 : sl;
    dl = dl < 0 ? 0 : dl > 32 ? 32 : dl;
    ar.field[1 + j].value.u32 = sl ? be32(r->src + 4 * j) : 0;
    ar.field[1 + j].mask_range.u32 = (uint32_t)sl;
    ar.field[1 + words + j].value.u32 = dl ? be32(r->dst + 4 * j) : 0;
    ar.field[1 + words + j].mask_range.u32 = (uint32_t)dl;
  }
  ar.field[1 + 2 * words].value.u16 = r->sport_lo;
  ar.field[1 + 2 * words].mask_range.u16 = r->sport_hi;
  ar.field[2 + 2 * words].value.u16 = r->dport_lo;
  ar.field[2 + 2 * words].mask_range.u16 = r->dport_hi;
  return rte_acl_add_rules(ctx, (struct rte_acl_rule *)&ar, 1);
}

struct fl_acl_table *fl_acl_table_build(const struct fl_acl_build_conf *b,
                                        const struct fl_acl_rule *r, uint32_t n, char *err) {
  if (n > FL_ACL_MAX_RULES) {
    fail(err, -E2BIG, "an ACL table holds at most %u native rules, got %u", FL_ACL_MAX_RULES, n);
    return NULL;
  }
  if (b->n_workers == 0 || b->n_workers > MAX_WORKERS) {
    fail(err, -EINVAL, "ACL table for %u workers", b->n_workers);
    return NULL;
  }
  struct fl_acl_table *t = calloc(1, sizeof(*t));
  if (!t) {
    fail(err, -ENOMEM, "ACL table of %u rules", n);
    return NULL;
  }
  t->n = n;
  t->n_workers = b->n_workers;
  t->stride = (n + 1 + 7) & ~7u;
  t->actions = calloc(n ? n : 1, 1);
  size_t hits_size = sizeof(uint64_t) * t->stride * b->n_workers;
  t->hits = aligned_alloc(64, (hits_size + 63) & ~(size_t)63);
  if (!t->actions || !t->hits) {
    fail(err, -ENOMEM, "ACL table of %u rules", n);
    fl_acl_table_free(t);
    return NULL;
  }
  memset(t->hits, 0, hits_size);
  uint32_t n4 = 0, n6 = 0;
  for (uint32_t i = 0; i < n; i++) {
    if (r[i].family != 4 && r[i].family != 6) {
      fail(err, -EINVAL, "rule %u: family must be 4 or 6, got %u", i, r[i].family);
      fl_acl_table_free(t);
      return NULL;
    }
    t->actions[i] = r[i].action;
    if (r[i].family == 4)
      n4++;
    else
      n6++;
  }
  for (int fam = 4; fam <= 6; fam += 2) {
    uint32_t cnt = fam == 4 ? n4 : n6;
    if (!cnt) continue;
    struct rte_acl_ctx *ctx = acl_ctx(b->socket, fam, cnt, err);
    if (!ctx) goto bad;
    if (fam == 4)
      t->ctx4 = ctx;
    else
      t->ctx6 = ctx;
    for (uint32_t i = 0; i < n; i++) {
      if (r[i].family != fam) continue;
      int rc = acl_add(ctx, &r[i], i);
      if (rc < 0) {
        fail(err, rc, "rte_acl_add_rules(rule %u)", i);
        goto bad;
      }
    }
    struct rte_acl_config cfg;
    if (fam == 4)
      acl4_defs(&cfg);
    else
      acl6_defs(&cfg);
    /* Bounded: past max_size rte_acl_build retries with smaller tries, then fails (-ERANGE). */
    cfg.max_size = b->max_size ? b->max_size : FL_ACL_DEFAULT_MAX_SIZE;
    int rc = rte_acl_build(ctx, &cfg);
    if (rc < 0) {
      fail(err, rc, "rte_acl_build(IPv%d, %u rules, at most %" PRIu64 " MiB)", fam, cnt,
           (uint64_t)cfg.max_size >> 20);
      goto bad;
    }
  }
  return t;
bad:
  fl_acl_table_free(t);
  return NULL;
}

/* ---- pipeline ---- */
struct fl_pipeline *fl_pipeline_create(const struct fl_pipeline_conf *c, char *err) {
  if (c->n_workers == 0 || c->n_workers > MAX_WORKERS) {
    fail(err, -EINVAL, "a pipeline needs 1 to %d workers, got %u", MAX_WORKERS, c->n_workers);
    return NULL;
  }
  if (c->burst == 0 || c->burst > FL_MAX_BURST) {
    fail(err, -EINVAL, "burst must be 1..%d, got %u", FL_MAX_BURST, c->burst);
    return NULL;
  }
  struct fl_pipeline *p = calloc(1, sizeof(*p));
  if (!p) return NULL;
  p->c = *c;
  p->id = __atomic_fetch_add(&name_seq, 1, __ATOMIC_RELAXED);
  p->socket = (int)rte_socket_id();
  p->now = rte_rdtsc(); /* a manual clock starts at the TSC and only moves when advanced */
  size_t sz = rte_rcu_qsbr_get_memsize(c->n_workers);
  p->rcu = rte_zmalloc("fl_rcu", sz, RTE_CACHE_LINE_SIZE);
  if (!p->rcu || rte_rcu_qsbr_init(p->rcu, c->n_workers) != 0) {
    fail(err, -ENOMEM, "RCU variable for %u workers", c->n_workers);
    goto bad;
  }
  char name[64];
  snprintf(name, sizeof(name), "fl_punt_%u", p->id);
  p->punt = rte_ring_create(name, rte_align32pow2(c->punt_ring_size ? c->punt_ring_size : 1024),
                            (int)rte_socket_id(), RING_F_SC_DEQ);
  snprintf(name, sizeof(name), "fl_inject_%u", p->id);
  p->inject =
      rte_ring_create(name, rte_align32pow2(c->inject_ring_size ? c->inject_ring_size : 1024),
                      (int)rte_socket_id(), RING_F_SP_ENQ | RING_F_SC_DEQ);
  if (!p->punt || !p->inject) {
    fail(err, -rte_errno, "punt/inject rings");
    goto bad;
  }
  for (unsigned i = 0; i < c->n_workers; i++) {
    struct worker *w = aligned_alloc(64, (sizeof(struct worker) + 63) & ~(size_t)63);
    if (!w) {
      fail(err, -ENOMEM, "worker %u", i);
      goto bad;
    }
    memset(w, 0, sizeof(*w));
    w->p = p;
    w->idx = i;
    w->c = c->workers[i];
    w->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    p->w[i] = w;
    if (w->wake_fd < 0) {
      fail(err, -errno, "eventfd for worker %u", i);
      goto bad;
    }
    rte_rcu_qsbr_thread_register(p->rcu, i);
  }
  return p;
bad:
  fl_pipeline_free(p);
  return NULL;
}

static int add_stage(struct fl_pipeline *p, int type, char *err) {
  if (p->running) return fail(err, -EBUSY, "stages cannot be added while the pipeline runs");
  if (p->n_stages >= MAX_STAGES) return fail(err, -ENOSPC, "at most %d stages", MAX_STAGES);
  p->stages[p->n_stages].type = type;
  return p->n_stages++;
}

int fl_pipeline_add_l2fwd(struct fl_pipeline *p, const struct fl_l2fwd_conf *c, char *err) {
  for (int in = 0; in < MAX_L2_PORTS; in++) {
    if (c->out_port[in] == FL_NO_PORT) continue;
    if (c->out_port[in] >= MAX_L2_PORTS) /* run_l2fwd indexes the rewrite tables by it */
      return fail(err, -EINVAL, "l2fwd output port %u of input port %d: ports must be < %d",
                  c->out_port[in], in, MAX_L2_PORTS);
    int rc = fl_pipeline_check_out_port(p, c->out_port[in], err);
    if (rc < 0) {
      size_t k = strlen(err);
      snprintf(err + k, FL_ERR_LEN - k, " (output of input port %d)", in);
      return rc;
    }
  }
  int s = add_stage(p, FL_STAGE_L2FWD, err);
  if (s >= 0) p->stages[s].c.l2 = *c;
  return s;
}

/* Adds a stage that reads a table (and parsed headers); frees the table when it cannot. */
static int add_table_stage(struct fl_pipeline *p, int type, void *table, char *err) {
  if (!table) return -ENOMEM;
  int s = add_stage(p, type, err);
  if (s < 0) {
    if (type == FL_STAGE_ACL)
      fl_acl_table_free(table);
    else if (type == FL_STAGE_CONNTRACK)
      fl_ct_free(table);
    else if (type == FL_STAGE_LPM)
      fl_lpm_free(table);
    return s;
  }
  p->stages[s].table = table;
  p->needs_parse = 1;
  return s;
}

int fl_pipeline_add_acl(struct fl_pipeline *p, const struct fl_acl_conf *c, char *err) {
  struct fl_acl_build_conf b = {p->c.n_workers, p->socket, c->max_size};
  int s = add_table_stage(p, FL_STAGE_ACL, fl_acl_table_build(&b, NULL, 0, err), err);
  if (s >= 0) p->stages[s].c.acl = *c;
  return s;
}

int fl_pipeline_add_lpm(struct fl_pipeline *p, const struct fl_lpm_conf *c, char *err) {
  struct fl_lpm_table_in empty;
  memset(&empty, 0, sizeof(empty));
  int s = add_table_stage(p, FL_STAGE_LPM, fl_lpm_build(&empty, p->c.n_workers, 0, err), err);
  if (s >= 0) p->stages[s].c.lpm = *c;
  return s;
}

int fl_pipeline_add_conntrack(struct fl_pipeline *p, const struct fl_ct_conf *c, char *err) {
  /* The table has one writer: two workers could each see one direction of a flow. */
  if (p->c.n_workers != 1)
    return fail(err, -EINVAL, "a conntrack stage needs a pipeline with exactly one worker, not %u",
                p->c.n_workers);
  struct fl_ct *t = fl_ct_create(c, err);
  return t ? add_table_stage(p, FL_STAGE_CONNTRACK, t, err) : -EINVAL;
}

int fl_pipeline_ct_counters(struct fl_pipeline *p, int s, struct fl_ct_counters *out) {
  if (s < 0 || s >= p->n_stages || p->stages[s].type != FL_STAGE_CONNTRACK) return -EINVAL;
  fl_ct_counters(p->stages[s].table, out);
  return 0;
}

int fl_pipeline_ct_flush(struct fl_pipeline *p, int s) {
  if (s < 0 || s >= p->n_stages || p->stages[s].type != FL_STAGE_CONNTRACK) return -EINVAL;
  fl_ct_request_flush(p->stages[s].table);
  return 0;
}

/* Publishes t in stage s and returns the old table once no worker can still read it. */
static void *swap_table(struct fl_pipeline *p, int s, void *t) {
  void *old = __atomic_exchange_n(&p->stages[s].table, t, __ATOMIC_ACQ_REL);
  if (p->running) rte_rcu_qsbr_synchronize(p->rcu, RTE_QSBR_THRID_INVALID);
  p->swaps++;
  return old;
}

int fl_pipeline_acl_build_conf(struct fl_pipeline *p, int s, struct fl_acl_build_conf *out,
                               char *err) {
  if (s < 0 || s >= p->n_stages || p->stages[s].type != FL_STAGE_ACL)
    return fail(err, -EINVAL, "stage %d is not an ACL stage", s);
  out->n_workers = p->c.n_workers;
  out->socket = p->socket;
  out->max_size = p->stages[s].c.acl.max_size;
  return 0;
}

struct fl_acl_table *fl_pipeline_swap_acl(struct fl_pipeline *p, int s, struct fl_acl_table *t) {
  if (s < 0 || s >= p->n_stages || p->stages[s].type != FL_STAGE_ACL ||
      t->n_workers != p->c.n_workers)
    return NULL;
  return swap_table(p, s, t);
}

const struct fl_acl_table *fl_pipeline_acl_table(struct fl_pipeline *p, int s) {
  if (s < 0 || s >= p->n_stages || p->stages[s].type != FL_STAGE_ACL) return NULL;
  return p->stages[s].table;
}

uint32_t fl_acl_table_rules(const struct fl_acl_table *t) { return t->n; }

void fl_acl_table_hits(const struct fl_acl_table *t, uint64_t *out) {
  for (uint32_t r = 0; r <= t->n; r++) {
    uint64_t sum = 0;
    for (unsigned w = 0; w < t->n_workers; w++)
      sum += __atomic_load_n(&t->hits[(size_t)w * t->stride + r], __ATOMIC_RELAXED);
    out[r] = sum;
  }
}

int fl_pipeline_check_out_port(struct fl_pipeline *p, uint32_t port, char *err) {
  if (port >= RTE_MAX_ETHPORTS || !rte_eth_dev_is_valid_port((uint16_t)port))
    return fail(err, -ENODEV, "port %u is not an attached port", port);
  struct rte_eth_dev_info di;
  int rc = rte_eth_dev_info_get((uint16_t)port, &di);
  if (rc < 0) return fail(err, rc, "rte_eth_dev_info_get(port %u)", port);
  for (unsigned i = 0; i < p->c.n_workers; i++)
    if (p->c.workers[i].tx_queue >= di.nb_tx_queues)
      return fail(err, -EINVAL,
                  "port %u has %u tx queues; worker %u of the pipeline sends on tx queue %u", port,
                  di.nb_tx_queues, i, p->c.workers[i].tx_queue);
  return 0;
}

uint64_t fl_pipeline_advance_clock(struct fl_pipeline *p, uint64_t ns) {
  if (!p->c.manual_clock) return 0;
  /* Exact, as conntrack's timeouts (ms * hz / 1000): advancing by a timeout reaches it. */
  uint64_t cycles = (uint64_t)((unsigned __int128)ns * rte_get_tsc_hz() / 1000000000u);
  return __atomic_add_fetch(&p->now, cycles, __ATOMIC_ACQ_REL);
}

int fl_pipeline_set_lpm(struct fl_pipeline *p, int s, const struct fl_lpm_table_in *in, char *err) {
  if (s < 0 || s >= p->n_stages || p->stages[s].type != FL_STAGE_LPM)
    return fail(err, -EINVAL, "stage %d is not an LPM stage", s);
  for (uint32_t i = 0; i < in->n_nexthops; i++) {
    int rc = fl_pipeline_check_out_port(p, in->nexthops[i].port, err);
    if (rc < 0) {
      size_t k = strlen(err);
      snprintf(err + k, FL_ERR_LEN - k, " (next hop %u)", i);
      return rc;
    }
  }
  struct lpm_table *t = fl_lpm_build(in, p->c.n_workers, p->stages[s].c.lpm.count_hits, err);
  if (!t) return -EINVAL;
  fl_lpm_free(swap_table(p, s, t));
  return 0;
}

int fl_pipeline_start(struct fl_pipeline *p, char *err) {
  if (p->running) return fail(err, -EALREADY, "pipeline already running");
  for (int s = 0; s < p->n_stages; s++)
    if (p->stages[s].type == FL_STAGE_CONNTRACK &&
        (s + 1 >= p->n_stages || p->stages[s + 1].type != FL_STAGE_ACL))
      return fail(err, -EINVAL, "conntrack stage %d must be followed by an ACL stage", s);
  p->stop = 0;
  p->plain_l2 = p->n_stages == 1 && p->stages[0].type == FL_STAGE_L2FWD;
  for (unsigned i = 0; i < p->c.n_workers; i++) {
    unsigned lc = p->w[i]->c.lcore;
    if (lc == rte_get_main_lcore() || !rte_lcore_is_enabled(lc))
      return fail(err, -EINVAL, "lcore %u is not an EAL worker lcore (give it in eal lcores)", lc);
    if (rte_eal_get_lcore_state(lc) != WAIT)
      return fail(err, -EBUSY, "lcore %u is busy with another pipeline", lc);
  }
  for (unsigned i = 0; i < p->c.n_workers; i++) {
    int rc = rte_eal_remote_launch(worker_main, p->w[i], p->w[i]->c.lcore);
    if (rc < 0) {
      __atomic_store_n(&p->stop, 1, __ATOMIC_RELEASE);
      for (unsigned j = 0; j < i; j++) rte_eal_wait_lcore(p->w[j]->c.lcore);
      return fail(err, rc, "rte_eal_remote_launch(lcore %u)", p->w[i]->c.lcore);
    }
  }
  p->running = 1;
  return 0;
}

/* Wakes worker i if it waits in epoll (a no-op for one that polls or sleeps on a timer). */
static void wake_worker(struct fl_pipeline *p, unsigned i) {
  if (p->w[i] && p->w[i]->wake_fd >= 0) (void)eventfd_write(p->w[i]->wake_fd, 1);
}

int fl_pipeline_stop(struct fl_pipeline *p) {
  if (!p->running) return 0;
  __atomic_store_n(&p->stop, 1, __ATOMIC_RELEASE);
  for (unsigned i = 0; i < p->c.n_workers; i++) wake_worker(p, i);
  for (unsigned i = 0; i < p->c.n_workers; i++) rte_eal_wait_lcore(p->w[i]->c.lcore);
  p->running = 0;
  return 0;
}

static void ring_drain_free(struct rte_ring *r) {
  void *objs[64];
  unsigned n;
  while ((n = rte_ring_dequeue_burst(r, objs, 64, NULL)) > 0)
    rte_pktmbuf_free_bulk((struct rte_mbuf **)objs, n);
}

void fl_pipeline_free(struct fl_pipeline *p) {
  if (!p) return;
  fl_pipeline_stop(p);
  for (int s = 0; s < p->n_stages; s++) {
    if (p->stages[s].type == FL_STAGE_ACL) fl_acl_table_free(p->stages[s].table);
    if (p->stages[s].type == FL_STAGE_LPM) fl_lpm_free(p->stages[s].table);
    if (p->stages[s].type == FL_STAGE_CONNTRACK) fl_ct_free(p->stages[s].table);
  }
  if (p->punt) {
    ring_drain_free(p->punt);
    rte_ring_free(p->punt);
  }
  if (p->inject) {
    ring_drain_free(p->inject);
    rte_ring_free(p->inject);
  }
  for (unsigned i = 0; i < MAX_WORKERS; i++) {
    if (p->w[i] && p->w[i]->wake_fd >= 0) close(p->w[i]->wake_fd);
    free(p->w[i]);
  }
  rte_free(p->rcu);
  free(p);
}

int fl_pipeline_n_stages(struct fl_pipeline *p) { return p->n_stages; }

int fl_pipeline_add_burn(struct fl_pipeline *p, const struct fl_burn_conf *c, char *err) {
  int s = add_stage(p, FL_STAGE_BURN, err);
  if (s >= 0) p->stages[s].c.burn = *c;
  return s;
}

int fl_pipeline_cycles(struct fl_pipeline *p, uint64_t *out) {
  int n = FL_CYC_FIXED + p->n_stages;
  memset(out, 0, sizeof(uint64_t) * (size_t)n);
  for (unsigned i = 0; i < p->c.n_workers; i++)
    for (int k = 0; k < n; k++) out[k] += __atomic_load_n(&p->w[i]->cyc[k], __ATOMIC_RELAXED);
  return n;
}

uint64_t fl_pipeline_tsc_hz(void) { return rte_get_tsc_hz(); }

int64_t fl_pipeline_lpm_hits(struct fl_pipeline *p, int s, uint64_t *out, uint32_t max) {
  if (s < 0 || s >= p->n_stages || p->stages[s].type != FL_STAGE_LPM) return -EINVAL;
  return fl_lpm_table_hits(p->stages[s].table, out, max);
}
uint64_t fl_pipeline_swaps(struct fl_pipeline *p) { return p->swaps; }

void fl_pipeline_rx_waits(struct fl_pipeline *p, uint64_t out[3]) {
  out[0] = out[1] = out[2] = 0;
  for (unsigned i = 0; i < p->c.n_workers; i++) {
    out[0] += __atomic_load_n(&p->w[i]->waits, __ATOMIC_RELAXED);
    out[1] += __atomic_load_n(&p->w[i]->wakeups_rx, __ATOMIC_RELAXED);
    out[2] += (uint64_t)p->w[i]->intr_ok;
  }
}

void fl_pipeline_counters(struct fl_pipeline *p, uint64_t *out) {
  int ns = p->n_stages + 1;
  memset(out, 0, sizeof(uint64_t) * FL_STAGE_CTRS * ns);
  for (unsigned i = 0; i < p->c.n_workers; i++) {
    for (int s = 0; s < ns; s++) {
      const uint64_t *c = (const uint64_t *)&p->w[i]->ctr[s];
      for (int k = 0; k < FL_STAGE_CTRS; k++)
        out[s * FL_STAGE_CTRS + k] += __atomic_load_n(&c[k], __ATOMIC_RELAXED);
    }
  }
}

int fl_pipeline_punt_dequeue(struct fl_pipeline *p, struct fl_batch *b) {
  fl_batch_release(b);
  b->n = rte_ring_dequeue_burst(p->punt, b->mbufs, b->cap, NULL);
  fl_batch_fill_meta(b);
  return (int)b->n;
}

int fl_pipeline_inject(struct fl_pipeline *p, struct fl_batch *b, uint16_t port) {
  uint32_t k = 0;
  if (fl_pipeline_check_out_port(p, port, NULL) < 0) return -EINVAL;
  for (uint32_t i = 0; i < b->n; i++) {
    struct rte_mbuf *m = b->mbufs[i];
    int32_t len = b->meta[i * FL_META_INTS + 1];
    if (len < 0 || (uint32_t)len > (uint32_t)(m->buf_len - m->data_off) || m->nb_segs != 1) {
      rte_pktmbuf_free(m);
      continue;
    }
    m->data_len = m->pkt_len = (uint16_t)len;
    m->port = port;
    b->mbufs[k++] = m;
  }
  unsigned q = rte_ring_enqueue_burst(p->inject, b->mbufs, k, NULL);
  if (q < k) rte_pktmbuf_free_bulk((struct rte_mbuf **)b->mbufs + q, k - q);
  if (q && p->running) wake_worker(p, 0); /* worker 0 drains the inject ring */
  b->n = 0;
  return (int)q;
}
