// Pipelines: create, stages, ACL tables (built on libuv's thread pool, swapped on the JS
// thread), LPM tables, start/stop, counters, cycles, hits, conntrack, punt and inject.
#include <napi.h>

#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "addon.h"
#include "fl.h"

namespace flowline {

namespace {

std::map<uint32_t, fl_pipeline *> pipelines;

// ACL tables being built on libuv's thread pool. rte_eal_cleanup must not run under a build.
std::mutex builds_mu;
std::condition_variable builds_cv;
int builds_running = 0;

fl_pipeline *Pipeline(const Napi::Value &v) {
  auto it = pipelines.find(U32(v, "pipeline"));
  if (it == pipelines.end()) throw Napi::Error::New(v.Env(), "pipeline was freed");
  return it->second;
}

/* "timer" (default), "poll", "adaptive" or "interrupt" (adaptive with spinPolls 0). */
uint32_t RxMode(Napi::Env env, Napi::Value v) {
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
  c.backoff.share_core = bo.Get("shareCore").ToBoolean() ? 1 : 0;
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
  uint32_t id = NextId();
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
    if (to.Length() != FL_CT_TO_COUNT)
      throw Napi::RangeError::New(env, "timeoutsMs: one value per timeout class");
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

}  // namespace

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

namespace {

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
    uint32_t mtu = OptU32(x, "mtu", 0);  // 0: no limit
    if (mtu > 65535) throw Napi::RangeError::New(env, "next hop mtu must be 0..65535");
    nh[i].mtu = (uint16_t)mtu;
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
  return Float64s(env, v.data(), v.size());
}

// Idle waits in epoll, those ended by a queue's kick, workers waiting on rx interrupts, yields.
Napi::Value PipelineRxWaits(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  uint64_t v[4];
  fl_pipeline_rx_waits(Pipeline(info[0]), v);
  return Float64s(env, v, 4);
}

// Busy cycles: FL_CYC_FIXED totals, then one per stage (see fl.h).
Napi::Value PipelineCycles(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  fl_pipeline *p = Pipeline(info[0]);
  std::vector<uint64_t> v((size_t)FL_CYC_FIXED + (size_t)fl_pipeline_n_stages(p));
  int n = fl_pipeline_cycles(p, v.data());
  return Float64s(env, v.data(), (size_t)n);
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
  return Float64s(env, v.data(), (size_t)n);
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
  o.Set("denied", (double)c.denied);
  o.Set("deniedHits", (double)c.denied_hits);
  o.Set("deniedEvicted", (double)c.denied_evicted);
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

}  // namespace

void ReleasePipelines() {
  {
    std::unique_lock<std::mutex> lk(builds_mu);
    builds_cv.wait(lk, [] { return builds_running == 0; });
  }
  for (auto &p : pipelines) fl_pipeline_free(p.second);
  pipelines.clear();
}

fl_pipeline *PipelineById(const Napi::Value &v) { return Pipeline(v); }

void ExportPipeline(Napi::Object exports) {
  FL_EXPORT(exports, "pipelineCreate", PipelineCreate);
  FL_EXPORT(exports, "pipelineAddStage", PipelineAddStage);
  FL_EXPORT(exports, "pipelineSetAcl", PipelineSetAcl);
  FL_EXPORT(exports, "pipelineSetLpm", PipelineSetLpm);
  FL_EXPORT(exports, "pipelineStart", PipelineStart);
  FL_EXPORT(exports, "pipelineStop", PipelineStop);
  FL_EXPORT(exports, "pipelineFree", PipelineFree);
  FL_EXPORT(exports, "pipelineCounters", PipelineCounters);
  FL_EXPORT(exports, "pipelineRxWaits", PipelineRxWaits);
  FL_EXPORT(exports, "pipelineCycles", PipelineCycles);
  FL_EXPORT(exports, "pipelineLpmHits", PipelineLpmHits);
  FL_EXPORT(exports, "tscHz", TscHz);
  FL_EXPORT(exports, "pipelineAclHits", PipelineAclHits);
  FL_EXPORT(exports, "pipelineCheckPort", PipelineCheckPort);
  FL_EXPORT(exports, "pipelineAdvanceClock", PipelineAdvanceClock);
  FL_EXPORT(exports, "pipelineCtCounters", PipelineCtCounters);
  FL_EXPORT(exports, "pipelineCtFlush", PipelineCtFlush);
  FL_EXPORT(exports, "pipelinePunt", PipelinePunt);
  FL_EXPORT(exports, "pipelineInject", PipelineInject);
}

}  // namespace flowline
