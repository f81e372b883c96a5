/*
 * What the pipeline engine (fl_pipeline.c) shares with the lookup stages that live in files of
 * their own (fl_lpm.c): the per-packet record, per-stage counters and the stage slot. Internal:
 * includes DPDK headers, so the C++ binding never includes it.
 */
#ifndef FL_STAGE_H
#define FL_STAGE_H

#include <stdint.h>

#include <rte_common.h>
#include <rte_mbuf.h>

#include "fl.h"

enum { FATE_FWD = 0, FATE_DROP = 1, FATE_PUNT = 2 };

struct stage_ctr {
  uint64_t in, out, drop[FL_R_COUNT], punt[FL_R_COUNT];
} __rte_cache_aligned;

struct stage {
  int type;
  union {
    struct fl_l2fwd_conf l2;
    struct fl_acl_conf acl;
    struct fl_lpm_conf lpm;
    struct fl_burn_conf burn;
  } c;
  void *table; /* RCU protected */
};

struct pkt {
  struct rte_mbuf *m;
  struct fl_parsed h;
  uint16_t out;
  uint8_t fate, reason;
  uint8_t tracked; /* a conntrack stage found its flow: the ACL stage after it lets it pass */
};

static inline void set_fate(struct stage_ctr *c, struct pkt *k, int action, int reason) {
  if (action == FL_ACT_DROP) {
    k->fate = FATE_DROP;
    k->reason = (uint8_t)reason;
    c->drop[reason]++;
  } else if (action == FL_ACT_PUNT) {
    k->fate = FATE_PUNT;
    k->reason = (uint8_t)reason;
    c->punt[reason]++;
  }
}

static inline uint32_t fl_be32(const uint8_t *b) {
  return ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3];
}

/* ---- LPM stage (fl_lpm.c) ---- */
struct lpm_table;
/* Builds a table; with count_hits each route counts its packets per worker (n_workers). */
struct lpm_table *fl_lpm_build(const struct fl_lpm_table_in *in, unsigned n_workers, int count_hits,
                               char *err);
void fl_lpm_free(struct lpm_table *t);
/* One burst through the stage s (its table read under RCU) on worker w. */
void fl_lpm_run(struct stage *s, struct stage_ctr *c, struct pkt *pk, uint16_t n, unsigned w);
/* Per-route hits summed over workers, in the order of the routes given; returns the count
 * (0 when the table does not count). */
uint32_t fl_lpm_table_hits(const struct lpm_table *t, uint64_t *out, uint32_t max);

#endif
