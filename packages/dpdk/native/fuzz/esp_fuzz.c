/*
 * libFuzzer harness over what the ESP stage reads of a packet before any SA or crypto sees it
 * (fl_esp.h after fl_parse.c; no DPDK dependency). libFuzzer hands each input in a buffer of
 * exactly `size` bytes, so AddressSanitizer catches any read past the frame. Beyond memory
 * safety it checks what the stage relies on when it trims the frame and hands the packet to
 * rte_ipsec: the ESP header and the IP packet's end inside the frame, SPI and sequence number
 * read from the header, and lengths the SA's cipher can take (ICV inside, whole blocks).
 *
 * Build: clang -g -O1 -fsanitize=fuzzer,address,undefined -I.. esp_fuzz.c ../fl_parse.c
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fl_esp.h"
#include "fl_parse.h"

#define CHECK(c)       \
  do {                 \
    if (!(c)) abort(); \
  } while (0)

/* AES-GCM (8-byte IV, 16-byte ICV, 4-byte multiple) and AES-CBC + HMAC-SHA-256-128. */
static const struct fl_esp_shape shapes[] = {{8, 16, 4}, {16, 16, 16}};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct fl_parsed h;
  uint32_t len = size > 0xffff ? 0xffff : (uint32_t)size;
  fl_parse(data, len, &h);
  struct fl_esp_view v;
  memset(&v, 0xa5, sizeof(v));
  int r = fl_esp_inspect(data, len, &h, &v);
  CHECK(r >= 0 && r < FL_R_COUNT);
  if (h.reason != FL_R_OK) CHECK(r == h.reason);
  if (r != FL_R_OK) return 0;
  CHECK(h.l3 == FL_L3_IPV4 || h.l3 == FL_L3_IPV6);
  CHECK(h.proto == 50 && !(h.flags & FL_F_FRAG));
  CHECK(v.esp_off == h.l4_off && v.esp_off > h.l3_off);
  CHECK((uint32_t)v.esp_off + FL_ESP_HDR_LEN <= v.ip_end && v.ip_end <= len);
  CHECK(v.spi == fl_esp_rd32(data + v.esp_off) && v.spi >= 256);
  CHECK(v.seq == fl_esp_rd32(data + v.esp_off + 4));
  /* The end is the IP header's own length field: the stage trims the frame to it. */
  const uint8_t *ip = data + h.l3_off;
  uint32_t want =
      h.l3 == FL_L3_IPV4 ? ((uint32_t)ip[2] << 8 | ip[3]) : 40u + ((uint32_t)ip[4] << 8 | ip[5]);
  CHECK(v.ip_end == h.l3_off + want);
  for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
    const struct fl_esp_shape *s = &shapes[i];
    if (fl_esp_check_len(&v, s) != FL_R_OK) continue;
    uint32_t plen = (uint32_t)v.ip_end - v.esp_off;
    uint32_t over = FL_ESP_HDR_LEN + (uint32_t)s->iv_len + s->icv_len;
    /* rte_ipsec finds the ICV at the end and the trailer before it: both inside the packet. */
    CHECK(plen >= over + 2);
    CHECK((plen - over) % s->align == 0);
    CHECK((uint32_t)v.ip_end - s->icv_len - 2 >= (uint32_t)v.esp_off + FL_ESP_HDR_LEN + s->iv_len);
  }
  return 0;
}
