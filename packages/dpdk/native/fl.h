/*
 * Flowline native core: the C API the Node binding (addon.cc) calls. No DPDK header leaks
 * through it, so the C++ side never includes rte_*.h. Every function that can fail returns a
 * negative errno and writes a human-readable message to `err` (FL_ERR_LEN bytes).
 */
#ifndef FL_H
#define FL_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include "fl_conntrack.h"
#include "fl_parse.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FL_ERR_LEN 512
#define FL_MAX_BURST 256
#define FL_NO_PORT 0xffff
/* Counters one lcore writes and the main thread reads (the generator's, the replay's): relaxed
 * atomics, plain moves on x86. */
#define FL_LD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define FL_ST(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)
#define FL_ADD(x, v) FL_ST(x, (x) + (v))

/* ---- EAL ---- */
/* Runs rte_eal_init with argv; EAL's log during init is captured into *log (malloc'd). */
int fl_eal_init(int argc, char **argv, char **log, char *err);
int fl_eal_cleanup(char *err);
int fl_eal_state(void); /* 0 never initialised, 1 running, 2 cleaned up */
/* Bytes allocated from DPDK's malloc heaps, summed over sockets. */
uint64_t fl_heap_bytes(void);
int fl_lcores(unsigned *out, int max, unsigned *main_lcore);
/* The TSC cycles a cache line written by the calling (main) lcore takes to reach idle worker lcore
 * `lcore` and come back written by it: the median over 5 batches of `rounds` / 5 round trips
 * each, into *cycles. What a pair of polling cores pays for every line they hand each other (a
 * virtqueue's descriptors, its index, a packet's data). -EINVAL: not a worker lcore, or rounds
 * outside 5..10,000,000; -EBUSY: the lcore runs something; -ETIMEDOUT: no answer for 5 s. */
int fl_lcore_round_trip(unsigned lcore, uint32_t rounds, double *cycles, char *err);
/* 0 when `lcore` is an idle worker lcore of this EAL; else -EINVAL (not a worker) or -EBUSY
 * (running something), with err naming it. */
int fl_worker_lcore_idle(unsigned lcore, char *err);
/* Runs fn(arg) on idle worker lcore `lcore` (fl_worker_lcore_idle, then the launch). */
int fl_worker_launch(unsigned lcore, int (*fn)(void *), void *arg, char *err);
const char *fl_strerror(int errnum);
/* Formats "<what>: <strerror> (<rc>)" into err; returns rc as a negative errno. */
int fl_fail(char *err, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- mempools ---- */
struct fl_pool_info {
  uint32_t size, available, in_use, cache_size, data_room;
  int socket;
  void *view_base; /* the pool's single memory chunk, or NULL when it has several */
  size_t view_len;
};
void *fl_pool_create(const char *name, uint32_t n, uint32_t cache, uint32_t data_room, int socket,
                     char *err);
void fl_pool_free(void *pool);
void fl_pool_info(void *pool, struct fl_pool_info *info);

/* ---- ports ---- */
struct fl_port_conf {
  uint16_t rx_queues, tx_queues, rx_desc, tx_desc;
  void *pool;
  uint32_t mtu;    /* 0: leave */
  uint8_t rx_intr; /* ask for rx queue interrupts (kept off if the driver refuses them) */
};
struct fl_port_info {
  char name[128];
  char driver[64];
  uint16_t max_rx_queues, max_tx_queues, min_mtu, max_mtu;
  int socket;
  int lsc; /* supports link state change interrupts */
};
struct fl_link {
  uint32_t speed_mbps;
  int up, full_duplex, autoneg;
};
struct fl_stats {
  uint64_t ipackets, opackets, ibytes, obytes, imissed, ierrors, oerrors, rx_nombuf;
};
/* DPDK's log stream (stderr, through the vhost-user handshake watch of fl_vhost.c). */
FILE *fl_log_stream(void);
void fl_log_scan(const char *text, size_t len);
/* 1 (and forgets it) when virtio-user reported a failed stop or start of the device on path. */
int fl_vhost_take_broken(const char *path);
/* Shuts down this process's connections accepted on the unix socket path; returns how many. */
int fl_vhost_kick(const char *path, char *err);

int fl_port_probe(const char *devargs, uint16_t *port, char *err);
int fl_port_find(const char *name, uint16_t *port);
int fl_port_info(uint16_t port, struct fl_port_info *info, char *err);
int fl_port_configure(uint16_t port, const struct fl_port_conf *conf, char *err);
int fl_port_start(uint16_t port, char *err);
int fl_port_stop(uint16_t port, char *err);
int fl_port_close(uint16_t port, char *err);
int fl_port_link(uint16_t port, struct fl_link *link, char *err);
int fl_port_mac(uint16_t port, uint8_t mac[6], char *err);
int fl_port_set_mac(uint16_t port, const uint8_t mac[6], char *err);
int fl_port_mtu(uint16_t port, uint16_t *mtu, char *err);
int fl_port_set_mtu(uint16_t port, uint16_t mtu, char *err);
int fl_port_promisc(uint16_t port, int *on, char *err);
int fl_port_set_promisc(uint16_t port, int on, char *err);
int fl_port_stats(uint16_t port, struct fl_stats *st, char *err);
int fl_port_stats_reset(uint16_t port, char *err);
/* Returns the number of xstats; fills up to max names (64 bytes each) and values. */
int fl_port_xstats(uint16_t port, char (*names)[64], uint64_t *values, int max, char *err);
int fl_port_valid(uint16_t port);

/* ---- batches: packets owned by JavaScript ---- */
/* meta holds FL_META_INTS int32 per packet, shared with JavaScript. */
#define FL_META_INTS 4 /* offset in the pool view (-1 when none), length, port, reason */
struct fl_batch {
  uint32_t cap, n;
  void **mbufs;
  int32_t *meta;
  const void *pool; /* the mempool whose view the offsets index */
};
struct fl_batch *fl_batch_create(uint32_t cap, int32_t *meta, const void *pool);
/* The batch's packets left it (sent, queued or freed): their offsets become -1, n 0. */
void fl_batch_forget(struct fl_batch *b);
void fl_batch_free(struct fl_batch *b); /* frees the packets it still holds */
void fl_batch_release(struct fl_batch *b);
int fl_rx_burst(uint16_t port, uint16_t queue, struct fl_batch *b);
/* The eventfd a queue's rx interrupt signals (port configured with rx_intr, started), or <0. */
int fl_port_rx_intr_fd(uint16_t port, uint16_t queue);
/* Arms (on) or disarms a queue's rx interrupt: while armed the peer kicks its eventfd. */
int fl_port_rx_intr(uint16_t port, uint16_t queue, int on);
/* Sends the batch's packets with the lengths in meta (a length < 0 drops that packet).
 * Every packet leaves the batch: those the queue did not take are freed. Returns sent. */
int fl_tx_burst(uint16_t port, uint16_t queue, struct fl_batch *b, uint32_t *dropped);
/* Copies data into freshly allocated mbufs and sends them, a burst at a time (any n), until a
 * burst goes out only partly or the pool has no mbufs for the next; returns the number sent.
 * Every length is checked first: one an mbuf cannot hold fails the call (err gives its index in
 * data) with nothing sent. */
int fl_tx_copy(uint16_t port, uint16_t queue, void *pool, const uint8_t *const *data,
               const uint32_t *lens, uint32_t n, char *err);
/* Receives up to max packets, copies them out with cb and frees them. */
typedef void (*fl_copy_cb)(void *ctx, const uint8_t *data, uint32_t len, uint16_t port, int reason);
int fl_rx_copy(uint16_t port, uint16_t queue, uint32_t max, fl_copy_cb cb, void *ctx);
/* Fills meta for b->n packets; used by rx and punt dequeue. */
void fl_batch_fill_meta(struct fl_batch *b);

/* ---- pipeline ---- */
enum fl_stage_type {
  FL_STAGE_L2FWD = 1,
  FL_STAGE_ACL = 2,
  FL_STAGE_LPM = 3,
  FL_STAGE_CONNTRACK = 4, /* must come right before an ACL stage; one worker only */
  FL_STAGE_BURN = 5,      /* burns cycles per packet: a benchmark's sensitivity control */
  FL_STAGE_ESP = 6,       /* ESP tunnel mode (fl_ipsec.h); one worker only */
};
enum fl_action { FL_ACT_PASS = 0, FL_ACT_DROP = 1, FL_ACT_PUNT = 2 };

struct fl_input {
  uint16_t port, queue;
};
/* How an idle worker waits (VPP's rx-mode): busy-poll, or after spin_polls empty polls
 * (adaptive; interrupt: spin_polls 0) arm the inputs' rx interrupts and sleep in epoll until the
 * peer kicks. Inputs without rx interrupts make the worker fall back to the timer back-off. */
enum fl_rx_mode { FL_RX_TIMER = 0, FL_RX_POLL = 1, FL_RX_ADAPTIVE = 2 };
/* Bounds of a back-off (pipeline.ts checks the same): a stop waits for a worker's sleep, and
 * epoll_wait takes an int of ms (past INT_MAX, negative: forever). fl_pipeline_create clamps. */
#define FL_BACKOFF_MAX_SLEEP_US 1000000u
#define FL_BACKOFF_MAX_INTR_WAIT_MS 60000u
struct fl_backoff {
  uint32_t spin_polls;   /* empty polls (with rte_pause) before sleeping */
  uint32_t sleep_min_us; /* first sleep */
  uint32_t sleep_max_us; /* sleeps double up to this */
  uint32_t rx_mode;      /* enum fl_rx_mode */
  uint32_t intr_wait_ms; /* longest epoll wait (a lost kick costs at most this); 0: 100 */
  /* The core is shared with other pollers: a poll that comes back short (fewer than a burst, so
   * the worker has caught up) and every empty spin poll yield the CPU (sched_yield) instead of
   * holding it until the scheduler's slice ends, so the poller that has packets runs sooner. */
  uint32_t share_core;
};
struct fl_worker_conf {
  unsigned lcore;
  uint16_t tx_queue; /* this worker's tx queue on every output port */
  uint16_t n_inputs;
  struct fl_input inputs[32];
};
struct fl_pipeline_conf {
  uint16_t n_workers;
  uint16_t burst;
  struct fl_backoff backoff;
  uint32_t punt_ring_size, inject_ring_size;
  uint8_t manual_clock; /* conntrack's now comes from fl_pipeline_advance_clock (tests) */
  struct fl_worker_conf workers[16];
};

struct fl_l2fwd_conf {
  uint16_t out_port[64]; /* by input port; FL_NO_PORT drops with no_output */
  uint8_t set_src[64];   /* rewrite the source MAC to src_mac[out] */
  uint8_t src_mac[64][6];
  uint8_t set_dst[64]; /* rewrite the destination MAC to dst_mac[out] */
  uint8_t dst_mac[64][6];
};

struct fl_acl_rule {
  uint8_t family; /* 4 or 6 */
  uint8_t proto, proto_mask;
  uint8_t src_len, dst_len;
  uint8_t action; /* FL_ACT_PASS (permit) or FL_ACT_DROP (deny) or FL_ACT_PUNT */
  uint16_t sport_lo, sport_hi, dport_lo, dport_hi;
  int32_t priority;
  uint8_t src[16], dst[16];
};
struct fl_acl_conf {
  uint8_t default_action;  /* when no rule matches */
  uint8_t non_ip_action;   /* non-IP packets (ARP included) */
  uint8_t fragment_action; /* non-first fragments (no ports) */
  uint64_t max_size;       /* bytes of rte_acl runtime structures per family; 0: the default */
};
/* Native rules per ACL table (one TypeScript rule with no family compiles to two). */
#define FL_ACL_MAX_RULES (1u << 18)
#define FL_ACL_DEFAULT_MAX_SIZE ((uint64_t)256 << 20)
/* What building a table for a stage needs; read on the control thread (fl_pipeline_acl_build_conf)
 * so that the build itself (fl_acl_table_build) can run on any thread. */
struct fl_acl_build_conf {
  uint16_t n_workers;
  int socket;
  uint64_t max_size;
};
struct fl_acl_table;

struct fl_nexthop {
  uint16_t port;
  uint8_t dst_mac[6], src_mac[6];
  /* The largest L3 packet sent to this next hop (its link's MTU): IPv4 total length, IPv6 40 +
   * payload length. A longer packet is punted with FL_R_TOO_BIG, untouched. 0: no limit. */
  uint16_t mtu;
};
struct fl_route {
  uint8_t family, len;
  uint32_t nexthop; /* index into the next-hop table */
  uint8_t addr[16];
};
struct fl_lpm_conf {
  uint8_t no_route_action; /* FL_ACT_DROP or FL_ACT_PUNT */
  uint8_t non_ip_action;
  uint8_t count_hits; /* count packets per route (8 bytes per route and worker) */
};
struct fl_burn_conf {
  uint32_t cycles; /* TSC cycles per packet */
};
struct fl_lpm_table_in {
  const struct fl_route *routes;
  uint32_t n_routes;
  const struct fl_nexthop *nexthops;
  uint32_t n_nexthops;
  const uint8_t (*local4)[4];
  uint32_t n_local4;
  const uint8_t (*local6)[16];
  uint32_t n_local6;
};

struct fl_pipeline;
struct fl_pipeline *fl_pipeline_create(const struct fl_pipeline_conf *conf, char *err);
int fl_pipeline_add_l2fwd(struct fl_pipeline *p, const struct fl_l2fwd_conf *c, char *err);
int fl_pipeline_add_acl(struct fl_pipeline *p, const struct fl_acl_conf *c, char *err);
int fl_pipeline_add_lpm(struct fl_pipeline *p, const struct fl_lpm_conf *c, char *err);
/* Conntrack: tracked flows skip the next (ACL) stage; that stage's permits open new flows. */
int fl_pipeline_add_conntrack(struct fl_pipeline *p, const struct fl_ct_conf *c, char *err);
int fl_pipeline_ct_counters(struct fl_pipeline *p, int stage, struct fl_ct_counters *out);
/* After an ACL swap: the worker drops the flows opened under earlier ACL tables. */
int fl_pipeline_ct_flush(struct fl_pipeline *p, int stage);
/* ACL tables are swapped in three steps so that the slow one can leave the control thread:
 * 1. control thread: fl_pipeline_acl_build_conf validates the stage and fills the build conf;
 * 2. any thread: fl_acl_table_build builds the table aside (seconds at 10k+ rules), touching
 *    nothing the pipeline shares; at most n <= FL_ACL_MAX_RULES rules;
 * 3. control thread: fl_pipeline_swap_acl publishes it, waits until every worker has passed a
 *    quiescent state and returns the old table, whose counters are final: read them with
 *    fl_acl_table_rules/fl_acl_table_hits, then fl_acl_table_free it.
 * A table never swapped in is freed with fl_acl_table_free (while the EAL runs). */
int fl_pipeline_acl_build_conf(struct fl_pipeline *p, int stage, struct fl_acl_build_conf *out,
                               char *err);
struct fl_acl_table *fl_acl_table_build(const struct fl_acl_build_conf *b,
                                        const struct fl_acl_rule *rules, uint32_t n, char *err);
struct fl_acl_table *fl_pipeline_swap_acl(struct fl_pipeline *p, int stage, struct fl_acl_table *t);
uint32_t fl_acl_table_rules(const struct fl_acl_table *t);
/* Per-rule hits summed over workers: n + 1 values (the last: default action); out must hold
 * fl_acl_table_rules(t) + 1 values. */
void fl_acl_table_hits(const struct fl_acl_table *t, uint64_t *out);
void fl_acl_table_free(struct fl_acl_table *t);
/* An output port (l2fwd out, LPM next hop, inject) must be attached and have a tx queue for
 * every worker's tx queue. 0 or < 0 with err naming the port and what it lacks. */
int fl_pipeline_check_out_port(struct fl_pipeline *p, uint32_t port, char *err);
/* Clock of the conntrack stage: a pipeline created with manual_clock reads its "now" from
 * fl_pipeline_advance_clock (tests); otherwise the TSC. Returns the manual now in TSC cycles,
 * or 0 when the pipeline runs on the TSC. */
uint64_t fl_pipeline_advance_clock(struct fl_pipeline *p, uint64_t ns);
int fl_pipeline_set_lpm(struct fl_pipeline *p, int stage, const struct fl_lpm_table_in *t,
                        char *err);
int fl_pipeline_start(struct fl_pipeline *p, char *err);
int fl_pipeline_stop(struct fl_pipeline *p);
void fl_pipeline_free(struct fl_pipeline *p);
int fl_pipeline_n_stages(struct fl_pipeline *p);
int fl_pipeline_add_burn(struct fl_pipeline *p, const struct fl_burn_conf *c, char *err);
/* Busy TSC cycles summed over workers, counted with rte_rdtsc in the worker in one burst of every
 * FL_CYC_SAMPLE that brought packets (an rdtsc costs tens of cycles: one a burst would show on a
 * forwarding path); empty polls and idle sleeps are not counted. FL_CYC_BUSY: those bursts from
 * before the rx call to the end of tx, scaled to every packet (their cycles a packet times the
 * packets); their parts: FL_CYC_RX (the rx burst call), FL_CYC_PARSE, FL_CYC_TX (sorting by
 * fate, tx, punt, free; and the work of a last l2fwd stage on a burst whose output it does not
 * rewrite, which the worker does itself, so that stage's part counts only the other bursts),
 * then one per stage, with FL_CYC_SAMPLED the packets of those bursts. Returns the count
 * (FL_CYC_FIXED + stages). */
#define FL_CYC_SAMPLE 16
enum { FL_CYC_BUSY = 0, FL_CYC_RX, FL_CYC_PARSE, FL_CYC_TX, FL_CYC_SAMPLED, FL_CYC_FIXED };
int fl_pipeline_cycles(struct fl_pipeline *p, uint64_t *out);
uint64_t fl_pipeline_tsc_hz(void);
/* An LPM stage's per-route hits (its table counts them: count_hits), in route order; returns the
 * number of routes, 0 when the table does not count, < 0 when s is not an LPM stage. */
int64_t fl_pipeline_lpm_hits(struct fl_pipeline *p, int s, uint64_t *out, uint32_t max);
/* Per stage (index 0 is the pipeline itself: rx, tx and final fates): in, out, drop[FL_R_COUNT],
 * punt[FL_R_COUNT]. out has (2 + 2 * FL_R_COUNT) values per stage. */
#define FL_STAGE_CTRS (2 + 2 * FL_R_COUNT)
void fl_pipeline_counters(struct fl_pipeline *p, uint64_t *out);
/* Idle waits in epoll, those a queue's kick ended, workers that wait on rx interrupts, yields. */
void fl_pipeline_rx_waits(struct fl_pipeline *p, uint64_t out[4]);
/* The current ACL table of a stage (control thread; NULL when not an ACL stage). It stays
 * valid until the next fl_pipeline_swap_acl of that stage, which also runs on this thread. */
const struct fl_acl_table *fl_pipeline_acl_table(struct fl_pipeline *p, int stage);
int fl_pipeline_punt_dequeue(struct fl_pipeline *p, struct fl_batch *b);
/* Hands the batch's packets to worker 0 to send on port (lengths from meta). Returns queued;
 * packets the inject ring does not take are freed. */
int fl_pipeline_inject(struct fl_pipeline *p, struct fl_batch *b, uint16_t port);
uint64_t fl_pipeline_swaps(struct fl_pipeline *p);

#ifdef __cplusplus
}
#endif
#endif
