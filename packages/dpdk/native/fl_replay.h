/*
 * Frame replay: a source that costs the sender as little as a DPDK port allows, for benchmarks
 * whose generator shares a link's work with the NF under test (a vhost-user link, where the NF
 * does the copies and the generator drives the virtio side).
 *
 * The frames are written once, at create, into every mbuf of a pool given to the replay (mbuf k
 * carries frame k % n). Sending one then costs an allocation from the pool's cache, the length
 * fields and the tx burst: nothing is written into packet data and no reference count is shared
 * (testpmd flowgen's clones pay an atomic decrement per packet at free, which waits for every
 * outstanding cache miss; without clones it writes every packet's headers). What comes back is
 * freed unread. One port at a time is active (`fl_replay_select`): its rx queue 0 is drained and
 * its tx queue 0 offered a burst on every loop; with none selected the lcore sleeps.
 *
 * The frames stay as written only while nobody writes into the mbufs: send them over links that
 * copy (virtio-user, vhost-user, a NIC), not over net_ring to an NF in the same process, and give
 * the ports' rx queues another pool.
 */
#ifndef FL_REPLAY_H
#define FL_REPLAY_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FL_REPLAY_MAX_PORTS 16
#define FL_REPLAY_MIN_FRAME 14 /* an Ethernet header */

struct fl_replay_conf {
  unsigned lcore; /* a worker lcore */
  uint16_t burst;
  uint16_t n_ports;
  uint16_t ports[FL_REPLAY_MAX_PORTS]; /* started ports; queue 0 of each is the replay's */
  void *pool;                          /* full (nothing allocated) and the replay's alone */
  uint32_t n_frames;                   /* 1..the pool's size */
  uint16_t frame_len;                  /* every frame's length (no FCS) */
  const uint8_t *frames;               /* n_frames * frame_len bytes */
};

/* Counters per port, FL_REPLAY_CTRS each, in the order of conf.ports. */
enum {
  FL_REPLAY_TRIED = 0, /* offered to the tx burst */
  FL_REPLAY_SENT,      /* taken by it (the rest went back to the pool) */
  FL_REPLAY_RX,        /* received and freed */
  FL_REPLAY_CTRS
};

struct fl_replay;
/* Validates, writes the frames into every mbuf of the pool; does not start. */
struct fl_replay *fl_replay_create(const struct fl_replay_conf *conf, char *err);
int fl_replay_start(struct fl_replay *r, char *err);
/* Makes conf.ports[index] the active port; -1: none. Takes effect at the lcore's next loop. */
int fl_replay_select(struct fl_replay *r, int index, char *err);
void fl_replay_counters(struct fl_replay *r, uint64_t *out);
int fl_replay_stop(struct fl_replay *r);  /* waits for the lcore; counters stay readable */
void fl_replay_free(struct fl_replay *r); /* the pool stays the caller's */

#ifdef __cplusplus
}
#endif
#endif
