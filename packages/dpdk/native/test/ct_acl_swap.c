/*
 * The conntrack and ACL stages (fl_stage_conntrack.c, fl_stage_acl.c) run on a packet the way
 * the worker runs them, across ACL table swaps, with no EAL: the tables have no rules (no rte_acl
 * context, so only malloc), the stage's default action permits, and a cached denial is made by
 * hand with the result of a rule the table does not have (rule 1000, as a table of 1000+ rules
 * would have given it). DPDK's allocator and clock are ct_stubs.h's.
 *
 * 1. A table freed and the next one built at its address (glibc: the freed table's chunk taken
 *    from a fastbin by the next calloc; the harness makes sure of that and says so when it
 *    cannot): the denial made under the freed table must not be answered under the new one, the
 *    flush asked for after the swap must drop it, and the packet must be judged again (and pass).
 * 2. The same table, a denial holding a rule index past the table's rules: judged again, never
 *    counted at that index (a write past the table's hit counters).
 *
 * Exit 0: both hold; 1: one failed (the message says which); 2: the address was not reused.
 *
 * Build: cc -O1 -g $(pkg-config --cflags libdpdk) -I.. ct_acl_swap.c ../fl_stage_conntrack.c
 *        ../fl_stage_acl.c ../fl_conntrack.c ../fl_parse.c $(pkg-config --libs libdpdk)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_mbuf.h>

#include "fl_stage.h"
#include "../fuzz/ct_stubs.h"

#define FAIL(...)                 \
  do {                            \
    fprintf(stderr, __VA_ARGS__); \
    fputc('\n', stderr);          \
    exit(1);                      \
  } while (0)

static uint8_t frame[64];
static uint32_t frame_len;

/* A UDP/IPv4 frame 10.0.0.1:1000 -> 192.0.2.1:9. */
static void udp4(void) {
  memset(frame, 0, sizeof(frame));
  frame[12] = 8;
  uint8_t *ip = frame + 14;
  ip[0] = 0x45;
  ip[3] = 28;
  ip[8] = 64;
  ip[9] = 17;
  memcpy(ip + 12, (const uint8_t[]){10, 0, 0, 1}, 4);
  memcpy(ip + 16, (const uint8_t[]){192, 0, 2, 1}, 4);
  uint8_t *u = ip + 20;
  u[0] = 1000 >> 8;
  u[1] = 1000 & 0xff;
  u[3] = 9;
  u[5] = 8;
  frame_len = 60;
}

static struct fl_acl_table *empty_table(void) {
  struct fl_acl_build_conf b = {1, 0, 0};
  char err[FL_ERR_LEN] = "";
  struct fl_acl_table *t = fl_acl_table_build(&b, NULL, 0, err);
  if (!t) FAIL("fl_acl_table_build: %s", err);
  return t;
}

/* Runs the two stages on the frame (as one burst of one packet); returns its fate. */
static int run(struct stage *st, uint64_t now) {
  struct rte_mbuf m;
  memset(&m, 0, sizeof(m));
  m.buf_addr = frame;
  m.data_len = (uint16_t)frame_len;
  m.pkt_len = frame_len;
  struct pkt k;
  memset(&k, 0, sizeof(k));
  k.m = &m;
  k.out = FL_NO_PORT;
  k.fate = FATE_FWD;
  fl_parse(frame, frame_len, &k.h);
  struct stage_ctr c[2];
  memset(c, 0, sizeof(c));
  const struct burst b = {now, 0, 0};
  fl_conntrack_run(&st[0], &c[0], &k, 1, &b);
  fl_acl_run(&st[1], &c[1], &k, 1, &b);
  return k.fate;
}

/* Caches a denial of the frame's flow with rule 1000's result, under the table in force. */
static void deny_by_rule_1000(struct fl_ct *ct, uint64_t now) {
  struct fl_parsed h;
  fl_parse(frame, frame_len, &h);
  if (fl_ct_commit_denied(ct, &h, frame, frame_len, now, 1001) != 1)
    FAIL("the denial was not cached");
}

static struct fl_ct *new_ct(void) {
  struct fl_ct_conf cc = {64, {1000, 1000, 1000, 1000, 1000, 10000}, 1, -1};
  char err[FL_ERR_LEN] = "";
  struct fl_ct *ct = fl_ct_create(&cc, err);
  if (!ct) FAIL("fl_ct_create: %s", err);
  return ct;
}

/* Stage 0 conntrack (ct), stage 1 ACL (table t, default permit), paired as fl_pipeline pairs. */
static void stages(struct stage *st, struct fl_ct *ct, struct fl_acl_table *t) {
  memset(st, 0, 2 * sizeof(*st));
  st[0].type = FL_STAGE_CONNTRACK;
  st[0].table = ct;
  st[0].pair = &st[1];
  st[1].type = FL_STAGE_ACL;
  st[1].c.acl.default_action = FL_ACT_PASS;
  st[1].table = t;
  st[1].pair = &st[0];
}

/* A burst of no packets: the stages take the table in force, as at the start of every burst. */
static void idle_burst(struct stage *st) {
  const struct burst b = {1000, 0, 0};
  struct stage_ctr c[2];
  fl_conntrack_run(&st[0], &c[0], NULL, 0, &b);
  fl_acl_run(&st[1], &c[1], NULL, 0, &b);
}

static void check_counters(struct fl_ct *ct, const char *what, uint64_t flushed,
                           uint64_t denied_hits, uint64_t created) {
  struct fl_ct_counters k;
  fl_ct_counters(ct, &k);
  if (k.flushed != flushed || k.denied_hits != denied_hits || k.created != created)
    FAIL("%s: flushed %llu denied_hits %llu created %llu, want %llu %llu %llu", what,
         (unsigned long long)k.flushed, (unsigned long long)k.denied_hits,
         (unsigned long long)k.created, (unsigned long long)flushed,
         (unsigned long long)denied_hits, (unsigned long long)created);
}

/* The packet passed by the default action, counted there (index n = 0) and nowhere else. */
static void check_default_hit(const struct fl_acl_table *t, const char *what) {
  uint64_t h[1];
  fl_acl_table_hits(t, h);
  if (h[0] != 1)
    FAIL("%s: the new table's default action counted %llu packets, want 1", what,
         (unsigned long long)h[0]);
}

static void swap_at_same_address(void) {
  const char *what = "a table built at a freed table's address";
  struct fl_ct *ct = new_ct();
  struct stage st[2];
  void *fill[7];
  for (int i = 0; i < 7; i++) fill[i] = malloc(56);
  struct fl_acl_table *t1 = empty_table();
  stages(st, ct, t1);
  idle_burst(st);
  deny_by_rule_1000(ct, 1000);
  /* updateAcl, then flushConntrack: the swap returned T1, which is freed */
  fl_ct_request_flush(ct);
  /* Seven 64-byte chunks freed first fill the thread's tcache bin, so that the table's chunk,
   * freed next, goes to a fastbin, where the next calloc of its size takes it. */
  for (int i = 0; i < 7; i++) free(fill[i]);
  fl_acl_table_free(t1);
  struct fl_acl_table *t2 = empty_table();
  if ((void *)t2 != (void *)t1) {
    fprintf(stderr, "%s: the allocator did not reuse the address (%p, %p)\n", what, (void *)t1,
            (void *)t2);
    exit(2);
  }
  st[1].table = t2;
  if (run(st, 2000) != FATE_FWD) FAIL("%s: the old table's denial was applied", what);
  check_counters(ct, what, 1, 0, 1);
  check_default_hit(t2, what);
  fl_acl_table_free(t2);
  fl_ct_free(ct);
}

static void verdict_past_the_rules(void) {
  const char *what = "a denial holding a rule index past the table's rules";
  struct fl_ct *ct = new_ct();
  struct stage st[2];
  struct fl_acl_table *t = empty_table();
  stages(st, ct, t);
  idle_burst(st);
  deny_by_rule_1000(ct, 1000);
  if (run(st, 2000) != FATE_FWD) FAIL("%s: applied, not judged again", what);
  check_default_hit(t, what);
  fl_acl_table_free(t);
  fl_ct_free(ct);
}

int main(void) {
  udp4();
  swap_at_same_address();
  verdict_past_the_rules();
  fprintf(stderr, "ct_acl_swap: ok\n");
  return 0;
}
