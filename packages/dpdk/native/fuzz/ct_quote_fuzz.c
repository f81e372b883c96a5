/*
 * libFuzzer harness over conntrack's reading of packets (fl_conntrack.c), above all the quote an
 * ICMP/ICMPv6 error carries (ct_classify_quote): inner IPv4/IPv6 header, IHL, fragment offset,
 * ports or echo identifier, all read at offsets the packet itself gives. Each input is a frame in
 * a buffer of exactly its size, so AddressSanitizer catches any read past it. The harness first
 * commits the flow of the quoted packet (wrapped in an Ethernet header, as if the ACL had
 * permitted it), so the error's lookup can find it and the RELATED path runs too, then tracks
 * the frame and commits it. DPDK is replaced by the few stubs of ct_stubs.h (no EAL).
 *
 * Build: clang -g -O1 -fsanitize=fuzzer,address,undefined $(pkg-config --cflags libdpdk) -I..
 *        ct_quote_fuzz.c ../fl_conntrack.c ../fl_parse.c
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fl.h"
#include "fl_conntrack.h"
#include "fl_parse.h"
#include "ct_stubs.h"

static struct fl_ct *table(void) {
  static struct fl_ct *t;
  if (!t) {
    struct fl_ct_conf c = {64, {1000, 10000, 1000, 1000, 1000, 1000}, 1, -1};
    char err[FL_ERR_LEN];
    t = fl_ct_create(&c, err);
    CHECK(t);
  }
  return t;
}

/* A copy of the bytes in a heap block of exactly their size (ASan sees the end). */
static uint8_t *exact(const uint8_t *d, size_t n) {
  uint8_t *b = malloc(n ? n : 1);
  CHECK(b);
  if (n) memcpy(b, d, n);
  return b;
}

/* At exit: how often the RELATED path ran, for the test to check that it was reached. */
__attribute__((destructor)) static void report(void) {
  struct fl_ct_counters c;
  fl_ct_counters(table(), &c);
  fprintf(stderr, "ct_quote_fuzz: related %llu hits %llu created %llu\n",
          (unsigned long long)c.related, (unsigned long long)c.hits, (unsigned long long)c.created);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static uint64_t now = 1;
  struct fl_ct *t = table();
  uint32_t len = size > 0xffff ? 0xffff : (uint32_t)size;
  uint8_t *frame = exact(data, len);
  struct fl_parsed h;
  fl_parse(frame, len, &h);
  now += 100;
  /* The quoted packet as a frame of its own: its flow committed first. */
  if (!h.reason && (h.flags & FL_F_L4) && (uint32_t)h.l4_off + 8 < len) {
    uint32_t qlen = len - (h.l4_off + 8);
    uint8_t *q = malloc(14 + qlen);
    CHECK(q);
    memset(q, 0, 12);
    q[12] = (frame[h.l4_off + 8] >> 4) == 6 ? 0x86 : 0x08;
    q[13] = (frame[h.l4_off + 8] >> 4) == 6 ? 0xdd : 0x00;
    memcpy(q + 14, frame + h.l4_off + 8, qlen);
    struct fl_parsed qh;
    fl_parse(q, 14 + qlen, &qh);
    fl_ct_commit(t, &qh, q, 14 + qlen, now);
    free(q);
  }
  struct fl_ct_counters before, after;
  fl_ct_counters(t, &before);
  uint32_t verdict = 0;
  int tracked = fl_ct_track(t, &h, frame, len, now, &verdict);
  CHECK(tracked == FL_CT_MISS || tracked == FL_CT_PASS || tracked == FL_CT_DENIED);
  fl_ct_counters(t, &after);
  CHECK(after.hits == before.hits + (uint64_t)(tracked == FL_CT_PASS));
  CHECK(after.denied_hits == before.denied_hits + (uint64_t)(tracked == FL_CT_DENIED));
  CHECK(tracked != FL_CT_DENIED || verdict == 7u);
  CHECK(after.related - before.related <= (uint64_t)(tracked == FL_CT_PASS));
  /* A miss is permitted or denied (by the input's last byte), as the ACL stage would. */
  if (tracked == FL_CT_MISS) {
    if (size && (data[size - 1] & 1))
      CHECK(fl_ct_commit_denied(t, &h, frame, len, now, 7) >= 0);
    else
      CHECK(fl_ct_commit(t, &h, frame, len, now) >= 0); /* eviction is on */
  }
  fl_ct_sweep(t, now, 8);
  fl_ct_counters(t, &after);
  CHECK(after.entries <= 2 * after.capacity); /* capacity is per address family */
  CHECK(after.related <= after.hits);
  free(frame);
  return 0;
}
