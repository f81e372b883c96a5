/*
 * The stage interface: what the worker loop (fl_worker.c) and the pipeline's lifecycle
 * (fl_pipeline.c) share with the stages, one file each (fl_stage_<kind>.c). Every stage takes a
 * whole burst: fl_stage_run picks the stage's run by its kind in a switch, so a burst costs one
 * direct call per stage and nothing per packet. Per-packet helpers that cross files are static
 * inline here. Internal: includes DPDK headers, so the C++ binding never includes it.
 */
#ifndef FL_STAGE_H
#define FL_STAGE_H

#include <stdint.h>

#include <rte_common.h>
#include <rte_mbuf.h>

#include "fl.h"
#include "fl_ipsec.h"

/* Workers per pipeline (per-worker rows of a table's hit counters). */
#define FL_MAX_WORKERS 16

/* l2fwd maps input ports below this to outputs below this (its tables are indexed by port). */
#define FL_L2_MAX_PORTS 64

enum { FATE_FWD = 0, FATE_DROP = 1, FATE_PUNT = 2 };

struct stage_ctr {
  uint64_t in, out, drop[FL_R_COUNT], punt[FL_R_COUNT];
} __rte_cache_aligned;

struct stage {
  int type; /* enum fl_stage_type */
  union {
    struct fl_l2fwd_conf l2;
    struct fl_acl_conf acl;
    struct fl_lpm_conf lpm;
    struct fl_burn_conf burn;
    struct fl_esp_conf esp;
  } c;
  void *table; /* RCU protected: struct fl_acl_table, lpm_table, fl_ct or esp_table */
  /* The conntrack and ACL stages that work as one, set by fl_pipeline_start: a conntrack stage's
   * pair is the ACL whose permits open its flows and whose table swaps start a flow epoch; an ACL
   * stage's pair is that conntrack (its tracked packets skip the ACL). NULL for any other. */
  struct stage *pair;
};

struct pkt {
  struct rte_mbuf *m;
  struct fl_parsed h;
  uint16_t out;
  uint8_t fate, reason;
  uint8_t tracked;  /* the paired conntrack's answer: FL_CT_MISS, FL_CT_PASS or FL_CT_DENIED */
  uint32_t verdict; /* FL_CT_DENIED: the ACL result the cached denial holds */
};

/* What a stage knows of the burst it runs besides its packets. */
struct burst {
  uint64_t now;     /* conntrack's clock, read once per burst (0 in a pipeline without one) */
  unsigned worker;  /* the worker's index: its row of per-worker hit counters */
  uint16_t in_port; /* the port the burst came in on */
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

/* The output l2fwd gives packets of in_port (FL_NO_PORT: none), and whether it rewrites a MAC
 * there; the worker loop sends a burst that needs neither straight out. */
static inline uint16_t fl_l2fwd_out(const struct fl_l2fwd_conf *l2, uint16_t in_port) {
  return in_port < FL_L2_MAX_PORTS ? l2->out_port[in_port] : FL_NO_PORT;
}
static inline int fl_l2fwd_rewrites(const struct fl_l2fwd_conf *l2, uint16_t out) {
  return l2->set_dst[out] || l2->set_src[out];
}

/* ---- each stage's run: the burst's packets still headed out (FATE_FWD) go through it ---- */
void fl_l2fwd_run(struct stage *s, struct stage_ctr *c, struct pkt *pk, uint16_t n,
                  const struct burst *b);
void fl_acl_run(struct stage *s, struct stage_ctr *c, struct pkt *pk, uint16_t n,
                const struct burst *b);
void fl_lpm_run(struct stage *s, struct stage_ctr *c, struct pkt *pk, uint16_t n,
                const struct burst *b);
void fl_conntrack_run(struct stage *s, struct stage_ctr *c, struct pkt *pk, uint16_t n,
                      const struct burst *b);
void fl_burn_run(struct stage *s, struct stage_ctr *c, struct pkt *pk, uint16_t n,
                 const struct burst *b);
void fl_esp_run(struct stage *s, struct stage_ctr *c, struct pkt *pk, uint16_t n,
                const struct burst *b);

static inline void fl_stage_run(struct stage *s, struct stage_ctr *c, struct pkt *pk, uint16_t n,
                                const struct burst *b) {
  switch (s->type) {
  case FL_STAGE_L2FWD:
    fl_l2fwd_run(s, c, pk, n, b);
    break;
  case FL_STAGE_ACL:
    fl_acl_run(s, c, pk, n, b);
    break;
  case FL_STAGE_LPM:
    fl_lpm_run(s, c, pk, n, b);
    break;
  case FL_STAGE_CONNTRACK:
    fl_conntrack_run(s, c, pk, n, b);
    break;
  case FL_STAGE_BURN:
    fl_burn_run(s, c, pk, n, b);
    break;
  case FL_STAGE_ESP:
    fl_esp_run(s, c, pk, n, b);
    break;
  }
}

/* ---- tables (built aside, swapped in under RCU by fl_pipeline.c) ---- */
/* ACL (fl_stage_acl.c; the rest of its table API is in fl.h). */
unsigned fl_acl_table_workers(const struct fl_acl_table *t);
/* The table's generation: unique among the tables this process built (from 1), what conntrack
 * knows the table in force by (fl_ct_acl_table). */
uint64_t fl_acl_table_gen(const struct fl_acl_table *t);

/* ESP (fl_ipsec.c): a stage's empty first table, and its last one freed with every SA. */
struct esp_table;
struct esp_table *fl_esp_table_new(uint8_t dir, char *err);
void fl_esp_table_free_all(struct esp_table *t);

/* LPM (fl_stage_lpm.c). */
struct lpm_table;
/* Builds a table; with count_hits each route counts its packets per worker (n_workers). */
struct lpm_table *fl_lpm_build(const struct fl_lpm_table_in *in, unsigned n_workers, int count_hits,
                               char *err);
void fl_lpm_free(struct lpm_table *t);
/* Per-route hits summed over workers, in the order of the routes given; returns the count
 * (0 when the table does not count). */
uint32_t fl_lpm_table_hits(const struct lpm_table *t, uint64_t *out, uint32_t max);

#endif
