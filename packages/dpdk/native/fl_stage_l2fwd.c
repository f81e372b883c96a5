/*
 * The l2fwd stage: every packet of an input port goes out of the port mapped to it, with the
 * destination and/or source MAC rewritten when that output asks for it. (A pipeline whose only
 * stage is l2fwd sends a burst that needs no rewrite without coming here: fl_worker.c.)
 */
#include <string.h>

#include <rte_mbuf.h>

#include "fl_stage.h"

void fl_l2fwd_run(struct stage *s, struct stage_ctr *c, struct pkt *pk, uint16_t n,
                  const struct burst *b) {
  const struct fl_l2fwd_conf *l2 = &s->c.l2;
  uint16_t out = fl_l2fwd_out(l2, b->in_port);
  int rewrite = out != FL_NO_PORT && fl_l2fwd_rewrites(l2, out);
  if (out != FL_NO_PORT && !rewrite) {
    /* Every packet takes the output: only those headed out (FATE_FWD) use it, so no branch per
     * packet on fates that mix at random behind a firewall. */
    uint64_t fwd = 0;
    for (uint16_t i = 0; i < n; i++) {
      fwd += pk[i].fate == FATE_FWD;
      pk[i].out = out;
    }
    c->in += fwd;
    c->out += fwd;
    return;
  }
  uint64_t seen = 0, fwd = 0;
  for (uint16_t i = 0; i < n; i++) {
    struct pkt *k = &pk[i];
    if (k->fate != FATE_FWD) continue;
    seen++;
    if (out == FL_NO_PORT) {
      set_fate(c, k, FL_ACT_DROP, FL_R_NO_OUTPUT);
      continue;
    }
    if (rewrite && k->m->data_len >= 12) {
      uint8_t *eth = rte_pktmbuf_mtod(k->m, uint8_t *);
      if (l2->set_dst[out]) memcpy(eth, l2->dst_mac[out], 6);
      if (l2->set_src[out]) memcpy(eth + 6, l2->src_mac[out], 6);
    }
    k->out = out;
    fwd++;
  }
  c->in += seen;
  c->out += fwd;
}
