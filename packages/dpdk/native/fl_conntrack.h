/*
 * Connection tracking for the stateful firewall: TCP (SYN seen, established, FIN/RST closing),
 * UDP and ICMP/ICMPv6 echo, IPv4 and IPv6, in a bounded open-addressing table sized at creation.
 * ICMP errors quoting a packet of a tracked flow pass as related traffic. The ACL's denials of TCP
 * and UDP flows are cached too (one direction, the current ACL table only, a short timeout; a
 * cached denial only takes a free slot or another denial's, never a permitted flow's), so that a
 * denied flow's later packets skip the ACL as a permitted flow's do.
 *
 * Threading rule: one writer. Only the single worker lcore of the pipeline that owns the table
 * calls fl_ct_track, fl_ct_commit and fl_ct_sweep; the control thread only reads counters
 * (relaxed atomic loads) and frees the table once the worker has stopped. No DPDK header here,
 * so the C++ binding can include it.
 */
#ifndef FL_CONNTRACK_H
#define FL_CONNTRACK_H

#include <stdint.h>

#include "fl_parse.h"

#ifdef __cplusplus
extern "C" {
#endif

enum fl_ct_timeout {
  FL_CT_TO_TCP_SYN = 0, /* SYN seen, handshake not complete */
  FL_CT_TO_TCP_ESTABLISHED,
  FL_CT_TO_TCP_CLOSING, /* FIN from either side, or RST */
  FL_CT_TO_UDP,
  FL_CT_TO_ICMP,
  FL_CT_TO_DENIED, /* a cached ACL denial, since the flow's last packet */
  FL_CT_TO_COUNT
};

#define FL_CT_BUCKET 32 /* entries per bucket (set-associative); their tags fill one line */
#define FL_CT_MIN_CAPACITY 64
#define FL_CT_MAX_CAPACITY (1u << 24)

struct fl_ct_conf {
  uint32_t capacity; /* flows per address family (IPv4 and IPv6 tables); a power of two up */
  uint32_t timeout_ms[FL_CT_TO_COUNT];
  uint8_t evict; /* 1: a full bucket evicts its least recently seen flow; 0: drop the new flow */
  int socket;
};

struct fl_ct_counters {
  uint64_t entries;  /* slots in use, both families (expired ones count until reclaimed) */
  uint64_t capacity; /* per address family */
  uint64_t created;
  uint64_t expired;        /* reclaimed after their timeout */
  uint64_t evicted;        /* live flows pushed out of a full bucket */
  uint64_t hits;           /* packets that matched a tracked flow (either direction) */
  uint64_t reply_hits;     /* of those, packets in the reply direction */
  uint64_t table_full;     /* new flows dropped because their bucket was full (evict off) */
  uint64_t related;        /* ICMP errors about a tracked flow (counted in hits too) */
  uint64_t flushed;        /* flows removed by flushes */
  uint64_t denied;         /* denials cached (entries created for flows the ACL denied) */
  uint64_t denied_hits;    /* packets dropped by a cached denial */
  uint64_t denied_evicted; /* cached denials pushed out by a new flow (permitted or denied) */
};
struct fl_ct;

struct fl_ct *fl_ct_create(const struct fl_ct_conf *c, char *err);
void fl_ct_free(struct fl_ct *t);
enum { FL_CT_MISS = 0, FL_CT_PASS = 1, FL_CT_DENIED = 2 };
/* Worker: a packet of a tracked flow updates the flow and returns FL_CT_PASS; one of a flow whose
 * denial is cached returns FL_CT_DENIED and the ACL's result in *verdict; anything else
 * FL_CT_MISS. */
int fl_ct_track(struct fl_ct *t, const struct fl_parsed *h, const uint8_t *pkt, uint32_t len,
                uint64_t now, uint32_t *verdict);
/* Worker: fl_ct_track for a burst, in passes so that the memory reads of all its packets overlap:
 * classify and hash every packet and prefetch its bucket's tag line; find the slot whose tag
 * matches and prefetch its entry; check the keys and sort the packets into groups by their flow's
 * state (UDP, TCP, cached denial, anything else); then update the flows a group at a time, each in
 * packet order. A flow's packets share a group, so the results are those of fl_ct_track called
 * packet by packet (fuzz/ct_bulk_fuzz.c checks it). n <= 256. */
struct fl_ct_lookup {
  const struct fl_parsed *h;
  const uint8_t *pkt;
  uint32_t len;
  uint8_t tracked;  /* out: FL_CT_MISS, FL_CT_PASS or FL_CT_DENIED */
  uint32_t verdict; /* out, FL_CT_DENIED: the ACL result that denied the flow */
};
void fl_ct_track_bulk(struct fl_ct *t, struct fl_ct_lookup *q, uint32_t n, uint64_t now);
/* Worker: records the flow of a packet the ACL permitted (TCP SYN, UDP, ICMP echo request).
 * Returns 1 created, 0 nothing to track, -ENOSPC when the bucket is full and eviction is off. */
int fl_ct_commit(struct fl_ct *t, const struct fl_parsed *h, const uint8_t *pkt, uint32_t len,
                 uint64_t now);
/* Worker: caches the ACL's denial of a packet's flow (TCP or UDP) under the current ACL table,
 * `verdict` being the ACL's result (its rule). Returns 1 cached, 0 not (another kind of packet,
 * the flow has an entry, or the bucket holds only permitted flows). */
int fl_ct_commit_denied(struct fl_ct *t, const struct fl_parsed *h, const uint8_t *pkt,
                        uint32_t len, uint64_t now, uint32_t verdict);
/* Worker: the generation of the ACL table the flows were last judged by (what fl_ct_acl_table
 * was last given; 0 before any). */
uint64_t fl_ct_judged_by(const struct fl_ct *t);
/* Control thread, after an ACL table swap has returned: asks the worker to drop every flow
 * opened under an earlier ACL table (flows opened under the current one stay). */
void fl_ct_request_flush(struct fl_ct *t);
/* Worker, before the lookups and again before the commits of each burst: the generation of the
 * ACL table in force (fl_acl_table_gen: unique per table built, never an address, which a later
 * table can be given). A new generation starts a new epoch; a requested flush drops the flows of
 * earlier epochs. */
void fl_ct_acl_table(struct fl_ct *t, uint64_t acl_gen);
/* Worker, once per burst: reclaims expired flows among the next slots, at most `max_slots`. The
 * sweep is paced by the clock, not the packet rate: the whole table once per sweep period (the
 * shortest timeout, at most 1 s), so that at millions of packets a second it does not read
 * flow lines the lookups need the cache for. */
void fl_ct_sweep(struct fl_ct *t, uint64_t now, uint32_t max_slots);
/* Any thread. */
void fl_ct_counters(const struct fl_ct *t, struct fl_ct_counters *out);

#ifdef __cplusplus
}
#endif
#endif
