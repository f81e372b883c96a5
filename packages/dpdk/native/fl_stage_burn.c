/*
 * The burn stage, a benchmark's sensitivity control: it spins a known number of TSC cycles per
 * packet, so a benchmark can check that it sees a known cost.
 */
#include <rte_cycles.h>
#include <rte_pause.h>

#include "fl_stage.h"

void fl_burn_run(struct stage *s, struct stage_ctr *c, struct pkt *pk, uint16_t n,
                 const struct burst *b) {
  (void)b;
  uint32_t k = 0;
  for (uint16_t i = 0; i < n; i++) k += pk[i].fate == FATE_FWD;
  uint64_t end = rte_rdtsc() + (uint64_t)k * s->c.burn.cycles;
  while (rte_rdtsc() < end) rte_pause();
  c->in += k;
  c->out += k;
}
