/*
 * What the conntrack fuzz harnesses share: the few DPDK functions fl_conntrack.c links against,
 * stubbed (no EAL), and CHECK. Included by one harness per program.
 */
#ifndef FL_FUZZ_CT_STUBS_H
#define FL_FUZZ_CT_STUBS_H

#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>

#include <rte_cpuflags.h>
#include <rte_cycles.h>
#include <rte_malloc.h>

#define CHECK(c)       \
  do {                 \
    if (!(c)) abort(); \
  } while (0)

void *rte_zmalloc_socket(const char *type, size_t size, unsigned align, int socket) {
  (void)type, (void)align, (void)socket;
  return calloc(1, size);
}
void rte_free(void *p) { free(p); }
uint64_t rte_get_tsc_hz(void) { return 1000000; } /* 1 cycle per microsecond */
int rte_cpu_get_flag_enabled(enum rte_cpu_flag_t feature) {
  (void)feature;
  return 0; /* rte_hash_crc: the portable path */
}
int fl_fail(char *err, int rc, const char *fmt, ...) {
  (void)err, (void)fmt;
  return rc < 0 ? rc : -rc;
}

#endif
