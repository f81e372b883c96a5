#include "fl_parse.h"

#include <string.h>

/* The names JavaScript reads (counters' drop and punt reasons), by reason. */
static const char *const reason_names[FL_R_COUNT] = {
    [FL_R_OK] = "ok",
    [FL_R_MALFORMED_L2] = "malformed_l2",
    [FL_R_MALFORMED_L3] = "malformed_l3",
    [FL_R_MALFORMED_L4] = "malformed_l4",
    [FL_R_BAD_EXT] = "bad_ext_header",
    [FL_R_FRAGMENT] = "fragment",
    [FL_R_NOT_IP] = "not_ip",
    [FL_R_ACL_DENY] = "acl_deny",
    [FL_R_NO_ROUTE] = "no_route",
    [FL_R_TTL_EXPIRED] = "ttl_expired",
    [FL_R_ARP] = "arp",
    [FL_R_ND] = "nd",
    [FL_R_LOCAL] = "local",
    [FL_R_NO_OUTPUT] = "no_output",
    [FL_R_TX_FULL] = "tx_full",
    [FL_R_PUNT_FULL] = "punt_full",
    [FL_R_CT_FULL] = "conntrack_full",
    [FL_R_TOO_BIG] = "too_big",
    [FL_R_NOT_ESP] = "not_esp",
    [FL_R_ESP_MALFORMED] = "esp_malformed",
    [FL_R_ESP_NO_SA] = "esp_no_sa",
    [FL_R_ESP_AUTH] = "esp_auth",
    [FL_R_ESP_REPLAY] = "esp_replay",
    [FL_R_ESP_TRAILER] = "esp_trailer",
    [FL_R_ESP_LIFETIME] = "esp_lifetime",
    [FL_R_ESP_ERROR] = "esp_error",
    [FL_R_ESP_POLICY] = "esp_policy",
    [FL_R_SEGMENTED] = "segmented",
};

const char *fl_reason_name(int reason) {
  return reason >= 0 && reason < FL_R_COUNT ? reason_names[reason] : "unknown";
}

static inline uint16_t rd16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }

/* A VLAN tag's TPID: 802.1Q, 802.1ad, and 0x9100, the QinQ outer tag before 802.1ad (else an IP
 * packet behind one would be non-IP too). */
static inline int vlan_tpid(uint16_t et) { return et == 0x8100 || et == 0x88a8 || et == 0x9100; }

/* L4 header at p with `avail` bytes of L4 payload (bounded by the IP length fields). */
static int parse_l4(const uint8_t *p, uint32_t avail, struct fl_parsed *o) {
  switch (o->proto) {
  case 6: /* TCP */
    if (avail < 20) return FL_R_MALFORMED_L4;
    if ((p[12] >> 4) < 5 || (uint32_t)(p[12] >> 4) * 4 > avail) return FL_R_MALFORMED_L4;
    break;
  case 17:  /* UDP */
  case 136: /* UDP-Lite */
    if (avail < 8) return FL_R_MALFORMED_L4;
    if (o->proto == 17) {
      /* A first fragment's UDP length covers the whole datagram, not this fragment. */
      uint16_t ulen = rd16(p + 4);
      if (ulen < 8 || (ulen > avail && !(o->flags & FL_F_FRAG))) return FL_R_MALFORMED_L4;
    }
    break;
  case 132: /* SCTP */
    if (avail < 12) return FL_R_MALFORMED_L4;
    break;
  case 1:  /* ICMP */
  case 58: /* ICMPv6 */
    if (avail < 4) return FL_R_MALFORMED_L4;
    o->icmp_type = p[0];
    o->flags |= FL_F_L4;
    return FL_R_OK;
  default:
    return FL_R_OK; /* no ports for other protocols */
  }
  memcpy(&o->sport, p, 2);
  memcpy(&o->dport, p + 2, 2);
  o->flags |= FL_F_L4;
  return FL_R_OK;
}

static int parse_ipv4(const uint8_t *p, uint32_t len, struct fl_parsed *o) {
  if (len < 20) return FL_R_MALFORMED_L3;
  if ((p[0] >> 4) != 4) return FL_R_MALFORMED_L3;
  uint32_t ihl = (uint32_t)(p[0] & 0xf) * 4;
  if (ihl < 20 || ihl > len) return FL_R_MALFORMED_L3;
  uint32_t tot = rd16(p + 2);
  if (tot < ihl || tot > len) return FL_R_MALFORMED_L3;
  o->l3 = FL_L3_IPV4;
  o->ttl = p[8];
  o->proto = p[9];
  memcpy(o->src, p + 12, 4);
  memcpy(o->dst, p + 16, 4);
  o->l4_off = (uint16_t)(o->l3_off + ihl);
  uint16_t frag = rd16(p + 6);
  if (frag & 0x3fff) { /* MF set or offset != 0 */
    o->flags |= FL_F_FRAG;
    if (frag & 0x1fff) {
      o->flags |= FL_F_FRAG_LATER;
      return FL_R_OK;
    }
  }
  return parse_l4(p + ihl, tot - ihl, o);
}

static int parse_ipv6(const uint8_t *p, uint32_t len, struct fl_parsed *o) {
  if (len < 40) return FL_R_MALFORMED_L3;
  if ((p[0] >> 4) != 6) return FL_R_MALFORMED_L3;
  uint32_t plen = rd16(p + 4);
  if (plen > len - 40) return FL_R_MALFORMED_L3;
  if (plen == 0 && p[6] != 59) return FL_R_MALFORMED_L3; /* jumbograms are not supported */
  o->l3 = FL_L3_IPV6;
  o->ttl = p[7];
  memcpy(o->src, p + 8, 16);
  memcpy(o->dst, p + 24, 16);
  uint8_t nh = p[6];
  uint32_t off = 40, end = 40 + plen;
  for (int n = 0;; n++) {
    uint32_t hlen;
    switch (nh) {
    case 0: /* hop-by-hop: only directly after the fixed header */
      if (n != 0) return FL_R_BAD_EXT;
      /* fall through */
    case 43: /* routing */
    case 60: /* destination options */
      if (end - off < 8) return FL_R_BAD_EXT;
      hlen = ((uint32_t)p[off + 1] + 1) * 8;
      break;
    case 51: /* AH */
      if (end - off < 8) return FL_R_BAD_EXT;
      hlen = ((uint32_t)p[off + 1] + 2) * 4;
      break;
    case 44: { /* fragment */
      if (end - off < 8) return FL_R_BAD_EXT;
      uint16_t fo = rd16(p + off + 2);
      o->flags |= FL_F_FRAG;
      if (fo & 0xfff8) { /* offset != 0 */
        o->flags |= FL_F_FRAG_LATER;
        o->proto = p[off];
        o->l4_off = (uint16_t)(o->l3_off + off + 8);
        return FL_R_OK;
      }
      hlen = 8;
      break;
    }
    default:
      o->proto = nh;
      o->l4_off = (uint16_t)(o->l3_off + off);
      if (nh == 59) return FL_R_OK; /* no next header */
      return parse_l4(p + off, end - off, o);
    }
    if (n >= FL_IPV6_MAX_EXT || hlen > end - off) return FL_R_BAD_EXT;
    nh = p[off];
    off += hlen;
  }
}

int fl_parse(const uint8_t *p, uint32_t len, struct fl_parsed *o) {
  memset(o, 0, sizeof(*o));
  int r;
  if (len < 14) {
    r = FL_R_MALFORMED_L2;
    goto out;
  }
  uint32_t off = 12;
  uint16_t et = rd16(p + off);
  /* Two tags at most. A third is malformed: taken for a non-IP ethertype, an IP packet behind it
   * would meet the ACL's non-IP action (pass by default) instead of its rules. */
  for (int tags = 0; vlan_tpid(et); tags++) {
    if (tags == 2) {
      r = FL_R_MALFORMED_L2;
      goto out;
    }
    off += 4;
    if (len < off + 2) {
      r = FL_R_MALFORMED_L2;
      goto out;
    }
    et = rd16(p + off);
  }
  off += 2;
  o->ethertype = et;
  o->l3_off = (uint16_t)off;
  switch (et) {
  case 0x0800:
    r = parse_ipv4(p + off, len - off, o);
    break;
  case 0x86dd:
    r = parse_ipv6(p + off, len - off, o);
    break;
  case 0x0806:
    o->l3 = FL_L3_ARP;
    r = len - off < 28 ? FL_R_MALFORMED_L3 : FL_R_OK;
    break;
  default:
    r = FL_R_OK;
  }
out:
  o->reason = (uint8_t)r;
  return r;
}
