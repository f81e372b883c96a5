/* EAL lifecycle, mempools, ports and JavaScript-owned packet batches. */
#define ALLOW_EXPERIMENTAL_API /* rte_devargs_reset is experimental in 22.11 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_bus.h>
#include <rte_common.h>
#include <rte_cycles.h>
#include <rte_dev.h>
#include <rte_devargs.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_log.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "fl.h"

static int eal_state; /* 0 never, 1 running, 2 cleaned up, 3 init failed */

#define fail fl_fail

int fl_fail(char *err, int rc, const char *fmt, ...) {
  if (err) {
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(err, FL_ERR_LEN, fmt, ap);
    va_end(ap);
    if (k >= 0 && k < FL_ERR_LEN)
      snprintf(err + k, FL_ERR_LEN - k, ": %s (%d)", fl_strerror(-rc), rc);
  }
  return rc < 0 ? rc : -rc;
}

const char *fl_strerror(int errnum) {
  if (errnum < 0) errnum = -errnum;
  return rte_strerror(errnum);
}

int fl_eal_state(void) { return eal_state; }

uint64_t fl_heap_bytes(void) {
  uint64_t sum = 0;
  for (unsigned i = 0; i < rte_socket_count(); i++) {
    struct rte_malloc_socket_stats st;
    if (rte_malloc_get_socket_stats(rte_socket_id_by_idx(i), &st) == 0)
      sum += st.heap_allocsz_bytes;
  }
  return sum;
}

int fl_eal_init(int argc, char **argv, char **log, char *err) {
  if (eal_state == 1) return fail(err, -EALREADY, "EAL is already running in this process");
  if (eal_state == 2)
    return fail(err, -EALREADY,
                "EAL was cleaned up in this process and DPDK cannot initialise it again");
  if (eal_state == 3)
    return fail(err, -EALREADY,
                "an earlier rte_eal_init failed in this process and DPDK keeps its parsed state: "
                "start a new process");
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  if (f) rte_openlog_stream(f);
  optind = 0; /* glibc: reinitialise getopt fully (a failed init may have parsed before) */
  opterr = 1;
  int rc = rte_eal_init(argc, argv);
  int e = rte_errno;
  if (f) {
    rte_openlog_stream(NULL);
    fclose(f);
  }
  *log = buf;
  if (rc < 0) {
    eal_state = 3;
    return fail(err, -(e ? e : EINVAL), "rte_eal_init failed");
  }
  eal_state = 1;
  rte_openlog_stream(fl_log_stream()); /* stderr, through the vhost-user handshake watch */
  return rc;
}

int fl_eal_cleanup(char *err) {
  if (eal_state != 1) return fail(err, -EINVAL, "EAL is not running");
  int rc = rte_eal_cleanup();
  eal_state = 2;
  if (rc < 0) return fail(err, rc, "rte_eal_cleanup failed");
  return 0;
}

int fl_lcores(unsigned *out, int max, unsigned *main_lcore) {
  int n = 0;
  unsigned id;
  *main_lcore = rte_get_main_lcore();
  RTE_LCORE_FOREACH_WORKER(id) {
    if (n < max) out[n] = id;
    n++;
  }
  return n;
}

/* The line the two lcores hand each other, alone in it: odd values are the main lcore's pings,
 * the even value after one the worker's answer. */
struct rt_line {
  uint32_t seq __rte_cache_aligned;
  uint8_t pad[RTE_CACHE_LINE_SIZE - sizeof(uint32_t)];
};
struct rt_job {
  struct rt_line *line;
  uint32_t pings;
  uint64_t deadline; /* TSC */
};

/* Spins until the line holds `want`; 0, or -ETIMEDOUT past the deadline (the clock is read once
 * every 1,024 spins, so that reading it adds nothing measurable to a round trip). */
static inline int rt_wait(const struct rt_line *l, uint32_t want, uint64_t deadline) {
  for (uint32_t spins = 0; __atomic_load_n(&l->seq, __ATOMIC_ACQUIRE) != want; spins++)
    if ((spins & 1023) == 1023 && rte_rdtsc() > deadline) return -ETIMEDOUT;
  return 0;
}

static int rt_answer(void *arg) {
  const struct rt_job *j = arg;
  for (uint32_t i = 1; i <= j->pings; i++) {
    if (rt_wait(j->line, 2 * i - 1, j->deadline) < 0) return -ETIMEDOUT;
    __atomic_store_n(&j->line->seq, 2 * i, __ATOMIC_RELEASE);
  }
  return 0;
}

static int cmp_double(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int fl_worker_lcore_idle(unsigned lcore, char *err) {
  if (lcore >= RTE_MAX_LCORE || lcore == rte_get_main_lcore() || !rte_lcore_is_enabled(lcore))
    return fail(err, -EINVAL, "lcore %u is not a worker lcore of this EAL (give it in eal lcores)",
                lcore);
  if (rte_eal_get_lcore_state(lcore) != WAIT)
    return fail(err, -EBUSY, "lcore %u is busy (a pipeline, a generator or another job runs on it)",
                lcore);
  return 0;
}

int fl_worker_launch(unsigned lcore, int (*fn)(void *), void *arg, char *err) {
  int rc = fl_worker_lcore_idle(lcore, err);
  if (rc < 0) return rc;
  rc = rte_eal_remote_launch(fn, arg, lcore);
  return rc < 0 ? fail(err, rc, "rte_eal_remote_launch(lcore %u)", lcore) : 0;
}

int fl_lcore_round_trip(unsigned lcore, uint32_t rounds, double *cycles, char *err) {
  enum { BATCHES = 5 };
  if (rounds < BATCHES || rounds > 10000000)
    return fail(err, -EINVAL, "round trips must be %d..10000000, got %u", BATCHES, rounds);
  static struct rt_line line;
  const uint32_t per = rounds / BATCHES;
  struct rt_job job = {&line, per * BATCHES, rte_rdtsc() + 5 * rte_get_tsc_hz()};
  __atomic_store_n(&line.seq, 0, __ATOMIC_RELEASE);
  int rc = fl_worker_launch(lcore, rt_answer, &job, err);
  if (rc < 0) return rc;
  double batch[BATCHES];
  uint32_t seq = 0;
  for (int b = 0; b < BATCHES && rc == 0; b++) {
    const uint64_t t0 = rte_rdtsc();
    for (uint32_t i = 0; i < per && rc == 0; i++) {
      __atomic_store_n(&line.seq, ++seq, __ATOMIC_RELEASE);
      rc = rt_wait(&line, ++seq, job.deadline);
    }
    batch[b] = (double)(rte_rdtsc() - t0) / per;
  }
  /* A timed-out main lcore leaves the worker to time out too (same deadline). */
  int wrc = rte_eal_wait_lcore(lcore);
  if (rc < 0 || wrc < 0)
    return fail(err, -ETIMEDOUT, "lcore %u did not answer within 5 s (is its core shared?)", lcore);
  qsort(batch, BATCHES, sizeof(batch[0]), cmp_double);
  *cycles = batch[BATCHES / 2];
  return 0;
}

/* ---- mempools ---- */
#define MAX_POOLS 64
static struct {
  struct rte_mempool *mp;
  char *base;
  size_t len;
} pool_views[MAX_POOLS];

struct chunk_acc {
  int n;
  void *addr;
  size_t len;
};
static void chunk_cb(struct rte_mempool *mp, void *opaque, struct rte_mempool_memhdr *h,
                     unsigned idx) {
  (void)mp;
  (void)idx;
  struct chunk_acc *a = opaque;
  a->n++;
  a->addr = h->addr;
  a->len = h->len;
}

void *fl_pool_create(const char *name, uint32_t n, uint32_t cache, uint32_t data_room, int socket,
                     char *err) {
  struct rte_mempool *mp = rte_pktmbuf_pool_create(name, n, cache, 0, (uint16_t)data_room,
                                                   socket < 0 ? (int)rte_socket_id() : socket);
  if (!mp) {
    fail(err, -rte_errno, "rte_pktmbuf_pool_create(%s, n=%u, cache=%u, dataRoom=%u) failed", name,
         n, cache, data_room);
    return NULL;
  }
  struct chunk_acc a = {0, NULL, 0};
  rte_mempool_mem_iter(mp, chunk_cb, &a);
  for (int i = 0; i < MAX_POOLS; i++)
    if (!pool_views[i].mp) {
      pool_views[i].mp = mp;
      pool_views[i].base = a.n == 1 ? a.addr : NULL;
      pool_views[i].len = a.n == 1 ? a.len : 0;
      break;
    }
  return mp;
}

void fl_pool_free(void *pool) {
  for (int i = 0; i < MAX_POOLS; i++)
    if (pool_views[i].mp == pool) pool_views[i].mp = NULL;
  rte_mempool_free(pool);
}

void fl_pool_info(void *pool, struct fl_pool_info *info) {
  struct rte_mempool *mp = pool;
  memset(info, 0, sizeof(*info));
  info->size = mp->size;
  info->available = rte_mempool_avail_count(mp);
  info->in_use = rte_mempool_in_use_count(mp);
  info->cache_size = mp->cache_size;
  info->data_room = rte_pktmbuf_data_room_size(mp);
  info->socket = mp->socket_id;
  for (int i = 0; i < MAX_POOLS; i++)
    if (pool_views[i].mp == mp) {
      info->view_base = pool_views[i].base;
      info->view_len = pool_views[i].len;
    }
}

static inline char *pool_base(const struct rte_mempool *mp) {
  static __thread const struct rte_mempool *last_mp;
  static __thread char *last_base;
  if (mp == last_mp) return last_base;
  for (int i = 0; i < MAX_POOLS; i++)
    if (pool_views[i].mp == mp) {
      last_mp = mp;
      last_base = pool_views[i].base;
      return last_base;
    }
  return NULL;
}

/* ---- ports ---- */
int fl_port_valid(uint16_t port) { return rte_eth_dev_is_valid_port(port); }

int fl_port_find(const char *name, uint16_t *port) {
  return rte_eth_dev_get_port_by_name(name, port);
}

/* Captures DPDK's log while an operation runs so that its message can go into the error. */
struct log_capture {
  FILE *f;
  char *buf;
  size_t len;
};
static void capture_begin(struct log_capture *c) {
  c->buf = NULL;
  c->len = 0;
  c->f = open_memstream(&c->buf, &c->len);
  if (c->f) rte_openlog_stream(c->f);
}
/* Appends the captured lines (newlines as "; ") to err and echoes them to stderr. */
static void capture_end(struct log_capture *c, char *err) {
  if (!c->f) return;
  rte_openlog_stream(fl_log_stream());
  fclose(c->f);
  if (c->buf) fl_log_scan(c->buf, c->len);
  if (c->buf && c->len && err) {
    size_t k = strlen(err);
    if (k + 8 < FL_ERR_LEN) {
      snprintf(err + k, FL_ERR_LEN - k, " [DPDK: ");
      k = strlen(err);
      for (size_t i = 0; i < c->len && k + 2 < FL_ERR_LEN; i++) {
        char ch = c->buf[i];
        if (ch == '\n') {
          if (i + 1 == c->len) break;
          if (k + 3 >= FL_ERR_LEN) break;
          err[k++] = ';';
          err[k++] = ' ';
        } else {
          err[k++] = ch;
        }
      }
      if (k + 1 < FL_ERR_LEN) err[k++] = ']';
      err[k] = 0;
    }
  }
  free(c->buf);
}

int fl_port_probe(const char *devargs, uint16_t *port, char *err) {
  char name[RTE_DEV_NAME_MAX_LEN];
  size_t k = strcspn(devargs, ",");
  if (k == 0 || k >= sizeof(name))
    return fail(err, -EINVAL, "devargs \"%s\" has no device name before the first ','", devargs);
  memcpy(name, devargs, k);
  name[k] = 0;
  if (rte_eth_dev_get_port_by_name(name, port) == 0)
    return fail(err, -EEXIST, "device \"%s\" is already attached as port %u", name, *port);
  struct log_capture cap;
  capture_begin(&cap);
  int rc = rte_dev_probe(devargs);
  if (rc < 0) {
    fail(err, rc, "rte_dev_probe(\"%s\") failed (check the driver name and its arguments)",
         devargs);
    capture_end(&cap, err);
    return rc;
  }
  capture_end(&cap, NULL);
  rc = rte_eth_dev_get_port_by_name(name, port);
  if (rc < 0) {
    /* The bus took the device but gave no ethdev this name (a short PCI address, a crypto or
     * other non-ethdev driver): remove it, so the failed open leaves nothing attached. */
    struct rte_devargs da;
    int rm = rte_devargs_parse(&da, devargs);
    if (rm == 0) {
      rm = rte_eal_hotplug_remove(rte_bus_name(da.bus), da.name);
      rte_devargs_reset(&da);
    }
    return fail(err, rc, "device \"%s\" was probed but no ethdev port is named \"%s\"%s", devargs,
                name, rm < 0 ? "; removing the device failed too" : " (device removed again)");
  }
  return 0;
}

int fl_port_info(uint16_t port, struct fl_port_info *info, char *err) {
  struct rte_eth_dev_info di;
  int rc = rte_eth_dev_info_get(port, &di);
  if (rc < 0) return fail(err, rc, "rte_eth_dev_info_get(port %u)", port);
  memset(info, 0, sizeof(*info));
  rte_eth_dev_get_name_by_port(port, info->name);
  snprintf(info->driver, sizeof(info->driver), "%s", di.driver_name ? di.driver_name : "");
  info->max_rx_queues = di.max_rx_queues;
  info->max_tx_queues = di.max_tx_queues;
  info->min_mtu = di.min_mtu;
  info->max_mtu = di.max_mtu;
  info->socket = rte_eth_dev_socket_id(port);
  info->lsc = di.dev_flags ? !!(*di.dev_flags & RTE_ETH_DEV_INTR_LSC) : 0;
  return 0;
}

int fl_port_configure(uint16_t port, const struct fl_port_conf *c, char *err) {
  struct rte_eth_dev_info di;
  int rc = rte_eth_dev_info_get(port, &di);
  if (rc < 0) return fail(err, rc, "rte_eth_dev_info_get(port %u)", port);
  if (c->rx_queues > di.max_rx_queues || c->tx_queues > di.max_tx_queues)
    return fail(err, -EINVAL, "port %u (%s) supports at most %u rx and %u tx queues, asked %u/%u",
                port, di.driver_name, di.max_rx_queues, di.max_tx_queues, c->rx_queues,
                c->tx_queues);
  struct rte_eth_conf conf;
  memset(&conf, 0, sizeof(conf));
  conf.intr_conf.rxq = c->rx_intr ? 1 : 0;
  rc = rte_eth_dev_configure(port, c->rx_queues, c->tx_queues, &conf);
  if (rc < 0 && conf.intr_conf.rxq) {
    /* A driver without rx interrupts: its workers fall back to the timer back-off. */
    conf.intr_conf.rxq = 0;
    rc = rte_eth_dev_configure(port, c->rx_queues, c->tx_queues, &conf);
  }
  if (rc < 0) return fail(err, rc, "rte_eth_dev_configure(port %u)", port);
  if (c->mtu) {
    rc = rte_eth_dev_set_mtu(port, (uint16_t)c->mtu);
    if (rc < 0) return fail(err, rc, "rte_eth_dev_set_mtu(port %u, %u)", port, c->mtu);
  }
  uint16_t nrx = c->rx_desc, ntx = c->tx_desc;
  rc = rte_eth_dev_adjust_nb_rx_tx_desc(port, &nrx, &ntx);
  if (rc < 0) return fail(err, rc, "rte_eth_dev_adjust_nb_rx_tx_desc(port %u)", port);
  int socket = rte_eth_dev_socket_id(port);
  for (uint16_t q = 0; q < c->rx_queues; q++) {
    rc = rte_eth_rx_queue_setup(port, q, nrx, socket, NULL, c->pool);
    if (rc < 0) return fail(err, rc, "rte_eth_rx_queue_setup(port %u, queue %u)", port, q);
  }
  for (uint16_t q = 0; q < c->tx_queues; q++) {
    rc = rte_eth_tx_queue_setup(port, q, ntx, socket, NULL);
    if (rc < 0) return fail(err, rc, "rte_eth_tx_queue_setup(port %u, queue %u)", port, q);
  }
  return 0;
}

int fl_port_start(uint16_t port, char *err) {
  int rc = rte_eth_dev_start(port);
  return rc < 0 ? fail(err, rc, "rte_eth_dev_start(port %u)", port) : 0;
}

int fl_port_stop(uint16_t port, char *err) {
  int rc = rte_eth_dev_stop(port);
  return rc < 0 ? fail(err, rc, "rte_eth_dev_stop(port %u)", port) : 0;
}

int fl_port_close(uint16_t port, char *err) {
  struct rte_eth_dev_info di;
  int rc = rte_eth_dev_info_get(port, &di);
  if (rc < 0) return fail(err, rc, "rte_eth_dev_info_get(port %u)", port);
  struct rte_device *dev = di.device;
  rte_eth_dev_stop(port);
  rc = rte_eth_dev_close(port);
  if (rc < 0) return fail(err, rc, "rte_eth_dev_close(port %u)", port);
  if (dev) {
    rc = rte_dev_remove(dev);
    if (rc < 0 && rc != -ENOENT) return fail(err, rc, "rte_dev_remove(port %u)", port);
  }
  return 0;
}

int fl_port_link(uint16_t port, struct fl_link *l, char *err) {
  struct rte_eth_link link;
  int rc = rte_eth_link_get_nowait(port, &link);
  if (rc < 0) return fail(err, rc, "rte_eth_link_get_nowait(port %u)", port);
  l->speed_mbps = link.link_speed == RTE_ETH_SPEED_NUM_UNKNOWN ? 0 : link.link_speed;
  l->up = link.link_status;
  l->full_duplex = link.link_duplex;
  l->autoneg = link.link_autoneg;
  return 0;
}

int fl_port_mac(uint16_t port, uint8_t mac[6], char *err) {
  struct rte_ether_addr a;
  int rc = rte_eth_macaddr_get(port, &a);
  if (rc < 0) return fail(err, rc, "rte_eth_macaddr_get(port %u)", port);
  memcpy(mac, a.addr_bytes, 6);
  return 0;
}

int fl_port_set_mac(uint16_t port, const uint8_t mac[6], char *err) {
  struct rte_ether_addr a;
  memcpy(a.addr_bytes, mac, 6);
  int rc = rte_eth_dev_default_mac_addr_set(port, &a);
  return rc < 0 ? fail(err, rc, "rte_eth_dev_default_mac_addr_set(port %u)", port) : 0;
}

int fl_port_mtu(uint16_t port, uint16_t *mtu, char *err) {
  int rc = rte_eth_dev_get_mtu(port, mtu);
  return rc < 0 ? fail(err, rc, "rte_eth_dev_get_mtu(port %u)", port) : 0;
}

int fl_port_set_mtu(uint16_t port, uint16_t mtu, char *err) {
  int rc = rte_eth_dev_set_mtu(port, mtu);
  return rc < 0 ? fail(err, rc, "rte_eth_dev_set_mtu(port %u, %u)", port, mtu) : 0;
}

int fl_port_promisc(uint16_t port, int *on, char *err) {
  int rc = rte_eth_promiscuous_get(port);
  if (rc < 0) return fail(err, rc, "rte_eth_promiscuous_get(port %u)", port);
  *on = rc;
  return 0;
}

int fl_port_set_promisc(uint16_t port, int on, char *err) {
  int rc = on ? rte_eth_promiscuous_enable(port) : rte_eth_promiscuous_disable(port);
  return rc < 0 ? fail(err, rc, "rte_eth_promiscuous_%s(port %u)", on ? "enable" : "disable", port)
                : 0;
}

int fl_port_stats(uint16_t port, struct fl_stats *s, char *err) {
  struct rte_eth_stats st;
  int rc = rte_eth_stats_get(port, &st);
  if (rc < 0) return fail(err, rc, "rte_eth_stats_get(port %u)", port);
  s->ipackets = st.ipackets;
  s->opackets = st.opackets;
  s->ibytes = st.ibytes;
  s->obytes = st.obytes;
  s->imissed = st.imissed;
  s->ierrors = st.ierrors;
  s->oerrors = st.oerrors;
  s->rx_nombuf = st.rx_nombuf;
  return 0;
}

int fl_port_stats_reset(uint16_t port, char *err) {
  int rc = rte_eth_stats_reset(port);
  if (rc < 0) return fail(err, rc, "rte_eth_stats_reset(port %u)", port);
  rte_eth_xstats_reset(port);
  return 0;
}

int fl_port_xstats(uint16_t port, char (*names)[64], uint64_t *values, int max, char *err) {
  int n = rte_eth_xstats_get_names(port, NULL, 0);
  if (n < 0) return fail(err, n, "rte_eth_xstats_get_names(port %u)", port);
  if (!names || n > max) return n;
  struct rte_eth_xstat_name *nm = calloc(n, sizeof(*nm));
  struct rte_eth_xstat *xs = calloc(n, sizeof(*xs));
  int rc = -ENOMEM;
  if (nm && xs) {
    rc = rte_eth_xstats_get_names(port, nm, n);
    if (rc >= 0) rc = rte_eth_xstats_get(port, xs, n);
    if (rc >= 0) {
      for (int i = 0; i < rc && i < n; i++) {
        snprintf(names[i], 64, "%s", nm[xs[i].id < (uint64_t)n ? xs[i].id : (uint64_t)i].name);
        values[i] = xs[i].value;
      }
    }
  }
  free(nm);
  free(xs);
  return rc < 0 ? fail(err, rc, "rte_eth_xstats_get(port %u)", port) : rc;
}

/* ---- batches ---- */
struct fl_batch *fl_batch_create(uint32_t cap, int32_t *meta, const void *pool) {
  struct fl_batch *b = calloc(1, sizeof(*b));
  if (!b) return NULL;
  b->mbufs = calloc(cap, sizeof(void *));
  if (!b->mbufs) {
    free(b);
    return NULL;
  }
  b->cap = cap;
  b->meta = meta;
  b->pool = pool;
  for (uint32_t i = 0; i < cap; i++) meta[i * FL_META_INTS] = -1; /* no packet to view yet */
  return b;
}

void fl_batch_forget(struct fl_batch *b) {
  for (uint32_t i = 0; i < b->n; i++) b->meta[i * FL_META_INTS] = -1;
  b->n = 0;
}

void fl_batch_release(struct fl_batch *b) {
  if (b->n) rte_pktmbuf_free_bulk((struct rte_mbuf **)b->mbufs, b->n);
  fl_batch_forget(b);
}

void fl_batch_free(struct fl_batch *b) {
  if (!b) return;
  if (eal_state == 1) fl_batch_release(b);
  free(b->mbufs);
  free(b);
}

void fl_batch_fill_meta(struct fl_batch *b) {
  for (uint32_t i = 0; i < b->n; i++) {
    struct rte_mbuf *m = b->mbufs[i];
    int32_t *mt = b->meta + i * FL_META_INTS;
    /* Offsets are into the batch's own pool's view: a packet of another pool has none. */
    char *base = m->pool == b->pool ? pool_base(m->pool) : NULL;
    mt[0] = base && m->nb_segs == 1 ? (int32_t)(rte_pktmbuf_mtod(m, char *) - base) : -1;
    mt[1] = m->data_len;
    mt[2] = m->port;
    mt[3] = (int32_t)m->hash.usr;
  }
}

int fl_port_rx_intr_fd(uint16_t port, uint16_t queue) {
  return rte_eth_dev_rx_intr_ctl_q_get_fd(port, queue);
}

int fl_port_rx_intr(uint16_t port, uint16_t queue, int on) {
  return on ? rte_eth_dev_rx_intr_enable(port, queue) : rte_eth_dev_rx_intr_disable(port, queue);
}

int fl_rx_burst(uint16_t port, uint16_t queue, struct fl_batch *b) {
  fl_batch_release(b);
  uint16_t n = rte_eth_rx_burst(port, queue, (struct rte_mbuf **)b->mbufs,
                                (uint16_t)RTE_MIN(b->cap, 65535u));
  b->n = n;
  for (uint16_t i = 0; i < n; i++) ((struct rte_mbuf *)b->mbufs[i])->hash.usr = 0;
  fl_batch_fill_meta(b);
  return n;
}

/* Applies JS lengths; returns the number of packets kept at the front of b->mbufs. */
static uint32_t batch_apply_lengths(struct fl_batch *b, uint32_t *dropped) {
  uint32_t k = 0;
  for (uint32_t i = 0; i < b->n; i++) {
    struct rte_mbuf *m = b->mbufs[i];
    int32_t len = b->meta[i * FL_META_INTS + 1];
    if (len < 0 || (m->nb_segs == 1 && (uint32_t)len > (uint32_t)(m->buf_len - m->data_off))) {
      rte_pktmbuf_free(m);
      (*dropped)++;
      continue;
    }
    if (m->nb_segs == 1 && len != m->data_len) m->data_len = m->pkt_len = (uint16_t)len;
    b->mbufs[k++] = m;
  }
  return k;
}

int fl_tx_burst(uint16_t port, uint16_t queue, struct fl_batch *b, uint32_t *dropped) {
  *dropped = 0;
  uint32_t k = batch_apply_lengths(b, dropped);
  uint16_t sent = rte_eth_tx_burst(port, queue, (struct rte_mbuf **)b->mbufs, (uint16_t)k);
  if (sent < k) {
    rte_pktmbuf_free_bulk((struct rte_mbuf **)b->mbufs + sent, k - sent);
    *dropped += k - sent;
  }
  fl_batch_forget(b);
  return sent;
}

int fl_tx_copy(uint16_t port, uint16_t queue, void *pool, const uint8_t *const *data,
               const uint32_t *lens, uint32_t n, char *err) {
  struct rte_mbuf *ms[FL_MAX_BURST];
  /* One segment per packet: refuse what a fresh mbuf of this pool cannot hold, every packet
   * before any is sent (a refusal after some bursts went out would leave the caller unable to
   * tell which did; rte_pktmbuf_append takes a 16-bit length, so check the full 32-bit one). */
  uint32_t data_room = rte_pktmbuf_data_room_size(pool);
  uint32_t room = data_room > RTE_PKTMBUF_HEADROOM ? data_room - RTE_PKTMBUF_HEADROOM : 0;
  for (uint32_t i = 0; i < n; i++)
    if (lens[i] > room)
      return fail(err, -EMSGSIZE,
                  "packet %u is %u bytes but an mbuf of this pool holds at most %u (data room %u "
                  "less %u of headroom): frames are not chained, give the pool a larger dataRoom",
                  i, lens[i], room, data_room, (unsigned)RTE_PKTMBUF_HEADROOM);
  uint32_t sent = 0;
  while (sent < n) {
    uint32_t k = n - sent < FL_MAX_BURST ? n - sent : FL_MAX_BURST;
    if (rte_pktmbuf_alloc_bulk(pool, ms, k) < 0) {
      if (sent) break; /* what went out is the answer; the caller sends the rest again */
      return fail(err, -ENOBUFS, "no free mbufs for %u packets in the pool", k);
    }
    for (uint32_t i = 0; i < k; i++) {
      char *d = rte_pktmbuf_append(ms[i], (uint16_t)lens[sent + i]);
      if (!d || ms[i]->data_len != lens[sent + i]) {
        rte_pktmbuf_free_bulk(ms, k);
        return fail(err, -EMSGSIZE, "packet %u (%u bytes) does not fit an mbuf", sent + i,
                    lens[sent + i]);
      }
      /* an empty Buffer's data may be NULL */
      if (lens[sent + i]) memcpy(d, data[sent + i], lens[sent + i]);
      ms[i]->port = port;
    }
    uint16_t q = rte_eth_tx_burst(port, queue, ms, (uint16_t)k);
    sent += q;
    if (q < k) {
      rte_pktmbuf_free_bulk(ms + q, k - q);
      break;
    }
  }
  return (int)sent;
}

int fl_rx_copy(uint16_t port, uint16_t queue, uint32_t max, fl_copy_cb cb, void *ctx) {
  struct rte_mbuf *ms[FL_MAX_BURST];
  static __thread uint8_t tmp[65536];
  uint16_t n = rte_eth_rx_burst(port, queue, ms, (uint16_t)RTE_MIN(max, (uint32_t)FL_MAX_BURST));
  for (uint16_t i = 0; i < n; i++) {
    const uint8_t *d = rte_pktmbuf_read(ms[i], 0, ms[i]->pkt_len, tmp);
    cb(ctx, d, ms[i]->pkt_len, ms[i]->port, 0);
  }
  if (n) rte_pktmbuf_free_bulk(ms, n);
  return n;
}
