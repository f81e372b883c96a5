/* Frame replay (fl_replay.h). */
#include "fl_replay.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "fl.h"

#define fail fl_fail

struct fl_replay {
  struct fl_replay_conf c;
  uint64_t ctr[FL_REPLAY_MAX_PORTS][FL_REPLAY_CTRS];
  int selected; /* index into c.ports, -1: none */
  int stop;
  int running;
};

struct fill {
  const struct fl_replay_conf *c;
  uint32_t next;
};

static void write_frame(struct rte_mempool *mp, void *arg, void *obj, unsigned idx) {
  (void)mp;
  (void)idx;
  struct fill *f = arg;
  struct rte_mbuf *m = obj;
  const uint8_t *src = f->c->frames + (size_t)(f->next++ % f->c->n_frames) * f->c->frame_len;
  memcpy((uint8_t *)m->buf_addr + RTE_PKTMBUF_HEADROOM, src, f->c->frame_len);
}

struct fl_replay *fl_replay_create(const struct fl_replay_conf *c, char *err) {
  struct rte_mempool *pool = c->pool;
  if (!pool) {
    fail(err, -EINVAL, "a replay needs a mempool");
    return NULL;
  }
  if (c->burst == 0 || c->burst > FL_MAX_BURST) {
    fail(err, -EINVAL, "burst %u must be in 1..%u", c->burst, FL_MAX_BURST);
    return NULL;
  }
  if (c->n_ports == 0 || c->n_ports > FL_REPLAY_MAX_PORTS) {
    fail(err, -EINVAL, "%u ports: give 1..%u", c->n_ports, FL_REPLAY_MAX_PORTS);
    return NULL;
  }
  for (uint16_t i = 0; i < c->n_ports; i++) {
    if (!rte_eth_dev_is_valid_port(c->ports[i])) {
      fail(err, -ENODEV, "ports[%u]: port %u is not attached", i, c->ports[i]);
      return NULL;
    }
    for (uint16_t k = 0; k < i; k++)
      if (c->ports[k] == c->ports[i]) {
        fail(err, -EINVAL, "ports[%u]: port %u is listed twice", i, c->ports[i]);
        return NULL;
      }
  }
  uint32_t room = rte_pktmbuf_data_room_size(pool) - RTE_PKTMBUF_HEADROOM;
  if (c->frame_len < FL_REPLAY_MIN_FRAME || c->frame_len > room) {
    fail(err, -EINVAL, "frame length %u outside %u..%u (the pool's data room)", c->frame_len,
         FL_REPLAY_MIN_FRAME, room);
    return NULL;
  }
  if (c->n_frames == 0 || c->n_frames > pool->size || !c->frames) {
    fail(err, -EINVAL, "%u frames: give 1..%u (the pool's size)", c->n_frames, pool->size);
    return NULL;
  }
  /* Every mbuf gets its frame once; one out of the pool now would miss it. */
  if (!rte_mempool_full(pool)) {
    fail(err, -EBUSY, "mempool %s has %u of its %u mbufs out: the replay needs a pool of its own",
         pool->name, pool->size - rte_mempool_avail_count(pool), pool->size);
    return NULL;
  }
  struct fl_replay *r = calloc(1, sizeof(*r));
  if (!r) {
    fail(err, -ENOMEM, "replay");
    return NULL;
  }
  r->c = *c;
  r->c.frames = NULL; /* written into the pool, not kept */
  r->selected = -1;
  struct fill f = {.c = c, .next = 0};
  rte_mempool_obj_iter(pool, write_frame, &f);
  return r;
}

static int replay_main(void *arg) {
  struct fl_replay *r = arg;
  struct rte_mempool *pool = r->c.pool;
  const uint16_t burst = r->c.burst, len = r->c.frame_len;
  struct rte_mbuf *ms[FL_MAX_BURST];
  while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
    int sel = FL_LD(r->selected);
    if (sel < 0) {
      usleep(1000);
      continue;
    }
    uint16_t port = r->c.ports[sel];
    uint64_t *ctr = r->ctr[sel];
    uint16_t n = rte_eth_rx_burst(port, 0, ms, burst);
    if (n) {
      rte_pktmbuf_free_bulk(ms, n);
      FL_ADD(ctr[FL_REPLAY_RX], n);
    }
    /* alloc resets data_off and the lengths a PMD may have changed (virtio prepends its header) */
    if (rte_pktmbuf_alloc_bulk(pool, ms, burst) < 0) continue;
    for (uint16_t i = 0; i < burst; i++) ms[i]->data_len = ms[i]->pkt_len = len;
    uint16_t sent = rte_eth_tx_burst(port, 0, ms, burst);
    if (sent < burst) rte_pktmbuf_free_bulk(ms + sent, burst - sent);
    FL_ADD(ctr[FL_REPLAY_TRIED], burst);
    FL_ADD(ctr[FL_REPLAY_SENT], sent);
  }
  return 0;
}

int fl_replay_start(struct fl_replay *r, char *err) {
  if (r->running) return fail(err, -EALREADY, "replay already running");
  r->stop = 0;
  int rc = fl_worker_launch(r->c.lcore, replay_main, r, err);
  if (rc < 0) return rc;
  r->running = 1;
  return 0;
}

int fl_replay_select(struct fl_replay *r, int index, char *err) {
  if (index < -1 || index >= (int)r->c.n_ports)
    return fail(err, -EINVAL, "port index %d: give -1 or 0..%u", index, r->c.n_ports - 1);
  FL_ST(r->selected, index);
  return 0;
}

void fl_replay_counters(struct fl_replay *r, uint64_t *out) {
  for (uint16_t i = 0; i < r->c.n_ports; i++)
    for (int k = 0; k < FL_REPLAY_CTRS; k++) out[i * FL_REPLAY_CTRS + k] = FL_LD(r->ctr[i][k]);
}

int fl_replay_stop(struct fl_replay *r) {
  if (!r->running) return 0;
  __atomic_store_n(&r->stop, 1, __ATOMIC_RELEASE);
  rte_eal_wait_lcore(r->c.lcore);
  r->running = 0;
  return 0;
}

void fl_replay_free(struct fl_replay *r) {
  if (!r) return;
  fl_replay_stop(r);
  free(r);
}
