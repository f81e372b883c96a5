/*
 * The ESP stage, tunnel mode (RFC 4303) on rte_ipsec. Outbound: each IP packet is encrypted in
 * the SA carrying its family and put in the SA's outer IPv4/IPv6 header behind the packet's own
 * Ethernet addresses. Inbound: each ESP packet is checked (fl_esp.h), found by SPI and outer
 * destination, decrypted, authenticated, replay-checked and decapsulated to the inner packet.
 * Consecutive packets of one SA go to rte_ipsec as one group: synchronous CPU crypto
 * (rte_cryptodev_sym_cpu_crypto_process inside rte_ipsec_pkt_cpu_prepare), or for a device
 * without it an enqueue/dequeue on the stage's own queue pair. A packet rte_ipsec refuses is
 * dropped with the reason its failure shows. Packets that come out are parsed again when a later
 * stage reads headers (fl_esp_conf.reparse), so it sees the new ones. One worker: rte_ipsec's
 * sequence and replay state has one writer.
 *
 * A stage may take only the packets of given input ports (fl_esp_conf.in_ports: a gateway's
 * outbound stage its protected port, its inbound stage its unprotected one), and may follow
 * policies (fl_esp_conf.spd, RFC 4301 5.1 and 5.2): outbound, the first policy matching a packet
 * protects it with its SA, lets it bypass or discards it (no policy: discarded); inbound, a clear
 * packet bypasses only by a bypass policy, and a decrypted one must match a protect policy of
 * the SA it came in (else it is dropped, esp_policy).
 */
#define ALLOW_EXPERIMENTAL_API /* rte_security.h's inline helpers (via rte_ipsec.h) */

#include <string.h>

#include <rte_byteorder.h>
#include <rte_cryptodev.h>
#include <rte_ip.h>
#include <rte_ipsec.h>
#include <rte_mbuf.h>

#include "fl_esp.h"
#include "fl_ipsec_sa.h"
#include "fl_stage.h"

/* What the stage keeps of a packet across rte_ipsec's reordering (indexed by hash.usr). */
struct esp_pkt {
  uint8_t mac[12];   /* the frame's Ethernet addresses, put back on the result */
  uint16_t data_off; /* inbound: data_off when handed over (a changed one was decapsulated) */
  uint32_t seq;      /* inbound: the sequence number's low 32 bits */
  uint32_t len;      /* the inner IP packet's length (outbound: before encryption) */
};

/* What a group's run is told: parse its output for a later stage; check it against policies. */
enum { ESP_REPARSE = 1, ESP_SPD = 2 };

static inline uint32_t ip_len(const uint8_t *ip, int v6) {
  return v6 ? 40u + (((uint32_t)ip[4] << 8) | ip[5]) : ((uint32_t)ip[2] << 8) | ip[3];
}

static inline void drop(struct stage_ctr *c, struct pkt *k, int reason) {
  set_fate(c, k, FL_ACT_DROP, reason);
}

/* Lookaside crypto for the k packets of s that prepare takes: the ops go through the stage's
 * queue pair and come back before this returns (software PMDs finish them at dequeue); an op
 * that failed marks its packet for rte_ipsec_pkt_process to refuse. Returns what prepare took. */
static int lookaside(const struct esp_table *t, struct esp_sa *s, struct rte_mbuf **mb,
                     uint16_t k) {
  struct rte_crypto_op *cop[FL_MAX_BURST];
  if (rte_crypto_op_bulk_alloc(t->ctx->op_pool, RTE_CRYPTO_OP_TYPE_SYMMETRIC, cop, k) == 0)
    return -1;
  uint16_t ok = rte_ipsec_pkt_crypto_prepare(&s->ss, mb, cop, k);
  if (s->zero_iv)
    for (uint16_t i = 0; i < ok; i++)
      memset(rte_crypto_op_ctod_offset(cop[i], uint8_t *, FL_ESP_IV_OFFSET), 0, 16);
  if (ok < k) rte_mempool_put_bulk(t->ctx->op_pool, (void **)(cop + ok), k - ok);
  uint8_t dev = s->ss.crypto.dev_id;
  uint16_t qp = (uint16_t)t->ctx->qp[dev];
  uint16_t enq = 0, deq = 0;
  struct rte_crypto_op *done[FL_MAX_BURST];
  while (deq < ok) {
    if (enq < ok) enq += rte_cryptodev_enqueue_burst(dev, qp, cop + enq, ok - enq);
    deq += rte_cryptodev_dequeue_burst(dev, qp, done + deq, enq - deq);
  }
  for (uint16_t i = 0; i < ok; i++) {
    if (done[i]->status != RTE_CRYPTO_OP_STATUS_SUCCESS)
      done[i]->sym->m_src->ol_flags |= RTE_MBUF_F_RX_SEC_OFFLOAD_FAILED;
  }
  rte_mempool_put_bulk(t->ctx->op_pool, (void **)done, ok);
  return ok;
}

/* What prepare took of the k packets (after their crypto), or -1 when none could be tried. */
static inline int crypto(const struct esp_table *t, struct esp_sa *s, struct rte_mbuf **mb,
                         uint16_t k) {
  return s->cpu ? rte_ipsec_pkt_cpu_prepare(&s->ss, mb, k) : lookaside(t, s, mb, k);
}

/* Drops a group that never reached crypto (no crypto op to be had). */
static void group_error(struct esp_sa *s, struct rte_mbuf **mb, uint16_t k, struct pkt *pk,
                        struct stage_ctr *c) {
  for (uint16_t j = 0; j < k; j++) drop(c, &pk[mb[j]->hash.usr], FL_R_ESP_ERROR);
  s->errors += k;
}

/* Whether a packet of len bytes would take s past its hard lifetime, counting the packets of
 * the group being gathered (which are counted only once crypto is done); else holds it. */
static inline int over_life(struct esp_sa *s, uint32_t len) {
  if (s->hard || (s->hard_packets && s->packets + s->pending >= s->hard_packets) ||
      (s->hard_bytes && s->bytes + s->pending_bytes >= s->hard_bytes)) {
    s->life++;
    s->hard = 1;
    return 1;
  }
  s->pending++;
  s->pending_bytes += len;
  return 0;
}

/* Counts a packet s passed and marks the soft / hard lifetime it reached. */
static inline void sa_count(struct esp_sa *s, uint32_t len) {
  s->packets++;
  s->bytes += len;
  if ((s->soft_packets && s->packets >= s->soft_packets) ||
      (s->soft_bytes && s->bytes >= s->soft_bytes))
    s->soft = 1;
  if ((s->hard_packets && s->packets >= s->hard_packets) ||
      (s->hard_bytes && s->bytes >= s->hard_bytes))
    s->hard = 1;
}

/* The policy a packet meets (counted); NULL when none matches (counted too). */
static inline const struct esp_spd_rule *policy_of(const struct esp_table *t,
                                                   const struct fl_parsed *h) {
  if (!t->spd) return NULL;
  const struct esp_spd_rule *r = esp_spd_match(t, h);
  t->spd->hits[r ? r->policy : t->spd->n_policies]++;
  return r;
}

/* Inbound, with policies: a decrypted packet (parsed again in h) must match first a protect
 * policy naming the SA it came in, or another SA of the same tunnel (RFC 4301 5.2 step 4): a
 * rekey's new inbound SA is taken before the policy names it, and the old one until it goes. */
static inline int inner_allowed(const struct esp_table *t, const struct esp_sa *s,
                                const struct fl_parsed *h) {
  if (h->l3 != FL_L3_IPV4 && h->l3 != FL_L3_IPV6) return 0;
  const struct esp_spd_rule *r = policy_of(t, h);
  if (!r || r->action != FL_ESP_PROTECT) return 0;
  const struct esp_sa *p = t->pol_sa[r - t->spd->rule];
  return p == s || (p && p->outer == s->outer && memcmp(p->outer_dst, s->outer_dst, 16) == 0 &&
                    memcmp(p->outer_src, s->outer_src, 16) == 0);
}

/* The k packets of s in mb, outbound: encrypt, encapsulate, put the MACs back. */
static void out_group(const struct esp_table *t, struct esp_sa *s, struct rte_mbuf **mb, uint16_t k,
                      struct pkt *pk, struct esp_pkt *ep, struct stage_ctr *c, int flags) {
  const int reparse = flags & ESP_REPARSE;
  /* Without ESN the sequence number must not cycle (RFC 4303 3.3.3): rte_ipsec prepares only
   * the packets that still get one and leaves the rest last; the SA is then used up. (It
   * stops one short, leaving 2^32 - 1 unused: its next number must stay within 32 bits.) */
  uint64_t left = s->esn ? k : (s->seq >= UINT32_MAX ? 0 : (uint64_t)UINT32_MAX - s->seq);
  uint16_t numbered = left < k ? (uint16_t)left : k;
  int r = crypto(t, s, mb, k);
  if (r < 0) return group_error(s, mb, k, pk, c);
  uint16_t ok = (uint16_t)r;
  s->seq += numbered;
  uint16_t good = rte_ipsec_pkt_process(&s->ss, mb, ok);
  for (uint16_t j = 0; j < k; j++) {
    struct rte_mbuf *m = mb[j];
    uint32_t i = m->hash.usr;
    if (j >= numbered) {
      s->life++;
      s->hard = 1;
      drop(c, &pk[i], FL_R_ESP_LIFETIME);
      continue;
    }
    if (j >= good) {
      s->errors++;
      drop(c, &pk[i], FL_R_ESP_ERROR);
      continue;
    }
    uint8_t *eth = rte_pktmbuf_mtod(m, uint8_t *);
    memcpy(eth, ep[i].mac, 12);
    if (s->outer == 4) {
      struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(eth + FL_ESP_ETH_LEN);
      ip->hdr_checksum = 0;
      ip->hdr_checksum = rte_ipv4_cksum(ip);
    }
    sa_count(s, ep[i].len);
    if (reparse) fl_parse(eth, m->data_len, &pk[i].h);
    c->out++;
  }
}

static inline uint64_t esn_of(const struct esp_sa *s, uint32_t seq) {
  /* RFC 4303 appendix A3, as rte_ipsec reconstructs it from the highest accepted number. */
  if (!s->esn) return seq;
  uint32_t tl = (uint32_t)s->seq, th = (uint32_t)(s->seq >> 32), w = s->win;
  uint32_t bl = tl - w + 1;
  if (tl >= w - 1)
    th += seq < bl;
  else if (th != 0)
    th -= seq >= bl;
  return (uint64_t)th << 32 | seq;
}

/* The anti-replay window (RFC 4303 3.4.3, as RFC 6479 keeps it in 64-bit buckets): 0 when sqn
 * may be accepted, -1 when it was seen or is left of the window. */
static inline int win_check(const struct esp_sa *s, uint64_t sqn) {
  if (!s->win || sqn > s->seq) return 0;
  if (sqn == 0 || sqn + s->win <= s->seq) return -1;
  return (s->rwin[(sqn >> 6) & s->rwin_mask] >> (sqn & 63)) & 1 ? -1 : 0;
}

/* Takes sqn into the window once its packet is authenticated; -1 when a packet before it took
 * it (one burst can hold a packet twice: both pass win_check before either is decrypted). */
static inline int win_update(struct esp_sa *s, uint64_t sqn) {
  if (win_check(s, sqn)) return -1;
  if (sqn > s->seq) {
    uint64_t from = s->seq >> 6, to = sqn >> 6;
    for (uint64_t b = from + 1; b <= to && b <= from + s->rwin_mask + 1; b++)
      s->rwin[b & s->rwin_mask] = 0;
    s->seq = sqn;
  }
  s->rwin[(sqn >> 6) & s->rwin_mask] |= 1ull << (sqn & 63);
  return 0;
}

/* The k packets of s in mb, inbound: decrypt, check, decapsulate; each refusal by its reason. */
static void in_group(const struct esp_table *t, struct esp_sa *s, struct rte_mbuf **mb, uint16_t k,
                     struct pkt *pk, struct esp_pkt *ep, struct stage_ctr *c, int flags) {
  const int reparse = flags & ESP_REPARSE, spd = flags & ESP_SPD;
  /* prepare refuses only a sequence number the window has seen (lengths and room were
   * checked); process refuses a failed ICV (flagged), a bad trailer (packet untouched) and a
   * number a packet before it in the group took (packet already decapsulated). */
  int r = crypto(t, s, mb, k);
  if (r < 0) return group_error(s, mb, k, pk, c);
  uint16_t ok = (uint16_t)r;
  uint16_t good = rte_ipsec_pkt_process(&s->ss, mb, ok);
  for (uint16_t j = 0; j < k; j++) {
    struct rte_mbuf *m = mb[j];
    uint32_t i = m->hash.usr;
    if (j >= good) {
      if (j >= ok || m->data_off != ep[i].data_off) {
        s->replay++;
        drop(c, &pk[i], FL_R_ESP_REPLAY);
      } else if (m->ol_flags & RTE_MBUF_F_RX_SEC_OFFLOAD_FAILED) {
        s->auth++;
        drop(c, &pk[i], FL_R_ESP_AUTH);
      } else {
        s->trailer++;
        drop(c, &pk[i], FL_R_ESP_TRAILER);
      }
      continue;
    }
    if (win_update(s, esn_of(s, ep[i].seq)) < 0) {
      s->replay++;
      drop(c, &pk[i], FL_R_ESP_REPLAY);
      continue;
    }
    uint8_t *eth = (uint8_t *)rte_pktmbuf_prepend(m, FL_ESP_ETH_LEN);
    uint32_t len = m->pkt_len - FL_ESP_ETH_LEN;
    if (!eth) { /* cannot happen: the outer headers freed more room than this */
      s->errors++;
      drop(c, &pk[i], FL_R_ESP_ERROR);
      continue;
    }
    memcpy(eth, ep[i].mac, 12);
    eth[12] = s->inner == 4 ? 0x08 : 0x86;
    eth[13] = s->inner == 4 ? 0x00 : 0xdd;
    m->l2_len = 0;
    m->l3_len = 0;
    if (reparse || spd) fl_parse(eth, m->data_len, &pk[i].h);
    if (spd && !inner_allowed(t, s, &pk[i].h)) {
      drop(c, &pk[i], FL_R_ESP_POLICY);
      continue;
    }
    sa_count(s, len);
    c->out++;
  }
}

typedef void (*group_fn)(const struct esp_table *, struct esp_sa *, struct rte_mbuf **, uint16_t,
                         struct pkt *, struct esp_pkt *, struct stage_ctr *, int);

/* An outbound packet: its SA, with the frame trimmed to its IP packet; NULL when dropped, or
 * when a policy lets it bypass (it passes untouched). */
static inline struct esp_sa *out_admit(const struct esp_table *t, struct stage_ctr *c,
                                       struct pkt *k, struct esp_pkt *e, int spd) {
  const struct fl_parsed *h = &k->h;
  if (h->l3 != FL_L3_IPV4 && h->l3 != FL_L3_IPV6) {
    drop(c, k, h->reason == FL_R_MALFORMED_L2 ? FL_R_MALFORMED_L2 : FL_R_NOT_IP);
    return NULL;
  }
  /* The inner packet's L4 is the peer's business; its IP header must hold up. */
  if (h->reason == FL_R_MALFORMED_L3 || h->reason == FL_R_BAD_EXT) {
    drop(c, k, h->reason);
    return NULL;
  }
  struct esp_sa *s = t->active[h->l3 == FL_L3_IPV6];
  if (spd) {
    const struct esp_spd_rule *r = policy_of(t, h);
    if (r && r->action == FL_ESP_BYPASS) {
      c->out++;
      return NULL;
    }
    if (!r || r->action == FL_ESP_DISCARD) {
      drop(c, k, FL_R_ESP_POLICY);
      return NULL;
    }
    s = t->pol_sa[r - t->spd->rule];
  }
  if (!s) {
    drop(c, k, FL_R_ESP_NO_SA);
    return NULL;
  }
  struct rte_mbuf *m = k->m;
  uint8_t *p = rte_pktmbuf_mtod(m, uint8_t *);
  e->len = ip_len(p + h->l3_off, h->l3 == FL_L3_IPV6);
  if (over_life(s, e->len)) {
    drop(c, k, FL_R_ESP_LIFETIME);
    return NULL;
  }
  if (m->data_len > h->l3_off + e->len) rte_pktmbuf_trim(m, m->data_len - (h->l3_off + e->len));
  memcpy(e->mac, p, 12);
  m->l2_len = h->l3_off; /* Ethernet and VLAN tags give way to the SA's header */
  m->l3_len = 0;
  return s;
}

/* An inbound packet: its SA, checked and laid out for rte_ipsec (outer IP header first); NULL
 * when dropped, or when a policy lets a clear packet bypass (it passes untouched). */
static inline struct esp_sa *in_admit(const struct esp_table *t, struct stage_ctr *c, struct pkt *k,
                                      struct esp_pkt *e, int spd) {
  struct rte_mbuf *m = k->m;
  const uint8_t *p = rte_pktmbuf_mtod(m, const uint8_t *);
  struct fl_esp_view v;
  int r = fl_esp_inspect(p, m->data_len, &k->h, &v);
  if (r == FL_R_NOT_ESP && spd && (k->h.l3 == FL_L3_IPV4 || k->h.l3 == FL_L3_IPV6)) {
    /* Clear traffic on the unprotected side: only a bypass policy lets it in. */
    const struct esp_spd_rule *pr = policy_of(t, &k->h);
    if (pr && pr->action == FL_ESP_BYPASS) {
      c->out++;
      return NULL;
    }
    r = FL_R_ESP_POLICY;
  }
  if (r != FL_R_OK) {
    drop(c, k, r);
    return NULL;
  }
  struct esp_sa *s = esp_lookup(t, v.spi);
  int v6 = k->h.l3 == FL_L3_IPV6;
  if (!s || s->outer != (v6 ? 6 : 4) || memcmp(k->h.dst, s->outer_dst, v6 ? 16 : 4) != 0) {
    drop(c, k, FL_R_ESP_NO_SA);
    return NULL;
  }
  if (fl_esp_check_len(&v, &s->shape) != FL_R_OK) {
    s->errors++;
    drop(c, k, FL_R_ESP_MALFORMED);
    return NULL;
  }
  if (win_check(s, esn_of(s, v.seq)) < 0) { /* before any crypto is spent on it */
    s->replay++;
    drop(c, k, FL_R_ESP_REPLAY);
    return NULL;
  }
  if (over_life(s, v.ip_end - v.esp_off)) {
    drop(c, k, FL_R_ESP_LIFETIME);
    return NULL;
  }
  /* rte_ipsec finds the ESP header at l2_len + l3_len, and l3_len has 9 bits: a longer IPv6
   * extension chain cannot be handed over. */
  if (v.esp_off - k->h.l3_off > 511) {
    s->errors++;
    drop(c, k, FL_R_ESP_MALFORMED);
    return NULL;
  }
  if (m->data_len > v.ip_end) rte_pktmbuf_trim(m, m->data_len - v.ip_end);
  /* rte_ipsec writes the ESN's high half and the AAD after the ICV. */
  if (rte_pktmbuf_tailroom(m) < 16 || m->nb_segs != 1) {
    s->errors++;
    drop(c, k, FL_R_ESP_ERROR);
    return NULL;
  }
  memcpy(e->mac, p, 12);
  e->seq = v.seq;
  rte_pktmbuf_adj(m, k->h.l3_off);
  m->l2_len = 0;
  m->l3_len = (uint16_t)(v.esp_off - k->h.l3_off);
  m->ol_flags &= ~(RTE_MBUF_F_RX_SEC_OFFLOAD | RTE_MBUF_F_RX_SEC_OFFLOAD_FAILED);
  m->packet_type = 0;
  e->data_off = m->data_off;
  return s;
}

void fl_esp_run(struct stage *st, struct stage_ctr *c, struct pkt *pk, uint16_t n,
                const struct burst *b) {
  const uint64_t ports = st->c.esp.in_ports;
  if (ports && (b->in_port >= 64 || !((ports >> b->in_port) & 1))) return; /* not its side */
  const struct esp_table *t = __atomic_load_n((struct esp_table **)&st->table, __ATOMIC_ACQUIRE);
  int out = t->ctx->dir == FL_ESP_OUTBOUND;
  const int spd = st->c.esp.spd;
  group_fn run = out ? out_group : in_group;
  const int flags = (st->c.esp.reparse ? ESP_REPARSE : 0) | (spd ? ESP_SPD : 0);
  struct esp_pkt ep[FL_MAX_BURST];
  struct rte_mbuf *mb[FL_MAX_BURST];
  struct esp_sa *cur = NULL;
  uint16_t k = 0;
  for (uint16_t i = 0; i < n; i++) {
    struct pkt *p = &pk[i];
    if (p->fate != FATE_FWD) continue;
    c->in++;
    struct esp_sa *s = out ? out_admit(t, c, p, &ep[i], spd) : in_admit(t, c, p, &ep[i], spd);
    if (!s) continue;
    if (s != cur && k) { /* a group is the run of one SA's packets: their order is kept */
      run(t, cur, mb, k, pk, ep, c, flags);
      cur->pending = 0;
      cur->pending_bytes = 0;
      k = 0;
    }
    cur = s;
    p->m->hash.usr = i;
    mb[k++] = p->m;
  }
  if (k) {
    run(t, cur, mb, k, pk, ep, c, flags);
    cur->pending = 0;
    cur->pending_bytes = 0;
  }
}
