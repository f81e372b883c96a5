/*
 * The ESP stage's SAs and SA table as fl_ipsec.c (their lifecycle, crypto devices) and
 * fl_stage_esp.c (the per-packet run) share them. Internal: includes DPDK headers (rte_security.h
 * needs ALLOW_EXPERIMENTAL_API defined before the first DPDK header of the file).
 */
#ifndef FL_IPSEC_SA_H
#define FL_IPSEC_SA_H

#include <stdint.h>

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

/* A version of a stage's SAs: never changed once published (a change builds the next one). */
struct esp_table {
  struct esp_ctx *ctx;
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

/* Frees a table version (not its SAs, not its ctx). */
void fl_esp_table_free(struct esp_table *t);

#endif
