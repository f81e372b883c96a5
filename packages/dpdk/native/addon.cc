// Node binding over the C core (fl.h). Thin: argument checking and conversion only; the
// TypeScript layer (src/) owns validation, naming and typed errors.
#include <napi.h>
#include <unistd.h>
#include <uv.h>

#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "fl.h"
#include "fl_gen.h"

namespace {

struct PoolEntry {
  void *pool;
  Napi::ObjectReference view;  // the one external ArrayBuffer over the pool's memory
};
struct BatchEntry {
  fl_batch *batch;
  Napi::ObjectReference meta;
};

std::map<uint32_t, PoolEntry> pools;
std::map<uint32_t, BatchEntry> batches;
std::map<uint32_t, fl_pipeline *> pipelines;
uint32_t next_id = 1;

// ACL tables being built on libuv's thread pool. rte_eal_cleanup must not run under a build.
std::mutex builds_mu;
std::condition_variable builds_cv;
int builds_running = 0;

[[noreturn]] void Throw(Napi::Env env, int rc, const char *op, const char *err) {
  Napi::Error e = Napi::Error::New(env, err && *err ? err : op);
  e.Set("errno", Napi::Number::New(env, rc < 0 ? -rc : rc));
  e.Set("op", Napi::String::New(env, op));
  throw e;
}

void RequireEal(Napi::Env env) {
  if (fl_eal_state() != 1) Throw(env, -EINVAL, "eal", "EAL is not running: call initEal() first");
}

uint32_t U32(const Napi::Value &v, const char *what) {
  if (!v.IsNumber()) throw Napi::TypeError::New(v.Env(), std::string(what) + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (d < 0 || d > 4294967295.0 || d != (double)(uint32_t)d)
    throw Napi::RangeError::New(v.Env(), std::string(what) + " must be an unsigned integer");
  return (uint32_t)d;
}

uint32_t OptU32(const Napi::Object &o, const char *key, uint32_t def) {
  Napi::Value v = o.Get(key);
  return v.IsUndefined() ? def : U32(v, key);
}

uint16_t Port(const Napi::Value &v) {
  uint32_t p = U32(v, "port");
  if (p >= 0xffff || !fl_port_valid((uint16_t)p))
    throw Napi::RangeError::New(v.Env(), "port " + std::to_string(p) + " is not an attached port");
  return (uint16_t)p;
}

void CopyBytes(const Napi::Value &v, uint8_t *dst, size_t n, const char *what) {
  if (!v.IsBuffer()) throw Napi::TypeError::New(v.Env(), std::string(what) + " must be a Buffer");
  auto b = v.As<Napi::Buffer<uint8_t>>();
  if (b.Length() < n)
    throw Napi::RangeError::New(v.Env(),
                                std::string(what) + " is shorter than " + std::to_string(n));
  memcpy(dst, b.Data(), n);
}

fl_batch *Batch(const Napi::Value &v) {
  auto it = batches.find(U32(v, "batch"));
  if (it == batches.end()) throw Napi::Error::New(v.Env(), "batch was freed");
  return it->second.batch;
}

fl_pipeline *Pipeline(const Napi::Value &v) {
  auto it = pipelines.find(U32(v, "pipeline"));
  if (it == pipelines.end()) throw Napi::Error::New(v.Env(), "pipeline was freed");
  return it->second;
}

void *Pool(const Napi::Value &v) {
  auto it = pools.find(U32(v, "pool"));
  if (it == pools.end()) throw Napi::Error::New(v.Env(), "mempool was freed");
  return it->second.pool;
}

// ---- EAL ----
Napi::Value EalInit(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Napi::Array args = info[0].As<Napi::Array>();
  std::vector<std::string> s;
  s.push_back("flowline");
  for (uint32_t i = 0; i < args.Length(); i++) s.push_back(args.Get(i).As<Napi::String>());
  // rte_eal_init may permute argv; keep our own copies alive for the whole process.
  char **argv = (char **)calloc(s.size() + 1, sizeof(char *));
  for (size_t i = 0; i < s.size(); i++) argv[i] = strdup(s[i].c_str());
  char err[FL_ERR_LEN] = "";
  char *log = nullptr;
  int rc = fl_eal_init((int)s.size(), argv, &log, err);
  std::string logs = log ? log : "";
  free(log);
  if (rc < 0) {
    Napi::Error e = Napi::Error::New(env, err);
    e.Set("errno", Napi::Number::New(env, -rc));
    e.Set("op", Napi::String::New(env, "rte_eal_init"));
    e.Set("log", Napi::String::New(env, logs));
    throw e;
  }
  return Napi::String::New(env, logs);
}

Napi::Value EalCleanup(const Napi::CallbackInfo &info) {
  char err[FL_ERR_LEN] = "";
  {
    std::unique_lock<std::mutex> lk(builds_mu);
    builds_cv.wait(lk, [] { return builds_running == 0; });
  }
  for (auto &p : pipelines) fl_pipeline_free(p.second);
  pipelines.clear();
  for (auto &b : batches) {
    fl_batch_free(b.second.batch);
    b.second.meta.Reset();
  }
  batches.clear();
  int rc = fl_eal_cleanup(err);
  pools.clear();
  if (rc < 0) Throw(info.Env(), rc, "rte_eal_cleanup", err);
  return info.Env().Undefined();
}

Napi::Value EalState(const Napi::CallbackInfo &info) {
  static const char *names[] = {"uninitialized", "running", "cleaned-up", "failed"};
  return Napi::String::New(info.Env(), names[fl_eal_state()]);
}

Napi::Value Lcores(const Napi::CallbackInfo &info) {
  RequireEal(info.Env());
  unsigned ids[256], main_lcore;
  int n = fl_lcores(ids, 256, &main_lcore);
  Napi::Object o = Napi::Object::New(info.Env());
  Napi::Array w = Napi::Array::New(info.Env());
  for (int i = 0; i < n && i < 256; i++) w.Set(i, ids[i]);
  o.Set("main", main_lcore);
  o.Set("workers", w);
  return o;
}

// ---- mempools ----
Napi::Value PoolCreate(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  RequireEal(env);
  std::string name = info[0].As<Napi::String>();
  char err[FL_ERR_LEN] = "";
  void *p = fl_pool_create(name.c_str(), U32(info[1], "size"), U32(info[2], "cacheSize"),
                           U32(info[3], "dataRoom"), info[4].As<Napi::Number>().Int32Value(), err);
  if (!p) Throw(env, -ENOMEM, "rte_pktmbuf_pool_create", err);
  uint32_t id = next_id++;
  pools[id].pool = p;
  return Napi::Number::New(env, id);
}

Napi::Value PoolFree(const Napi::CallbackInfo &info) {
  auto it = pools.find(U32(info[0], "pool"));
  if (it != pools.end()) {
    if (fl_eal_state() == 1) fl_pool_free(it->second.pool);
    it->second.view.Reset();
    pools.erase(it);
  }
  return info.Env().Undefined();
}

Napi::Value PoolInfo(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  RequireEal(env);
  struct fl_pool_info i;
  fl_pool_info(Pool(info[0]), &i);
  Napi::Object o = Napi::Object::New(env);
  o.Set("size", i.size);
  o.Set("available", i.available);
  o.Set("inUse", i.in_use);
  o.Set("cacheSize", i.cache_size);
  o.Set("dataRoom", i.data_room);
  o.Set("socket", i.socket);
  o.Set("viewable", i.view_base != nullptr);
  return o;
}

Napi::Value PoolView(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  RequireEal(env);
  auto it = pools.find(U32(info[0], "pool"));
  if (it == pools.end()) throw Napi::Error::New(env, "mempool was freed");
  if (!it->second.view.IsEmpty()) return it->second.view.Value();
  struct fl_pool_info i;
  fl_pool_info(it->second.pool, &i);
  if (!i.view_base) return env.Null();
  Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(env, i.view_base, i.view_len);
  it->second.view = Napi::Persistent(ab.As<Napi::Object>());
  return ab;
}

// ---- ports ----
Napi::Value PortProbe(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  RequireEal(env);
  std::string devargs = info[0].As<Napi::String>();
  uint16_t port;
  char err[FL_ERR_LEN] = "";
  int rc = fl_port_probe(devargs.c_str(), &port, err);
  if (rc < 0) Throw(env, rc, "rte_dev_probe", err);
  return Napi::Number::New(env, port);
}

Napi::Value PortFind(const Napi::CallbackInfo &info) {
  RequireEal(info.Env());
  std::string name = info[0].As<Napi::String>();
  uint16_t port;
  if (fl_port_find(name.c_str(), &port) < 0) return info.Env().Null();
  return Napi::Number::New(info.Env(), port);
}

Napi::Value PortInfo(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  RequireEal(env);
  struct fl_port_info pi;
  char err[FL_ERR_LEN] = "";
  int rc = fl_port_info(Port(info[0]), &pi, err);
  if (rc < 0) Throw(env, rc, "rte_eth_dev_info_get", err);
  Napi::Object o = Napi::Object::New(env);
  o.Set("name", pi.name);
  o.Set("driver", pi.driver);
  o.Set("maxRxQueues", pi.max_rx_queues);
  o.Set("maxTxQueues", pi.max_tx_queues);
  o.Set("minMtu", pi.min_mtu);
  o.Set("maxMtu", pi.max_mtu);
  o.Set("socket", pi.socket);
  o.Set("linkStateInterrupts", pi.lsc != 0);
  return o;
}

Napi::Value PortConfigure(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  RequireEal(env);
  uint16_t port = Port(info[0]);
  Napi::Object o = info[1].As<Napi::Object>();
  fl_port_conf c;
  c.rx_queues = (uint16_t)OptU32(o, "rxQueues", 1);
  c.tx_queues = (uint16_t)OptU32(o, "txQueues", 1);
  c.rx_desc = (uint16_t)OptU32(o, "rxDescriptors", 1024);
  c.tx_desc = (uint16_t)OptU32(o, "txDescriptors", 1024);
  c.mtu = OptU32(o, "mtu", 0);
  c.rx_intr = o.Get("rxInterrupts").ToBoolean() ? 1 : 0;
  c.pool = Pool(o.Get("pool"));
  char err[FL_ERR_LEN] = "";
  int rc = fl_port_configure(port, &c, err);
  if (rc < 0) Throw(env, rc, "rte_eth_dev_configure", err);
  return env.Undefined();
}

#define PORT_OP(fn, cname)                         \
  Napi::Value fn(const Napi::CallbackInfo &info) { \
    Napi::Env env = info.Env();                    \
    RequireEal(env);                               \
    char err[FL_ERR_LEN] = "";                     \
    int rc = cname(Port(info[0]), err);            \
    if (rc < 0) Throw(env, rc, #cname, err);       \
    return env.Undefined();                        \
  }
PORT_OP(PortStart, fl_port_start)
PORT_OP(PortStop, fl_port_stop)
PORT_OP(PortClose, fl_port_close)
PORT_OP(PortStatsReset, fl_port_stats_reset)

Napi::Value PortLink(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  RequireEal(env);
  struct fl_link l;
  char err[FL_ERR_LEN] = "";
  int rc = fl_port_link(Port(info[0]), &l, err);
  if (rc < 0) Throw(env, rc, "rte_eth_link_get_nowait", err);
  Napi::Object o = Napi::Object::New(env);
  o.Set("up", l.up != 0);
  o.Set("speedMbps", l.speed_mbps);
  o.Set("fullDuplex", l.full_duplex != 0);
  o.Set("autoneg", l.autoneg != 0);
  return o;
}

Napi::Value PortMac(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  RequireEal(env);
  uint16_t port = Port(info[0]);
  char err[FL_ERR_LEN] = "";
  uint8_t mac[6];
  if (info.Length() > 1 && !info[1].IsUndefined()) {
    CopyBytes(info[1], mac, 6, "mac");
    int rc = fl_port_set_mac(port, mac, err);
    if (rc < 0) Throw(env, rc, "rte_eth_dev_default_mac_addr_set", err);
  }
  int rc = fl_port_mac(port, mac, err);
  if (rc < 0) Throw(env, rc, "rte_eth_macaddr_get", err);
  return Napi::Buffer<uint8_t>::Copy(env, mac, 6);
}

Napi::Value PortMtu(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  RequireEal(env);
  uint16_t port = Port(info[0]);
  char err[FL_ERR_LEN] = "";
  if (info.Length() > 1 && !info[1].IsUndefined()) {
    int rc = fl_port_set_mtu(port, (uint16_t)U32(info[1], "mtu"), err);
    if (rc < 0) Throw(env, rc, "rte_eth_dev_set_mtu", err);
  }
  uint16_t mtu;
  int rc = fl_port_mtu(port, &mtu, err);
  if (rc < 0) Throw(env, rc, "rte_eth_dev_get_mtu", err);
  return Napi::Number::New(env, mtu);
}

Napi::Value PortPromisc(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  RequireEal(env);
  uint16_t port = Port(info[0]);
  char err[FL_ERR_LEN] = "";
  if (info.Length() > 1 && !info[1].IsUndefined()) {
    int rc = fl_port_set_promisc(port, info[1].ToBoolean() ? 1 : 0, err);
    if (rc < 0) Throw(env, rc, "rte_eth_promiscuous", err);
  }
  int on = 0;
  int rc = fl_port_promisc(port, &on, err);
  if (rc < 0) Throw(env, rc, "rte_eth_promiscuous_get", err);
  return Napi::Boolean::New(env, on != 0);
}

Napi::Value PortStats(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  RequireEal(env);
  struct fl_stats s;
  char err[FL_ERR_LEN] = "";
  int rc = fl_port_stats(Port(info[0]), &s, err);
  if (rc < 0) Throw(env, rc, "rte_eth_stats_get", err);
  Napi::Object o = Napi::Object::New(env);
  o.Set("rxPackets", (double)s.ipackets);
  o.Set("txPackets", (double)s.opackets);
  o.Set("rxBytes", (double)s.ibytes);
  o.Set("txBytes", (double)s.obytes);
  o.Set("rxMissed", (double)s.imissed);
  o.Set("rxErrors", (double)s.ierrors);
  o.Set("txErrors", (double)s.oerrors);
  o.Set("rxNoMbuf", (double)s.rx_nombuf);
  return o;
}

Napi::Value PortXstats(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  RequireEal(env);
  uint16_t port = Port(info[0]);
  char err[FL_ERR_LEN] = "";
  int n = fl_port_xstats(port, nullptr, nullptr, 0, err);
  if (n < 0) Throw(env, n, "rte_eth_xstats_get_names", err);
  std::vector<char[64]> names(n);
  std::vector<uint64_t> values(n);
  int rc = fl_port_xstats(port, names.data(), values.data(), n, err);
  if (rc < 0) Throw(env, rc, "rte_eth_xstats_get", err);
  Napi::Object o = Napi::Object::New(env);
  for (int i = 0; i < rc && i < n; i++) o.Set(names[i], (double)values[i]);
  return o;
}

// ---- batches ----
Napi::Value BatchCreate(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  uint32_t cap = U32(info[0], "capacity");
  if (cap == 0 || cap > 4096) throw Napi::RangeError::New(env, "batch capacity must be 1..4096");
  Napi::Int32Array meta = info[1].As<Napi::Int32Array>();
  if (meta.ElementLength() < (size_t)cap * FL_META_INTS)
    throw Napi::RangeError::New(env, "batch meta array is too short");
  fl_batch *b = fl_batch_create(cap, meta.Data());
  if (!b) throw Napi::Error::New(env, "out of memory for a batch");
  uint32_t id = next_id++;
  batches[id].batch = b;
  batches[id].meta = Napi::Persistent(meta.As<Napi::Object>());
  return Napi::Number::New(env, id);
}

Napi::Value BatchFree(const Napi::CallbackInfo &info) {
  auto it = batches.find(U32(info[0], "batch"));
  if (it != batches.end()) {
    fl_batch_free(it->second.batch);
    it->second.meta.Reset();
    batches.erase(it);
  }
  return info.Env().Undefined();
}

Napi::Value BatchRelease(const Napi::CallbackInfo &info) {
  RequireEal(info.Env());
  fl_batch_release(Batch(info[0]));
  return info.Env().Undefined();
}

Napi::Value BatchCount(const Napi::CallbackInfo &info) {
  return Napi::Number::New(info.Env(), Batch(info[0])->n);
}

// Hot path: no EAL state check beyond the batch lookup; TS guarantees the EAL is running.
Napi::Value RxBurst(const Napi::CallbackInfo &info) {
  fl_batch *b = Batch(info[2]);
  int n = fl_rx_burst((uint16_t)info[0].As<Napi::Number>().Uint32Value(),
                      (uint16_t)info[1].As<Napi::Number>().Uint32Value(), b);
  return Napi::Number::New(info.Env(), n);
}

// The JS batch API's idle wait: the queue's rx interrupt eventfd watched by libuv on the main
// loop. rxIntrArm(port, queue, on) arms or disarms it (after arming the caller polls once: a
// burst that landed before arming raised no kick); rxIntrWait(port, queue, timeoutMs) resolves
// true on the kick, false on the timeout, and disarms.
struct RxIntrWait {
  uv_poll_t poll;
  uv_timer_t timer;
  Napi::Promise::Deferred deferred;
  Napi::Env env;
  uint16_t port, queue;
  int fd;
  int open = 2; /* handles not closed yet */
  bool settled = false;
  RxIntrWait(Napi::Env e) : deferred(Napi::Promise::Deferred::New(e)), env(e) {}
};

static void RxIntrClosed(uv_handle_t *h) {
  RxIntrWait *w = static_cast<RxIntrWait *>(h->data);
  if (--w->open == 0) delete w;
}

static void RxIntrSettle(RxIntrWait *w, bool kicked) {
  if (w->settled) return;
  w->settled = true;
  if (kicked) {
    uint64_t v;
    ssize_t r = read(w->fd, &v, sizeof(v)); /* clears the eventfd */
    (void)r;
  }
  fl_port_rx_intr(w->port, w->queue, 0);
  Napi::HandleScope scope(w->env);
  w->deferred.Resolve(Napi::Boolean::New(w->env, kicked));
  uv_poll_stop(&w->poll);
  uv_timer_stop(&w->timer);
  uv_close(reinterpret_cast<uv_handle_t *>(&w->poll), RxIntrClosed);
  uv_close(reinterpret_cast<uv_handle_t *>(&w->timer), RxIntrClosed);
}

Napi::Value RxIntrArm(const Napi::CallbackInfo &info) {
  uint16_t port = Port(info[0]);
  uint16_t queue = (uint16_t)info[1].As<Napi::Number>().Uint32Value();
  if (fl_port_rx_intr_fd(port, queue) < 0)
    throw Napi::Error::New(info.Env(),
                           "the queue has no rx interrupt (open the port with "
                           "rxInterrupts: true on a driver that has them)");
  bool on = info.Length() < 3 || info[2].ToBoolean();
  return Napi::Number::New(info.Env(), fl_port_rx_intr(port, queue, on ? 1 : 0));
}

Napi::Value RxIntrWaitFn(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  uint16_t port = Port(info[0]);
  uint16_t queue = (uint16_t)info[1].As<Napi::Number>().Uint32Value();
  uint32_t ms = info[2].As<Napi::Number>().Uint32Value();
  int fd = fl_port_rx_intr_fd(port, queue);
  if (fd < 0) throw Napi::Error::New(env, "the queue has no rx interrupt");
  uv_loop_t *loop = nullptr;
  napi_get_uv_event_loop(env, &loop);
  RxIntrWait *w = new RxIntrWait(env);
  w->port = port;
  w->queue = queue;
  w->fd = fd;
  uv_poll_init(loop, &w->poll, fd);
  uv_timer_init(loop, &w->timer);
  /* The loop's clock is cached at the start of its iteration: after a long synchronous call
   * (a port open) it is stale, and the timeout would fire at once. */
  uv_update_time(loop);
  w->poll.data = w;
  w->timer.data = w;
  uv_poll_start(&w->poll, UV_READABLE, [](uv_poll_t *h, int, int) {
    RxIntrSettle(static_cast<RxIntrWait *>(h->data), true);
  });
  uv_timer_start(
      &w->timer, [](uv_timer_t *h) { RxIntrSettle(static_cast<RxIntrWait *>(h->data), false); }, ms,
      0);
  return w->deferred.Promise();
}

Napi::Value TxBurst(const Napi::CallbackInfo &info) {
  fl_batch *b = Batch(info[2]);
  uint32_t dropped = 0;
  int sent = fl_tx_burst((uint16_t)info[0].As<Napi::Number>().Uint32Value(),
                         (uint16_t)info[1].As<Napi::Number>().Uint32Value(), b, &dropped);
  return Napi::Number::New(info.Env(), sent);
}

Napi::Value TxCopy(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  RequireEal(env);
  uint16_t port = Port(info[0]);
  uint16_t queue = (uint16_t)U32(info[1], "queue");
  void *pool = Pool(info[2]);
  Napi::Array arr = info[3].As<Napi::Array>();
  uint32_t total = arr.Length(), sent = 0;
  std::vector<Napi::Buffer<uint8_t>> keep;
  for (uint32_t off = 0; off < total; off += FL_MAX_BURST) {
    uint32_t n = std::min<uint32_t>(FL_MAX_BURST, total - off);
    std::vector<const uint8_t *> data(n);
    std::vector<uint32_t> lens(n);
    for (uint32_t i = 0; i < n; i++) {
      Napi::Value v = arr.Get(off + i);
      if (!v.IsBuffer()) throw Napi::TypeError::New(env, "packets must be Buffers");
      auto b = v.As<Napi::Buffer<uint8_t>>();
      keep.push_back(b);
      data[i] = b.Data();
      lens[i] = (uint32_t)b.Length();
    }
    char err[FL_ERR_LEN] = "";
    int rc = fl_tx_copy(port, queue, pool, data.data(), lens.data(), n, err);
    if (rc < 0) Throw(env, rc, "tx", err);
    sent += rc;
    if ((uint32_t)rc < n) break;
  }
  return Napi::Number::New(env, sent);
}

struct CopyCtx {
  Napi::Env env;
  Napi::Array out;
  uint32_t n;
};
void CopyOut(void *ctx, const uint8_t *data, uint32_t len, uint16_t port, int reason) {
  (void)port;
  (void)reason;
  CopyCtx *c = (CopyCtx *)ctx;
  c->out.Set(c->n++, Napi::Buffer<uint8_t>::Copy(c->env, data, len));
}

Napi::Value RxCopy(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  RequireEal(env);
  CopyCtx c{env, Napi::Array::New(env), 0};
  fl_rx_copy(Port(info[0]), (uint16_t)U32(info[1], "queue"), U32(info[2], "max"), CopyOut, &c);
  return c.out;
}

// ---- pipelines ----
/* "timer" (default), "poll", "adaptive" or "interrupt" (adaptive with spinPolls 0). */
static uint32_t RxMode(Napi::Env env, Napi::Value v) {
  if (v.IsUndefined()) return FL_RX_TIMER;
  std::string m = v.As<Napi::String>().Utf8Value();
  if (m == "timer") return FL_RX_TIMER;
  if (m == "poll") return FL_RX_POLL;
  if (m == "adaptive" || m == "interrupt") return FL_RX_ADAPTIVE;
  throw Napi::RangeError::New(env, "rxMode must be poll, adaptive, interrupt or timer");
}

Napi::Value PipelineCreate(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  RequireEal(env);
  Napi::Object o = info[0].As<Napi::Object>();
  fl_pipeline_conf c;
  memset(&c, 0, sizeof(c));
  c.burst = (uint16_t)OptU32(o, "burst", 32);
  Napi::Object bo = o.Get("backoff").As<Napi::Object>();
  c.backoff.spin_polls = OptU32(bo, "spinPolls", 4096);
  c.backoff.sleep_min_us = OptU32(bo, "sleepMinUs", 1);
  c.backoff.sleep_max_us = OptU32(bo, "sleepMaxUs", 500);
  c.backoff.rx_mode = RxMode(env, o.Get("rxMode"));
  c.backoff.intr_wait_ms = OptU32(bo, "interruptWaitMs", 100);
  c.punt_ring_size = OptU32(o, "puntRingSize", 1024);
  c.inject_ring_size = OptU32(o, "injectRingSize", 1024);
  c.manual_clock = o.Get("manualClock").ToBoolean() ? 1 : 0;
  Napi::Array ws = o.Get("workers").As<Napi::Array>();
  if (ws.Length() == 0 || ws.Length() > 16)
    throw Napi::RangeError::New(env, "a pipeline needs 1..16 workers");
  c.n_workers = (uint16_t)ws.Length();
  for (uint32_t i = 0; i < ws.Length(); i++) {
    Napi::Object w = ws.Get(i).As<Napi::Object>();
    c.workers[i].lcore = U32(w.Get("lcore"), "lcore");
    c.workers[i].tx_queue = (uint16_t)U32(w.Get("txQueue"), "txQueue");
    Napi::Array ins = w.Get("inputs").As<Napi::Array>();
    if (ins.Length() > 32) throw Napi::RangeError::New(env, "at most 32 inputs per worker");
    c.workers[i].n_inputs = (uint16_t)ins.Length();
    for (uint32_t j = 0; j < ins.Length(); j++) {
      Napi::Object in = ins.Get(j).As<Napi::Object>();
      c.workers[i].inputs[j].port = Port(in.Get("port"));
      c.workers[i].inputs[j].queue = (uint16_t)U32(in.Get("queue"), "queue");
    }
  }
  char err[FL_ERR_LEN] = "";
  fl_pipeline *p = fl_pipeline_create(&c, err);
  if (!p) Throw(env, -EINVAL, "pipeline_create", err);
  uint32_t id = next_id++;
  pipelines[id] = p;
  return Napi::Number::New(env, id);
}

uint8_t Action(const Napi::Value &v) {
  uint32_t a = U32(v, "action");
  if (a > FL_ACT_PUNT) throw Napi::RangeError::New(v.Env(), "bad action");
  return (uint8_t)a;
}

Napi::Value PipelineAddStage(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  fl_pipeline *p = Pipeline(info[0]);
  std::string type = info[1].As<Napi::String>();
  Napi::Object o = info[2].As<Napi::Object>();
  char err[FL_ERR_LEN] = "";
  int rc;
  if (type == "l2fwd") {
    static fl_l2fwd_conf c;
    memset(&c, 0, sizeof(c));
    for (int i = 0; i < 64; i++) c.out_port[i] = FL_NO_PORT;
    Napi::Array map = o.Get("map").As<Napi::Array>();
    for (uint32_t i = 0; i < map.Length(); i++) {
      Napi::Object m = map.Get(i).As<Napi::Object>();
      uint32_t in = U32(m.Get("in"), "in"), out = U32(m.Get("out"), "out");
      if (in >= 64 || out >= 64) throw Napi::RangeError::New(env, "l2fwd ports must be < 64");
      c.out_port[in] = (uint16_t)out;
    }
    Napi::Array rw = o.Get("rewrite").As<Napi::Array>();
    for (uint32_t i = 0; i < rw.Length(); i++) {
      Napi::Object m = rw.Get(i).As<Napi::Object>();
      uint32_t port = U32(m.Get("port"), "port");
      if (port >= 64) throw Napi::RangeError::New(env, "l2fwd ports must be < 64");
      if (!m.Get("src").IsUndefined()) {
        CopyBytes(m.Get("src"), c.src_mac[port], 6, "src");
        c.set_src[port] = 1;
      }
      if (!m.Get("dst").IsUndefined()) {
        CopyBytes(m.Get("dst"), c.dst_mac[port], 6, "dst");
        c.set_dst[port] = 1;
      }
    }
    rc = fl_pipeline_add_l2fwd(p, &c, err);
  } else if (type == "acl") {
    fl_acl_conf c;
    memset(&c, 0, sizeof(c));
    Napi::Value ms = o.Get("maxSize");
    c.max_size = ms.IsUndefined() ? 0 : (uint64_t)ms.As<Napi::Number>().DoubleValue();
    c.default_action = Action(o.Get("defaultAction"));
    c.non_ip_action = Action(o.Get("nonIpAction"));
    c.fragment_action = Action(o.Get("fragmentAction"));
    rc = fl_pipeline_add_acl(p, &c, err);
  } else if (type == "lpm") {
    fl_lpm_conf c;
    c.no_route_action = Action(o.Get("noRouteAction"));
    c.non_ip_action = Action(o.Get("nonIpAction"));
    c.count_hits = o.Get("countHits").ToBoolean() ? 1 : 0;
    rc = fl_pipeline_add_lpm(p, &c, err);
  } else if (type == "burn") {
    fl_burn_conf c;
    c.cycles = U32(o.Get("cycles"), "cycles");
    rc = fl_pipeline_add_burn(p, &c, err);
  } else if (type == "conntrack") {
    fl_ct_conf c;
    memset(&c, 0, sizeof(c));
    c.capacity = U32(o.Get("capacity"), "capacity");
    Napi::Array to = o.Get("timeoutsMs").As<Napi::Array>();
    if (to.Length() != FL_CT_TO_COUNT) throw Napi::RangeError::New(env, "timeoutsMs: 5 values");
    for (uint32_t i = 0; i < FL_CT_TO_COUNT; i++) c.timeout_ms[i] = U32(to.Get(i), "timeoutsMs");
    c.evict = o.Get("evict").ToBoolean() ? 1 : 0;
    c.socket = -1;
    rc = fl_pipeline_add_conntrack(p, &c, err);
  } else {
    throw Napi::TypeError::New(env, "unknown stage type " + type);
  }
  if (rc < 0) Throw(env, rc, "pipeline_add_stage", err);
  return Napi::Number::New(env, rc);
}

// Rules packed by packAcl (src/acl.ts): ACL_RULE_WIRE bytes each, little-endian u16/u32.
constexpr size_t ACL_RULE_WIRE = 52;
std::vector<fl_acl_rule> AclRules(const Napi::Value &v) {
  if (!v.IsBuffer()) throw Napi::TypeError::New(v.Env(), "rules must be a packed Buffer");
  auto b = v.As<Napi::Buffer<uint8_t>>();
  if (b.Length() % ACL_RULE_WIRE)
    throw Napi::RangeError::New(v.Env(), "packed rules: length is not a multiple of 52");
  const uint8_t *d = b.Data();
  auto u16 = [](const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); };
  std::vector<fl_acl_rule> r(b.Length() / ACL_RULE_WIRE);
  for (size_t i = 0; i < r.size(); i++, d += ACL_RULE_WIRE) {
    fl_acl_rule &x = r[i];
    memset(&x, 0, sizeof(x));
    x.family = d[0];
    x.proto = d[1];
    x.proto_mask = d[2];
    x.src_len = d[3];
    x.dst_len = d[4];
    x.action = d[5];
    if (x.action > FL_ACT_PUNT || x.src_len > 128 || x.dst_len > 128)
      throw Napi::RangeError::New(v.Env(), "packed rule " + std::to_string(i) + " is malformed");
    x.sport_lo = u16(d + 6);
    x.sport_hi = u16(d + 8);
    x.dport_lo = u16(d + 10);
    x.dport_hi = u16(d + 12);
    x.priority = (int32_t)((uint32_t)u16(d + 16) | (uint32_t)u16(d + 18) << 16);
    memcpy(x.src, d + 20, 16);
    memcpy(x.dst, d + 36, 16);
  }
  return r;
}

// The per-rule hits of a table (n + 1 values, the last the default action's), sized from it.
Napi::Array AclHitsArray(Napi::Env env, const fl_acl_table *t) {
  std::vector<uint64_t> v((size_t)fl_acl_table_rules(t) + 1);
  fl_acl_table_hits(t, v.data());
  Napi::Array out = Napi::Array::New(env, v.size());
  for (size_t i = 0; i < v.size(); i++) out.Set((uint32_t)i, (double)v[i]);
  return out;
}

// Control thread: swaps a built table into the pipeline's stage; returns the retired table's
// final hits. Frees what it cannot swap in.
Napi::Value SwapAcl(Napi::Env env, uint32_t pipeline_id, int stage, fl_acl_table *t) {
  auto it = pipelines.find(pipeline_id);
  if (it == pipelines.end()) {
    fl_acl_table_free(t);
    Throw(env, -ENOENT, "acl_build", "the pipeline was closed while its ACL table was built");
  }
  fl_acl_table *old = fl_pipeline_swap_acl(it->second, stage, t);
  if (!old) {
    fl_acl_table_free(t);
    Throw(env, -EINVAL, "acl_build", "not an ACL stage of this pipeline");
  }
  Napi::Array retired = AclHitsArray(env, old);
  fl_acl_table_free(old);
  return retired;
}

// Builds an ACL table on libuv's thread pool; the swap happens back on the JS thread.
class AclBuild : public Napi::AsyncWorker {
 public:
  AclBuild(Napi::Env env, uint32_t pipeline_id, int stage, const fl_acl_build_conf &conf,
           std::vector<fl_acl_rule> rules)
      : Napi::AsyncWorker(env, "flowline:acl_build"),
        deferred_(Napi::Promise::Deferred::New(env)),
        pipeline_id_(pipeline_id),
        stage_(stage),
        conf_(conf),
        rules_(std::move(rules)) {
    std::lock_guard<std::mutex> lk(builds_mu);
    builds_running++;
  }
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    table_ = fl_acl_table_build(&conf_, rules_.data(), (uint32_t)rules_.size(), err_);
    std::lock_guard<std::mutex> lk(builds_mu);
    builds_running--;
    builds_cv.notify_all();
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    try {
      if (fl_eal_state() != 1)  // cleaned up meanwhile: DPDK memory is gone, drop the table
        Throw(env, -EINVAL, "acl_build", "EAL was cleaned up while an ACL table was built");
      if (!table_) Throw(env, -EINVAL, "acl_build", err_);
      fl_acl_table *t = table_;
      table_ = nullptr;
      deferred_.Resolve(SwapAcl(env, pipeline_id_, stage_, t));
    } catch (const Napi::Error &e) {
      deferred_.Reject(e.Value());
    }
  }

 private:
  Napi::Promise::Deferred deferred_;
  uint32_t pipeline_id_;
  int stage_;
  fl_acl_build_conf conf_;
  std::vector<fl_acl_rule> rules_;
  fl_acl_table *table_ = nullptr;
  char err_[FL_ERR_LEN] = "";
};

// pipelineSetAcl(pipeline, stage, rules, sync): a Promise of the retired table's hits, built off
// the JS thread; with sync (small initial tables in Pipeline.create) built here and returned.
Napi::Value PipelineSetAcl(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  RequireEal(env);
  uint32_t id = U32(info[0], "pipeline");
  fl_pipeline *p = Pipeline(info[0]);
  int stage = info[1].As<Napi::Number>().Int32Value();
  std::vector<fl_acl_rule> r = AclRules(info[2]);
  char err[FL_ERR_LEN] = "";
  fl_acl_build_conf conf;
  int rc = fl_pipeline_acl_build_conf(p, stage, &conf, err);
  if (rc < 0) Throw(env, rc, "acl_build", err);
  if (r.size() > FL_ACL_MAX_RULES)
    Throw(env, -E2BIG, "acl_build",
          ("an ACL table holds at most " + std::to_string(FL_ACL_MAX_RULES) +
           " native rules, got " + std::to_string(r.size()))
              .c_str());
  if (info[3].ToBoolean()) {
    fl_acl_table *t = fl_acl_table_build(&conf, r.data(), (uint32_t)r.size(), err);
    if (!t) Throw(env, -EINVAL, "acl_build", err);
    return SwapAcl(env, id, stage, t);
  }
  AclBuild *w = new AclBuild(env, id, stage, conf, std::move(r));
  Napi::Promise promise = w->Promise();
  w->Queue();
  return promise;
}

Napi::Value PipelineSetLpm(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  fl_pipeline *p = Pipeline(info[0]);
  int stage = info[1].As<Napi::Number>().Int32Value();
  Napi::Object o = info[2].As<Napi::Object>();
  Napi::Array routes = o.Get("routes").As<Napi::Array>();
  Napi::Array nhs = o.Get("nexthops").As<Napi::Array>();
  Napi::Array l4 = o.Get("local4").As<Napi::Array>();
  Napi::Array l6 = o.Get("local6").As<Napi::Array>();
  std::vector<fl_route> r(routes.Length());
  for (uint32_t i = 0; i < routes.Length(); i++) {
    Napi::Object x = routes.Get(i).As<Napi::Object>();
    memset(&r[i], 0, sizeof(r[i]));
    r[i].family = (uint8_t)U32(x.Get("family"), "family");
    r[i].len = (uint8_t)U32(x.Get("len"), "len");
    r[i].nexthop = U32(x.Get("nexthop"), "nexthop");
    CopyBytes(x.Get("addr"), r[i].addr, r[i].family == 4 ? 4 : 16, "addr");
  }
  std::vector<fl_nexthop> nh(nhs.Length());
  for (uint32_t i = 0; i < nhs.Length(); i++) {
    Napi::Object x = nhs.Get(i).As<Napi::Object>();
    nh[i].port = (uint16_t)U32(x.Get("port"), "port");
    CopyBytes(x.Get("dstMac"), nh[i].dst_mac, 6, "dstMac");
    CopyBytes(x.Get("srcMac"), nh[i].src_mac, 6, "srcMac");
  }
  std::vector<uint8_t> a4(l4.Length() * 4 + 4), a6(l6.Length() * 16 + 16);
  for (uint32_t i = 0; i < l4.Length(); i++) CopyBytes(l4.Get(i), &a4[i * 4], 4, "local4");
  for (uint32_t i = 0; i < l6.Length(); i++) CopyBytes(l6.Get(i), &a6[i * 16], 16, "local6");
  fl_lpm_table_in t;
  t.routes = r.data();
  t.n_routes = (uint32_t)r.size();
  t.nexthops = nh.data();
  t.n_nexthops = (uint32_t)nh.size();
  t.local4 = (const uint8_t(*)[4])a4.data();
  t.n_local4 = l4.Length();
  t.local6 = (const uint8_t(*)[16])a6.data();
  t.n_local6 = l6.Length();
  char err[FL_ERR_LEN] = "";
  int rc = fl_pipeline_set_lpm(p, stage, &t, err);
  if (rc < 0) Throw(env, rc, "lpm_build", err);
  return env.Undefined();
}

Napi::Value PipelineStart(const Napi::CallbackInfo &info) {
  char err[FL_ERR_LEN] = "";
  int rc = fl_pipeline_start(Pipeline(info[0]), err);
  if (rc < 0) Throw(info.Env(), rc, "pipeline_start", err);
  return info.Env().Undefined();
}

Napi::Value PipelineStop(const Napi::CallbackInfo &info) {
  fl_pipeline_stop(Pipeline(info[0]));
  return info.Env().Undefined();
}

Napi::Value PipelineFree(const Napi::CallbackInfo &info) {
  auto it = pipelines.find(U32(info[0], "pipeline"));
  if (it != pipelines.end()) {
    fl_pipeline_free(it->second);
    pipelines.erase(it);
  }
  return info.Env().Undefined();
}

Napi::Value PipelineCounters(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  fl_pipeline *p = Pipeline(info[0]);
  int ns = fl_pipeline_n_stages(p) + 1;
  std::vector<uint64_t> v((size_t)ns * FL_STAGE_CTRS);
  fl_pipeline_counters(p, v.data());
  Napi::Float64Array out = Napi::Float64Array::New(env, v.size());
  for (size_t i = 0; i < v.size(); i++) out[i] = (double)v[i];
  return out;
}

// Idle waits in epoll, those ended by a queue's kick, workers waiting on rx interrupts.
Napi::Value PipelineRxWaits(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  uint64_t v[3];
  fl_pipeline_rx_waits(Pipeline(info[0]), v);
  Napi::Float64Array out = Napi::Float64Array::New(env, 3);
  for (size_t i = 0; i < 3; i++) out[i] = (double)v[i];
  return out;
}

// Busy cycles: FL_CYC_FIXED totals, then one per stage (see fl.h).
Napi::Value PipelineCycles(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  fl_pipeline *p = Pipeline(info[0]);
  std::vector<uint64_t> v((size_t)FL_CYC_FIXED + (size_t)fl_pipeline_n_stages(p));
  int n = fl_pipeline_cycles(p, v.data());
  Napi::Float64Array out = Napi::Float64Array::New(env, (size_t)n);
  for (int i = 0; i < n; i++) out[(size_t)i] = (double)v[(size_t)i];
  return out;
}

Napi::Value HeapBytes(const Napi::CallbackInfo &info) {
  RequireEal(info.Env());
  return Napi::Number::New(info.Env(), (double)fl_heap_bytes());
}

Napi::Value TscHz(const Napi::CallbackInfo &info) {
  return Napi::Number::New(info.Env(), (double)fl_pipeline_tsc_hz());
}

// Per-route hits of an LPM stage that counts them (a Float64Array in route order).
Napi::Value PipelineLpmHits(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  fl_pipeline *p = Pipeline(info[0]);
  int stage = info[1].As<Napi::Number>().Int32Value();
  int64_t n = fl_pipeline_lpm_hits(p, stage, nullptr, 0);
  if (n < 0) Throw(env, (int)n, "lpm_hits", "not an LPM stage");
  std::vector<uint64_t> v((size_t)n + 1);
  n = fl_pipeline_lpm_hits(p, stage, v.data(), (uint32_t)n);
  Napi::Float64Array out = Napi::Float64Array::New(env, (size_t)n);
  for (int64_t i = 0; i < n; i++) out[(size_t)i] = (double)v[(size_t)i];
  return out;
}

Napi::Value PipelineAclHits(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  const fl_acl_table *t =
      fl_pipeline_acl_table(Pipeline(info[0]), info[1].As<Napi::Number>().Int32Value());
  if (!t) Throw(env, -EINVAL, "acl_hits", "not an ACL stage");
  return AclHitsArray(env, t);
}

// null when the pipeline's workers can send on the port, else why not.
Napi::Value PipelineCheckPort(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  RequireEal(env);
  char err[FL_ERR_LEN] = "";
  if (fl_pipeline_check_out_port(Pipeline(info[0]), U32(info[1], "port"), err) < 0)
    return Napi::String::New(env, err);
  return env.Null();
}

// Test clock: advances a manualClock pipeline's "now" by ns; returns it in TSC cycles.
Napi::Value PipelineAdvanceClock(const Napi::CallbackInfo &info) {
  double ns = info[1].As<Napi::Number>().DoubleValue();
  if (!(ns >= 0)) throw Napi::RangeError::New(info.Env(), "ns must be >= 0");
  return Napi::Number::New(info.Env(),
                           (double)fl_pipeline_advance_clock(Pipeline(info[0]), (uint64_t)ns));
}

Napi::Value PipelineCtCounters(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  struct fl_ct_counters c;
  int rc = fl_pipeline_ct_counters(Pipeline(info[0]), info[1].As<Napi::Number>().Int32Value(), &c);
  if (rc < 0) Throw(env, rc, "ct_counters", "not a conntrack stage");
  Napi::Object o = Napi::Object::New(env);
  o.Set("entries", (double)c.entries);
  o.Set("capacity", (double)c.capacity);
  o.Set("created", (double)c.created);
  o.Set("expired", (double)c.expired);
  o.Set("evicted", (double)c.evicted);
  o.Set("hits", (double)c.hits);
  o.Set("replyHits", (double)c.reply_hits);
  o.Set("tableFull", (double)c.table_full);
  o.Set("related", (double)c.related);
  o.Set("flushed", (double)c.flushed);
  return o;
}

Napi::Value PipelineCtFlush(const Napi::CallbackInfo &info) {
  int rc = fl_pipeline_ct_flush(Pipeline(info[0]), info[1].As<Napi::Number>().Int32Value());
  if (rc < 0) Throw(info.Env(), rc, "ct_flush", "not a conntrack stage");
  return info.Env().Undefined();
}

Napi::Value PipelinePunt(const Napi::CallbackInfo &info) {
  return Napi::Number::New(info.Env(), fl_pipeline_punt_dequeue(Pipeline(info[0]), Batch(info[1])));
}

Napi::Value PipelineInject(const Napi::CallbackInfo &info) {
  int rc = fl_pipeline_inject(Pipeline(info[0]), Batch(info[1]), Port(info[2]));
  if (rc < 0) Throw(info.Env(), rc, "inject", "the pipeline cannot send on that port");
  return Napi::Number::New(info.Env(), rc);
}

// ---- traffic generator (fl_gen.h) ----
std::map<uint32_t, fl_gen *> gens;

fl_gen *Gen(const Napi::Value &v) {
  auto it = gens.find(U32(v, "generator"));
  if (it == gens.end()) throw Napi::Error::New(v.Env(), "generator was freed");
  return it->second;
}

Napi::Value GenCreate(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  RequireEal(env);
  Napi::Object o = info[0].As<Napi::Object>();
  fl_gen_conf c;
  memset(&c, 0, sizeof(c));
  c.lcore = U32(o.Get("lcore"), "lcore");
  c.tx_queue = (uint16_t)OptU32(o, "txQueue", 0);
  c.burst = (uint16_t)OptU32(o, "burst", 32);
  c.run = (uint8_t)OptU32(o, "run", 0);
  c.accept_any_run = o.Get("acceptAnyRun").ToBoolean() ? 1 : 0;
  c.pool = o.Get("pool").IsUndefined() ? nullptr : Pool(o.Get("pool"));
  Napi::Object bo = o.Get("backoff").As<Napi::Object>();
  c.backoff.spin_polls = OptU32(bo, "spinPolls", 256);
  c.backoff.sleep_min_us = OptU32(bo, "sleepMinUs", 1);
  c.backoff.sleep_max_us = OptU32(bo, "sleepMaxUs", 500);
  Napi::Array rx = o.Get("rx").As<Napi::Array>();
  if (rx.Length() > FL_GEN_MAX_RX) throw Napi::RangeError::New(env, "too many rx queues");
  c.n_rx = (uint16_t)rx.Length();
  for (uint32_t i = 0; i < rx.Length(); i++) {
    Napi::Object in = rx.Get(i).As<Napi::Object>();
    c.rx[i].port = Port(in.Get("port"));
    c.rx[i].queue = (uint16_t)U32(in.Get("queue"), "queue");
  }
  Napi::Array fs = o.Get("flows").As<Napi::Array>();
  if (fs.Length() > FL_GEN_MAX_FLOWS) throw Napi::RangeError::New(env, "too many flows");
  std::vector<fl_gen_flow> flows(fs.Length());
  for (uint32_t i = 0; i < fs.Length(); i++) {
    Napi::Object f = fs.Get(i).As<Napi::Object>();
    fl_gen_flow &x = flows[i];
    memset(&x, 0, sizeof(x));
    x.port = Port(f.Get("port"));
    x.family = (uint8_t)U32(f.Get("family"), "family");
    x.proto = (uint8_t)U32(f.Get("proto"), "proto");
    CopyBytes(f.Get("srcMac"), x.src_mac, 6, "srcMac");
    CopyBytes(f.Get("dstMac"), x.dst_mac, 6, "dstMac");
    CopyBytes(f.Get("srcIp"), x.src_ip, x.family == 4 ? 4 : 16, "srcIp");
    CopyBytes(f.Get("dstIp"), x.dst_ip, x.family == 4 ? 4 : 16, "dstIp");
    x.sport = (uint16_t)U32(f.Get("sport"), "sport");
    x.dport = (uint16_t)U32(f.Get("dport"), "dport");
    x.size = (uint16_t)U32(f.Get("size"), "size");
    x.ttl = (uint8_t)U32(f.Get("ttl"), "ttl");
    x.tcp_flags = (uint8_t)U32(f.Get("tcpFlags"), "tcpFlags");
    x.rate_pps = f.Get("ratePps").As<Napi::Number>().DoubleValue();
    x.count = (uint64_t)f.Get("count").As<Napi::Number>().DoubleValue();
  }
  c.n_flows = (uint32_t)flows.size();
  c.flows = flows.data();
  char err[FL_ERR_LEN] = "";
  fl_gen *g = fl_gen_create(&c, err);
  if (!g) Throw(env, -EINVAL, "gen_create", err);
  uint32_t id = next_id++;
  gens[id] = g;
  return Napi::Number::New(env, id);
}

Napi::Value GenStart(const Napi::CallbackInfo &info) {
  char err[FL_ERR_LEN] = "";
  int rc = fl_gen_start(Gen(info[0]), err);
  if (rc < 0) Throw(info.Env(), rc, "gen_start", err);
  return info.Env().Undefined();
}

Napi::Value GenStop(const Napi::CallbackInfo &info) {
  fl_gen_stop(Gen(info[0]));
  return info.Env().Undefined();
}

Napi::Value GenFree(const Napi::CallbackInfo &info) {
  auto it = gens.find(U32(info[0], "generator"));
  if (it != gens.end()) {
    fl_gen_free(it->second);
    gens.erase(it);
  }
  return info.Env().Undefined();
}

// Per-flow counters (FL_GEN_FLOW_CTRS each) for the flows with anything to report.
Napi::Value GenCounters(const Napi::CallbackInfo &info) {
  fl_gen *g = Gen(info[0]);
  std::vector<uint64_t> v((size_t)FL_GEN_MAX_FLOWS * FL_GEN_FLOW_CTRS);
  uint32_t n = fl_gen_flow_counters(g, v.data(), FL_GEN_MAX_FLOWS);
  Napi::Float64Array out = Napi::Float64Array::New(info.Env(), (size_t)n * FL_GEN_FLOW_CTRS);
  for (size_t i = 0; i < (size_t)n * FL_GEN_FLOW_CTRS; i++) out[i] = (double)v[i];
  return out;
}

Napi::Value GenHistogram(const Napi::CallbackInfo &info) {
  uint64_t v[FL_GEN_HIST];
  if (fl_gen_histogram(Gen(info[0]), U32(info[1], "flow"), v) < 0)
    throw Napi::RangeError::New(info.Env(), "flow out of range");
  Napi::Float64Array out = Napi::Float64Array::New(info.Env(), FL_GEN_HIST);
  for (int i = 0; i < FL_GEN_HIST; i++) out[i] = (double)v[i];
  return out;
}

Napi::Value GenGlobal(const Napi::CallbackInfo &info) {
  uint64_t v[FL_GEN_G_CTRS];
  fl_gen_global(Gen(info[0]), v);
  Napi::Float64Array out = Napi::Float64Array::New(info.Env(), FL_GEN_G_CTRS);
  for (int i = 0; i < FL_GEN_G_CTRS; i++) out[i] = (double)v[i];
  return out;
}

Napi::Value GenConstants(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("maxFlows", FL_GEN_MAX_FLOWS);
  o.Set("maxRx", FL_GEN_MAX_RX);
  o.Set("histBuckets", FL_GEN_HIST);
  o.Set("flowCounters", (int)FL_GEN_FLOW_CTRS);
  o.Set("globalCounters", (int)FL_GEN_G_CTRS);
  o.Set("tagLength", FL_GEN_TAG_LEN);
  o.Set("magic", FL_GEN_MAGIC);
  Napi::Object m = Napi::Object::New(env);
  for (int fam : {4, 6})
    for (int proto : {6, 17})
      m.Set(std::to_string(fam) + "/" + std::to_string(proto), fl_gen_min_frame(fam, proto));
  o.Set("minFrame", m);
  return o;
}

Napi::Value Constants(Napi::Env env) {
  Napi::Object o = Napi::Object::New(env);
  Napi::Array reasons = Napi::Array::New(env, FL_R_COUNT);
  for (int i = 0; i < FL_R_COUNT; i++) reasons.Set(i, fl_reason_name(i));
  o.Set("reasons", reasons);
  o.Set("metaInts", FL_META_INTS);
  o.Set("stageCounters", FL_STAGE_CTRS);
  o.Set("maxBurst", FL_MAX_BURST);
  o.Set("maxAclRules", FL_ACL_MAX_RULES);
  return o;
}

Napi::Value ParsePacket(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  auto b = info[0].As<Napi::Buffer<uint8_t>>();
  fl_parsed h;
  fl_parse(b.Data(), (uint32_t)b.Length(), &h);
  Napi::Object o = Napi::Object::New(env);
  o.Set("reason", fl_reason_name(h.reason));
  o.Set("l3", h.l3 == FL_L3_IPV4   ? "ipv4"
              : h.l3 == FL_L3_IPV6 ? "ipv6"
              : h.l3 == FL_L3_ARP  ? "arp"
                                   : "none");
  o.Set("ethertype", h.ethertype);
  o.Set("proto", h.proto);
  o.Set("ttl", h.ttl);
  o.Set("fragment", (h.flags & FL_F_FRAG) != 0);
  o.Set("laterFragment", (h.flags & FL_F_FRAG_LATER) != 0);
  o.Set("hasL4", (h.flags & FL_F_L4) != 0);
  o.Set("sport", (h.sport >> 8) | ((h.sport & 0xff) << 8));
  o.Set("dport", (h.dport >> 8) | ((h.dport & 0xff) << 8));
  o.Set("icmpType", h.icmp_type);
  o.Set("l3Offset", h.l3_off);
  o.Set("l4Offset", h.l4_off);
  return o;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
#define EXPORT(name, fn) exports.Set(name, Napi::Function::New(env, fn, name))
  EXPORT("ealInit", EalInit);
  EXPORT("ealCleanup", EalCleanup);
  EXPORT("ealState", EalState);
  EXPORT("lcores", Lcores);
  EXPORT("poolCreate", PoolCreate);
  EXPORT("poolFree", PoolFree);
  EXPORT("poolInfo", PoolInfo);
  EXPORT("poolView", PoolView);
  EXPORT("portProbe", PortProbe);
  EXPORT("portFind", PortFind);
  EXPORT("portInfo", PortInfo);
  EXPORT("portConfigure", PortConfigure);
  EXPORT("portStart", PortStart);
  EXPORT("portStop", PortStop);
  EXPORT("portClose", PortClose);
  EXPORT("portStatsReset", PortStatsReset);
  EXPORT("portLink", PortLink);
  EXPORT("portMac", PortMac);
  EXPORT("portMtu", PortMtu);
  EXPORT("portPromisc", PortPromisc);
  EXPORT("portStats", PortStats);
  EXPORT("portXstats", PortXstats);
  EXPORT("batchCreate", BatchCreate);
  EXPORT("batchFree", BatchFree);
  EXPORT("batchRelease", BatchRelease);
  EXPORT("batchCount", BatchCount);
  EXPORT("rxBurst", RxBurst);
  EXPORT("rxIntrArm", RxIntrArm);
  EXPORT("rxIntrWait", RxIntrWaitFn);
  EXPORT("txBurst", TxBurst);
  EXPORT("txCopy", TxCopy);
  EXPORT("rxCopy", RxCopy);
  EXPORT("pipelineCreate", PipelineCreate);
  EXPORT("pipelineAddStage", PipelineAddStage);
  EXPORT("pipelineSetAcl", PipelineSetAcl);
  EXPORT("pipelineSetLpm", PipelineSetLpm);
  EXPORT("pipelineStart", PipelineStart);
  EXPORT("pipelineStop", PipelineStop);
  EXPORT("pipelineFree", PipelineFree);
  EXPORT("pipelineCounters", PipelineCounters);
  EXPORT("pipelineRxWaits", PipelineRxWaits);
  EXPORT("pipelineCycles", PipelineCycles);
  EXPORT("pipelineLpmHits", PipelineLpmHits);
  EXPORT("tscHz", TscHz);
  EXPORT("heapBytes", HeapBytes);
  EXPORT("pipelineAclHits", PipelineAclHits);
  EXPORT("pipelineCheckPort", PipelineCheckPort);
  EXPORT("pipelineAdvanceClock", PipelineAdvanceClock);
  EXPORT("pipelineCtCounters", PipelineCtCounters);
  EXPORT("pipelineCtFlush", PipelineCtFlush);
  EXPORT("pipelinePunt", PipelinePunt);
  EXPORT("pipelineInject", PipelineInject);
  EXPORT("parsePacket", ParsePacket);
  EXPORT("genCreate", GenCreate);
  EXPORT("genStart", GenStart);
  EXPORT("genStop", GenStop);
  EXPORT("genFree", GenFree);
  EXPORT("genCounters", GenCounters);
  EXPORT("genHistogram", GenHistogram);
  EXPORT("genGlobal", GenGlobal);
  EXPORT("genConstants", GenConstants);
  exports.Set("constants", Constants(env));
  return exports;
}

}  // namespace

NODE_API_MODULE(flowline_dpdk, Init)
