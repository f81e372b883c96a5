/*
 * Flowline packet parser: Ethernet (up to two VLAN tags, TPID 0x8100, 0x88a8 or 0x9100; more is
 * FL_R_MALFORMED_L2), ARP, IPv4, IPv6 with extension headers, TCP/UDP/SCTP ports and ICMP types. It
 * reads at most `len` bytes and never trusts a length field it has not checked against them. It has
 * no DPDK dependency so that the libFuzzer harness in ../fuzz can build it alone.
 */
#ifndef FL_PARSE_H
#define FL_PARSE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#ifdef __SSSE3__
#include <tmmintrin.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Why a packet was dropped or punted. Shared by the parser and every pipeline stage. */
enum fl_reason {
  FL_R_OK = 0,
  FL_R_MALFORMED_L2,  /* shorter than an Ethernet header or its VLAN tags, or over two tags */
  FL_R_MALFORMED_L3,  /* truncated IP/ARP header, bad version, IHL or length fields */
  FL_R_MALFORMED_L4,  /* truncated TCP/UDP/SCTP/ICMP header or bad L4 length */
  FL_R_BAD_EXT,       /* IPv6 extension chain truncated, misplaced or too long */
  FL_R_FRAGMENT,      /* an IP fragment that the stage does not handle */
  FL_R_NOT_IP,        /* neither IPv4 nor IPv6 (and not ARP for the router) */
  FL_R_ACL_DENY,      /* matched a deny rule (or the default action was deny) */
  FL_R_NO_ROUTE,      /* no LPM route for the destination */
  FL_R_TTL_EXPIRED,   /* TTL or hop limit would reach zero */
  FL_R_ARP,           /* ARP, handed to the slow path */
  FL_R_ND,            /* ICMPv6 neighbour discovery / router solicitation, to the slow path */
  FL_R_LOCAL,         /* addressed to the NF itself */
  FL_R_NO_OUTPUT,     /* no output port was chosen */
  FL_R_TX_FULL,       /* the output queue did not take it */
  FL_R_PUNT_FULL,     /* the punt ring was full */
  FL_R_CT_FULL,       /* a new flow found its conntrack bucket full (eviction off) */
  FL_R_TOO_BIG,       /* longer than the MTU of its LPM next hop, to the slow path */
  FL_R_NOT_ESP,       /* an inbound ESP stage's packet that is not ESP */
  FL_R_ESP_MALFORMED, /* ESP too short for its SA, or its ciphertext not a whole block */
  FL_R_ESP_NO_SA,     /* no SA for the SPI and outer destination (or for the inner family) */
  FL_R_ESP_AUTH,      /* ICV check failed (wrong key, altered packet) */
  FL_R_ESP_REPLAY,    /* sequence number seen already or left of the anti-replay window */
  FL_R_ESP_TRAILER,   /* decrypted, but bad padding bytes or the wrong next header */
  FL_R_ESP_LIFETIME,  /* the SA's hard lifetime is reached, or (no ESN) its sequence numbers */
  FL_R_ESP_ERROR,     /* no head or tail room, no crypto op, crypto failure */
  FL_R_ESP_POLICY,    /* discarded by an ESP stage's policy, or matched by none */
  FL_R_SEGMENTED,     /* in several mbufs (longer than its pool's data room): not parsed */
  FL_R_COUNT
};

enum fl_l3 { FL_L3_NONE = 0, FL_L3_IPV4 = 1, FL_L3_IPV6 = 2, FL_L3_ARP = 3 };

#define FL_F_FRAG 0x1       /* an IP fragment (any) */
#define FL_F_FRAG_LATER 0x2 /* a non-first fragment: no L4 header */
#define FL_F_L4 0x4         /* sport/dport (or ICMP type) are valid */

#define FL_IPV6_MAX_EXT 8

struct fl_parsed {
  uint16_t l3_off;    /* offset of the L3 header */
  uint16_t l4_off;    /* offset of the L4 header (after IPv6 extension headers) */
  uint16_t ethertype; /* host order, after VLAN tags */
  uint8_t l3;         /* enum fl_l3 */
  uint8_t proto;      /* IP protocol / IPv6 upper-layer next header */
  uint8_t flags;      /* FL_F_* */
  uint8_t reason;     /* enum fl_reason; FL_R_OK when well formed */
  uint8_t ttl;        /* IPv4 TTL or IPv6 hop limit */
  uint8_t icmp_type;  /* ICMP/ICMPv6 type when proto is 1/58 and FL_F_L4 */
  uint16_t sport;     /* network byte order, 0 when absent */
  uint16_t dport;     /* network byte order, 0 when absent */
  uint8_t src[16];    /* IPv4 in the first 4 bytes, network order */
  uint8_t dst[16];
};

/* Parses `len` bytes at `p`. Returns the reason (FL_R_OK when well formed); `out` is always
 * fully initialised. */
int fl_parse(const uint8_t *p, uint32_t len, struct fl_parsed *out);

const char *fl_reason_name(int reason);

#ifndef __cplusplus /* fl_parse_inline writes the record whole, by offset */
_Static_assert(offsetof(struct fl_parsed, proto) == 7 && offsetof(struct fl_parsed, ttl) == 10 &&
                   offsetof(struct fl_parsed, sport) == 12 &&
                   offsetof(struct fl_parsed, src) == 16 && offsetof(struct fl_parsed, dst) == 32 &&
                   sizeof(struct fl_parsed) == 48,
               "struct fl_parsed: the layout fl_parse_inline writes");
#endif

/*
 * fl_parse for a burst's packets, inline: the frame most traffic is (untagged IPv4 without
 * options, not a fragment, TCP or UDP whose header and lengths check out) is recognised with
 * a few predictable branches and written whole; any other frame goes to fl_parse. The result is
 * always fl_parse's (the fuzz harness compares them, with and without SSSE3). Why: fl_parse decides
 * TCP against UDP, header lengths and fragments one branch at a time, and in a burst that mixes TCP
 * and UDP at random those branches mispredict; here TCP against UDP is a mask on words, and the
 * branches left are ones well-formed traffic always takes.
 */
static inline int fl_parse_inline(const uint8_t *p, uint32_t len, struct fl_parsed *o) {
  /* 54 bytes: Ethernet, IPv4 and a TCP header's worth, so every byte read below exists (a UDP
   * frame is padded to 60 on the wire; a shorter one takes fl_parse). */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ /* the words below are read little-endian */
  if (len >= 54) {
    /* Read in loads that each lie within one store of whatever rx copy wrote the frame (16-byte
     * stores at 0, 16, 32, 48 for 64 bytes, at 0, 16, 28, 44 for 60; or 32-byte ones), so that
     * their data comes from the store buffer if the copy is still there: a load across two
     * stores waits until both reach the cache. Bytes 0-31 as two 16-byte loads (SSSE3) or
     * aligned 4-byte words, bytes 32-47 as aligned 4-byte words; the 2-byte lengths (16-17,
     * 38-39) as their own loads, which costs less than taking them out of those. */
    uint16_t tot, ulen_be;
    uint32_t a20, a32, a36, a44;
    memcpy(&tot, p + 16, 2);     /* total length */
    memcpy(&a20, p + 20, 4);     /* fragment, TTL, protocol */
    memcpy(&a32, p + 32, 4);     /* destination 2-3, source port */
    memcpy(&a36, p + 36, 4);     /* destination port, UDP length */
    memcpy(&ulen_be, p + 38, 2); /* UDP length */
    memcpy(&a44, p + 44, 4);     /* TCP data offset in byte 46 */
#ifdef __SSSE3__
    const __m128i v0 = _mm_loadu_si128((const __m128i *)p);
    const __m128i v1 = _mm_loadu_si128((const __m128i *)(p + 16));
    /* ethertype 0x0800 (bytes 12-13), version 4 with IHL 5 (14); no fragment offset, no
     * more-fragments flag (20-21): bytes 12-27 masked and compared at once */
    const __m128i b12 = _mm_alignr_epi8(v1, v0, 12);
    const __m128i fixed_mask = _mm_setr_epi8(-1, -1, -1, 0, 0, 0, 0, 0, 0x3f, -1, 0, 0, 0, 0, 0, 0);
    const __m128i fixed_want = _mm_setr_epi8(8, 0, 0x45, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    const int fixed_ok =
        _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_and_si128(b12, fixed_mask), fixed_want)) == 0xffff;
#else
    uint32_t a12, a24, a28;
    memcpy(&a12, p + 12, 4); /* ethertype, version/IHL, TOS */
    memcpy(&a24, p + 24, 4); /* checksum, source 0-1 */
    memcpy(&a28, p + 28, 4); /* source 2-3, destination 0-1 */
    /* ethertype 0x0800, version 4 with IHL 5; no fragment offset, no more-fragments flag */
    const int fixed_ok = ((a12 & 0xffffff) == 0x450008) & ((a20 & 0xff3f) == 0);
#endif
    /* L4 bytes the IP length gives: huge when it is below 20, so the check against the frame's
     * length refuses it too. */
    uint32_t l4 = (uint32_t)__builtin_bswap16(tot) - 20;
    uint32_t proto = a20 >> 24;
    uint32_t is_tcp = proto == 6;
    /* TCP: a data offset of 20 bytes or more within the L4 bytes; UDP: a UDP length of 8 or
     * more within them. Both read, the protocol picks by mask: compilers turn a conditional
     * here into a branch, which mispredicts where TCP and UDP mix. */
    uint32_t doff = (a44 >> 18) & 0x3c;
    uint32_t ulen = __builtin_bswap16(ulen_be);
    uint32_t tcp_mask = 0u - is_tcp;
    uint32_t l4_len = ulen ^ ((doff ^ ulen) & tcp_mask);
    /* the least L4 length: 20 for TCP, 8 for UDP, and for any other protocol more than a
     * 16-bit length can be (a value, not a condition, or compilers branch on TCP against UDP) */
    uint32_t l4_min = 8 + (12 & tcp_mask) + ((uint32_t)(!is_tcp & (proto != 17)) << 16);
    /* The other checks are branches: well-formed traffic passes them all, so they predict, and
     * cost less than folding each into a mask. */
    if (fixed_ok && l4 <= len - 34 && l4_len >= l4_min && l4_len <= l4) {
#ifdef __SSSE3__
      /* the record as three 16-byte stores, shuffled from bytes 22-37 (TTL, protocol, checksum,
       * source, destination, ports) over its fixed fields */
      const __m128i b22 = _mm_alignr_epi8(
          _mm_unpacklo_epi32(_mm_cvtsi32_si128((int)a32), _mm_cvtsi32_si128((int)a36)), v1, 6);
      const __m128i fixed_fields =
          _mm_setr_epi8(14, 0, 34, 0, 0, 8, FL_L3_IPV4, 0, FL_F_L4, 0, 0, 0, 0, 0, 0, 0);
      const __m128i head = _mm_or_si128(
          fixed_fields, _mm_shuffle_epi8(b22, _mm_setr_epi8(-1, -1, -1, -1, -1, -1, -1, 1, -1, -1,
                                                            0, -1, 12, 13, 14, 15)));
      const __m128i src = _mm_shuffle_epi8(
          b22, _mm_setr_epi8(4, 5, 6, 7, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1));
      const __m128i dst = _mm_shuffle_epi8(
          b22, _mm_setr_epi8(8, 9, 10, 11, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1));
      _mm_storeu_si128((__m128i *)o, head);
      _mm_storeu_si128((__m128i *)o->src, src);
      _mm_storeu_si128((__m128i *)o->dst, dst);
#else
      /* the record as six words: offsets, ethertype, l3, protocol | flags, TTL, ports |
       * source | destination */
      uint64_t w[6] = {
          14 | (uint64_t)34 << 16 | (uint64_t)0x0800 << 32 | (uint64_t)FL_L3_IPV4 << 48 |
              (uint64_t)proto << 56,
          FL_F_L4 | (uint64_t)(a20 >> 16 & 0xff) << 16 | (uint64_t)(a32 >> 16 | a36 << 16) << 32,
          a24 >> 16 | a28 << 16,
          0,
          a28 >> 16 | a32 << 16,
          0};
      memcpy(o, w, sizeof(w));
#endif
      return FL_R_OK;
    }
  }
#endif
  return fl_parse(p, len, o);
}

#ifdef __cplusplus
}
#endif
#endif
