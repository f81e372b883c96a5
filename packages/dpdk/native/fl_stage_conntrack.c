/*
 * The conntrack stage: looks every packet up in its flow table (fl_conntrack.c) a burst at a
 * time; a packet of a tracked flow is marked so that the paired ACL stage lets it pass, one of a
 * flow whose denial is cached so that the ACL drops it without a lookup; that ACL's permits open
 * new flows and its denials of TCP and UDP flows are cached (fl_stage_acl.c). One worker only: the
 * table has one writer.
 */
#include <rte_mbuf.h>

#include "fl_stage.h"

void fl_conntrack_run(struct stage *s, struct stage_ctr *c, struct pkt *pk, uint16_t n,
                      const struct burst *b) {
  struct fl_ct *ct = s->table;
  /* A flush requested after an ACL swap happens before any lookup of this burst. */
  fl_ct_acl_table(ct, fl_acl_table_gen(__atomic_load_n((struct fl_acl_table **)&s->pair->table,
                                                       __ATOMIC_ACQUIRE)));
  struct fl_ct_lookup q[FL_MAX_BURST];
  uint16_t idx[FL_MAX_BURST], m = 0;
  for (uint16_t i = 0; i < n; i++) {
    struct pkt *k = &pk[i];
    if (k->fate != FATE_FWD) continue;
    q[m].h = &k->h;
    q[m].pkt = rte_pktmbuf_mtod(k->m, const uint8_t *);
    q[m].len = k->m->data_len;
    q[m].verdict = 0;
    idx[m++] = i;
  }
  fl_ct_track_bulk(ct, q, m, b->now);
  for (uint16_t j = 0; j < m; j++) {
    pk[idx[j]].tracked = q[j].tracked;
    pk[idx[j]].verdict = q[j].verdict;
  }
  c->in += m;
  c->out += m;
  fl_ct_sweep(ct, b->now, 32);
}
