/*
 * The worker loop. Each worker lcore polls its inputs in bursts, runs every packet of the burst
 * through the stages in order (run to completion: fl_stage_run, one call per stage and burst),
 * then sends, punts or frees each packet according to its fate. Idle, it backs off by its
 * rx mode: spins, then sleeps in epoll on its inputs' rx interrupts or on a doubling timer,
 * offline for RCU meanwhile so that a table swap does not wait for it.
 */
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sched.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_epoll.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_pause.h>
#include <rte_prefetch.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>

#include "fl_stage.h"
#include "fl_worker.h"

#define PREFETCH_AHEAD 4

static void send_to(struct stage_ctr *pc, uint16_t port, uint16_t q, struct rte_mbuf **ms,
                    uint16_t n) {
  uint16_t sent = rte_eth_tx_burst(port, q, ms, n);
  pc->out += sent;
  if (sent < n) {
    pc->drop[FL_R_TX_FULL] += n - sent;
    rte_pktmbuf_free_bulk(ms + sent, n - sent);
  }
}

/* Hands the punted packets (their reasons in hash.usr) to the punt ring and frees the dropped. */
static void punt_and_drop(struct worker *w, struct rte_mbuf **punt, uint16_t npunt,
                          struct rte_mbuf **drop, uint16_t ndrop) {
  struct stage_ctr *pc = &w->ctr[0];
  if (npunt) {
    unsigned q = rte_ring_enqueue_burst(w->p->punt, (void **)punt, npunt, NULL);
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

/* The output every packet headed out of the burst takes, or FL_NO_PORT when they take several,
 * none, or there is no such packet. */
static inline uint16_t one_output(const struct pkt *pk, uint16_t n) {
  uint16_t i = 0;
  while (i < n && pk[i].fate != FATE_FWD) i++;
  if (i == n) return FL_NO_PORT;
  uint16_t out = pk[i].out;
  int same = 1;
  for (; i < n; i++) same &= (pk[i].fate != FATE_FWD) | (pk[i].out == out);
  return same ? out : FL_NO_PORT;
}

/* One output (out), the rest dropped or punted (a firewall's burst): fates mix at random, so the
 * burst is sorted without a branch per packet, each packet written to every list and kept by the
 * one its fate counts. */
static void send_one_output(struct worker *w, const struct pkt *pk, uint16_t n, uint16_t out) {
  struct rte_mbuf *tx[FL_MAX_BURST], *punt[FL_MAX_BURST], *drop[FL_MAX_BURST];
  uint8_t reason[FL_MAX_BURST];
  uint16_t ntx = 0, npunt = 0, ndrop = 0;
  for (uint16_t i = 0; i < n; i++) {
    const struct pkt *k = &pk[i];
    tx[ntx] = punt[npunt] = drop[ndrop] = k->m;
    reason[npunt] = k->reason;
    ntx += k->fate == FATE_FWD;
    npunt += k->fate == FATE_PUNT;
    ndrop += k->fate == FATE_DROP;
  }
  for (uint16_t i = 0; i < npunt; i++) punt[i]->hash.usr = reason[i];
  if (ntx) send_to(&w->ctr[0], out, w->c.tx_queue, tx, ntx);
  punt_and_drop(w, punt, npunt, drop, ndrop);
}

static void finish(struct worker *w, struct pkt *pk, uint16_t n, struct rte_mbuf **ms) {
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
  uint16_t out = one_output(pk, n);
  if (out != FL_NO_PORT) {
    send_one_output(w, pk, n, out);
    return;
  }
  struct rte_mbuf *punt[FL_MAX_BURST], *drop[FL_MAX_BURST];
  uint16_t npunt = 0, ndrop = 0;
  uint16_t ports[8], counts[8], np = 0;
  struct rte_mbuf *tx[8][FL_MAX_BURST];
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
  punt_and_drop(w, punt, npunt, drop, ndrop);
}

/* A timed burst's tx part ends (t: when it began); returns the TSC. */
static inline uint64_t tx_end(struct worker *w, uint64_t t) {
  uint64_t now = rte_rdtsc();
  w->cyc[FL_CYC_TX] += now - t;
  return now;
}

/* The last stage is l2fwd and sends this burst out of port out unchanged: what it would do (every
 * packet headed out takes out, counted in its counters l2c) is done here, and a burst whose
 * packets all stay headed out is sent as it is; otherwise the burst is sorted for that one
 * output. */
static void finish_to(struct worker *w, struct pkt *pk, uint16_t n, struct rte_mbuf **ms,
                      uint16_t out, struct stage_ctr *l2c) {
  uint16_t fwd = 0;
  for (uint16_t i = 0; i < n; i++) fwd += pk[i].fate == FATE_FWD;
  l2c->in += fwd;
  l2c->out += fwd;
  if (fwd == n) {
    send_to(&w->ctr[0], out, w->c.tx_queue, ms, n);
    return;
  }
  send_one_output(w, pk, n, out);
}

/* Packet k's record for mbuf m: headed out, no output chosen yet. */
static inline void pkt_init(struct pkt *k, struct rte_mbuf *m, uint16_t in_port) {
  k->m = m;
  k->out = FL_NO_PORT;
  k->fate = FATE_FWD;
  k->reason = 0;
  k->tracked = 0;
  m->port = in_port;
}

/* Sets up the burst's packet records and parses their headers. Not inlined in process(): inlined
 * there, the compiler ran out of registers and spilled the header check's mask, and reloaded
 * needs_parse, per packet (0.4-0.9 cycles a packet of parse in same-run A/B runs). */
static __attribute__((noinline)) void parse_burst(struct pkt *pk, struct rte_mbuf **ms, uint16_t n,
                                                  uint16_t in_port) {
  /* The headers were just written by another core (the vhost peer's copy, or the NIC): fetch
   * them a few packets ahead of the parser so that its reads do not stall one by one. */
  for (uint16_t i = 0; i < n && i < PREFETCH_AHEAD; i++)
    rte_prefetch0(rte_pktmbuf_mtod(ms[i], void *));
  for (uint16_t i = 0; i < n; i++) {
    if (i + PREFETCH_AHEAD < n) rte_prefetch0(rte_pktmbuf_mtod(ms[i + PREFETCH_AHEAD], void *));
    pkt_init(&pk[i], ms[i], in_port);
    fl_parse_inline(rte_pktmbuf_mtod(ms[i], const uint8_t *), ms[i]->data_len, &pk[i].h);
    /* The stages read headers in place, from the first mbuf: a frame chained over several
     * (longer than its pool's data room: a vhost peer's jumbo frame, a NIC's scattered rx) is
     * not theirs to judge. It is not malformed either: it has a reason of its own, and l2fwd
     * still forwards it whole. */
    if (unlikely(ms[i]->nb_segs > 1)) {
      pk[i].h.reason = FL_R_SEGMENTED;
      pk[i].h.l3 = FL_L3_NONE;
      pk[i].h.flags = 0;
    }
  }
}

/* t: the TSC after the rx burst when this burst is timed (one in FL_CYC_SAMPLE), 0 otherwise.
 * Returns the TSC at the end of its tx when it is timed. */
static uint64_t process(struct worker *w, uint16_t in_port, struct rte_mbuf **ms, uint16_t n,
                        uint64_t t) {
  struct fl_pipeline *p = w->p;
  w->ctr[0].in += n;
  /* The tail l2fwd's output for this burst when it rewrites nothing there (FL_NO_PORT: the stage
   * runs). */
  uint16_t tail_out = FL_NO_PORT;
  if (p->tail_l2) {
    const struct fl_l2fwd_conf *l2 = &p->stages[p->n_stages - 1].c.l2;
    uint16_t out = fl_l2fwd_out(l2, in_port);
    if (out != FL_NO_PORT && !fl_l2fwd_rewrites(l2, out)) tail_out = out;
  }
  if (tail_out != FL_NO_PORT && p->n_stages == 1) {
    /* A plain forward (l2fwd alone, no rewrite on this output): the burst goes out as it came
     * in, nothing per packet. */
    w->ctr[1].in += n;
    w->ctr[1].out += n;
    uint64_t t1 = t ? rte_rdtsc() : 0;
    if (t) w->cyc[FL_CYC_FIXED] += t1 - t;
    send_to(&w->ctr[0], tail_out, w->c.tx_queue, ms, n);
    return t ? tx_end(w, t1) : 0;
  }
  struct pkt pk[FL_MAX_BURST];
  if (p->needs_parse) {
    parse_burst(pk, ms, n, in_port);
  } else {
    for (uint16_t i = 0; i < n; i++) pkt_init(&pk[i], ms[i], in_port);
  }
  uint64_t t1;
  if (t) {
    t1 = rte_rdtsc();
    w->cyc[FL_CYC_PARSE] += t1 - t;
    t = t1;
  }
  const struct burst b = {p->needs_clock ? pipeline_now(p) : 0, w->idx, in_port};
  const int n_run = p->n_stages - (tail_out != FL_NO_PORT);
  for (int s = 0; s < n_run; s++) {
    fl_stage_run(&p->stages[s], &w->ctr[s + 1], pk, n, &b);
    if (t) {
      t1 = rte_rdtsc();
      w->cyc[FL_CYC_FIXED + s] += t1 - t;
      t = t1;
    }
  }
  if (tail_out != FL_NO_PORT)
    finish_to(w, pk, n, ms, tail_out, &w->ctr[p->n_stages]);
  else
    finish(w, pk, n, ms);
  return t ? tx_end(w, t) : 0;
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
    /* a timed burst: from before its rx call to the end of its tx, and each part */
    uint64_t t0 = (w->bursts & (FL_CYC_SAMPLE - 1)) == 0 ? rte_rdtsc() : 0;
    uint16_t n = rte_eth_rx_burst(in->port, in->queue, ms, p->c.burst);
    if (n) {
      uint64_t t1 = 0;
      if (t0) {
        t1 = rte_rdtsc();
        w->cyc[FL_CYC_RX] += t1 - t0;
        w->cyc[FL_CYC_SAMPLED] += n;
      }
      total += n;
      uint64_t end = process(w, in->port, ms, n, t1);
      if (t0) w->cyc[FL_CYC_BUSY] += end - t0;
      w->bursts++;
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
    /* at most FL_BACKOFF_MAX_INTR_WAIT_MS (fl_pipeline_create): a positive int */
    int n =
        rte_epoll_wait(RTE_EPOLL_PER_THREAD, ev, FL_WAIT_EVENTS, (int)p->c.backoff.intr_wait_ms);
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

int fl_worker_main(void *arg) {
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
      if (bo->share_core && total < p->c.burst) {
        sched_yield();
        w->yields++;
      }
    } else if (bo->rx_mode == FL_RX_POLL || ++idle <= bo->spin_polls) {
      if (bo->share_core) {
        sched_yield();
        w->yields++;
      } else {
        rte_pause();
      }
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
