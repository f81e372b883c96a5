/*
 * libFuzzer harness over the fast path's packet parser (fl_parse.c, which has no DPDK
 * dependency). libFuzzer hands each input in a buffer of exactly `size` bytes, so AddressSanitizer
 * catches any read past the frame. Beyond memory safety it checks what the pipeline stages rely
 * on: offsets inside the frame, and L4 fields only when their bytes exist; and that the worker's
 * inline parser (fl_parse_inline, a shortcut for the common frame) gives fl_parse's result.
 *
 * Build: clang -g -O1 -fsanitize=fuzzer,address,undefined -I.. parse_fuzz.c ../fl_parse.c
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fl_parse.h"

#define CHECK(c)       \
  do {                 \
    if (!(c)) abort(); \
  } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct fl_parsed o;
  uint32_t len = size > 0xffff ? 0xffff : (uint32_t)size;
  int r = fl_parse(data, len, &o);
  struct fl_parsed fast;
  memset(&fast, 0xa5, sizeof(fast)); /* whatever it leaves unwritten shows */
  CHECK(fl_parse_inline(data, len, &fast) == r);
  CHECK(memcmp(&fast, &o, sizeof(o)) == 0);
  CHECK(r >= 0 && r < FL_R_COUNT);
  CHECK(r == o.reason);
  CHECK(strcmp(fl_reason_name(r), "unknown") != 0);
  if (r != FL_R_OK) return 0;
  CHECK(len >= 14);
  CHECK(o.l3_off >= 14 && o.l3_off <= len);
  /* no tag is taken for the ethertype (what is behind it would be non-IP to the stages) */
  CHECK(o.ethertype != 0x8100 && o.ethertype != 0x88a8 && o.ethertype != 0x9100);
  CHECK(o.l3_off <= 14 + 2 * 4);
  switch (o.l3) {
  case FL_L3_IPV4:
    CHECK(o.l3_off + 20u <= len);
    CHECK(o.l4_off >= o.l3_off + 20u && o.l4_off <= len);
    break;
  case FL_L3_IPV6:
    CHECK(o.l3_off + 40u <= len);
    CHECK(o.l4_off >= o.l3_off + 40u && o.l4_off <= len);
    break;
  case FL_L3_ARP:
    CHECK(o.l3_off + 28u <= len);
    break;
  default:
    CHECK(o.l3 == FL_L3_NONE);
  }
  if (o.flags & FL_F_L4) {
    CHECK(o.l3 == FL_L3_IPV4 || o.l3 == FL_L3_IPV6);
    CHECK(!(o.flags & FL_F_FRAG_LATER));
    CHECK(o.l4_off + 4u <= len); /* ports or ICMP type/code were read from here */
    if (o.proto == 1 || o.proto == 58) {
      CHECK(o.icmp_type == data[o.l4_off]);
    } else {
      CHECK(memcmp(&o.sport, data + o.l4_off, 2) == 0);
      CHECK(memcmp(&o.dport, data + o.l4_off + 2, 2) == 0);
    }
  }
  if (o.flags & FL_F_FRAG_LATER) CHECK(o.flags & FL_F_FRAG);
  /* The LPM stage writes the TTL / hop limit in place: it must be inside the frame. */
  if (o.l3 == FL_L3_IPV4) CHECK(data[o.l3_off + 8] == o.ttl);
  if (o.l3 == FL_L3_IPV6) CHECK(data[o.l3_off + 7] == o.ttl);
  return 0;
}
