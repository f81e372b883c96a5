/*
 * ESP SAs on rte_ipsec and rte_cryptodev: the crypto devices (configured once, at the first SA
 * that needs them), an SA's checks, its crypto session and rte_ipsec objects, and the stage's SA
 * table, rebuilt on every add or delete and swapped in under the pipeline's RCU so that the
 * worker never sees a half-made table or a freed SA.
 */
#define ALLOW_EXPERIMENTAL_API /* rte_cryptodev_sym_session_pool_create is experimental in 22.11 \
                                */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include <rte_common.h>
#include <rte_crypto.h>
#include <rte_cryptodev.h>
#include <rte_errno.h>
#include <rte_ipsec.h>
#include <rte_lcore.h>
#include <rte_malloc.h>

#include "fl.h"
#include "fl_ipsec.h"
#include "fl_ipsec_sa.h"
#include "fl_stage.h"
#include "fl_worker.h"

#define fail fl_fail

#define ESP_QP_DESC 2048
#define ESP_SESSIONS 4096

/* ---- crypto devices: one set per process, configured at first use ---- */
static struct {
  uint8_t ready;
  uint16_t n_qp;    /* queue pairs set up (at most 8) */
  uint8_t qp_taken; /* a bit per queue pair an ESP stage holds (lookaside) */
} devs[RTE_CRYPTO_MAX_DEVS];
static struct rte_mempool *sess_pool;
static unsigned live_stages; /* ESP stages not yet freed: the last one stops the devices */

/* No ESP stage left: the devices are stopped (EAL cleanup closes only stopped ones) and set up
 * again by the next SA that needs them. */
static void devices_release(void) {
  for (uint8_t d = 0; d < RTE_CRYPTO_MAX_DEVS; d++) {
    if (devs[d].ready) rte_cryptodev_stop(d);
    memset(&devs[d], 0, sizeof(devs[d]));
  }
  rte_mempool_free(sess_pool);
  sess_pool = NULL;
}

static int sess_pool_make(char *err) {
  if (sess_pool) return 0;
  unsigned sz = 0;
  for (uint8_t d = 0; d < rte_cryptodev_count(); d++)
    sz = RTE_MAX(sz, rte_cryptodev_sym_get_private_session_size(d));
  if (sz == 0) return fail(err, -ENODEV, "no crypto device: give EAL a --vdev crypto_aesni_mb0");
  sess_pool =
      rte_cryptodev_sym_session_pool_create("fl_esp_sess", ESP_SESSIONS, sz, 0, 0, SOCKET_ID_ANY);
  if (!sess_pool) return fail(err, -rte_errno, "crypto session pool of %u sessions", ESP_SESSIONS);
  return 0;
}

static int dev_ready(uint8_t d, char *err) {
  if (devs[d].ready) return 0;
  struct rte_cryptodev_info info;
  rte_cryptodev_info_get(d, &info);
  int socket = rte_cryptodev_socket_id(d);
  if (socket < 0) socket = (int)rte_socket_id();
  uint16_t nqp = (uint16_t)RTE_MIN(info.max_nb_queue_pairs, 8u);
  struct rte_cryptodev_config cc = {.socket_id = socket, .nb_queue_pairs = nqp};
  int rc = rte_cryptodev_configure(d, &cc);
  if (rc < 0) return fail(err, rc, "rte_cryptodev_configure(%s)", rte_cryptodev_name_get(d));
  struct rte_cryptodev_qp_conf qc = {.nb_descriptors = ESP_QP_DESC, .mp_session = sess_pool};
  for (uint16_t q = 0; q < nqp; q++) {
    rc = rte_cryptodev_queue_pair_setup(d, q, &qc, socket);
    if (rc < 0)
      return fail(err, rc, "rte_cryptodev_queue_pair_setup(%s, %u)", rte_cryptodev_name_get(d), q);
  }
  rc = rte_cryptodev_start(d);
  if (rc < 0) return fail(err, rc, "rte_cryptodev_start(%s)", rte_cryptodev_name_get(d));
  devs[d].ready = 1;
  devs[d].n_qp = nqp;
  return 0;
}

/* Whether device d can run the xform chain x (AES-GCM, or AES-CBC then / after HMAC-SHA-256). */
static int dev_can(uint8_t d, const struct rte_crypto_sym_xform *x) {
  for (; x; x = x->next) {
    struct rte_cryptodev_sym_capability_idx idx = {.type = x->type};
    const struct rte_cryptodev_symmetric_capability *cap;
    if (x->type == RTE_CRYPTO_SYM_XFORM_AEAD) {
      idx.algo.aead = x->aead.algo;
      cap = rte_cryptodev_sym_capability_get(d, &idx);
      if (!cap ||
          rte_cryptodev_sym_capability_check_aead(cap, x->aead.key.length, x->aead.digest_length,
                                                  x->aead.aad_length, x->aead.iv.length))
        return 0;
    } else if (x->type == RTE_CRYPTO_SYM_XFORM_CIPHER) {
      idx.algo.cipher = x->cipher.algo;
      cap = rte_cryptodev_sym_capability_get(d, &idx);
      if (!cap ||
          rte_cryptodev_sym_capability_check_cipher(cap, x->cipher.key.length, x->cipher.iv.length))
        return 0;
    } else {
      idx.algo.auth = x->auth.algo;
      cap = rte_cryptodev_sym_capability_get(d, &idx);
      if (!cap || rte_cryptodev_sym_capability_check_auth(cap, x->auth.key.length,
                                                          x->auth.digest_length, 0))
        return 0;
    }
  }
  return 1;
}

/* The device for x: the first with synchronous CPU crypto that can run it, else the first that
 * can at all (lookaside: crypto_openssl). -ENODEV when none can. */
static int pick_dev(const struct rte_crypto_sym_xform *x, int *cpu) {
  int any = -1;
  for (uint8_t d = 0; d < rte_cryptodev_count(); d++) {
    if (!dev_can(d, x)) continue;
    struct rte_cryptodev_info info;
    rte_cryptodev_info_get(d, &info);
    if (info.feature_flags & RTE_CRYPTODEV_FF_SYM_CPU_CRYPTO) {
      *cpu = 1;
      return d;
    }
    if (any < 0) any = d;
  }
  *cpu = 0;
  return any < 0 ? -ENODEV : any;
}

/* ---- SA checks: the error names the field (the TypeScript names) ---- */
static const char *alg_name(uint8_t alg) {
  switch (alg) {
  case FL_ESP_AES_GCM_128:
    return "aes-gcm-128";
  case FL_ESP_AES_GCM_256:
    return "aes-gcm-256";
  case FL_ESP_AES_CBC_128_SHA256:
    return "aes-cbc-128-hmac-sha256";
  case FL_ESP_AES_CBC_256_SHA256:
    return "aes-cbc-256-hmac-sha256";
  }
  return NULL;
}

static int is_gcm(uint8_t alg) { return alg == FL_ESP_AES_GCM_128 || alg == FL_ESP_AES_GCM_256; }

static int check_sa(const struct esp_table *t, const struct fl_esp_sa_conf *c, char *err) {
  if (c->spi < 256) return fail(err, -EINVAL, "spi: %u is reserved (use 256 or more)", c->spi);
  if (esp_lookup(t, c->spi))
    return fail(err, -EEXIST, "spi: the stage has an SA with SPI %u already", c->spi);
  if (t->n >= FL_ESP_MAX_SAS) return fail(err, -ENOSPC, "spi: at most %d SAs", FL_ESP_MAX_SAS);
  const char *an = alg_name(c->alg);
  if (!an) return fail(err, -EINVAL, "alg: unknown algorithm %u", c->alg);
  unsigned key = (c->alg == FL_ESP_AES_GCM_128 || c->alg == FL_ESP_AES_CBC_128_SHA256) ? 16 : 32;
  if (is_gcm(c->alg)) key += 4; /* RFC 4106: the salt follows the key */
  if (c->key_len != key)
    return fail(err, -EINVAL, "key: %s takes %u bytes%s, got %u", an, key,
                is_gcm(c->alg) ? " (key, then 4-byte salt)" : "", c->key_len);
  unsigned akey = is_gcm(c->alg) ? 0 : 32;
  if (c->auth_key_len != akey)
    return fail(err, -EINVAL, "authKey: %s takes %u bytes, got %u", an, akey, c->auth_key_len);
  if (c->inner_family != 4 && c->inner_family != 6)
    return fail(err, -EINVAL, "innerFamily: must be 4 or 6, got %u", c->inner_family);
  if (c->outer_family != 4 && c->outer_family != 6)
    return fail(err, -EINVAL, "outerFamily: must be 4 or 6, got %u", c->outer_family);
  if (c->replay_window > FL_ESP_MAX_WINDOW)
    return fail(err, -EINVAL, "replayWindow: at most %d, got %u", FL_ESP_MAX_WINDOW,
                c->replay_window);
  if (!c->esn && c->seq > UINT32_MAX) return fail(err, -EINVAL, "seq: over 2^32 - 1 without ESN");
  if (c->hard_packets && c->soft_packets > c->hard_packets)
    return fail(err, -EINVAL, "softPackets: over hardPackets");
  if (c->hard_bytes && c->soft_bytes > c->hard_bytes)
    return fail(err, -EINVAL, "softBytes: over hardBytes");
  return 0;
}

/* ---- an SA's rte_ipsec and crypto objects ---- */
static void sa_free(struct esp_sa *s) {
  if (!s) return;
  if (s->ss.crypto.ses) rte_cryptodev_sym_session_free(s->ss.crypto.dev_id, s->ss.crypto.ses);
  if (s->ss.sa) {
    rte_ipsec_sa_fini(s->ss.sa);
    rte_free(s->ss.sa);
  }
  rte_free(s);
}

/* The crypto xforms of c in dir: AEAD alone, or cipher then auth (outbound), auth then cipher
 * (inbound), as rte_ipsec wants them. */
static void sa_xforms(const struct fl_esp_sa_conf *c, uint8_t dir, struct rte_crypto_sym_xform x[2],
                      uint8_t key[32]) {
  memset(x, 0, 2 * sizeof(x[0]));
  if (is_gcm(c->alg)) {
    unsigned klen = c->key_len - 4u;
    memcpy(key, c->key, klen);
    x[0].type = RTE_CRYPTO_SYM_XFORM_AEAD;
    x[0].aead.algo = RTE_CRYPTO_AEAD_AES_GCM;
    x[0].aead.op = dir == FL_ESP_OUTBOUND ? RTE_CRYPTO_AEAD_OP_ENCRYPT : RTE_CRYPTO_AEAD_OP_DECRYPT;
    x[0].aead.key.data = key;
    x[0].aead.key.length = (uint16_t)klen;
    x[0].aead.iv.offset = FL_ESP_IV_OFFSET;
    x[0].aead.iv.length = 12;
    x[0].aead.aad_length = c->esn ? 12 : 8; /* SPI + sequence number (RFC 4106 5) */
    x[0].aead.digest_length = 16;
    return;
  }
  memcpy(key, c->key, c->key_len);
  struct rte_crypto_sym_xform *ci = dir == FL_ESP_OUTBOUND ? &x[0] : &x[1];
  struct rte_crypto_sym_xform *au = dir == FL_ESP_OUTBOUND ? &x[1] : &x[0];
  ci->type = RTE_CRYPTO_SYM_XFORM_CIPHER;
  ci->cipher.algo = RTE_CRYPTO_CIPHER_AES_CBC;
  ci->cipher.op =
      dir == FL_ESP_OUTBOUND ? RTE_CRYPTO_CIPHER_OP_ENCRYPT : RTE_CRYPTO_CIPHER_OP_DECRYPT;
  ci->cipher.key.data = key;
  ci->cipher.key.length = c->key_len;
  ci->cipher.iv.offset = FL_ESP_IV_OFFSET;
  ci->cipher.iv.length = 16;
  au->type = RTE_CRYPTO_SYM_XFORM_AUTH;
  au->auth.algo = RTE_CRYPTO_AUTH_SHA256_HMAC;
  au->auth.op = dir == FL_ESP_OUTBOUND ? RTE_CRYPTO_AUTH_OP_GENERATE : RTE_CRYPTO_AUTH_OP_VERIFY;
  au->auth.key.data = c->auth_key;
  au->auth.key.length = c->auth_key_len;
  au->auth.digest_length = 16; /* RFC 4868: HMAC-SHA-256-128 */
  x[0].next = &x[1];
}

/* The outbound tunnel header template: Ethernet (its MACs are the packet's own, put back after
 * encryption) and the outer IPv4 / IPv6 header; rte_ipsec fills lengths and the IPv4 id. */
static uint8_t tun_header(const struct fl_esp_sa_conf *c, uint8_t *h) {
  memset(h, 0, FL_ESP_ETH_LEN + 40);
  uint8_t *ip = h + FL_ESP_ETH_LEN;
  uint8_t ttl = c->ttl ? c->ttl : 64;
  if (c->outer_family == 4) {
    h[12] = 0x08;
    ip[0] = 0x45;
    ip[8] = ttl;
    ip[9] = IPPROTO_ESP;
    memcpy(ip + 12, c->outer_src, 4);
    memcpy(ip + 16, c->outer_dst, 4);
    return FL_ESP_ETH_LEN + 20;
  }
  h[12] = 0x86;
  h[13] = 0xdd;
  ip[0] = 0x60;
  ip[6] = IPPROTO_ESP;
  ip[7] = ttl;
  memcpy(ip + 8, c->outer_src, 16);
  memcpy(ip + 24, c->outer_dst, 16);
  return FL_ESP_ETH_LEN + 40;
}

static struct esp_sa *sa_make(struct esp_ctx *ctx, const struct fl_esp_sa_conf *c, char *err) {
  struct esp_sa *s = rte_zmalloc("fl_esp_sa", sizeof(*s), RTE_CACHE_LINE_SIZE);
  if (!s) {
    fail(err, -ENOMEM, "SA %u", c->spi);
    return NULL;
  }
  s->spi = c->spi;
  s->dir = ctx->dir;
  s->inner = c->inner_family;
  s->outer = c->outer_family;
  memcpy(s->outer_dst, c->outer_dst, 16);
  memcpy(s->outer_src, c->outer_src, 16);
  s->soft_packets = c->soft_packets;
  s->hard_packets = c->hard_packets;
  s->soft_bytes = c->soft_bytes;
  s->hard_bytes = c->hard_bytes;
  /* rte_ipsec keeps its own sequence state (opaque); the stage mirrors it for the counters. */
  s->seq = ctx->dir == FL_ESP_OUTBOUND ? (c->seq > 1 ? c->seq : 1) : c->seq;
  s->win = c->esn ? RTE_MAX(c->replay_window, 64u) : c->replay_window;
  s->rwin_mask = rte_align32pow2((s->win + 63) / 64 + 1) - 1;
  s->esn = c->esn;
  s->shape = is_gcm(c->alg) ? (struct fl_esp_shape){8, 16, 4} : (struct fl_esp_shape){16, 16, 16};

  struct rte_crypto_sym_xform x[2];
  uint8_t key[32];
  sa_xforms(c, ctx->dir, x, key);
  int cpu;
  int d = pick_dev(&x[0], &cpu);
  if (d < 0) {
    fail(err, -ENODEV,
         "alg: no crypto device runs %s (give EAL --vdev crypto_aesni_gcm0, crypto_aesni_mb0 or "
         "crypto_openssl0)",
         alg_name(c->alg));
    goto bad;
  }
  if (ctx->dir == FL_ESP_OUTBOUND && !is_gcm(c->alg)) {
    /* rte_ipsec encrypts an outbound AES-CBC packet from the IV field it wrote (the sequence
     * number) on, chained from an op IV: with CPU crypto that IV is the sequence number too, so
     * the first block is E(K, 0) and every packet of the SA carries the same IV on the wire
     * (esp-interop.test.ts saw it). Lookaside with a zero op IV makes the wire IV
     * E(K, sequence number), unique and unpredictable without K (NIST SP 800-38A appendix C). */
    cpu = 0;
    s->zero_iv = 1;
  }
  if (!cpu && d >= FL_ESP_LOOKASIDE_DEVS) {
    fail(err, -ENODEV, "alg: crypto device %d is past the first %d", d, FL_ESP_LOOKASIDE_DEVS);
    goto bad;
  }
  if (sess_pool_make(err) < 0 || dev_ready((uint8_t)d, err) < 0) goto bad;
  snprintf(s->dev_name, sizeof(s->dev_name), "%s", rte_cryptodev_name_get((uint8_t)d));
  if (!cpu) {
    /* Lookaside: the stage's own queue pair on the device (one worker enqueues to it) and an
     * op pool for a burst. */
    if (ctx->qp[d] < 0) {
      uint16_t q = 0;
      while (q < devs[d].n_qp && (devs[d].qp_taken >> q) & 1) q++;
      if (q == devs[d].n_qp) {
        fail(err, -ENOSPC, "alg: every queue pair of %s is taken", s->dev_name);
        goto bad;
      }
      devs[d].qp_taken |= (uint8_t)(1u << q);
      ctx->qp[d] = (int16_t)q;
    }
    if (!ctx->op_pool) {
      char name[64];
      static unsigned seq;
      snprintf(name, sizeof(name), "fl_esp_ops_%u", __atomic_fetch_add(&seq, 1, __ATOMIC_RELAXED));
      ctx->op_pool = rte_crypto_op_pool_create(name, RTE_CRYPTO_OP_TYPE_SYMMETRIC, 2 * FL_MAX_BURST,
                                               0, 16, (int)rte_socket_id());
      if (!ctx->op_pool) {
        fail(err, -rte_errno, "crypto op pool");
        goto bad;
      }
    }
  }
  s->cpu = (uint8_t)cpu;
  s->ss.crypto.dev_id = (uint8_t)d;
  s->ss.crypto.ses = rte_cryptodev_sym_session_create((uint8_t)d, x, sess_pool);
  explicit_bzero(key, sizeof(key)); /* the session holds its own copy */
  if (!s->ss.crypto.ses) {
    fail(err, -rte_errno, "key: %s refused the session (%s)", s->dev_name, alg_name(c->alg));
    goto bad;
  }

  uint8_t hdr[FL_ESP_ETH_LEN + 40];
  struct rte_ipsec_sa_prm prm;
  memset(&prm, 0, sizeof(prm));
  prm.ipsec_xform.spi = c->spi;
  if (is_gcm(c->alg)) memcpy(&prm.ipsec_xform.salt, c->key + c->key_len - 4, 4); /* wire order */
  prm.ipsec_xform.options.esn = c->esn;
  prm.ipsec_xform.direction = ctx->dir == FL_ESP_OUTBOUND ? RTE_SECURITY_IPSEC_SA_DIR_EGRESS
                                                          : RTE_SECURITY_IPSEC_SA_DIR_INGRESS;
  prm.ipsec_xform.proto = RTE_SECURITY_IPSEC_SA_PROTO_ESP;
  prm.ipsec_xform.mode = RTE_SECURITY_IPSEC_SA_MODE_TUNNEL;
  prm.ipsec_xform.tunnel.type =
      c->outer_family == 4 ? RTE_SECURITY_IPSEC_TUNNEL_IPV4 : RTE_SECURITY_IPSEC_TUNNEL_IPV6;
  /* The stage's own window decides (fl_ipsec_sa.h); rte_ipsec's only with ESN, which needs it. */
  prm.ipsec_xform.replay_win_sz = ctx->dir == FL_ESP_INBOUND && c->esn ? s->win : 0;
  prm.ipsec_xform.esn.value = c->seq;
  prm.crypto_xform = &x[0];
  prm.tun.next_proto = c->inner_family == 4 ? IPPROTO_IPIP : IPPROTO_IPV6;
  if (ctx->dir == FL_ESP_OUTBOUND) {
    prm.tun.hdr_len = tun_header(c, hdr);
    prm.tun.hdr_l3_off = FL_ESP_ETH_LEN;
    prm.tun.hdr = hdr;
  }
  int sz = rte_ipsec_sa_size(&prm);
  if (sz < 0) {
    fail(err, sz, "rte_ipsec_sa_size(SA %u)", c->spi);
    goto bad;
  }
  s->ss.sa = rte_zmalloc("fl_esp_ipsec_sa", (size_t)sz, RTE_CACHE_LINE_SIZE);
  if (!s->ss.sa) {
    fail(err, -ENOMEM, "rte_ipsec_sa of %d bytes", sz);
    goto bad;
  }
  int rc = rte_ipsec_sa_init(s->ss.sa, &prm, (uint32_t)sz);
  if (rc < 0) {
    rte_free(s->ss.sa);
    s->ss.sa = NULL;
    fail(err, rc, "rte_ipsec_sa_init(SA %u)", c->spi);
    goto bad;
  }
  s->ss.type = cpu ? RTE_SECURITY_ACTION_TYPE_CPU_CRYPTO : RTE_SECURITY_ACTION_TYPE_NONE;
  rc = rte_ipsec_session_prepare(&s->ss);
  if (rc < 0) {
    fail(err, rc, "rte_ipsec_session_prepare(SA %u on %s)", c->spi, s->dev_name);
    goto bad;
  }
  return s;
bad:
  explicit_bzero(key, sizeof(key));
  sa_free(s);
  return NULL;
}

/* ---- tables ---- */
static struct esp_table *table_build(struct esp_ctx *ctx, struct esp_spd *spd,
                                     struct esp_sa *const *sas, uint32_t n, char *err) {
  struct esp_table *t = calloc(1, sizeof(*t));
  uint32_t slots = 16;
  while (slots < 2 * n) slots <<= 1; /* at most half full: short probes */
  if (t) t->slots = calloc(slots, sizeof(*t->slots));
  if (t && t->slots && spd) t->pol_sa = calloc(spd->n ? spd->n : 1, sizeof(*t->pol_sa));
  if (!t || !t->slots || (spd && !t->pol_sa)) {
    if (t) fl_esp_table_free(t);
    fail(err, -ENOMEM, "SA table of %u SAs", n);
    return NULL;
  }
  t->ctx = ctx;
  t->spd = spd;
  t->mask = slots - 1;
  t->n = n;
  for (uint32_t i = 0; i < n; i++) {
    struct esp_sa *s = sas[i];
    t->sa[i] = s;
    uint32_t h = (s->spi * 0x9e3779b1u) & t->mask;
    while (t->slots[h]) h = (h + 1) & t->mask;
    t->slots[h] = s;
    t->active[s->inner == 6] = s; /* the newest SA of a family carries it (rekey) */
  }
  /* A protect rule's SA in this version; one that is gone (deleted, hard lifetime) is NULL and
   * the rule's packets are dropped, as is an SA of the other family. */
  for (uint32_t i = 0; spd && i < spd->n; i++) {
    const struct esp_spd_rule *r = &spd->rule[i];
    struct esp_sa *s = r->action == FL_ESP_PROTECT ? esp_lookup(t, r->spi) : NULL;
    t->pol_sa[i] = s && s->inner == r->family ? s : NULL;
  }
  return t;
}

static void spd_free(struct esp_spd *spd) {
  if (!spd) return;
  free(spd->rule);
  free(spd->hits);
  free(spd);
}

struct esp_table *fl_esp_table_new(uint8_t dir, char *err) {
  if (dir != FL_ESP_INBOUND && dir != FL_ESP_OUTBOUND) {
    fail(err, -EINVAL, "direction: must be inbound or outbound");
    return NULL;
  }
  struct esp_ctx *ctx = calloc(1, sizeof(*ctx));
  if (!ctx) {
    fail(err, -ENOMEM, "ESP stage");
    return NULL;
  }
  ctx->dir = dir;
  for (int i = 0; i < FL_ESP_LOOKASIDE_DEVS; i++) ctx->qp[i] = -1;
  struct esp_table *t = table_build(ctx, NULL, NULL, 0, err);
  if (!t)
    free(ctx);
  else
    live_stages++;
  return t;
}

void fl_esp_table_free(struct esp_table *t) {
  if (!t) return;
  free(t->slots);
  free(t->pol_sa);
  free(t);
}

void fl_esp_table_free_all(struct esp_table *t) {
  if (!t) return;
  for (uint32_t i = 0; i < t->n; i++) sa_free(t->sa[i]);
  if (t->ctx) {
    rte_mempool_free(t->ctx->op_pool);
    for (int d = 0; d < FL_ESP_LOOKASIDE_DEVS; d++) /* its queue pairs go back */
      if (t->ctx->qp[d] >= 0) devs[d].qp_taken &= (uint8_t) ~(1u << t->ctx->qp[d]);
  }
  free(t->ctx);
  spd_free(t->spd);
  fl_esp_table_free(t);
  if (--live_stages == 0) devices_release();
}

/* The stage's table (control thread: it is the only writer of the stage's table pointer). */
static struct esp_table *stage_table(struct fl_pipeline *p, int s, char *err) {
  if (s < 0 || s >= p->n_stages || p->stages[s].type != FL_STAGE_ESP) {
    fail(err, -EINVAL, "stage %d is not an ESP stage", s);
    return NULL;
  }
  return p->stages[s].table;
}

int fl_pipeline_esp_add_sa(struct fl_pipeline *p, int stage, const struct fl_esp_sa_conf *c,
                           char *err) {
  struct esp_table *t = stage_table(p, stage, err);
  if (!t) return -EINVAL;
  int rc = check_sa(t, c, err);
  if (rc < 0) return rc;
  struct esp_sa *s = sa_make(t->ctx, c, err);
  if (!s) return -EINVAL;
  struct esp_sa *sas[FL_ESP_MAX_SAS];
  memcpy(sas, t->sa, t->n * sizeof(sas[0]));
  sas[t->n] = s;
  struct esp_table *nt = table_build(t->ctx, t->spd, sas, t->n + 1, err);
  if (!nt) {
    sa_free(s);
    return -ENOMEM;
  }
  fl_esp_table_free(fl_pipeline_swap_stage(p, stage, nt));
  return 0;
}

static void read_counters(const struct esp_sa *s, struct fl_esp_sa_counters *o) {
  memset(o, 0, sizeof(*o));
  o->packets = __atomic_load_n(&s->packets, __ATOMIC_RELAXED);
  o->bytes = __atomic_load_n(&s->bytes, __ATOMIC_RELAXED);
  o->auth_failures = __atomic_load_n(&s->auth, __ATOMIC_RELAXED);
  o->replays = __atomic_load_n(&s->replay, __ATOMIC_RELAXED);
  o->lifetime_drops = __atomic_load_n(&s->life, __ATOMIC_RELAXED);
  o->trailer_errors = __atomic_load_n(&s->trailer, __ATOMIC_RELAXED);
  o->errors = __atomic_load_n(&s->errors, __ATOMIC_RELAXED);
  o->soft_expired = __atomic_load_n(&s->soft, __ATOMIC_RELAXED);
  o->hard_expired = __atomic_load_n(&s->hard, __ATOMIC_RELAXED);
  o->cpu_crypto = s->cpu;
  snprintf(o->device, sizeof(o->device), "%s", s->dev_name);
  o->seq = __atomic_load_n(&s->seq, __ATOMIC_RELAXED);
}

int fl_pipeline_esp_del_sa(struct fl_pipeline *p, int stage, uint32_t spi,
                           struct fl_esp_sa_counters *last, char *err) {
  struct esp_table *t = stage_table(p, stage, err);
  if (!t) return -EINVAL;
  struct esp_sa *s = esp_lookup(t, spi);
  if (!s) return fail(err, -ENOENT, "spi: no SA with SPI %u", spi);
  struct esp_sa *sas[FL_ESP_MAX_SAS];
  uint32_t n = 0;
  for (uint32_t i = 0; i < t->n; i++)
    if (t->sa[i] != s) sas[n++] = t->sa[i];
  struct esp_table *nt = table_build(t->ctx, t->spd, sas, n, err);
  if (!nt) return -ENOMEM;
  /* After the swap no worker can hold s: its counters are final. */
  fl_esp_table_free(fl_pipeline_swap_stage(p, stage, nt));
  if (last) read_counters(s, last);
  sa_free(s);
  return 0;
}

int fl_pipeline_esp_sa_counters(struct fl_pipeline *p, int stage, uint32_t spi,
                                struct fl_esp_sa_counters *out, char *err) {
  struct esp_table *t = stage_table(p, stage, err);
  if (!t) return -EINVAL;
  struct esp_sa *s = esp_lookup(t, spi);
  if (!s) return fail(err, -ENOENT, "spi: no SA with SPI %u", spi);
  read_counters(s, out);
  return 0;
}

int fl_pipeline_esp_spis(struct fl_pipeline *p, int stage, uint32_t *out, uint32_t max) {
  struct esp_table *t = stage_table(p, stage, NULL);
  if (!t) return -EINVAL;
  uint32_t k = 0;
  for (; k < t->n && k < max; k++) out[k] = t->sa[k]->spi;
  return (int)t->n;
}

/* ---- policies ---- */
static void prefix_mask(uint8_t *mask, uint8_t len) {
  memset(mask, 0, 16);
  for (uint8_t j = 0; j < 16 && len; j++) {
    uint8_t b = len >= 8 ? 8 : len;
    mask[j] = (uint8_t)(0xff00u >> b);
    len = (uint8_t)(len - b);
  }
}

static int spd_rule(struct esp_spd_rule *o, const struct fl_esp_policy_rule *in, uint32_t i,
                    uint32_t n_policies, char *err) {
  const struct fl_acl_rule *m = &in->m;
  uint8_t bits = m->family == 4 ? 32 : 128;
  if (m->family != 4 && m->family != 6)
    return fail(err, -EINVAL, "policies[%u].family: must be 4 or 6, got %u", i, m->family);
  if (m->src_len > bits || m->dst_len > bits)
    return fail(err, -EINVAL, "policies[%u].prefix: longer than %u bits", i, bits);
  if (m->sport_lo > m->sport_hi || m->dport_lo > m->dport_hi)
    return fail(err, -EINVAL, "policies[%u].ports: the range ends before it starts", i);
  if (in->policy >= n_policies)
    return fail(err, -EINVAL, "policies[%u].policy: %u of %u policies", i, in->policy, n_policies);
  if (in->action > FL_ESP_PROTECT)
    return fail(err, -EINVAL, "policies[%u].action: unknown action %u", i, in->action);
  memset(o, 0, sizeof(*o));
  o->family = m->family;
  o->proto_mask = m->proto_mask;
  o->proto = m->proto & m->proto_mask;
  o->action = in->action;
  o->sp_lo = m->sport_lo;
  o->sp_hi = m->sport_hi;
  o->dp_lo = m->dport_lo;
  o->dp_hi = m->dport_hi;
  o->policy = in->policy;
  o->spi = in->action == FL_ESP_PROTECT ? in->spi : 0;
  uint8_t sm[16], dm[16], sv[16], dv[16];
  prefix_mask(sm, m->src_len);
  prefix_mask(dm, m->dst_len);
  for (int j = 0; j < 16; j++) {
    sv[j] = m->src[j] & sm[j];
    dv[j] = m->dst[j] & dm[j];
  }
  memcpy(o->src_mask, sm, 16);
  memcpy(o->dst_mask, dm, 16);
  memcpy(o->src, sv, 16);
  memcpy(o->dst, dv, 16);
  return 0;
}

static uint32_t spd_hits(const struct esp_spd *spd, uint64_t *out, uint32_t max) {
  uint32_t k = spd ? spd->n_policies + 1 : 0;
  for (uint32_t i = 0; i < k && i < max; i++)
    out[i] = __atomic_load_n(&spd->hits[i], __ATOMIC_RELAXED);
  return k;
}

int fl_pipeline_esp_set_policies(struct fl_pipeline *p, int stage,
                                 const struct fl_esp_policy_rule *r, uint32_t n,
                                 uint32_t n_policies, uint64_t *retired, uint32_t max_retired,
                                 char *err) {
  struct esp_table *t = stage_table(p, stage, err);
  if (!t) return -EINVAL;
  if (!p->stages[stage].c.esp.spd)
    return fail(err, -EINVAL, "policies: the stage was made without spd");
  if (n > FL_ESP_MAX_POLICY_RULES)
    return fail(err, -E2BIG,
                "policies: at most %u native rules (a policy of both families is two), "
                "got %u",
                FL_ESP_MAX_POLICY_RULES, n);
  if (n_policies > FL_ESP_MAX_POLICY_RULES)
    return fail(err, -E2BIG, "policies: at most %u, got %u", FL_ESP_MAX_POLICY_RULES, n_policies);
  struct esp_spd *spd = calloc(1, sizeof(*spd));
  if (spd) {
    spd->rule = calloc(n ? n : 1, sizeof(*spd->rule));
    spd->hits = calloc(n_policies + 1, sizeof(*spd->hits));
  }
  if (!spd || !spd->rule || !spd->hits) {
    spd_free(spd);
    return fail(err, -ENOMEM, "policies: %u rules", n);
  }
  spd->n = n;
  spd->n_policies = n_policies;
  for (uint32_t i = 0; i < n; i++) {
    int rc = spd_rule(&spd->rule[i], &r[i], i, n_policies, err);
    if (rc < 0) {
      spd_free(spd);
      return rc;
    }
  }
  struct esp_table *nt = table_build(t->ctx, spd, t->sa, t->n, err);
  if (!nt) {
    spd_free(spd);
    return -ENOMEM;
  }
  struct esp_spd *old = t->spd;
  /* After the swap no worker reads the old set: its counts are final. */
  fl_esp_table_free(fl_pipeline_swap_stage(p, stage, nt));
  uint32_t k = spd_hits(old, retired, max_retired);
  spd_free(old);
  return (int)k;
}

int fl_pipeline_esp_policy_hits(struct fl_pipeline *p, int stage, uint64_t *out, uint32_t max) {
  struct esp_table *t = stage_table(p, stage, NULL);
  if (!t) return -EINVAL;
  return (int)spd_hits(t->spd, out, max);
}
