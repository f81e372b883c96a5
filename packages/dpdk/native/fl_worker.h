/*
 * The pipeline and its workers as the lifecycle (fl_pipeline.c) and the worker loop
 * (fl_worker.c) share them. Internal, like fl_stage.h.
 */
#ifndef FL_WORKER_H
#define FL_WORKER_H

#include <stdint.h>

#include <rte_cycles.h>
#include <rte_epoll.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>

#include "fl.h"
#include "fl_stage.h"

#define MAX_STAGES 16

struct worker {
  struct fl_pipeline *p;
  unsigned idx;
  int wake_fd;                    /* eventfd: stop and inject wake a worker waiting in epoll */
  int intr_ok;                    /* every input's rx interrupt is in this thread's epoll */
  struct rte_epoll_event wake_ev; /* stays registered while the worker runs */
  uint64_t waits, wakeups_rx;     /* epoll waits, and those a queue's kick ended */
  uint64_t yields;                /* sched_yield calls (backoff.share_core) */
  struct fl_worker_conf c;
  struct stage_ctr ctr[MAX_STAGES + 1];
  /* Busy TSC cycles of the timed bursts (one in FL_CYC_SAMPLE): FL_CYC_* then one per stage. */
  uint64_t cyc[FL_CYC_FIXED + MAX_STAGES];
  /* Bursts that brought packets. One in FL_CYC_SAMPLE is timed, the first included: an rdtsc
   * costs tens of cycles (about 50 in a VM), one a burst would be 1-2 cycles a packet on a
   * forwarding path of about 50. */
  uint64_t bursts;
};

struct fl_pipeline {
  struct fl_pipeline_conf c;
  struct stage stages[MAX_STAGES];
  int n_stages, needs_parse, running;
  int needs_clock; /* a conntrack stage reads the clock: once per burst */
  int tail_l2;     /* the last stage is l2fwd: a burst whose output rewrites nothing skips it (the
                      worker sends what is headed out), and with no other stage, per-packet work */
  volatile int stop;
  struct worker *w[FL_MAX_WORKERS];
  struct rte_rcu_qsbr *rcu;
  struct rte_ring *punt, *inject;
  uint64_t swaps;
  unsigned id;
  int socket;
  uint64_t now; /* manual clock (c.manual_clock), TSC cycles; written by the control thread */
};

/* The conntrack stage's now: the TSC, or the manual clock tests advance. */
static inline uint64_t pipeline_now(const struct fl_pipeline *p) {
  return p->c.manual_clock ? __atomic_load_n(&p->now, __ATOMIC_ACQUIRE) : rte_rdtsc();
}

/* Publishes table t in stage s; returns the old one once no worker can still read it. */
void *fl_pipeline_swap_stage(struct fl_pipeline *p, int s, void *t);

/* A worker lcore's loop (rte_eal_remote_launch's function; arg: its struct worker). */
int fl_worker_main(void *arg);

#endif
