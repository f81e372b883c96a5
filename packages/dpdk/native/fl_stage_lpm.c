/*
 * The LPM stage: IPv4 routes in rte_fib (DIR-24-8 over a RIB tree: a full Internet table of
 * about a million routes builds in seconds, where each rte_lpm add scans every rule of its
 * length), IPv6 routes in rte_lpm6, next-hop MAC rewrite, TTL /
 * hop-limit decrement (IPv4 checksum updated incrementally), punts for ARP, neighbour
 * discovery, local addresses, no route, TTL expiry and packets longer than their next hop's MTU
 * (the slow path answers those with ICMP fragmentation needed / packet too big, or fragments).
 *
 * Per burst: one pass sorts the packets out and gathers the destinations that need a lookup,
 * one bulk lookup per family (rte_fib_lookup_bulk, rte_lpm6_lookup_bulk_func) resolves them
 * together so their table reads overlap, and a last pass rewrites. A table that counts hits
 * stores the route's index as the FIB's next hop (and maps it to the next hop), so every route
 * counts the packets it forwarded.
 */
#define ALLOW_EXPERIMENTAL_API 1 /* rte_fib */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_branch_prediction.h>
#include <rte_byteorder.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_fib.h>
#include <rte_lpm6.h>

#include "fl_stage.h"

/* The FIB's answer for "no route" (4-byte next hops hold up to 2^31 - 1). */
#define FIB_NO_ROUTE 0x7fffffffu

/* A next hop as the forwarding pass reads it, in one 16-byte slot: both MACs as the Ethernet
 * header's first 12 bytes (one 8-byte and one 4-byte copy), the output and the MTU. */
struct lpm_nh {
  uint8_t macs[12]; /* destination, then source */
  uint16_t port;
  uint16_t mtu; /* the largest L3 length sent (UINT16_MAX: no limit) */
};

struct lpm_table {
  struct rte_fib *lpm4;
  struct rte_lpm6 *lpm6;
  struct lpm_nh *nh;
  uint32_t n_nh, n_local4, n_local6;
  uint32_t *local4; /* network order */
  uint8_t (*local6)[16];
  /* count_hits: the FIB's value is the route index; route_nh maps it to the next hop */
  uint32_t *route_nh;
  uint64_t *hits; /* [worker][n_routes] */
  uint32_t n_routes, n_workers;
};

static unsigned lpm_seq;

void fl_lpm_free(struct lpm_table *t) {
  if (!t) return;
  rte_fib_free(t->lpm4);
  rte_lpm6_free(t->lpm6);
  free(t->nh);
  free(t->local4);
  free(t->local6);
  free(t->route_nh);
  free(t->hits);
  free(t);
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

/* DIR-24-8 needs one tbl8 group (1 KiB) per /24 that holds a longer prefix: count them, so that a
 * million routes do not reserve a million groups (a GiB). */
static uint32_t tbl8_groups(const struct fl_lpm_table_in *in) {
  uint32_t n = 0, distinct = 0;
  for (uint32_t i = 0; i < in->n_routes; i++)
    if (in->routes[i].family == 4 && in->routes[i].len > 24) n++;
  uint32_t *v = malloc(sizeof(uint32_t) * (n ? n : 1));
  if (!v) return n + 256;
  n = 0;
  for (uint32_t i = 0; i < in->n_routes; i++)
    if (in->routes[i].family == 4 && in->routes[i].len > 24)
      v[n++] = fl_be32(in->routes[i].addr) >> 8;
  qsort(v, n, sizeof(uint32_t), cmp_u32);
  for (uint32_t i = 0; i < n; i++) distinct += i == 0 || v[i] != v[i - 1];
  free(v);
  return distinct + distinct / 8 + 256;
}

struct lpm_table *fl_lpm_build(const struct fl_lpm_table_in *in, unsigned n_workers, int count_hits,
                               char *err) {
  struct lpm_table *t = calloc(1, sizeof(*t));
  if (!t) return NULL;
  t->n_nh = in->n_nexthops;
  t->nh = calloc(in->n_nexthops ? in->n_nexthops : 1, sizeof(*t->nh));
  t->local4 = calloc(in->n_local4 ? in->n_local4 : 1, 4);
  t->local6 = calloc(in->n_local6 ? in->n_local6 : 1, 16);
  if (!t->nh || !t->local4 || !t->local6) {
    fl_fail(err, -ENOMEM, "LPM table");
    goto bad;
  }
  if (count_hits) {
    if (in->n_routes >= (1u << 21)) {
      fl_fail(err, -E2BIG, "counting hits of %u routes: at most %u", in->n_routes, (1u << 21) - 1);
      goto bad;
    }
    t->n_routes = in->n_routes;
    t->n_workers = n_workers;
    t->route_nh = calloc(in->n_routes ? in->n_routes : 1, sizeof(uint32_t));
    t->hits = calloc((size_t)n_workers * (in->n_routes ? in->n_routes : 1), sizeof(uint64_t));
    if (!t->route_nh || !t->hits) {
      fl_fail(err, -ENOMEM, "LPM hit counters for %u routes", in->n_routes);
      goto bad;
    }
  }
  for (uint32_t i = 0; i < in->n_nexthops; i++) {
    const struct fl_nexthop *x = &in->nexthops[i];
    memcpy(t->nh[i].macs, x->dst_mac, 6);
    memcpy(t->nh[i].macs + 6, x->src_mac, 6);
    t->nh[i].port = x->port;
    /* No limit as the largest value: a frame is parsed from one mbuf segment (data_len is 16
     * bits), so the L3 packet in it is always shorter than 65,535 bytes. */
    t->nh[i].mtu = x->mtu ? x->mtu : UINT16_MAX;
  }
  t->n_local4 = in->n_local4;
  t->n_local6 = in->n_local6;
  for (uint32_t i = 0; i < in->n_local4; i++) memcpy(&t->local4[i], in->local4[i], 4);
  for (uint32_t i = 0; i < in->n_local6; i++) memcpy(t->local6[i], in->local6[i], 16);
  uint32_t n4 = 0, n6 = 0;
  for (uint32_t i = 0; i < in->n_routes; i++) {
    if (in->routes[i].family == 4)
      n4++;
    else
      n6++;
  }
  char name[64];
  int rc;
  if (n4) {
    snprintf(name, sizeof(name), "fl_lpm4_%u", __atomic_fetch_add(&lpm_seq, 1, __ATOMIC_RELAXED));
    struct rte_fib_conf cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.type = RTE_FIB_DIR24_8;
    cfg.default_nh = FIB_NO_ROUTE;
    cfg.max_routes = (int)(n4 + 2); /* a default route is two /1 halves */
    cfg.dir24_8.nh_sz = RTE_FIB_DIR24_8_4B;
    cfg.dir24_8.num_tbl8 = tbl8_groups(in);
    if (!(t->lpm4 = rte_fib_create(name, (int)rte_socket_id(), &cfg))) {
      fl_fail(err, -rte_errno, "rte_fib_create(%u routes, %u tbl8 groups)", n4,
              cfg.dir24_8.num_tbl8);
      goto bad;
    }
  }
  if (n6) {
    snprintf(name, sizeof(name), "fl_lpm6_%u", __atomic_fetch_add(&lpm_seq, 1, __ATOMIC_RELAXED));
    uint32_t tbl8 = n6 * 8 < 1024 ? 1024 : n6 * 8;
    struct rte_lpm6_config cfg = {n6 + 1, tbl8 > 65536 ? 65536 : tbl8, 0};
    if (!(t->lpm6 = rte_lpm6_create(name, (int)rte_socket_id(), &cfg))) {
      fl_fail(err, -rte_errno, "rte_lpm6_create(%u routes)", n6);
      goto bad;
    }
  }
  for (uint32_t i = 0; i < in->n_routes; i++)
    if (in->routes[i].nexthop >= in->n_nexthops) {
      fl_fail(err, -EINVAL, "route %u uses next hop %u of %u", i, in->routes[i].nexthop,
              in->n_nexthops);
      goto bad;
    }
  /* Default routes first: each is added as two /1 halves, and adding a prefix the table holds
   * replaces its next hop, so a default route given after an explicit /1 would take that /1's
   * half. Routes of one prefix are added in the order given (the last wins). */
  for (uint64_t k = 0; k < 2 * (uint64_t)in->n_routes; k++) {
    const uint32_t i = (uint32_t)(k % in->n_routes);
    const struct fl_route *r = &in->routes[i];
    if ((r->len == 0) != (k < in->n_routes)) continue;
    uint32_t v = r->nexthop;
    if (count_hits) {
      t->route_nh[i] = r->nexthop;
      v = i;
    }
    if (r->family == 4) {
      uint32_t a = fl_be32(r->addr);
      if (v >= FIB_NO_ROUTE) {
        rc = -E2BIG;
      } else if (r->len == 0) { /* a default route: two /1 halves */
        rc = rte_fib_add(t->lpm4, 0, 1, v);
        if (rc >= 0) rc = rte_fib_add(t->lpm4, 0x80000000u, 1, v);
      } else {
        rc = rte_fib_add(t->lpm4, a, r->len, v);
      }
    } else {
      if (r->len == 0) {
        uint8_t half[16] = {0};
        rc = rte_lpm6_add(t->lpm6, half, 1, v);
        half[0] = 0x80;
        if (rc >= 0) rc = rte_lpm6_add(t->lpm6, half, 1, v);
      } else {
        rc = rte_lpm6_add(t->lpm6, r->addr, r->len, v);
      }
    }
    if (rc < 0) {
      fl_fail(err, rc, "adding route %u (IPv%u /%u)", i, r->family, r->len);
      goto bad;
    }
  }
  return t;
bad:
  fl_lpm_free(t);
  return NULL;
}

uint32_t fl_lpm_table_hits(const struct lpm_table *t, uint64_t *out, uint32_t max) {
  if (!t->hits) return 0;
  uint32_t n = t->n_routes < max ? t->n_routes : max;
  for (uint32_t r = 0; r < n; r++) {
    uint64_t sum = 0;
    for (unsigned w = 0; w < t->n_workers; w++)
      sum += __atomic_load_n(&t->hits[(size_t)w * t->n_routes + r], __ATOMIC_RELAXED);
    out[r] = sum;
  }
  return t->n_routes;
}

/* The next hop of the route's value from the FIB or rte_lpm6 in a table that counts hits (its
 * values are route indexes; a table that does not stores the next hop itself). UINT32_MAX when
 * the value is out of range. */
static inline uint32_t next_hop_of_route(const struct lpm_table *t, uint32_t v) {
  return v < t->n_routes ? t->route_nh[v] : UINT32_MAX;
}

/* A route's packets counted in a register while they come in a row (a flow's packets come in
 * trains), added to the route's counter when another route's packet comes. */
struct hit_run {
  uint32_t route, n;
};

/* Forwards packet k by its route's value v (the FIB's or rte_lpm6's): punts it when its TTL or
 * hop limit would expire or it is longer than its next hop's MTU; otherwise decrements the TTL,
 * rewrites both MACs and sets its output. Returns 1 when it is forwarded. hits: the worker's row
 * of route counters in a table that counts them, NULL otherwise. */
static inline __attribute__((always_inline)) int forward(const struct lpm_table *t,
                                                         struct stage_ctr *c, struct pkt *k,
                                                         uint32_t v, const int v6, uint64_t *hits,
                                                         struct hit_run *run) {
  if (k->h.ttl <= 1) {
    set_fate(c, k, FL_ACT_PUNT, FL_R_TTL_EXPIRED);
    return 0;
  }
  uint32_t nh = hits ? next_hop_of_route(t, v) : v;
  if (unlikely(nh >= t->n_nh)) {
    set_fate(c, k, FL_ACT_DROP, FL_R_NO_ROUTE);
    return 0;
  }
  const struct lpm_nh *x = &t->nh[nh];
  uint8_t *d = rte_pktmbuf_mtod(k->m, uint8_t *);
  uint8_t *ip = d + k->h.l3_off;
  /* The L3 length the parser checked against the frame: IPv4 total length, IPv6 fixed header +
   * payload length. Longer than the next hop's MTU: to the slow path as it came in (it answers
   * or fragments; DF is its concern), not counted as a hit of its route. */
  uint16_t len_be;
  memcpy(&len_be, ip + (v6 ? 4 : 2), 2);
  if (unlikely((uint32_t)rte_be_to_cpu_16(len_be) + (v6 ? 40 : 0) > x->mtu)) {
    set_fate(c, k, FL_ACT_PUNT, FL_R_TOO_BIG);
    return 0;
  }
  if (v != run->route) {
    if (hits && run->n) hits[run->route] += run->n;
    run->route = v;
    run->n = 0;
  }
  run->n++;
  if (!v6) {
    /* The TTL byte is written from the parsed TTL (at least 2 here; the record keeps following
     * the frame) and nothing is read back. The header checksum gains 0x0100 for the TTL's loss,
     * its end-around carry folded in (one's complement sums are byte-order independent; Linux's
     * ip_decrease_ttl does the same). A sum of 0xffff folds to 0x0000, which is what a full
     * recomputation gives: a header's checksum is never 0xffff. */
    ip[8] = --k->h.ttl;
    uint16_t ck;
    memcpy(&ck, ip + 10, 2);
    uint32_t sum = (uint32_t)ck + rte_cpu_to_be_16(0x0100);
    ck = (uint16_t)(sum + (sum >= 0xffff));
    memcpy(ip + 10, &ck, 2);
  } else {
    ip[7] = --k->h.ttl;
  }
  memcpy(d, x->macs, sizeof(x->macs));
  k->out = x->port;
  return 1;
}

/* Pass 3 for one family's packets ks[0..n) and their lookup results (res4 or res6 by v6). v6 and
 * whether hits is NULL are constants where this is inlined: each of the four loops has none of
 * the other family's branches, and one without hit counting keeps no run. Returns how many it
 * forwarded. */
static inline __attribute__((always_inline)) uint64_t forward_all(
    const struct stage *s, const struct lpm_table *t, struct stage_ctr *c, struct pkt *const *ks,
    const uint64_t *res4, const int32_t *res6, uint16_t n, const int v6, uint64_t *hits) {
  uint64_t out = 0;
  struct hit_run run = {0, 0};
  for (uint16_t j = 0; j < n; j++) {
    struct pkt *k = ks[j];
    if (unlikely(v6 ? res6[j] < 0 : res4[j] == FIB_NO_ROUTE))
      set_fate(c, k, s->c.lpm.no_route_action, FL_R_NO_ROUTE);
    else
      out += (uint64_t)forward(t, c, k, v6 ? (uint32_t)res6[j] : (uint32_t)res4[j], v6, hits, &run);
  }
  if (hits && run.n) hits[run.route] += run.n;
  return out;
}

void fl_lpm_run(struct stage *s, struct stage_ctr *c, struct pkt *pk, uint16_t n,
                const struct burst *b) {
  const struct lpm_table *t = __atomic_load_n((struct lpm_table **)&s->table, __ATOMIC_ACQUIRE);
  uint64_t *hits = t->hits ? t->hits + (size_t)b->worker * t->n_routes : NULL;
  uint32_t ip4[FL_MAX_BURST];
  uint64_t res4[FL_MAX_BURST];
  uint8_t ip6[FL_MAX_BURST][RTE_LPM6_IPV6_ADDR_SIZE];
  int32_t res6[FL_MAX_BURST];
  struct pkt *k4[FL_MAX_BURST], *k6[FL_MAX_BURST];
  uint16_t n4 = 0, n6 = 0;
  /* The counters are summed in registers and added once: an increment per packet of a counter in
   * memory waits on the previous packet's store. */
  uint64_t in = 0, out;
  /* 1: sort out what needs no lookup; gather the destinations of the rest */
  for (uint16_t i = 0; i < n; i++) {
    struct pkt *k = &pk[i];
    if (k->fate != FATE_FWD) continue;
    in++;
    const struct fl_parsed *h = &k->h;
    if (h->reason) {
      set_fate(c, k, FL_ACT_DROP, h->reason);
    } else if (h->l3 == FL_L3_IPV4) {
      uint32_t dst;
      memcpy(&dst, h->dst, 4);
      int local = 0;
      for (uint32_t j = 0; j < t->n_local4; j++) local |= t->local4[j] == dst;
      if (local) {
        set_fate(c, k, FL_ACT_PUNT, FL_R_LOCAL);
      } else {
        ip4[n4] = rte_be_to_cpu_32(dst);
        k4[n4++] = k;
      }
    } else if (h->l3 == FL_L3_IPV6) {
      if (h->proto == 58 && (h->flags & FL_F_L4) && h->icmp_type >= 133 && h->icmp_type <= 137) {
        set_fate(c, k, FL_ACT_PUNT, FL_R_ND);
        continue;
      }
      int local = 0;
      for (uint32_t j = 0; j < t->n_local6; j++) local |= !memcmp(t->local6[j], h->dst, 16);
      if (local) {
        set_fate(c, k, FL_ACT_PUNT, FL_R_LOCAL);
      } else {
        memcpy(ip6[n6], h->dst, 16);
        k6[n6++] = k;
      }
    } else if (h->l3 == FL_L3_ARP) {
      set_fate(c, k, FL_ACT_PUNT, FL_R_ARP);
    } else {
      set_fate(c, k, s->c.lpm.non_ip_action, FL_R_NOT_IP);
    }
  }
  /* 2: the lookups, a burst at a time */
  if (n4) {
    if (t->lpm4)
      rte_fib_lookup_bulk(t->lpm4, ip4, res4, n4);
    else
      for (uint16_t j = 0; j < n4; j++) res4[j] = FIB_NO_ROUTE;
  }
  if (n6) {
    if (t->lpm6)
      rte_lpm6_lookup_bulk_func(t->lpm6, ip6, res6, n6);
    else
      memset(res6, 0xff, sizeof(int32_t) * n6);
  }
  /* 3: TTL, rewrite, output; each family in a loop of its own */
  if (hits)
    out = forward_all(s, t, c, k4, res4, res6, n4, 0, hits) +
          forward_all(s, t, c, k6, res4, res6, n6, 1, hits);
  else
    out = forward_all(s, t, c, k4, res4, res6, n4, 0, NULL) +
          forward_all(s, t, c, k6, res4, res6, n6, 1, NULL);
  c->in += in;
  c->out += out;
}
