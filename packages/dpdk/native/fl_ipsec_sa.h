/*
 * The ESP stage's SAs and SA table as fl_ipsec.c (their lifecycle, crypto devices) and
 * fl_stage_esp.c (the per-packet run) share them. Internal: includes DPDK headers (rte_security.h
 * needs ALLOW_EXPERIMENTAL_API defined before the first DPDK header of the file).
 */
#ifndef FL_IPSEC_SA_H
#define FL_IPSEC_SA_H

#include <stdint.h>
#include <string.h>

#include <rte_cryptodev.h>
#include <rte_ipsec.h>
#include <rte_mempool.h>

#include "fl_esp.h"
#include "fl_ipsec.h"

#define FL_ESP_ETH_LEN 14
/* Where the IV goes in a crypto op (lookaside), as DPDK's examples place it. */
#define FL_ESP_IV_OFFSET (sizeof(struct rte_crypto_op) + sizeof(struct rte_crypto_sym_op))
/* The stage's own anti-replay window, in 64-bit buckets (a power of two over 4096 / 64 + 1). */
#define FL_ESP_WIN_BUCKETS 128
#define FL_ESP_LOOKASIDE_DEVS 8 /* crypto devices a stage can enqueue to (lookaside) */

/* One SA. It outlives the table versions that list it: a deleted SA is freed only after the
 * table without it is in and every worker has passed a quiescent state. */
struct esp_sa {
  struct rte_ipsec_session ss;
  uint32_t spi;
  uint8_t dir, inner, outer; /* enum fl_esp_dir; families 4 / 6 */
  uint8_t cpu;               /* synchronous CPU crypto, else lookaside on ss.crypto.dev_id */
  uint8_t zero_iv;           /* outbound AES-CBC: the op's IV is zeroed (fl_ipsec.c sa_make) */
  struct fl_esp_shape shape;
  uint8_t outer_dst[16];
  uint8_t outer_src[16]; /* inbound: the peer's address as configured (policies compare tunnels) */
  uint64_t soft_packets, hard_packets, soft_bytes, hard_bytes;
  /* Written by the stage's one worker, read by the control thread (relaxed). */
  uint64_t packets, bytes, auth, replay, life, trailer, errors;
  uint8_t soft, hard;
  uint8_t esn;
  uint32_t pending; /* packets of the group being gathered: held against the lifetime */
  uint64_t pending_bytes;
  uint32_t win; /* inbound: the replay window in packets (ESN: at least 64), 0: none */
  uint64_t seq; /* outbound: the next sequence number; inbound: the highest accepted */
  /* Inbound: the stage keeps the anti-replay window itself. DPDK 22.11's rte_ipsec (to this
   * day) sets a seen packet's bit through a uint32_t (esn_inb_update_sqn in ipsec_sqn.h), so
   * for sequence numbers whose low 6 bits are 32..63 no bit is ever set and their replays pass.
   * rte_ipsec's window is off without ESN and kept (at 64) with it for the ESN's high half. */
  uint32_t rwin_mask;
  uint64_t rwin[FL_ESP_WIN_BUCKETS];
  char dev_name[64];
} __rte_cache_aligned;

/* What an ESP stage keeps across its table versions: lookaside crypto's op pool and the queue
 * pair it took on each device. */
struct esp_ctx {
  uint8_t dir;
  struct rte_mempool *op_pool; /* made at the first lookaside SA */
  int16_t qp[FL_ESP_LOOKASIDE_DEVS];
};

/* A policy rule as the stage matches it: masks made from the prefix lengths, ports in host order.
 */
struct esp_spd_rule {
  /* The prefixes as two 64-bit words each in packet byte order (IPv4: the first 4 bytes), the
   * network address already masked, so that a rule is four masked compares. */
  uint64_t src[2], src_mask[2], dst[2], dst_mask[2];
  uint16_t sp_lo, sp_hi, dp_lo, dp_hi;
  uint8_t family, proto, proto_mask, action;
  uint32_t policy, spi;
};

/* A stage's policy set: shared by the table versions an SA change makes, replaced whole. */
struct esp_spd {
  uint32_t n, n_policies;
  struct esp_spd_rule *rule;
  uint64_t *hits; /* per policy, then packets no policy matched; the stage's one worker writes */
};

/* A version of a stage's SAs: never changed once published (a change builds the next one). */
struct esp_table {
  struct esp_ctx *ctx;
  struct esp_spd *spd;      /* NULL: the stage has no policies (fl_esp_conf.spd unset) */
  struct esp_sa **pol_sa;   /* per policy rule: a protect rule's SA in this version, or NULL */
  struct esp_sa *active[2]; /* outbound: the newest SA per inner family (IPv4, IPv6) */
  uint32_t mask;            /* inbound lookup: slots by SPI, open addressing */
  struct esp_sa **slots;
  uint32_t n;
  struct esp_sa *sa[FL_ESP_MAX_SAS]; /* in the order they were added */
};

/* An SA's slot for spi in t, or NULL. */
static inline struct esp_sa *esp_lookup(const struct esp_table *t, uint32_t spi) {
  uint32_t h = (spi * 0x9e3779b1u) & t->mask;
  for (;;) {
    struct esp_sa *s = t->slots[h];
    if (!s || s->spi == spi) return s;
    h = (h + 1) & t->mask;
  }
}

/* The first policy rule of t matching h (an IPv4 or IPv6 packet), or NULL. */
static inline const struct esp_spd_rule *esp_spd_match(const struct esp_table *t,
                                                       const struct fl_parsed *h) {
  const struct esp_spd *spd = t->spd;
  const uint8_t fam = h->l3 == FL_L3_IPV6 ? 6 : 4;
  const uint16_t sp = (uint16_t)(h->sport >> 8 | h->sport << 8);
  const uint16_t dp = (uint16_t)(h->dport >> 8 | h->dport << 8);
  uint64_t src[2], dst[2]; /* an IPv4 rule's masks are 0 past its 4 bytes */
  memcpy(src, h->src, 16);
  memcpy(dst, h->dst, 16);
  for (uint32_t i = 0; i < spd->n; i++) {
    const struct esp_spd_rule *r = &spd->rule[i];
    const uint64_t diff =
        ((src[0] & r->src_mask[0]) ^ r->src[0]) | ((src[1] & r->src_mask[1]) ^ r->src[1]) |
        ((dst[0] & r->dst_mask[0]) ^ r->dst[0]) | ((dst[1] & r->dst_mask[1]) ^ r->dst[1]);
    if (diff || r->family != fam || (h->proto & r->proto_mask) != r->proto) continue;
    if (sp < r->sp_lo || sp > r->sp_hi || dp < r->dp_lo || dp > r->dp_hi) continue;
    return r;
  }
  return NULL;
}

/* Frees a table version (not its SAs, not its ctx, not its policies). */
void fl_esp_table_free(struct esp_table *t);

#endif
