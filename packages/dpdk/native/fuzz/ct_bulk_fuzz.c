/*
 * libFuzzer differential harness: conntrack's burst lookup (fl_ct_track_bulk, which runs a burst's
 * packets grouped by their flow's kind, not in packet order) against fl_ct_track called packet by
 * packet. Two tables get the same bursts: the same UDP, TCP and ICMP echo flows over IPv4 and
 * IPv6, both directions, TCP flags, ICMP errors quoting the flows, permits and denials of the
 * misses (as the ACL stage would give them, after the burst), ACL table swaps with flushes, and
 * clock jumps past the timeouts. Every packet's answer (and a denial's rule), every commit's
 * result and every counter must be the same on both. The table holds 64 flows a family (two
 * buckets) and the input picks among 256 (128 a family), so buckets fill and evict. DPDK is
 * replaced by the few stubs of ct_stubs.h (no EAL).
 *
 * Build: clang -g -O1 -fsanitize=fuzzer,address,undefined $(pkg-config --cflags libdpdk) -I..
 *        ct_bulk_fuzz.c ../fl_conntrack.c ../fl_parse.c
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

#define BURST 32
#define FRAME 128

static struct fl_ct *table(void) {
  /* SYN 2 ms, established 20, closing 2, UDP 5, ICMP 5, denied 3 */
  struct fl_ct_conf c = {64, {2, 20, 2, 5, 5, 3}, 1, -1};
  char err[FL_ERR_LEN];
  struct fl_ct *t = fl_ct_create(&c, err);
  CHECK(t);
  return t;
}

/* What the run reached, for the test to check that every path was taken. */
static struct fl_ct_counters seen;
__attribute__((destructor)) static void report(void) {
  fprintf(stderr,
          "ct_bulk_fuzz: created %llu hits %llu reply %llu denied %llu denied_hits %llu related "
          "%llu expired %llu evicted %llu flushed %llu\n",
          (unsigned long long)seen.created, (unsigned long long)seen.hits,
          (unsigned long long)seen.reply_hits, (unsigned long long)seen.denied,
          (unsigned long long)seen.denied_hits, (unsigned long long)seen.related,
          (unsigned long long)seen.expired, (unsigned long long)seen.evicted,
          (unsigned long long)seen.flushed);
}

static uint32_t put16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
  return 2;
}

/* An IP header (IPv4 or IPv6) from s to d for l4len bytes of protocol proto; returns its size. */
static uint32_t ip_header(uint8_t *f, int v6, const uint8_t *s, const uint8_t *d, uint8_t proto,
                          uint32_t l4len) {
  if (!v6) {
    memset(f, 0, 20);
    f[0] = 0x45;
    put16(f + 2, (uint16_t)(20 + l4len));
    f[8] = 64;
    f[9] = proto;
    memcpy(f + 12, s, 4);
    memcpy(f + 16, d, 4);
    return 20;
  }
  memset(f, 0, 40);
  f[0] = 0x60;
  put16(f + 4, (uint16_t)l4len);
  f[6] = proto;
  f[7] = 64;
  memcpy(f + 8, s, 16);
  memcpy(f + 24, d, 16);
  return 40;
}

/* Flow id's endpoints (client first), family, protocol and ports. */
struct flow {
  uint8_t a[16], b[16];
  int v6;
  uint8_t proto; /* 6, 17, or 1 / 58 (echo) */
  uint16_t pa, pb;
};

static void flow_of(unsigned id, struct flow *fl) {
  memset(fl, 0, sizeof(*fl));
  fl->v6 = id & 1;
  static const uint8_t protos[3] = {17, 6, 1};
  fl->proto = protos[(id >> 1) % 3];
  if (fl->proto == 1 && fl->v6) fl->proto = 58;
  if (!fl->v6) {
    const uint8_t a[4] = {10, 0, (uint8_t)(id >> 3), (uint8_t)(1 + (id & 7))};
    const uint8_t b[4] = {192, 0, 2, (uint8_t)(1 + id % 5)};
    memcpy(fl->a, a, 4);
    memcpy(fl->b, b, 4);
  } else {
    fl->a[0] = 0x20, fl->a[1] = 0x01, fl->a[2] = 0x0d, fl->a[3] = 0xb8;
    memcpy(fl->b, fl->a, 16);
    fl->a[14] = (uint8_t)(id >> 3), fl->a[15] = (uint8_t)(1 + (id & 7));
    fl->b[13] = 0xff, fl->b[15] = (uint8_t)(1 + id % 5);
  }
  /* the server's port may sort below or above the client's, so both canonical orders occur */
  fl->pa = (uint16_t)(1024 + id * 3);
  fl->pb = (uint16_t)(id & 2 ? 53 : 60000);
}

static const uint8_t tcp_flags[8] = {0x02, 0x12, 0x10, 0x11, 0x04, 0x18, 0x10, 0x02};

/* The packet of flow fl in direction reply (0: client to server) with ctl's flags; returns the
 * frame's length. */
static uint32_t flow_packet(uint8_t *f, const struct flow *fl, int reply, uint8_t ctl) {
  const uint8_t *s = reply ? fl->b : fl->a, *d = reply ? fl->a : fl->b;
  uint16_t sp = reply ? fl->pb : fl->pa, dp = reply ? fl->pa : fl->pb;
  memset(f, 0, 14);
  put16(f + 12, fl->v6 ? 0x86dd : 0x0800);
  uint32_t l4len = fl->proto == 6 ? 20 : 8;
  uint32_t off = 14 + ip_header(f + 14, fl->v6, s, d, fl->proto, l4len);
  uint8_t *l4 = f + off;
  memset(l4, 0, l4len);
  if (fl->proto == 6 || fl->proto == 17) {
    put16(l4, sp);
    put16(l4 + 2, dp);
    if (fl->proto == 6) {
      l4[12] = 5 << 4;
      l4[13] = tcp_flags[ctl & 7];
    } else {
      put16(l4 + 4, 8);
    }
  } else {
    /* echo: a request from the client, a reply from the server (ctl's bit 3 swaps them) */
    int req = !reply ^ ((ctl >> 3) & 1);
    l4[0] = fl->v6 ? (req ? 128 : 129) : (req ? 8 : 0);
    put16(l4 + 4, fl->pa);
  }
  return off + l4len;
}

/* An ICMP error from a router to the sender of the packet quoted (its first bytes). */
static uint32_t icmp_error_about(uint8_t *f, const struct flow *fl, const uint8_t *quoted,
                                 uint32_t qlen) {
  static const uint8_t r4[4] = {198, 51, 100, 254};
  uint8_t r6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0xfe};
  const uint8_t *sender = quoted + (fl->v6 ? 8 : 12); /* the quoted packet's source */
  uint32_t ip_len = fl->v6 ? 40 : 20, take = ip_len + 8 < qlen ? ip_len + 8 : qlen;
  memset(f, 0, 14);
  put16(f + 12, fl->v6 ? 0x86dd : 0x0800);
  uint32_t off =
      14 + ip_header(f + 14, fl->v6, fl->v6 ? r6 : r4, sender, fl->v6 ? 58 : 1, 8 + take);
  memset(f + off, 0, 8);
  f[off] = fl->v6 ? 1 : 3; /* destination unreachable */
  memcpy(f + off + 8, quoted, take);
  return off + 8 + take;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct fl_ct *seq = table(), *bulk = table();
  uint64_t acl_gen = 1; /* the ACL table in force (its generation) */
  uint64_t now = 1000;
  size_t at = 0;
  while (at < size) {
    uint8_t frame[BURST][FRAME];
    uint32_t len[BURST];
    struct fl_parsed h[BURST];
    uint8_t deny[BURST];
    unsigned n = 0;
    int ended = 0; /* by the flag (a tick byte follows), not by the burst's size */
    /* a burst: 3 bytes a packet (flow, flags, what the ACL says), the last with bit 6 set */
    while (n < BURST && at + 3 <= size) {
      uint8_t id = data[at], ctl = data[at + 1], acl_byte = data[at + 2];
      at += 3;
      struct flow fl;
      flow_of(id, &fl);
      len[n] = flow_packet(frame[n], &fl, ctl & 1, (uint8_t)(ctl >> 1));
      if (ctl & 0x80) { /* an ICMP error quoting that packet instead */
        uint8_t quoted[FRAME];
        memcpy(quoted, frame[n] + 14, len[n] - 14);
        len[n] = icmp_error_about(frame[n], &fl, quoted, len[n] - 14);
      }
      fl_parse(frame[n], len[n], &h[n]);
      deny[n] = acl_byte & 1;
      n++;
      if (acl_byte & 0x40) {
        ended = 1;
        break;
      }
    }
    if (!n) break;
    /* between bursts: the clock moves (up to 25 ms, past every timeout), and now and then the
     * ACL table is swapped and the flows of earlier tables flushed */
    uint8_t tick = ended && at < size ? data[at++] : 0;
    now += (uint64_t)tick * 100;
    if (tick >= 0xf0) {
      acl_gen++;
      fl_ct_request_flush(seq);
      fl_ct_request_flush(bulk);
    }
    fl_ct_acl_table(seq, acl_gen);
    fl_ct_acl_table(bulk, acl_gen);

    int tracked[BURST];
    uint32_t verdict[BURST];
    for (unsigned i = 0; i < n; i++) {
      verdict[i] = 0;
      tracked[i] = fl_ct_track(seq, &h[i], frame[i], len[i], now, &verdict[i]);
    }
    struct fl_ct_lookup q[BURST];
    for (unsigned i = 0; i < n; i++) q[i] = (struct fl_ct_lookup){&h[i], frame[i], len[i], 0, 0};
    fl_ct_track_bulk(bulk, q, n, now);
    for (unsigned i = 0; i < n; i++) {
      CHECK(q[i].tracked == tracked[i]);
      CHECK(tracked[i] != FL_CT_DENIED || q[i].verdict == verdict[i]);
    }
    /* the ACL's verdicts on the misses, in packet order, as the ACL stage applies them */
    for (unsigned i = 0; i < n; i++) {
      if (tracked[i] != FL_CT_MISS) continue;
      if (deny[i]) {
        uint32_t rule = 1 + (uint32_t)(frame[i][len[i] - 1] & 7);
        CHECK(fl_ct_commit_denied(seq, &h[i], frame[i], len[i], now, rule) ==
              fl_ct_commit_denied(bulk, &h[i], frame[i], len[i], now, rule));
      } else {
        CHECK(fl_ct_commit(seq, &h[i], frame[i], len[i], now) ==
              fl_ct_commit(bulk, &h[i], frame[i], len[i], now));
      }
    }
    fl_ct_sweep(seq, now, 8);
    fl_ct_sweep(bulk, now, 8);
    struct fl_ct_counters a, b;
    fl_ct_counters(seq, &a);
    fl_ct_counters(bulk, &b);
    CHECK(memcmp(&a, &b, sizeof(a)) == 0);
    uint64_t *s = (uint64_t *)&seen;
    const uint64_t *x = (const uint64_t *)&a;
    for (size_t k = 0; k < sizeof(a) / sizeof(uint64_t); k++) s[k] += x[k] ? 1 : 0;
  }
  fl_ct_free(seq);
  fl_ct_free(bulk);
  return 0;
}
