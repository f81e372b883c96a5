/*
 * What the ESP stage reads of a packet before it goes near an SA or crypto: the ESP header's
 * place, SPI and sequence number, and whether the payload has a length its SA's cipher can
 * have. No DPDK dependency, so that the libFuzzer harness (fuzz/esp_fuzz.c) builds it alone;
 * everything it reads is inside the `len` bytes the parser (fl_parse.c) was given.
 */
#ifndef FL_ESP_H
#define FL_ESP_H

#include <stdint.h>

#include "fl_parse.h"

#define FL_ESP_HDR_LEN 8 /* SPI, sequence number */

struct fl_esp_view {
  uint32_t spi, seq; /* host order */
  uint16_t esp_off;  /* offset of the ESP header in the frame */
  uint16_t ip_end;   /* the end of the IP packet (the frame may carry Ethernet padding after it) */
};

/* The lengths an SA's cipher gives an ESP payload. */
struct fl_esp_shape {
  uint8_t iv_len, icv_len, align; /* align: the ciphertext's multiple (a power of two) */
};

static inline uint32_t fl_esp_rd32(const uint8_t *b) {
  return ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3];
}

/* An inbound packet the parser accepted (h of p, len): FL_R_OK with v filled when it is an
 * unfragmented ESP packet with a whole ESP header, else the reason to drop it. */
static inline int fl_esp_inspect(const uint8_t *p, uint32_t len, const struct fl_parsed *h,
                                 struct fl_esp_view *v) {
  if (h->reason != FL_R_OK) return h->reason;
  if (h->l3 != FL_L3_IPV4 && h->l3 != FL_L3_IPV6) return FL_R_NOT_ESP;
  if (h->proto != 50) return FL_R_NOT_ESP;
  if (h->flags & FL_F_FRAG) return FL_R_FRAGMENT; /* no reassembly in the fast path */
  const uint8_t *ip = p + h->l3_off;
  uint32_t end = h->l3 == FL_L3_IPV4 ? h->l3_off + (((uint32_t)ip[2] << 8) | ip[3])
                                     : h->l3_off + 40u + (((uint32_t)ip[4] << 8) | ip[5]);
  /* The parser checked both lengths against len; checked again so that this stands alone. */
  if (end > len || h->l4_off > end || end - h->l4_off < FL_ESP_HDR_LEN) return FL_R_ESP_MALFORMED;
  v->esp_off = h->l4_off;
  v->ip_end = (uint16_t)end;
  v->spi = fl_esp_rd32(p + h->l4_off);
  v->seq = fl_esp_rd32(p + h->l4_off + 4);
  if (v->spi < 256) return FL_R_ESP_MALFORMED; /* 1..255 are reserved, 0 never sent (RFC 4303) */
  return FL_R_OK;
}

/* FL_R_OK when the ESP payload of v has a length s can decrypt: an IV, a ciphertext that holds
 * at least the pad length and next header bytes and is a whole number of blocks, an ICV. */
static inline int fl_esp_check_len(const struct fl_esp_view *v, const struct fl_esp_shape *s) {
  uint32_t plen = (uint32_t)v->ip_end - v->esp_off;
  uint32_t over = FL_ESP_HDR_LEN + (uint32_t)s->iv_len + s->icv_len;
  if (plen < over + 2) return FL_R_ESP_MALFORMED;
  if ((plen - over) & (s->align - 1u)) return FL_R_ESP_MALFORMED;
  return FL_R_OK;
}

#endif
