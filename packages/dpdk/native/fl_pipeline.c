/*
 * The pipeline's lifecycle: creation, stages added and paired, start and stop of the worker
 * lcores (fl_worker.c), counters, punt and inject rings, and table swaps under QSBR RCU: the
 * control thread builds a new table aside, publishes it, waits until every worker has reported
 * a quiescent state after the swap, and only then frees the old one.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <rte_common.h>
#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>

#include "fl.h"
#include "fl_stage.h"
#include "fl_worker.h"

static unsigned pipeline_seq;

#define fail fl_fail

/* ---- pipeline ---- */
/* The punt and inject rings' largest size (a power of two, as rte_ring takes it). */
#define FL_RING_MAX (1u << 24)

/* Every worker polls rx queues its ports have, and no two workers share an rx queue or a tx
 * queue: rte_eth_rx_burst does not check the queue (a queue never set up is a NULL pointer in the
 * driver), and a queue polled or sent on from two lcores at once is a race. */
static int check_worker_queues(const struct fl_pipeline_conf *c, char *err) {
  for (unsigned i = 0; i < c->n_workers; i++) {
    const struct fl_worker_conf *w = &c->workers[i];
    if (w->n_inputs > RTE_DIM(w->inputs))
      return fail(err, -EINVAL, "worker %u has %u inputs; at most %zu", i, w->n_inputs,
                  RTE_DIM(w->inputs));
    for (unsigned k = 0; k < i; k++)
      if (c->workers[k].tx_queue == w->tx_queue)
        return fail(err, -EINVAL, "workers %u and %u both send on tx queue %u", k, i, w->tx_queue);
    for (unsigned j = 0; j < w->n_inputs; j++) {
      const struct fl_input *in = &w->inputs[j];
      if (!rte_eth_dev_is_valid_port(in->port))
        return fail(err, -ENODEV, "worker %u input %u: port %u is not an attached port", i, j,
                    in->port);
      struct rte_eth_dev_info di;
      int rc = rte_eth_dev_info_get(in->port, &di);
      if (rc < 0) return fail(err, rc, "rte_eth_dev_info_get(port %u)", in->port);
      if (in->queue >= di.nb_rx_queues)
        return fail(err, -EINVAL, "worker %u input %u: port %u has %u rx queues, not queue %u", i,
                    j, in->port, di.nb_rx_queues, in->queue);
      for (unsigned k = 0; k <= i; k++) {
        const struct fl_worker_conf *o = &c->workers[k];
        for (unsigned m = 0; m < (k == i ? j : o->n_inputs); m++)
          if (o->inputs[m].port == in->port && o->inputs[m].queue == in->queue)
            return fail(err, -EINVAL, "rx queue %u of port %u is polled twice (worker %u and %u)",
                        in->queue, in->port, k, i);
      }
    }
  }
  return 0;
}

struct fl_pipeline *fl_pipeline_create(const struct fl_pipeline_conf *c, char *err) {
  if (c->n_workers == 0 || c->n_workers > FL_MAX_WORKERS) {
    fail(err, -EINVAL, "a pipeline needs 1 to %d workers, got %u", FL_MAX_WORKERS, c->n_workers);
    return NULL;
  }
  if (c->burst == 0 || c->burst > FL_MAX_BURST) {
    fail(err, -EINVAL, "burst must be 1..%d, got %u", FL_MAX_BURST, c->burst);
    return NULL;
  }
  /* 0: the default. rte_align32pow2 of anything past 2^31 is 0 (a ring with no slots that the
   * workers would write past), and a ring of 1 holds nothing. */
  if ((c->punt_ring_size && (c->punt_ring_size < 2 || c->punt_ring_size > FL_RING_MAX)) ||
      (c->inject_ring_size && (c->inject_ring_size < 2 || c->inject_ring_size > FL_RING_MAX))) {
    fail(err, -EINVAL, "punt and inject ring sizes must be 2..%u, got %u and %u", FL_RING_MAX,
         c->punt_ring_size, c->inject_ring_size);
    return NULL;
  }
  if (check_worker_queues(c, err) < 0) return NULL;
  struct fl_pipeline *p = calloc(1, sizeof(*p));
  if (!p) return NULL;
  p->c = *c;
  /* Clamped whatever the binding passed (see FL_BACKOFF_MAX_SLEEP_US). */
  struct fl_backoff *bo = &p->c.backoff;
  bo->sleep_max_us = RTE_MIN(bo->sleep_max_us, FL_BACKOFF_MAX_SLEEP_US);
  bo->sleep_min_us = RTE_MIN(bo->sleep_min_us, bo->sleep_max_us);
  if (bo->intr_wait_ms == 0) bo->intr_wait_ms = 100;
  bo->intr_wait_ms = RTE_MIN(bo->intr_wait_ms, FL_BACKOFF_MAX_INTR_WAIT_MS);
  p->id = __atomic_fetch_add(&pipeline_seq, 1, __ATOMIC_RELAXED);
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
  for (int in = 0; in < FL_L2_MAX_PORTS; in++) {
    if (c->out_port[in] == FL_NO_PORT) continue;
    if (c->out_port[in] >= FL_L2_MAX_PORTS) /* fl_l2fwd_run indexes the rewrite tables by it */
      return fail(err, -EINVAL, "l2fwd output port %u of input port %d: ports must be < %d",
                  c->out_port[in], in, FL_L2_MAX_PORTS);
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

/* Frees a stage's table by the stage's kind (no worker may read it any more). */
static void free_table(int type, void *table) {
  switch (type) {
  case FL_STAGE_ACL:
    fl_acl_table_free(table);
    break;
  case FL_STAGE_LPM:
    fl_lpm_free(table);
    break;
  case FL_STAGE_CONNTRACK:
    fl_ct_free(table);
    break;
  case FL_STAGE_ESP:
    fl_esp_table_free_all(table);
    break;
  }
}

/* Adds a stage that reads a table (and parsed headers); frees the table when it cannot. */
static int add_table_stage(struct fl_pipeline *p, int type, void *table, char *err) {
  if (!table) return -ENOMEM;
  int s = add_stage(p, type, err);
  if (s < 0) {
    free_table(type, table);
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

int fl_pipeline_add_esp(struct fl_pipeline *p, const struct fl_esp_conf *c, char *err) {
  /* rte_ipsec's sequence numbers and replay windows are kept without atomics: one writer. */
  if (p->c.n_workers != 1)
    return fail(err, -EINVAL, "an ESP stage needs a pipeline with exactly one worker, not %u",
                p->c.n_workers);
  struct esp_table *t = fl_esp_table_new(c->dir, err);
  int s = t ? add_table_stage(p, FL_STAGE_ESP, t, err) : -EINVAL;
  if (s >= 0) p->stages[s].c.esp = *c;
  return s;
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

void *fl_pipeline_swap_stage(struct fl_pipeline *p, int s, void *t) { return swap_table(p, s, t); }

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
      fl_acl_table_workers(t) != p->c.n_workers)
    return NULL;
  return swap_table(p, s, t);
}

const struct fl_acl_table *fl_pipeline_acl_table(struct fl_pipeline *p, int s) {
  if (s < 0 || s >= p->n_stages || p->stages[s].type != FL_STAGE_ACL) return NULL;
  return p->stages[s].table;
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

/* Pairs every conntrack stage with the ACL stage right after it, the one that judges its new
 * flows (fl.h: a conntrack stage must come right before an ACL stage). */
static int pair_stages(struct fl_pipeline *p, char *err) {
  p->needs_clock = 0;
  for (int s = 0; s < p->n_stages; s++) p->stages[s].pair = NULL;
  for (int s = 0; s < p->n_stages; s++) {
    struct stage *ct = &p->stages[s];
    if (ct->type != FL_STAGE_CONNTRACK) continue;
    if (s + 1 >= p->n_stages || ct[1].type != FL_STAGE_ACL)
      return fail(err, -EINVAL, "conntrack stage %d must be followed by an ACL stage", s);
    ct->pair = &ct[1];
    ct[1].pair = ct;
    p->needs_clock = 1;
  }
  return 0;
}

int fl_pipeline_start(struct fl_pipeline *p, char *err) {
  if (p->running) return fail(err, -EALREADY, "pipeline already running");
  int rc = pair_stages(p, err);
  if (rc < 0) return rc;
  p->stop = 0;
  p->tail_l2 = p->n_stages > 0 && p->stages[p->n_stages - 1].type == FL_STAGE_L2FWD;
  for (int s = p->n_stages - 1, later = 0; s >= 0; s--) { /* later: a later stage parses */
    if (p->stages[s].type == FL_STAGE_ESP) p->stages[s].c.esp.reparse = (uint8_t)later;
    later |= p->stages[s].type != FL_STAGE_L2FWD && p->stages[s].type != FL_STAGE_BURN;
  }
  for (unsigned i = 0; i < p->c.n_workers; i++) {
    rc = fl_worker_lcore_idle(p->w[i]->c.lcore, err);
    if (rc < 0) return rc;
  }
  for (unsigned i = 0; i < p->c.n_workers; i++) {
    rc = rte_eal_remote_launch(fl_worker_main, p->w[i], p->w[i]->c.lcore);
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
    free_table(p->stages[s].type, p->stages[s].table);
  }
  if (p->punt) {
    ring_drain_free(p->punt);
    rte_ring_free(p->punt);
  }
  if (p->inject) {
    ring_drain_free(p->inject);
    rte_ring_free(p->inject);
  }
  for (unsigned i = 0; i < FL_MAX_WORKERS; i++) {
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
  for (unsigned i = 0; i < p->c.n_workers; i++) {
    const struct worker *w = p->w[i];
    for (int k = 0; k < n; k++)
      if (k != FL_CYC_BUSY) out[k] += __atomic_load_n(&w->cyc[k], __ATOMIC_RELAXED);
    /* busy: the timed bursts' cycles a packet, times the worker's packets */
    uint64_t sampled = __atomic_load_n(&w->cyc[FL_CYC_SAMPLED], __ATOMIC_RELAXED);
    if (sampled) {
      unsigned __int128 busy = __atomic_load_n(&w->cyc[FL_CYC_BUSY], __ATOMIC_RELAXED);
      uint64_t pkts = __atomic_load_n(&w->ctr[0].in, __ATOMIC_RELAXED);
      out[FL_CYC_BUSY] += (uint64_t)(busy * pkts / sampled);
    }
  }
  return n;
}

uint64_t fl_pipeline_tsc_hz(void) { return rte_get_tsc_hz(); }

int64_t fl_pipeline_lpm_hits(struct fl_pipeline *p, int s, uint64_t *out, uint32_t max) {
  if (s < 0 || s >= p->n_stages || p->stages[s].type != FL_STAGE_LPM) return -EINVAL;
  return fl_lpm_table_hits(p->stages[s].table, out, max);
}
uint64_t fl_pipeline_swaps(struct fl_pipeline *p) { return p->swaps; }

void fl_pipeline_rx_waits(struct fl_pipeline *p, uint64_t out[4]) {
  out[0] = out[1] = out[2] = out[3] = 0;
  for (unsigned i = 0; i < p->c.n_workers; i++) {
    out[0] += __atomic_load_n(&p->w[i]->waits, __ATOMIC_RELAXED);
    out[1] += __atomic_load_n(&p->w[i]->wakeups_rx, __ATOMIC_RELAXED);
    out[2] += (uint64_t)p->w[i]->intr_ok;
    out[3] += __atomic_load_n(&p->w[i]->yields, __ATOMIC_RELAXED);
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
  fl_batch_forget(b);
  return (int)q;
}
