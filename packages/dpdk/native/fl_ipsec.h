/*
 * The ESP stage's C API (the binding calls it; no DPDK header leaks through it): security
 * associations of an ESP stage in tunnel mode on rte_ipsec and rte_cryptodev, added and deleted
 * while the pipeline runs (the stage's SA table is swapped under RCU), and their counters.
 */
#ifndef FL_IPSEC_H
#define FL_IPSEC_H

#include <stdint.h>

#include "fl.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A stage encrypts (outbound) or decrypts (inbound); an SA has the direction of its stage. */
enum fl_esp_dir { FL_ESP_INBOUND = 0, FL_ESP_OUTBOUND = 1 };

enum fl_esp_alg {
  FL_ESP_AES_GCM_128 = 1,        /* RFC 4106: 16-byte key + 4-byte salt, 16-byte ICV */
  FL_ESP_AES_GCM_256 = 2,        /* 32-byte key + 4-byte salt */
  FL_ESP_AES_CBC_128_SHA256 = 3, /* RFC 3602 + RFC 4868 HMAC-SHA-256-128 (32-byte key) */
  FL_ESP_AES_CBC_256_SHA256 = 4,
};

/* SAs per ESP stage, and the most a stage's hash of SPIs holds. */
#define FL_ESP_MAX_SAS 1024
#define FL_ESP_MAX_WINDOW 4096

struct fl_esp_conf {
  uint8_t dir; /* enum fl_esp_dir */
  /* Set by fl_pipeline_start: a later stage reads parsed headers (all but l2fwd and burn), so
   * the stage parses what it made; otherwise that parse is skipped. */
  uint8_t reparse;
  /* Policies decide (fl_pipeline_esp_set_policies): outbound, which packets an SA protects,
   * which bypass and which are discarded; inbound, which clear packets bypass and that a
   * decrypted packet is one its SA protects. Without: outbound the newest SA of a family takes
   * every packet of it, inbound every packet must be ESP. */
  uint8_t spd;
  /* The input ports (bit per port id 0..63) whose packets the stage takes; the others pass it
   * untouched. 0: every port. */
  uint64_t in_ports;
};

/* ---- policies (an SPD, RFC 4301 4.4.1) of an ESP stage with spd set ---- */
enum fl_esp_policy_action { FL_ESP_DISCARD = 0, FL_ESP_BYPASS = 1, FL_ESP_PROTECT = 2 };

/* Native policy rules per stage: matched in order, first match wins (a linear scan). */
#define FL_ESP_MAX_POLICY_RULES 1024

/* A policy's selector for one family (a policy of both families is two rules), in the ACL's
 * rule layout (fl_acl_rule: action and priority unused), and what it does. */
struct fl_esp_policy_rule {
  struct fl_acl_rule m;
  uint32_t policy; /* the policy it belongs to: its counter */
  uint8_t action;  /* enum fl_esp_policy_action */
  uint32_t spi;    /* protect: the stage's SA (an SA that is gone: its packets are dropped) */
};

struct fl_esp_sa_conf {
  uint32_t spi;
  uint8_t alg;          /* enum fl_esp_alg */
  uint8_t inner_family; /* 4 or 6: the packets the tunnel carries */
  uint8_t outer_family; /* 4 or 6: the tunnel's own header */
  uint8_t esn;          /* 64-bit extended sequence numbers (RFC 4303 2.2.1) */
  uint8_t key_len;      /* bytes of key: the cipher key, for GCM followed by its 4-byte salt */
  uint8_t auth_key_len; /* bytes of auth_key (CBC: HMAC-SHA-256 key, 32) */
  uint8_t ttl;          /* outbound: outer TTL / hop limit (0: 64) */
  uint8_t key[36];
  uint8_t auth_key[32];
  /* Outbound: the outer header's addresses. Inbound: dst is checked against the packet's outer
   * destination (an SA is found by SPI and destination, RFC 4301 4.1). */
  uint8_t outer_src[16], outer_dst[16];
  uint32_t replay_window; /* inbound: packets, 0..FL_ESP_MAX_WINDOW (0: no replay check) */
  /* Outbound: the sequence number of the first packet (0: 1). Inbound: the highest sequence
   * number taken as already seen (0: none). Rekeying starts at 0; tests start near 2^32. */
  uint64_t seq;
  /* Lifetimes (0: none): past a soft limit the SA says so (the control side rekeys); at a hard
   * limit its packets are dropped (FL_R_ESP_LIFETIME). Bytes are inner packet bytes. */
  uint64_t soft_packets, hard_packets, soft_bytes, hard_bytes;
};

struct fl_esp_sa_counters {
  uint64_t packets, bytes; /* processed: encrypted (outbound) or decrypted and checked */
  uint64_t auth_failures, replays, lifetime_drops, trailer_errors, errors;
  uint64_t seq; /* outbound: the next sequence number; inbound: the highest seen */
  uint8_t soft_expired, hard_expired;
  uint8_t cpu_crypto; /* the SA runs on synchronous CPU crypto (else lookaside enqueue) */
  char device[64];    /* the crypto device it runs on */
};

int fl_pipeline_add_esp(struct fl_pipeline *p, const struct fl_esp_conf *c, char *err);
/* Adds an SA (checked: nothing changes on an error, which names the field). */
int fl_pipeline_esp_add_sa(struct fl_pipeline *p, int stage, const struct fl_esp_sa_conf *sa,
                           char *err);
/* Deletes an SA; its final counters in *last when not NULL. -ENOENT when there is no such SPI. */
int fl_pipeline_esp_del_sa(struct fl_pipeline *p, int stage, uint32_t spi,
                           struct fl_esp_sa_counters *last, char *err);
int fl_pipeline_esp_sa_counters(struct fl_pipeline *p, int stage, uint32_t spi,
                                struct fl_esp_sa_counters *out, char *err);
/* The SPIs of a stage's SAs in the order they were added; returns the count. */
int fl_pipeline_esp_spis(struct fl_pipeline *p, int stage, uint32_t *out, uint32_t max);
/* Replaces the stage's policies in one step (n rules of n_policies policies, in match order).
 * The old set's final packet counts go to retired (its n_policies + 1 values, the last: packets
 * no policy matched), which must hold max_retired; returns that count. Nothing changes on an
 * error, which names the rule. */
int fl_pipeline_esp_set_policies(struct fl_pipeline *p, int stage,
                                 const struct fl_esp_policy_rule *r, uint32_t n,
                                 uint32_t n_policies, uint64_t *retired, uint32_t max_retired,
                                 char *err);
/* Packets per policy of the current set (n_policies + 1 values, the last: no policy matched);
 * returns the count (-EINVAL: not an ESP stage). */
int fl_pipeline_esp_policy_hits(struct fl_pipeline *p, int stage, uint64_t *out, uint32_t max);

#ifdef __cplusplus
}
#endif
#endif
