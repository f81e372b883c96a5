/*
 * The ACL stage on rte_acl: IPv4/IPv6 5-tuple rules (prefixes, port ranges, protocol, priority)
 * with per-rule hit counters, and its tables. Per burst one pass gathers the packets to judge
 * (rte_acl reads its key from their parsed records), one rte_acl_classify per family judges them
 * together, and a last pass applies the actions. Packets the paired conntrack stage tracks skip it,
 * and those of flows whose denial it caches are dropped and counted against their rule without a
 * lookup; its permits open flows there and its denials of TCP and UDP flows are cached there. A
 * table is built aside on any thread (fl_acl_table_build) and swapped in by fl_pipeline.c under
 * RCU.
 *
 * In front of rte_acl, each worker has an exact-match cache of IPv4 keys and their results (the
 * idea of OVS-DPDK's EMC): a packet whose 5-tuple was judged lately takes its result from one
 * cache line instead of a walk of the trie. A line is a bucket of two entries, so two flows whose
 * keys hash alike both stay (one entry a slot, about 12 % of 1,024 interleaved flows shared a
 * slot and missed on every packet). It belongs to the table (a swap brings an empty one),
 * so a cached result is always this table's. It pays only when flows repeat: each worker measures
 * its hit rate over windows of lookups and, below a quarter, stops using it but for one burst in
 * ACL_EMC_PROBE, which keeps measuring (64k flows in turn, or conntrack in front, never hit).
 */
#include <errno.h>
#include <stddef.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_acl.h>
#include <rte_branch_prediction.h>
#include <rte_errno.h>
#include <rte_hash_crc.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_prefetch.h>

#include "fl_stage.h"

/* rte_acl reads its key straight from the packet's parsed record (struct fl_parsed): the protocol
 * (the one-byte first field), source and destination (one 4-byte input each for IPv4, four for
 * IPv6) and the two ports (one input). */
#define ACL_KEY_PROTO offsetof(struct fl_parsed, proto)
#define ACL_KEY_SRC offsetof(struct fl_parsed, src)
#define ACL_KEY_DST offsetof(struct fl_parsed, dst)
#define ACL_KEY_SPORT offsetof(struct fl_parsed, sport)
#define ACL_KEY_DPORT offsetof(struct fl_parsed, dport)
_Static_assert(offsetof(struct fl_parsed, dport) == offsetof(struct fl_parsed, sport) + 2,
               "the ports are one rte_acl input and one 4-byte word (acl4_words)");

/* Per worker: 256 KiB, in hugepages (in 4-KiB pages it would take 64 TLB entries); 4,096
 * buckets of two entries. */
#define ACL_EMC_ENTRIES 8192
#define ACL_EMC_WINDOW 4096 /* lookups over which a worker measures its hit rate */
#define ACL_EMC_PROBE 16    /* while off, one burst in this many still looks up and fills */

/* A key and what judging it gave, so that a hit reads nothing else: rte_acl's result, the rule
 * that counts it and its action. An empty entry's key has a bit set that no IPv4 key has. */
struct acl_emc_entry {
  uint64_t k[2];   /* acl4_words */
  uint32_t result; /* rte_acl's: the rule's userdata, 0 for none */
  uint32_t rule;   /* the hit counter: the rule's index, n for the default */
  uint8_t act;     /* FL_ACT_* */
  uint8_t last;    /* in a bucket's first entry: the way written last (the other goes next) */
  uint8_t pad[6];
};
#define ACL_EMC_EMPTY (1ull << 63) /* k[1] of an empty entry: a key's bits 40-63 are 0 */
_Static_assert(sizeof(struct acl_emc_entry) == 32, "a bucket of two entries is one line");

struct acl_emc {
  uint32_t lookups, hits; /* in the current window */
  uint32_t bursts_off;
  uint8_t on;
  struct acl_emc_entry e[ACL_EMC_ENTRIES] __rte_cache_aligned;
};

struct fl_acl_table {
  struct rte_acl_ctx *ctx4, *ctx6;
  uint32_t n, stride, n_workers;
  uint8_t *actions;
  uint64_t *hits;      /* [worker][stride]; index n counts the default action */
  struct acl_emc *emc; /* [worker] */
  uint64_t gen;        /* fl_acl_table_gen */
};

static unsigned acl_seq;
/* Tables built so far: each table's generation, its identity to conntrack. Not its address: a
 * table built after a swap can land where a freed one was, and be taken for it. */
static uint64_t acl_gen_seq;

/* An IPv4 record's 5-tuple as two words, the exact-match cache's key: ports and source, then
 * destination and protocol. */
static inline void acl4_words(const struct fl_parsed *h, uint64_t w[2]) {
  /* read as the parser wrote them (ports in its first 16 bytes, addresses in the next), not as
   * one load across two of its stores */
  uint32_t ports, src, dst;
  memcpy(&ports, &h->sport, 4);
  memcpy(&src, h->src, 4);
  memcpy(&dst, h->dst, 4);
  w[0] = (uint64_t)ports | (uint64_t)src << 32;
  w[1] = (uint64_t)dst | (uint64_t)h->proto << 32;
}

/* A key's bucket in the exact-match cache: the index of its first entry (even). */
static inline uint32_t acl4_slot(const uint64_t w[2]) {
  return rte_hash_crc_8byte(w[1], rte_hash_crc_8byte(w[0], 0)) & (ACL_EMC_ENTRIES - 2);
}

static inline int acl4_same(const struct acl_emc_entry *e, const uint64_t w[2]) {
  return !((e->k[0] ^ w[0]) | (e->k[1] ^ w[1]));
}

/* The worker's exact-match cache if this burst uses it: on, or off and this is a probe burst. */
static inline struct acl_emc *acl_emc_for_burst(const struct fl_acl_table *t, unsigned worker) {
  if (!t->emc) return NULL;
  struct acl_emc *emc = &t->emc[worker];
  return emc->on || (++emc->bursts_off % ACL_EMC_PROBE) == 0 ? emc : NULL;
}

/* The packets of one burst the stage looks up, by family: their records (rte_acl's keys) and
 * indexes in the burst, and for IPv4 the exact-match cache's words and slots. */
struct acl_lookups {
  const uint8_t *d4[FL_MAX_BURST], *d6[FL_MAX_BURST];
  uint16_t i4[FL_MAX_BURST], i6[FL_MAX_BURST];
  uint64_t w4[FL_MAX_BURST][2];
  uint32_t slot4[FL_MAX_BURST];
  uint16_t n4, n6;
  uint16_t passed; /* packets that leave with no lookup and stay headed out (non-IP, passed) */
};

/* Packet i (headed out, not passed by conntrack) into the lookups, or its fate set when its
 * record says it takes none (malformed, not IP, a later fragment). */
static inline void acl_gather(const struct stage *s, struct stage_ctr *c, struct pkt *k, uint16_t i,
                              struct acl_emc *emc, struct acl_lookups *l) {
  const struct fl_parsed *h = &k->h;
  if (unlikely(h->reason || h->l3 != FL_L3_IPV4 || (h->flags & FL_F_FRAG_LATER))) {
    if (h->reason) {
      set_fate(c, k, FL_ACT_DROP, h->reason);
      return;
    }
    if (h->l3 != FL_L3_IPV4 && h->l3 != FL_L3_IPV6) {
      set_fate(c, k, s->c.acl.non_ip_action, h->l3 == FL_L3_ARP ? FL_R_ARP : FL_R_NOT_IP);
      l->passed += k->fate == FATE_FWD;
      return;
    }
    if (h->flags & FL_F_FRAG_LATER) {
      set_fate(c, k, s->c.acl.fragment_action, FL_R_FRAGMENT);
      if (k->fate != FATE_FWD) return;
    }
    if (h->l3 == FL_L3_IPV6) {
      l->d6[l->n6] = (const uint8_t *)h;
      l->i6[l->n6++] = i;
      return;
    }
  }
  uint16_t j = l->n4++;
  acl4_words(h, l->w4[j]);
  if (emc) { /* hashed while the words are in registers; the line fetched meanwhile */
    l->slot4[j] = acl4_slot(l->w4[j]);
    rte_prefetch0(&emc->e[l->slot4[j]]);
  }
  l->d4[j] = (const uint8_t *)h;
  l->i4[j] = i;
}

/* What the verdicts of one burst add up to: the rule judging the current run of packets and its
 * length (a rule's hits are added per run of packets it judged in a row: packets of a flow come
 * in trains, and an increment per packet of one counter waits on the previous one's store), the
 * packets denied and those still headed out. */
struct acl_tally {
  uint32_t run_rule, run;
  uint64_t denied, out;
};

/* The hit counter of rte_acl's result r: its rule's index, or n for the default. */
static inline uint32_t acl_rule_of(const struct fl_acl_table *t, uint32_t r) {
  return r ? r - 1 : t->n;
}

/* The action of rte_acl's result r. */
static inline int acl_act_of(const struct stage *s, const struct fl_acl_table *t, uint32_t r) {
  return r ? t->actions[r - 1] : s->c.acl.default_action;
}

/* Applies rte_acl's result r (its rule and action given) to packet k; with ct, a permit opens
 * the flow there and a denial is cached there. */
static inline __attribute__((always_inline)) void acl_verdict(struct stage_ctr *c, uint64_t *hits,
                                                              struct fl_ct *ct, uint64_t now,
                                                              struct pkt *k, uint32_t r,
                                                              uint32_t rule, int act,
                                                              struct acl_tally *y) {
  if (rule != y->run_rule) {
    hits[y->run_rule] += y->run;
    y->run_rule = rule;
    y->run = 0;
  }
  y->run++;
  /* Written as selects, but compilers branch here: free where the verdicts repeat (a permitted
   * flow's packets), a mispredict per change where they mix at random. A version without the
   * branch (the fate and reason stored from the flag) cost 2.3 cycles a packet more on
   * all-permit traffic. */
  int deny = act == FL_ACT_DROP;
  k->fate = deny ? FATE_DROP : k->fate;
  k->reason = deny ? FL_R_ACL_DENY : k->reason;
  y->denied += (uint64_t)deny;
  if (act == FL_ACT_PUNT)
    set_fate(c, k, act, FL_R_ACL_DENY);
  else if (ct && act == FL_ACT_PASS &&
           fl_ct_commit(ct, &k->h, rte_pktmbuf_mtod(k->m, const uint8_t *), k->m->data_len, now) <
               0)
    set_fate(c, k, FL_ACT_DROP, FL_R_CT_FULL);
  else if (ct && deny)
    fl_ct_commit_denied(ct, &k->h, rte_pktmbuf_mtod(k->m, const uint8_t *), k->m->data_len, now, r);
  y->out += k->fate == FATE_FWD;
}

/* Judges n packets of one family (records d, indexes idx) by one rte_acl_classify over ctx (every
 * result 0, the default, when the family has no rules). */
static inline __attribute__((always_inline)) void acl_judge_family(
    const struct stage *s, struct stage_ctr *c, const struct fl_acl_table *t, uint64_t *hits,
    struct fl_ct *ct, uint64_t now, struct pkt *pk, const struct rte_acl_ctx *ctx,
    const uint8_t **d, const uint16_t *idx, uint16_t n, struct acl_tally *y) {
  uint32_t r[FL_MAX_BURST];
  if (ctx)
    rte_acl_classify(ctx, d, r, n, 1);
  else
    memset(r, 0, sizeof(uint32_t) * n);
  for (uint16_t j = 0; j < n; j++)
    acl_verdict(c, hits, ct, now, &pk[idx[j]], r[j], acl_rule_of(t, r[j]), acl_act_of(s, t, r[j]),
                y);
}

/* Judges the burst's lookups (l): IPv4 through the worker's exact-match cache when this burst
 * uses it (emc), a hit applied at once and the misses looked up together after; the rest by one
 * rte_acl_classify per family. The order of packets of one flow is kept: a flow's packets all hit
 * or all miss, since the cache changes only after the hits. */
static inline __attribute__((always_inline)) void acl_judge(
    const struct stage *s, struct stage_ctr *c, const struct fl_acl_table *t, uint64_t *hits,
    struct fl_ct *ct, uint64_t now, struct pkt *pk, struct acl_lookups *l, struct acl_emc *emc,
    struct acl_tally *y) {
  if (l->n4 && emc) {
    uint32_t r[FL_MAX_BURST];
    const uint8_t *md[FL_MAX_BURST];
    uint16_t mi[FL_MAX_BURST], nm = 0;
    for (uint16_t j = 0; j < l->n4; j++) {
      const struct acl_emc_entry *e = &emc->e[l->slot4[j]];
      if (acl4_same(e, l->w4[j]) || acl4_same(++e, l->w4[j])) {
        acl_verdict(c, hits, ct, now, &pk[l->i4[j]], e->result, e->rule, e->act, y);
      } else {
        md[nm] = l->d4[j];
        mi[nm++] = j;
      }
    }
    if (nm) rte_acl_classify(t->ctx4, md, r, nm, 1);
    for (uint16_t q = 0; q < nm; q++) {
      uint16_t j = mi[q];
      struct acl_emc_entry *b = &emc->e[l->slot4[j]];
      /* the way that holds the key already (a flow new twice in one burst), else an empty one,
       * else the one not written last */
      unsigned way = acl4_same(&b[0], l->w4[j])   ? 0
                     : acl4_same(&b[1], l->w4[j]) ? 1
                     : b[0].k[1] == ACL_EMC_EMPTY ? 0
                     : b[1].k[1] == ACL_EMC_EMPTY ? 1
                                                  : b[0].last ^ 1u;
      b[0].last = (uint8_t)way;
      struct acl_emc_entry *e = &b[way];
      e->k[0] = l->w4[j][0];
      e->k[1] = l->w4[j][1];
      e->result = r[q];
      e->rule = acl_rule_of(t, r[q]);
      e->act = (uint8_t)acl_act_of(s, t, r[q]);
      acl_verdict(c, hits, ct, now, &pk[l->i4[j]], e->result, e->rule, e->act, y);
    }
    emc->lookups += l->n4;
    emc->hits += (uint32_t)(l->n4 - nm);
    if (emc->lookups >= ACL_EMC_WINDOW) {
      emc->on = emc->hits * 4 >= emc->lookups;
      emc->lookups = emc->hits = 0;
    }
  } else if (l->n4) {
    acl_judge_family(s, c, t, hits, ct, now, pk, t->ctx4, l->d4, l->i4, l->n4, y);
  }
  if (l->n6) acl_judge_family(s, c, t, hits, ct, now, pk, t->ctx6, l->d6, l->i6, l->n6, y);
}

void fl_acl_run(struct stage *s, struct stage_ctr *c, struct pkt *pk, uint16_t n,
                const struct burst *b) {
  const struct fl_acl_table *t =
      __atomic_load_n((struct fl_acl_table **)&s->table, __ATOMIC_ACQUIRE);
  uint64_t *hits = t->hits + (size_t)b->worker * t->stride;
  struct fl_ct *ct = s->pair ? s->pair->table : NULL;
  struct acl_emc *emc = t->ctx4 ? acl_emc_for_burst(t, b->worker) : NULL;
  struct acl_lookups l;
  l.n4 = l.n6 = l.passed = 0;
  uint16_t m = 0; /* packets judged here: headed out, not passed by conntrack */
  if (!ct) {
    for (uint16_t i = 0; i < n; i++) {
      if (pk[i].fate != FATE_FWD) continue;
      m++;
      acl_gather(s, c, &pk[i], i, emc, &l);
    }
  } else {
    /* Cached denials answer only for the table that made them: when a swap landed between the
     * conntrack stage's lookups and now, their packets are judged again. */
    const uint8_t cached_ok = fl_ct_judged_by(ct) == t->gen;
    /* The table this burst is judged by: its permits open flows of its epoch. */
    fl_ct_acl_table(ct, t->gen);
    /* Tracked and untracked packets mix at random, so they are picked without a branch per
     * packet. A denial whose rule this table does not have (none should remain) is judged
     * again rather than counted past the table's counters. */
    uint16_t todo[FL_MAX_BURST], cached[FL_MAX_BURST], d = 0;
    for (uint16_t i = 0; i < n; i++) {
      const uint8_t fwd = pk[i].fate == FATE_FWD;
      const uint8_t denied = pk[i].tracked == FL_CT_DENIED;
      const uint8_t answered = denied & cached_ok & (pk[i].verdict <= t->n);
      todo[m] = i;
      cached[d] = i;
      m += fwd & (pk[i].tracked == FL_CT_MISS || (denied & !answered));
      d += fwd & answered;
    }
    /* A cached denial: the rule that denied the flow counts the packet, as if it had judged
     * it. */
    for (uint16_t j = 0; j < d; j++) {
      struct pkt *k = &pk[cached[j]];
      hits[k->verdict ? k->verdict - 1 : t->n]++;
      k->fate = FATE_DROP;
      k->reason = FL_R_ACL_DENY;
    }
    c->in += d;
    c->drop[FL_R_ACL_DENY] += d;
    for (uint16_t j = 0; j < m; j++) acl_gather(s, c, &pk[todo[j]], todo[j], emc, &l);
  }
  c->in += m;
  struct acl_tally y = {0, 0, 0, l.passed};
  if (ct)
    acl_judge(s, c, t, hits, ct, b->now, pk, &l, emc, &y);
  else /* the same, specialised: no flow to open or denial to cache */
    acl_judge(s, c, t, hits, NULL, 0, pk, &l, emc, &y);
  hits[y.run_rule] += y.run;
  c->drop[FL_R_ACL_DENY] += y.denied;
  c->out += y.out;
}

RTE_ACL_RULE_DEF(acl6_rule, 11);

static void acl4_defs(struct rte_acl_config *cfg) {
  memset(cfg, 0, sizeof(*cfg));
  cfg->num_categories = 1;
  cfg->num_fields = 5;
  struct rte_acl_field_def d[5] = {
      {RTE_ACL_FIELD_TYPE_BITMASK, 1, 0, 0, ACL_KEY_PROTO},
      {RTE_ACL_FIELD_TYPE_MASK, 4, 1, 1, ACL_KEY_SRC},
      {RTE_ACL_FIELD_TYPE_MASK, 4, 2, 2, ACL_KEY_DST},
      {RTE_ACL_FIELD_TYPE_RANGE, 2, 3, 3, ACL_KEY_SPORT},
      {RTE_ACL_FIELD_TYPE_RANGE, 2, 4, 3, ACL_KEY_DPORT},
  };
  memcpy(cfg->defs, d, sizeof(d));
}

static void acl6_defs(struct rte_acl_config *cfg) {
  memset(cfg, 0, sizeof(*cfg));
  cfg->num_categories = 1;
  cfg->num_fields = 11;
  struct rte_acl_field_def *d = cfg->defs;
  d[0] = (struct rte_acl_field_def){RTE_ACL_FIELD_TYPE_BITMASK, 1, 0, 0, ACL_KEY_PROTO};
  for (int i = 0; i < 4; i++) {
    d[1 + i] = (struct rte_acl_field_def){RTE_ACL_FIELD_TYPE_MASK, 4, (uint8_t)(1 + i),
                                          (uint8_t)(1 + i), (uint32_t)(ACL_KEY_SRC + 4 * i)};
    d[5 + i] = (struct rte_acl_field_def){RTE_ACL_FIELD_TYPE_MASK, 4, (uint8_t)(5 + i),
                                          (uint8_t)(5 + i), (uint32_t)(ACL_KEY_DST + 4 * i)};
  }
  d[9] = (struct rte_acl_field_def){RTE_ACL_FIELD_TYPE_RANGE, 2, 9, 9, ACL_KEY_SPORT};
  d[10] = (struct rte_acl_field_def){RTE_ACL_FIELD_TYPE_RANGE, 2, 10, 9, ACL_KEY_DPORT};
}

void fl_acl_table_free(struct fl_acl_table *t) {
  if (!t) return;
  rte_acl_free(t->ctx4);
  rte_acl_free(t->ctx6);
  free(t->actions);
  free(t->hits);
  rte_free(t->emc);
  free(t);
}

static struct rte_acl_ctx *acl_ctx(int socket, int fam, uint32_t max, char *err) {
  char name[RTE_ACL_NAMESIZE];
  snprintf(name, sizeof(name), "fl_acl%d_%u", fam,
           __atomic_fetch_add(&acl_seq, 1, __ATOMIC_RELAXED));
  struct rte_acl_param prm = {name, socket, fam == 4 ? RTE_ACL_RULE_SZ(5) : RTE_ACL_RULE_SZ(11),
                              max};
  struct rte_acl_ctx *ctx = rte_acl_create(&prm);
  if (!ctx) fl_fail(err, -rte_errno, "rte_acl_create(%s, %u rules)", name, max);
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
    ar.field[1 + j].value.u32 = sl ? fl_be32(r->src + 4 * j) : 0;
    ar.field[1 + j].mask_range.u32 = (uint32_t)sl;
    ar.field[1 + words + j].value.u32 = dl ? fl_be32(r->dst + 4 * j) : 0;
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
    fl_fail(err, -E2BIG, "an ACL table holds at most %u native rules, got %u", FL_ACL_MAX_RULES, n);
    return NULL;
  }
  if (b->n_workers == 0 || b->n_workers > FL_MAX_WORKERS) {
    fl_fail(err, -EINVAL, "ACL table for %u workers", b->n_workers);
    return NULL;
  }
  struct fl_acl_table *t = calloc(1, sizeof(*t));
  if (!t) {
    fl_fail(err, -ENOMEM, "ACL table of %u rules", n);
    return NULL;
  }
  t->n = n;
  t->gen = __atomic_add_fetch(&acl_gen_seq, 1, __ATOMIC_RELAXED); /* from 1: 0 is none */
  t->n_workers = b->n_workers;
  t->stride = (n + 1 + 7) & ~7u;
  t->actions = calloc(n ? n : 1, 1);
  size_t hits_size = sizeof(uint64_t) * t->stride * b->n_workers;
  t->hits = aligned_alloc(64, (hits_size + 63) & ~(size_t)63);
  if (!t->actions || !t->hits) {
    fl_fail(err, -ENOMEM, "ACL table of %u rules", n);
    fl_acl_table_free(t);
    return NULL;
  }
  memset(t->hits, 0, hits_size);
  uint32_t n4 = 0, n6 = 0;
  for (uint32_t i = 0; i < n; i++) {
    if (r[i].family != 4 && r[i].family != 6) {
      fl_fail(err, -EINVAL, "rule %u: family must be 4 or 6, got %u", i, r[i].family);
      fl_acl_table_free(t);
      return NULL;
    }
    t->actions[i] = r[i].action;
    if (r[i].family == 4)
      n4++;
    else
      n6++;
  }
  if (n4) {
    t->emc = rte_zmalloc_socket("fl_acl_emc", sizeof(struct acl_emc) * b->n_workers,
                                RTE_CACHE_LINE_SIZE, b->socket);
    if (!t->emc) {
      fl_fail(err, -ENOMEM, "ACL exact-match caches for %u workers", b->n_workers);
      goto bad;
    }
    for (unsigned w = 0; w < b->n_workers; w++) {
      t->emc[w].on = 1;
      for (unsigned i = 0; i < ACL_EMC_ENTRIES; i++) t->emc[w].e[i].k[1] = ACL_EMC_EMPTY;
    }
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
        fl_fail(err, rc, "rte_acl_add_rules(rule %u)", i);
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
      fl_fail(err, rc, "rte_acl_build(IPv%d, %u rules, at most %" PRIu64 " MiB)", fam, cnt,
              (uint64_t)cfg.max_size >> 20);
      goto bad;
    }
  }
  return t;
bad:
  fl_acl_table_free(t);
  return NULL;
}

unsigned fl_acl_table_workers(const struct fl_acl_table *t) { return t->n_workers; }

uint32_t fl_acl_table_rules(const struct fl_acl_table *t) { return t->n; }

uint64_t fl_acl_table_gen(const struct fl_acl_table *t) { return t->gen; }

void fl_acl_table_hits(const struct fl_acl_table *t, uint64_t *out) {
  for (uint32_t r = 0; r <= t->n; r++) {
    uint64_t sum = 0;
    for (unsigned w = 0; w < t->n_workers; w++)
      sum += __atomic_load_n(&t->hits[(size_t)w * t->stride + r], __ATOMIC_RELAXED);
    out[r] = sum;
  }
}
