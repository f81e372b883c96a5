/*
 * Connection tracking table (see fl_conntrack.h for the threading rule).
 *
 * Layout: a table per address family, each of capacity / FL_CT_BUCKET buckets of FL_CT_BUCKET
 * slots, and per bucket FL_CT_BUCKET 16-bit tags (15 bits of the flow's hash and a valid bit; 0
 * is a free slot), a bucket's 32 tags in one cache line, so a lookup reads one tag line and, when
 * a tag matches, one entry: two cache lines whatever the load, and the tags of a 262,144-entry
 * table fit in 512 KiB. Buckets of 32, not 16 (which would put two buckets' tags in a line, at
 * the same cost a lookup): a new flow whose bucket is full evicts a live one, and with a quarter
 * of the capacity in use about 1 bucket of 16 in 900,000 overflows, one of 32 in 3 * 10^10; with
 * half, one in 270 against one in 7,700 (flows spread evenly: Poisson, 4 or 8 flows a bucket on
 * average and 8 or 16). An IPv4 flow's slot is 32 bytes (its key is two words), two to a line,
 * an IPv6 flow's 64: a new flow takes its bucket's first free slot, so the flows of a bucket
 * share lines and 64k IPv4 flows read 2 MiB of entries, not 4 (measured: the conntrack stage 72
 * against 81 cycles a packet, and the source's reads of the trace 37 against 43, as fewer of
 * their lines are pushed out of the cache). fl_ct_track_bulk prefetches both for a whole burst. A
 * flow's key is canonical (the lower endpoint first), so both directions hash to the same bucket
 * and one probe of one bucket finds a flow from either side; the entry remembers which endpoint
 * originated it. Expiry is lazy (a lookup or insert that meets an expired entry reclaims it) plus a
 * small sweep each burst, so entries of idle flows are reclaimed too. When a new flow's bucket is
 * full of live flows, the least recently seen one is evicted (or, with eviction off, the new flow
 * is dropped).
 *
 * A denial the ACL made is an entry too (ST_DENIED): it answers only packets in the direction
 * the ACL judged (the reverse is another ACL key) and only while the ACL table that made it is in
 * force (its epoch), and holds the ACL's result so that the ACL still counts the rule's hits. It
 * is a cache, not a flow: it takes a free slot or the oldest other denial's, never a live flow's,
 * and a permitted flow takes its slot whenever it needs one, so a flood of denied flows cannot
 * push permitted ones out. Only TCP and UDP, whose conntrack key is exactly the ACL's 5-tuple.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif
#ifdef __SSE4_2__
#include <nmmintrin.h>
#endif

#include <rte_byteorder.h>
#include <rte_common.h>
#include <rte_cycles.h>
#include <rte_hash_crc.h>
#include <rte_malloc.h>
#include <rte_prefetch.h>

#include "fl.h"
#include "fl_conntrack.h"

enum {
  ST_FREE = 0,
  ST_TCP_SYN_SENT,
  ST_TCP_SYN_RECV,
  ST_TCP_ESTABLISHED,
  ST_TCP_FIN_WAIT, /* one side sent FIN */
  ST_TCP_CLOSING,  /* both sides sent FIN */
  ST_TCP_CLOSE,    /* RST seen */
  ST_UDP,
  ST_ICMP,
  ST_DENIED, /* a cached ACL denial of the originator's direction */
};

#define SEEN_FIN_ORIG 0x1
#define SEEN_FIN_REPLY 0x2
#define SEEN_REPLY 0x4

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_ACK 0x10

/*
 * A flow's key, canonical (endpoint a sorts before endpoint b, by address, then port), as 8-byte
 * words: IPv4 two, the addresses (a | b << 32) and the last word; IPv6 five, a's 16 bytes, b's,
 * the last word. The last word (little-endian): pa, pb (ports in network order; the echo
 * identifier for ICMP), proto, family.
 */
#define CT_KEY_WORDS_MAX 5

/* The head of a slot, followed by its flow's key words (slot_key). The fields a packet reads and
 * writes are whole bytes (a bit-field costs a read-modify-write on each update); the epoch (16
 * bits: an 8-bit one came round after 256 ACL tables, and a flush then kept flows of a table 256
 * back) and a cached denial's verdict (24 bits, split) fill the rest. */
struct ct_entry {
  uint64_t expires; /* TSC; the last packet was expires - its state's timeout (last_seen) */
  uint8_t state;
  uint8_t orig_a;      /* the originator is endpoint a */
  uint8_t seen;        /* SEEN_* */
  uint8_t verdict_hi;  /* ST_DENIED: the ACL's result (its rule + 1), bits 16-23 */
  uint16_t epoch;      /* of the ACL table that opened it (fl_ct.epoch); 0: before a wrap */
  uint16_t verdict_lo; /* bits 0-15 */
};
_Static_assert(sizeof(struct ct_entry) == 16, "a slot: 16 bytes of head, then the key words");
#define CT_VERDICT_MAX ((1u << 24) - 1)
_Static_assert(FL_ACL_MAX_RULES <= CT_VERDICT_MAX, "an ACL result fits ct_entry's verdict");
static inline uint32_t entry_verdict(const struct ct_entry *e) {
  return (uint32_t)e->verdict_hi << 16 | e->verdict_lo;
}

/* Each family's slot size (a power of two: 1 << shift bytes) and key words. */
#define CT_V4_SHIFT 5
#define CT_V4_WORDS 2
#define CT_V6_SHIFT 6
#define CT_V6_WORDS CT_KEY_WORDS_MAX
_Static_assert(sizeof(struct ct_entry) + CT_V4_WORDS * 8 == 1u << CT_V4_SHIFT,
               "an IPv4 slot is its head and two key words: 32 bytes, two to a line");
_Static_assert(sizeof(struct ct_entry) + CT_V6_WORDS * 8 <= 1u << CT_V6_SHIFT,
               "an IPv6 slot holds its head and five key words in one line");

/* A slot's tag: bits 16-30 of its flow's hash (above the bucket index's in tables of up to 65,536
 * buckets) and a valid bit. */
static inline uint16_t tag_of(uint32_t sig) { return (uint16_t)((sig >> 16) | 0x8000u); }
_Static_assert(FL_CT_BUCKET * sizeof(uint16_t) == 64, "a bucket's tags fill one cache line");
_Static_assert(FL_CT_BUCKET == 32, "tag_matches compares a bucket's tags as four vectors of 8");

/* One address family's table. */
struct ct_tab {
  uint8_t *e;    /* [n_buckets * FL_CT_BUCKET] slots of 1 << shift bytes */
  uint16_t *tag; /* [n_buckets][FL_CT_BUCKET]: tag_of(sig) of the slot's flow, 0 when free */
  uint32_t n_buckets, mask, cursor;
  uint8_t shift, words; /* slot size 32 (IPv4) or 64 (IPv6); key words 2 or 5 */
  uint64_t swept_to;    /* TSC: the sweep's clock */
};

enum { CT_V4 = 0, CT_V6 = 1 };

struct fl_ct {
  struct ct_tab tab[2]; /* CT_V4, CT_V6 */
  uint8_t evict;
  uint64_t timeout[FL_CT_TO_COUNT]; /* TSC cycles */
  uint32_t flush_req, flush_done;   /* requested by the control thread, done by the worker */
  uint64_t acl_gen;                 /* the generation of the ACL table the worker last judged by */
  uint64_t sweep_period;            /* TSC: one pass over each table per period */
  uint16_t epoch;                   /* counts ACL tables; never 0 once one was given */
  struct fl_ct_counters ctr;
};

/* What a packet says about its flow. */
struct ct_pkt {
  uint64_t k[CT_KEY_WORDS_MAX]; /* the key's words (2 for IPv4) */
  uint32_t sig;
  uint8_t fam; /* CT_V4 or CT_V6 */
  uint8_t proto;
  uint8_t src_is_a;
  uint8_t tcp_flags;
  uint8_t echo; /* 1 request, 2 reply */
};

static inline struct ct_entry *slot_at(const struct ct_tab *b, size_t i) {
  return (struct ct_entry *)(b->e + (i << b->shift));
}
static inline uint64_t *slot_key(struct ct_entry *e) { return (uint64_t *)(e + 1); }
static inline size_t slot_index(const struct ct_tab *b, const struct ct_entry *e) {
  return (size_t)((const uint8_t *)e - b->e) >> b->shift;
}

struct fl_ct *fl_ct_create(const struct fl_ct_conf *c, char *err) {
  if (c->capacity < FL_CT_MIN_CAPACITY || c->capacity > FL_CT_MAX_CAPACITY) {
    fl_fail(err, -EINVAL, "conntrack capacity must be %u..%u, got %u", FL_CT_MIN_CAPACITY,
            FL_CT_MAX_CAPACITY, c->capacity);
    return NULL;
  }
  for (int i = 0; i < FL_CT_TO_COUNT; i++)
    if (c->timeout_ms[i] == 0) {
      fl_fail(err, -EINVAL, "conntrack timeout %d must be > 0 ms", i);
      return NULL;
    }
  uint32_t cap = rte_align32pow2(c->capacity);
  struct fl_ct *t = rte_zmalloc_socket("fl_ct", sizeof(*t), RTE_CACHE_LINE_SIZE, c->socket);
  if (!t) {
    fl_fail(err, -ENOMEM, "conntrack table header");
    return NULL;
  }
  for (int f = CT_V4; f <= CT_V6; f++) {
    struct ct_tab *b = &t->tab[f];
    b->shift = f == CT_V4 ? CT_V4_SHIFT : CT_V6_SHIFT;
    b->words = f == CT_V4 ? CT_V4_WORDS : CT_V6_WORDS;
    b->n_buckets = cap / FL_CT_BUCKET;
    b->mask = b->n_buckets - 1;
    size_t bytes = (size_t)cap << b->shift;
    b->e = rte_zmalloc_socket("fl_ct_entries", bytes, RTE_CACHE_LINE_SIZE, c->socket);
    b->tag = rte_zmalloc_socket("fl_ct_tags", (size_t)cap * sizeof(uint16_t), RTE_CACHE_LINE_SIZE,
                                c->socket);
    if (!b->e || !b->tag) {
      fl_fail(err, -ENOMEM, "conntrack table of %u IPv%d flows (%zu MiB of hugepage memory)", cap,
              f == CT_V4 ? 4 : 6, (bytes + (size_t)cap * sizeof(uint16_t)) >> 20);
      fl_ct_free(t);
      return NULL;
    }
  }
  t->evict = c->evict;
  uint64_t hz = rte_get_tsc_hz();
  t->sweep_period = hz;
  for (int i = 0; i < FL_CT_TO_COUNT; i++) {
    t->timeout[i] = (uint64_t)c->timeout_ms[i] * hz / 1000;
    if (t->timeout[i] < t->sweep_period) t->sweep_period = t->timeout[i];
  }
  if (t->sweep_period == 0) t->sweep_period = 1;
  t->ctr.capacity = cap;
  return t;
}

void fl_ct_free(struct fl_ct *t) {
  if (!t) return;
  for (int f = CT_V4; f <= CT_V6; f++) {
    rte_free(t->tab[f].tag);
    rte_free(t->tab[f].e);
  }
  rte_free(t);
}

/* CRC32-C of a word: the instruction itself when the build targets SSE4.2 (rte_hash_crc_8byte
 * asks at run time which implementation to use, on every call). */
static inline uint32_t ct_crc(uint64_t w, uint32_t h) {
#ifdef __SSE4_2__
  return (uint32_t)_mm_crc32_u64(h, w);
#else
  return rte_hash_crc_8byte(w, h);
#endif
}

/* The canonical key of a flow seen from (src, sport) to (dst, dport). The key is built in
 * registers, stored and hashed as whole words: built field by field, its narrow stores would
 * stall the hash's wide loads (no store-to-load forwarding). */
static inline void make_key(struct ct_pkt *p, const uint8_t *src, const uint8_t *dst, int alen,
                            uint16_t sport, uint16_t dport, uint8_t proto) {
  uint64_t w0, w1, w2, w3;
  uint32_t src_is_a;
  /* Which endpoint sorts first is a coin toss (a flow's two directions both pass): it is
   * computed without a branch, whose mispredictions would cost more than the whole key. */
  const uint32_t ports_up = rte_be_to_cpu_16(sport) <= rte_be_to_cpu_16(dport);
  if (alen == 4) {
    uint32_t s, d;
    memcpy(&s, src, 4);
    memcpy(&d, dst, 4);
    uint32_t hs = rte_be_to_cpu_32(s), hd = rte_be_to_cpu_32(d);
    src_is_a = (uint32_t)(hs < hd) | ((uint32_t)(hs == hd) & ports_up);
    const uint32_t m = 0u - src_is_a;
    w0 = d ^ ((s ^ d) & m);
    w2 = s ^ d ^ (uint32_t)w0;
    w1 = w3 = 0;
  } else {
    int c = memcmp(src, dst, 16);
    src_is_a = (uint32_t)(c < 0) | ((uint32_t)(c == 0) & ports_up);
    const uint8_t *a = src_is_a ? src : dst, *b = src_is_a ? dst : src;
    memcpy(&w0, a, 8);
    memcpy(&w1, a + 8, 8);
    memcpy(&w2, b, 8);
    memcpy(&w3, b + 8, 8);
  }
  /* pa, pb, proto, family: the key's last word (little-endian) */
  const uint32_t pm = (0u - src_is_a) & 0xffffu;
  const uint32_t pa = dport ^ ((sport ^ dport) & pm), pb = sport ^ dport ^ pa;
  uint64_t w4 = (uint64_t)pa | (uint64_t)pb << 16 | (uint64_t)proto << 32 |
                (uint64_t)(alen == 4 ? 4 : 6) << 40;
  /* The hash is of the key's words: an IPv4 key's two, an IPv6 key's five. */
  uint32_t h;
  if (alen == 4) {
    w0 |= w2 << 32;
    p->k[0] = w0;
    p->k[1] = w4;
    p->fam = CT_V4;
    h = ct_crc(w4, ct_crc(w0, 0x9e3779b9));
  } else {
    p->k[0] = w0;
    p->k[1] = w1;
    p->k[2] = w2;
    p->k[3] = w3;
    p->k[4] = w4;
    p->fam = CT_V6;
    h = ct_crc(w4, ct_crc(w3, ct_crc(w2, ct_crc(w1, ct_crc(w0, 0x9e3779b9)))));
  }
  p->proto = proto;
  p->src_is_a = (uint8_t)src_is_a;
  /* CRC is linear: flows that differ in a few bits (ports counting up) would fill some buckets
   * and leave others empty. A multiply-xorshift finaliser (murmur3's) spreads them. */
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  p->sig = h;
}

/* What conntrack makes of an IP protocol: TCP and UDP are keyed by their ports, ICMP and ICMPv6 by
 * the echo identifier, the rest not tracked. A table, not comparisons: a burst mixes TCP and UDP at
 * random, and the compiler turns `proto == 6 || proto == 17` into a branch on each. */
enum { CT_L4_NONE = 0, CT_L4_PORTS, CT_L4_ECHO };
static const uint8_t ct_l4_kind[256] = {
    [6] = CT_L4_PORTS, [17] = CT_L4_PORTS, [1] = CT_L4_ECHO, [58] = CT_L4_ECHO};

/* Fills p from the parsed headers; 0 when the packet is not of a trackable kind. */
static inline int ct_classify(const struct fl_parsed *h, const uint8_t *pkt, uint32_t len,
                              struct ct_pkt *p) {
  if (h->reason || (h->l3 != FL_L3_IPV4 && h->l3 != FL_L3_IPV6) || !(h->flags & FL_F_L4) ||
      (h->flags & FL_F_FRAG_LATER))
    return 0;
  uint16_t sport = h->sport, dport = h->dport;
  const uint8_t proto = h->proto;
  p->echo = 0;
  if (ct_l4_kind[proto] == CT_L4_PORTS) {
    /* TCP and UDP mix at random: the flags are read without a branch, at byte 13 of a TCP
     * header (the parser checked its 20 bytes) or, masked off, the first byte of a UDP one. */
    const uint32_t tcp = proto == 6;
    p->tcp_flags = (uint8_t)(pkt[h->l4_off + 13 * tcp] & (0u - tcp));
  } else if (ct_l4_kind[proto] == CT_L4_ECHO) {
    p->tcp_flags = 0;
    uint8_t req = proto == 1 ? 8 : 128, rep = proto == 1 ? 0 : 129;
    if (h->icmp_type != req && h->icmp_type != rep) return 0;
    if ((uint32_t)h->l4_off + 8 > len) return 0;
    p->echo = h->icmp_type == req ? 1 : 2;
    memcpy(&sport, pkt + h->l4_off + 4, 2); /* the echo identifier pairs request and reply */
    dport = sport;
  } else {
    return 0;
  }
  make_key(p, h->src, h->dst, h->l3 == FL_L3_IPV4 ? 4 : 16, sport, dport, proto);
  return 1;
}

static inline uint16_t rd16(const uint8_t *b) { return (uint16_t)((b[0] << 8) | b[1]); }

/* ICMP errors that quote a packet: destination unreachable (incl. fragmentation needed),
 * time exceeded, parameter problem; ICMPv6 also packet too big. */
static inline int icmp_error(const struct fl_parsed *h) {
  if (h->reason || !(h->flags & FL_F_L4) || (h->flags & FL_F_FRAG_LATER)) return 0;
  if (h->l3 == FL_L3_IPV4 && h->proto == 1)
    return h->icmp_type == 3 || h->icmp_type == 11 || h->icmp_type == 12;
  if (h->l3 == FL_L3_IPV6 && h->proto == 58) return h->icmp_type >= 1 && h->icmp_type <= 4;
  return 0;
}

/* The flow of the packet an ICMP error quotes (RELATED traffic). The quote is the packet as
 * its sender sent it, so the error must be addressed back to that sender. Reads only within
 * len; 0 when the quote is too short or not of a trackable kind. */
static int ct_classify_quote(const struct fl_parsed *h, const uint8_t *pkt, uint32_t len,
                             struct ct_pkt *p) {
  uint32_t off = (uint32_t)h->l4_off + 8, l4;
  if (off >= len) return 0;
  const uint8_t *ip = pkt + off;
  const uint8_t *src, *dst;
  uint8_t proto;
  int alen;
  if (h->l3 == FL_L3_IPV4) {
    uint32_t ihl = (uint32_t)(ip[0] & 0xf) * 4;
    if (off + 20 > len || (ip[0] >> 4) != 4 || ihl < 20 || (rd16(ip + 6) & 0x1fff)) return 0;
    proto = ip[9], src = ip + 12, dst = ip + 16, alen = 4, l4 = off + ihl;
  } else {
    if (off + 40 > len || (ip[0] >> 4) != 6) return 0;
    proto = ip[6], src = ip + 8, dst = ip + 24, alen = 16, l4 = off + 40;
  }
  if (l4 + 8 > len || memcmp(src, h->dst, (size_t)alen)) return 0;
  uint16_t sport, dport;
  if (proto == 6 || proto == 17) {
    memcpy(&sport, pkt + l4, 2);
    memcpy(&dport, pkt + l4 + 2, 2);
  } else if ((proto == 1 && pkt[l4] == 8) || (proto == 58 && pkt[l4] == 128)) {
    memcpy(&sport, pkt + l4 + 4, 2);
    dport = sport;
  } else {
    return 0;
  }
  make_key(p, src, dst, alen, sport, dport, proto);
  return 1;
}

/* The index of the first slot of the bucket of a flow whose hash is sig. */
static inline size_t bucket_of(const struct ct_tab *b, uint32_t sig) {
  return (size_t)(sig & b->mask) * FL_CT_BUCKET;
}

static inline void reclaim(struct fl_ct *t, struct ct_tab *b, struct ct_entry *e, uint64_t *why) {
  e->state = ST_FREE;
  b->tag[slot_index(b, e)] = 0;
  t->ctr.entries--;
  (*why)++;
}

/* Slots of the bucket (its first slot's index bi) whose tag is the packet's, as a bit mask. */
static inline uint32_t tag_matches(const struct ct_tab *b, size_t bi, uint32_t sig) {
  const uint16_t *tg = &b->tag[bi], want = tag_of(sig);
#ifdef __SSE2__
  /* The 32 tags (one aligned line) in four vector compares; the scalar loop is some 120
   * instructions. */
  const __m128i w = _mm_set1_epi16((short)want);
  const __m128i *v = (const __m128i *)tg;
  __m128i m0 = _mm_packs_epi16(_mm_cmpeq_epi16(_mm_load_si128(v), w),
                               _mm_cmpeq_epi16(_mm_load_si128(v + 1), w));
  __m128i m1 = _mm_packs_epi16(_mm_cmpeq_epi16(_mm_load_si128(v + 2), w),
                               _mm_cmpeq_epi16(_mm_load_si128(v + 3), w));
  return (uint32_t)_mm_movemask_epi8(m0) | (uint32_t)_mm_movemask_epi8(m1) << 16;
#else
  uint32_t m = 0;
  for (int i = 0; i < FL_CT_BUCKET; i++) m |= (uint32_t)(tg[i] == want) << i;
  return m;
#endif
}

/* Whether slot e holds the packet's flow's key (the table's number of words). */
static inline int key_eq(const struct ct_tab *b, struct ct_entry *e, const struct ct_pkt *p) {
  const uint64_t *k = slot_key(e);
  if (b->words == CT_V4_WORDS) return !((k[0] ^ p->k[0]) | (k[1] ^ p->k[1]));
  return !((k[0] ^ p->k[0]) | (k[1] ^ p->k[1]) | (k[2] ^ p->k[2]) | (k[3] ^ p->k[3]) |
           (k[4] ^ p->k[4]));
}

static inline struct ct_entry *find_in(const struct ct_tab *b, const struct ct_pkt *p, size_t bi,
                                       uint32_t m) {
  for (; m; m &= m - 1) {
    struct ct_entry *e = slot_at(b, bi + (unsigned)__builtin_ctz(m));
    if (e->state != ST_FREE && key_eq(b, e, p)) return e;
  }
  return NULL;
}

static struct ct_entry *find(struct fl_ct *t, const struct ct_pkt *p) {
  const struct ct_tab *b = &t->tab[p->fam];
  size_t bi = bucket_of(b, p->sig);
  return find_in(b, p, bi, tag_matches(b, bi, p->sig));
}

static int timeout_class(uint8_t state) {
  switch (state) {
  case ST_TCP_SYN_SENT:
  case ST_TCP_SYN_RECV:
    return FL_CT_TO_TCP_SYN;
  case ST_TCP_ESTABLISHED:
    return FL_CT_TO_TCP_ESTABLISHED;
  case ST_UDP:
    return FL_CT_TO_UDP;
  case ST_ICMP:
    return FL_CT_TO_ICMP;
  case ST_DENIED:
    return FL_CT_TO_DENIED;
  default:
    return FL_CT_TO_TCP_CLOSING;
  }
}

/* TCP: returns 0 when the packet does not fit the flow's state (the ACL decides then). */
static int tcp_step(struct ct_entry *e, int orig, uint8_t f) {
  if (f & TCP_RST) {
    e->state = ST_TCP_CLOSE;
    return 1;
  }
  if ((f & (TCP_SYN | TCP_ACK)) == TCP_SYN && orig) {
    /* a retransmitted SYN, or a new connection reusing a closed flow's ports */
    if (e->state == ST_TCP_SYN_SENT || e->state >= ST_TCP_FIN_WAIT) {
      e->state = ST_TCP_SYN_SENT;
      e->seen = 0;
    }
    return 1;
  }
  switch (e->state) {
  case ST_TCP_SYN_SENT:
    /* Only the answer to the SYN may come back before the handshake. */
    if (orig) return 1;
    if ((f & (TCP_SYN | TCP_ACK)) != (TCP_SYN | TCP_ACK)) return 0;
    e->state = ST_TCP_SYN_RECV;
    e->seen |= SEEN_REPLY;
    return 1;
  case ST_TCP_SYN_RECV:
    if (orig && (f & TCP_ACK) && !(f & TCP_SYN)) e->state = ST_TCP_ESTABLISHED;
    break;
  default:
    break;
  }
  if (f & TCP_FIN) {
    e->seen |= orig ? SEEN_FIN_ORIG : SEEN_FIN_REPLY;
    e->state = (e->seen & (SEEN_FIN_ORIG | SEEN_FIN_REPLY)) == (SEEN_FIN_ORIG | SEEN_FIN_REPLY)
                   ? ST_TCP_CLOSING
                   : ST_TCP_FIN_WAIT;
  }
  return 1;
}

enum { K_NONE = 0, K_FLOW, K_RELATED };

/* What the packet is to conntrack: its own flow, an ICMP error quoting one, or neither. */
static inline int ct_kind(const struct fl_parsed *h, const uint8_t *pkt, uint32_t len,
                          struct ct_pkt *p) {
  if (ct_classify(h, pkt, len, p)) return K_FLOW;
  /* An ICMP error about a live flow passes (path MTU discovery needs it) but does not
   * refresh the flow. */
  if (icmp_error(h) && ct_classify_quote(h, pkt, len, p)) return K_RELATED;
  return K_NONE;
}

/* The packet's flow is e (or none): the verdict, and the flow's update. */
static inline int track_found(struct fl_ct *t, const struct ct_pkt *pp, int kind,
                              struct ct_entry *e, uint64_t now, uint32_t *verdict) {
  const struct ct_pkt *const p = pp;
  if (kind == K_RELATED) {
    if (!e || now >= e->expires || e->state == ST_DENIED) return 0;
    t->ctr.hits++;
    t->ctr.related++;
    return 1;
  }
  if (!e) return 0;
  struct ct_tab *b = &t->tab[p->fam];
  if (now >= e->expires) {
    reclaim(t, b, e, &t->ctr.expired);
    return 0;
  }
  int orig = p->src_is_a == e->orig_a;
  if (e->state == ST_DENIED) {
    /* Judged by an earlier ACL table: gone (the current one judges again). */
    if (e->epoch != t->epoch) {
      reclaim(t, b, e, &t->ctr.flushed);
      return FL_CT_MISS;
    }
    if (!orig) return FL_CT_MISS; /* the reverse direction is another ACL key */
    e->expires = now + t->timeout[FL_CT_TO_DENIED];
    t->ctr.denied_hits++;
    *verdict = entry_verdict(e);
    return FL_CT_DENIED;
  }
  if (e->state == ST_ICMP) {
    if (p->echo != (orig ? 1 : 2)) return 0; /* only requests out, replies back */
  } else if (p->proto == 6) {
    if (!tcp_step(e, orig, p->tcp_flags)) return 0;
  } else if (!orig) {
    e->seen |= SEEN_REPLY;
  }
  e->expires = now + t->timeout[timeout_class(e->state)];
  t->ctr.hits++;
  if (!orig) t->ctr.reply_hits++;
  return 1;
}

int fl_ct_track(struct fl_ct *t, const struct fl_parsed *h, const uint8_t *pkt, uint32_t len,
                uint64_t now, uint32_t *verdict) {
  struct ct_pkt p;
  int kind = ct_kind(h, pkt, len, &p);
  return kind == K_NONE ? FL_CT_MISS : track_found(t, &p, kind, find(t, &p), now, verdict);
}

/* The groups fl_ct_track_bulk runs a burst's packets in, by what their flow's entry holds. */
enum { G_UDP = 0, G_TCP, G_DENIED, G_OTHER, G_COUNT };
static const uint8_t group_of_state[16] = {
    [ST_FREE] = G_OTHER,          [ST_TCP_SYN_SENT] = G_TCP, [ST_TCP_SYN_RECV] = G_TCP,
    [ST_TCP_ESTABLISHED] = G_TCP, [ST_TCP_FIN_WAIT] = G_TCP, [ST_TCP_CLOSING] = G_TCP,
    [ST_TCP_CLOSE] = G_TCP,       [ST_UDP] = G_UDP,          [ST_ICMP] = G_OTHER,
    [ST_DENIED] = G_DENIED,
};
_Static_assert(ST_DENIED < 16, "group_of_state covers every state");

/* One group's packets (indexes idx), in packet order. Inlined at each call: each group's
 * branches are then their own, and predict. */
static inline __attribute__((always_inline)) void track_group(
    struct fl_ct *t, struct fl_ct_lookup *q, const struct ct_pkt *p, const uint8_t *kind,
    struct ct_entry *const *ent, const uint8_t *idx, uint32_t m, uint64_t now) {
  for (uint32_t j = 0; j < m; j++) {
    uint32_t i = idx[j];
    if (kind[i] == K_NONE) {
      q[i].tracked = 0;
      continue;
    }
    /* found before the group ran: an earlier packet of its flow may have reclaimed it since
     * (find_in skips a free slot) */
    struct ct_entry *e = ent[i];
    if (e && e->state == ST_FREE) e = NULL;
    q[i].tracked = (uint8_t)track_found(t, &p[i], kind[i], e, now, &q[i].verdict);
  }
}

void fl_ct_track_bulk(struct fl_ct *t, struct fl_ct_lookup *q, uint32_t n, uint64_t now) {
  struct ct_pkt p[256];
  uint8_t kind[256];
  uint32_t cand[256];
  struct ct_entry *ent[256];
  uint8_t idx[G_COUNT][256];
  uint32_t cnt[G_COUNT] = {0};
  if (n > 256) n = 256;
  for (uint32_t i = 0; i < n; i++) {
    kind[i] = (uint8_t)ct_kind(q[i].h, q[i].pkt, q[i].len, &p[i]);
    if (kind[i] != K_NONE) {
      const struct ct_tab *b = &t->tab[p[i].fam];
      rte_prefetch0(&b->tag[bucket_of(b, p[i].sig)]);
    }
  }
  for (uint32_t i = 0; i < n; i++) {
    cand[i] = 0;
    if (kind[i] == K_NONE) continue;
    const struct ct_tab *b = &t->tab[p[i].fam];
    size_t bi = bucket_of(b, p[i].sig);
    cand[i] = tag_matches(b, bi, p[i].sig);
    if (cand[i]) rte_prefetch0(slot_at(b, bi + (unsigned)__builtin_ctz(cand[i])));
  }
  /* Each packet's entry, and its group: a flow's UDP or TCP state, its cached denial, or anything
   * else (no entry, ICMP, an ICMP error quoting a flow). Where flows of every kind mix at random,
   * the branches that tell them apart in track_found mispredict about one packet in two
   * (measured, 64k flows of TCP and UDP, a third of them denied: the stage took 78-79 cycles a
   * packet, 64 with UDP alone, and grouped 70). A flow's packets all fall in one group (its entry's
   * state before any of them ran), and between them only reclaims happen (no insert), so running
   * the groups one after the other gives the results of packet order. Each packet is written to
   * every group's list and counted in its own: no branch on the group. */
  for (uint32_t i = 0; i < n; i++) {
    struct ct_entry *e = NULL;
    if (cand[i]) {
      const struct ct_tab *b = &t->tab[p[i].fam];
      e = find_in(b, &p[i], bucket_of(b, p[i].sig), cand[i]);
    }
    ent[i] = e;
    uint32_t g = kind[i] == K_FLOW && e ? group_of_state[e->state & 15] : G_OTHER;
    for (uint32_t k = 0; k < G_COUNT; k++) {
      idx[k][cnt[k]] = (uint8_t)i;
      cnt[k] += g == k;
    }
  }
  track_group(t, q, p, kind, ent, idx[G_UDP], cnt[G_UDP], now);
  track_group(t, q, p, kind, ent, idx[G_TCP], cnt[G_TCP], now);
  track_group(t, q, p, kind, ent, idx[G_DENIED], cnt[G_DENIED], now);
  track_group(t, q, p, kind, ent, idx[G_OTHER], cnt[G_OTHER], now);
}

/* What a new entry's bucket holds, its expired entries reclaimed on the way. */
struct bucket_scan {
  struct ct_entry *free;   /* the first free slot */
  struct ct_entry *same;   /* the packet's flow (or its denial) */
  struct ct_entry *oldest; /* the least recently seen live flow */
  struct ct_entry *denial; /* the least recently seen cached denial */
};

/* When the flow in e saw its last packet: its expiry less its state's timeout (every update
 * sets the expiry from the state it leaves the flow in). */
static inline uint64_t last_seen(const struct fl_ct *t, const struct ct_entry *e) {
  return e->expires - t->timeout[timeout_class(e->state)];
}

static void scan_bucket(struct fl_ct *t, const struct ct_pkt *p, uint64_t now,
                        struct bucket_scan *s) {
  struct ct_tab *b = &t->tab[p->fam];
  const size_t bi = bucket_of(b, p->sig);
  const uint16_t *tg = &b->tag[bi];
  const uint16_t want = tag_of(p->sig);
  *s = (struct bucket_scan){0};
  for (int i = 0; i < FL_CT_BUCKET; i++) {
    struct ct_entry *e = slot_at(b, bi + (size_t)i);
    if (!tg[i]) { /* free: no need to read the entry */
      if (!s->free) s->free = e;
      continue;
    }
    if (now >= e->expires) reclaim(t, b, e, &t->ctr.expired);
    if (e->state == ST_FREE) {
      if (!s->free) s->free = e;
    } else if (tg[i] == want && key_eq(b, e, p)) {
      s->same = e;
    } else if (e->state == ST_DENIED) {
      if (!s->denial || last_seen(t, e) < last_seen(t, s->denial)) s->denial = e;
    } else if (!s->oldest || last_seen(t, e) < last_seen(t, s->oldest)) {
      s->oldest = e;
    }
  }
}

static void place(struct fl_ct *t, struct ct_entry *slot, const struct ct_pkt *p, uint8_t state,
                  uint32_t verdict, uint64_t now) {
  struct ct_tab *b = &t->tab[p->fam];
  memcpy(slot_key(slot), p->k, (size_t)b->words * 8);
  slot->verdict_hi = (uint8_t)(verdict >> 16);
  slot->verdict_lo = (uint16_t)verdict;
  slot->orig_a = p->src_is_a;
  slot->seen = 0;
  slot->epoch = t->epoch;
  slot->expires = now + t->timeout[timeout_class(state)];
  slot->state = state;
  b->tag[slot_index(b, slot)] = tag_of(p->sig);
  t->ctr.entries++;
}

int fl_ct_commit(struct fl_ct *t, const struct fl_parsed *h, const uint8_t *pkt, uint32_t len,
                 uint64_t now) {
  struct ct_pkt p;
  if (!ct_classify(h, pkt, len, &p)) return 0;
  uint8_t state;
  if (p.proto == 6) {
    /* Only a connection attempt opens a flow: a permitted stray ACK or RST creates nothing. */
    if ((p.tcp_flags & (TCP_SYN | TCP_ACK | TCP_RST)) != TCP_SYN) return 0;
    state = ST_TCP_SYN_SENT;
  } else if (p.proto == 17) {
    state = ST_UDP;
  } else {
    if (p.echo != 1) return 0;
    state = ST_ICMP;
  }
  struct bucket_scan s;
  scan_bucket(t, &p, now, &s);
  struct ct_entry *slot = s.free;
  if (s.same) {
    /* Two packets of a new flow in one burst: the first created it. */
    if (s.same->state != ST_DENIED) return 0;
    /* The other direction was denied; this one is permitted: the flow replaces the denial. */
    slot = s.same;
    reclaim(t, &t->tab[p.fam], slot, &t->ctr.denied_evicted);
  } else if (!slot && s.denial) {
    /* A cached denial gives way to a flow, eviction on or off. */
    slot = s.denial;
    reclaim(t, &t->tab[p.fam], slot, &t->ctr.denied_evicted);
  } else if (!slot) {
    if (!t->evict) {
      t->ctr.table_full++;
      return -ENOSPC;
    }
    slot = s.oldest;
    reclaim(t, &t->tab[p.fam], slot, &t->ctr.evicted);
  }
  place(t, slot, &p, state, 0, now);
  t->ctr.created++;
  return 1;
}

int fl_ct_commit_denied(struct fl_ct *t, const struct fl_parsed *h, const uint8_t *pkt,
                        uint32_t len, uint64_t now, uint32_t verdict) {
  struct ct_pkt p;
  if (!ct_classify(h, pkt, len, &p) || (p.proto != 6 && p.proto != 17)) return 0;
  if (verdict > CT_VERDICT_MAX) return 0; /* no ACL gives one; not cached rather than cut */
  struct bucket_scan s;
  scan_bucket(t, &p, now, &s);
  /* The flow has an entry already (a denial of this burst, or the other direction's). */
  if (s.same) return 0;
  struct ct_entry *slot = s.free;
  if (!slot) {
    if (!s.denial) return 0; /* only live flows here: they stay, the denial is not cached */
    slot = s.denial;
    reclaim(t, &t->tab[p.fam], slot, &t->ctr.denied_evicted);
  }
  place(t, slot, &p, ST_DENIED, verdict, now);
  t->ctr.denied++;
  return 1;
}

uint64_t fl_ct_judged_by(const struct fl_ct *t) { return t->acl_gen; }

void fl_ct_request_flush(struct fl_ct *t) {
  __atomic_fetch_add(&t->flush_req, 1, __ATOMIC_RELEASE);
}

void fl_ct_acl_table(struct fl_ct *t, uint64_t acl_gen) {
  if (acl_gen != t->acl_gen) {
    t->acl_gen = acl_gen;
    /* When the epoch comes round (every 65,536 tables), no entry may keep a value a new table gets:
     * denials end (they answer for their own table only) and flows are marked as of an earlier
     * table (0, which the epoch skips). */
    if (++t->epoch == 0) {
      t->epoch = 1;
      for (int f = CT_V4; f <= CT_V6; f++) {
        struct ct_tab *b = &t->tab[f];
        for (size_t i = 0; i < (size_t)b->n_buckets * FL_CT_BUCKET; i++) {
          struct ct_entry *e = slot_at(b, i);
          if (e->state == ST_DENIED)
            reclaim(t, b, e, &t->ctr.flushed);
          else
            e->epoch = 0;
        }
      }
    }
  }
  uint32_t req = __atomic_load_n(&t->flush_req, __ATOMIC_ACQUIRE);
  if (req == t->flush_done) return;
  for (int f = CT_V4; f <= CT_V6; f++) {
    struct ct_tab *b = &t->tab[f];
    for (size_t i = 0; i < (size_t)b->n_buckets * FL_CT_BUCKET; i++) {
      struct ct_entry *e = slot_at(b, i);
      if (e->state != ST_FREE && e->epoch != t->epoch) reclaim(t, b, e, &t->ctr.flushed);
    }
  }
  t->flush_done = req;
}

static void sweep_tab(struct fl_ct *t, struct ct_tab *b, uint64_t now, uint32_t max_slots) {
  uint32_t total = b->n_buckets * FL_CT_BUCKET;
  /* Slots due since the last sweep (a table's worth at most, however long the pause). */
  if (now <= b->swept_to) return;
  if (now - b->swept_to > t->sweep_period) b->swept_to = now - t->sweep_period;
  uint64_t due = (now - b->swept_to) * total / t->sweep_period;
  if (due == 0) return;
  uint32_t slots = due < max_slots ? (uint32_t)due : max_slots;
  b->swept_to += (uint64_t)slots * t->sweep_period / total;
  for (uint32_t i = 0; i < slots; i++) {
    struct ct_entry *e = slot_at(b, b->cursor);
    if (b->tag[b->cursor] && now >= e->expires) reclaim(t, b, e, &t->ctr.expired);
    b->cursor = b->cursor + 1 == total ? 0 : b->cursor + 1;
  }
  /* The next sweep reads the next window: fetch its live entries now (their tags were fetched
   * by this call's predecessor) and the tags of the window after it, so that no sweep waits for
   * memory (it reads one entry line per live slot, most of them misses). */
  uint32_t c = b->cursor;
  for (uint32_t i = 0; i < slots; i++) {
    if (b->tag[c]) rte_prefetch0(slot_at(b, c));
    c = c + 1 == total ? 0 : c + 1;
  }
  rte_prefetch0(&b->tag[c]);
  rte_prefetch0(&b->tag[c + slots - 1 < total ? c + slots - 1 : total - 1]);
}

void fl_ct_sweep(struct fl_ct *t, uint64_t now, uint32_t max_slots) {
  sweep_tab(t, &t->tab[CT_V4], now, max_slots);
  sweep_tab(t, &t->tab[CT_V6], now, max_slots);
}

void fl_ct_counters(const struct fl_ct *t, struct fl_ct_counters *out) {
  const uint64_t *in = (const uint64_t *)&t->ctr;
  uint64_t *o = (uint64_t *)out;
  for (size_t i = 0; i < sizeof(*out) / sizeof(uint64_t); i++)
    o[i] = __atomic_load_n(&in[i], __ATOMIC_RELAXED);
}
