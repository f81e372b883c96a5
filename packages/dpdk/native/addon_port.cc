// Ports: probe, configure, start/stop/close, link, MAC, MTU, promiscuous mode, stats, the rx
// interrupt wait of the JS batch API, and the copying send/receive.
#include <napi.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "addon.h"
#include "fl.h"

namespace flowline {

namespace {

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

// A server=1 virtio-user socket whose handshake DPDK reported broken (fl_vhost.c); forgets it.
Napi::Value VhostTakeBroken(const Napi::CallbackInfo &info) {
  std::string path = info[0].As<Napi::String>();
  return Napi::Boolean::New(info.Env(), fl_vhost_take_broken(path.c_str()) != 0);
}

// Shuts down the connected sockets of that path, so that the switch reconnects.
Napi::Value VhostKick(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>();
  char err[FL_ERR_LEN] = "";
  int rc = fl_vhost_kick(path.c_str(), err);
  if (rc < 0) Throw(env, rc, "vhost-user reconnect", err);
  return Napi::Number::New(env, rc);
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

void RxIntrClosed(uv_handle_t *h) {
  RxIntrWait *w = static_cast<RxIntrWait *>(h->data);
  if (--w->open == 0) delete w;
}

void RxIntrSettle(RxIntrWait *w, bool kicked) {
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

Napi::Value TxCopy(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  RequireEal(env);
  uint16_t port = Port(info[0]);
  uint16_t queue = (uint16_t)U32(info[1], "queue");
  void *pool = Pool(info[2]);
  Napi::Array arr = info[3].As<Napi::Array>();
  uint32_t total = arr.Length();
  // Every packet at once: fl_tx_copy checks them all before it sends any, by their index here.
  std::vector<Napi::Buffer<uint8_t>> keep(total);
  std::vector<const uint8_t *> data(total);
  std::vector<uint32_t> lens(total);
  for (uint32_t i = 0; i < total; i++) {
    Napi::Value v = arr.Get(i);
    if (!v.IsBuffer()) throw Napi::TypeError::New(env, "packets must be Buffers");
    keep[i] = v.As<Napi::Buffer<uint8_t>>();
    data[i] = keep[i].Data();
    lens[i] = (uint32_t)keep[i].Length();
  }
  char err[FL_ERR_LEN] = "";
  int rc = fl_tx_copy(port, queue, pool, data.data(), lens.data(), total, err);
  if (rc < 0) Throw(env, rc, "tx", err);
  return Napi::Number::New(env, rc);
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

}  // namespace

uint16_t Port(const Napi::Value &v) {
  uint32_t p = U32(v, "port");
  if (p >= 0xffff || !fl_port_valid((uint16_t)p))
    throw Napi::RangeError::New(v.Env(), "port " + std::to_string(p) + " is not an attached port");
  return (uint16_t)p;
}

void ExportPort(Napi::Object exports) {
  FL_EXPORT(exports, "portProbe", PortProbe);
  FL_EXPORT(exports, "portFind", PortFind);
  FL_EXPORT(exports, "portInfo", PortInfo);
  FL_EXPORT(exports, "portConfigure", PortConfigure);
  FL_EXPORT(exports, "portStart", PortStart);
  FL_EXPORT(exports, "portStop", PortStop);
  FL_EXPORT(exports, "portClose", PortClose);
  FL_EXPORT(exports, "portStatsReset", PortStatsReset);
  FL_EXPORT(exports, "portLink", PortLink);
  FL_EXPORT(exports, "vhostTakeBroken", VhostTakeBroken);
  FL_EXPORT(exports, "vhostKick", VhostKick);
  FL_EXPORT(exports, "portMac", PortMac);
  FL_EXPORT(exports, "portMtu", PortMtu);
  FL_EXPORT(exports, "portPromisc", PortPromisc);
  FL_EXPORT(exports, "portStats", PortStats);
  FL_EXPORT(exports, "portXstats", PortXstats);
  FL_EXPORT(exports, "rxIntrArm", RxIntrArm);
  FL_EXPORT(exports, "rxIntrWait", RxIntrWaitFn);
  FL_EXPORT(exports, "txCopy", TxCopy);
  FL_EXPORT(exports, "rxCopy", RxCopy);
}

}  // namespace flowline
