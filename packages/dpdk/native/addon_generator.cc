// The traffic generator (fl_gen.h): create from flows, start/stop, per-flow counters, latency
// histograms, global counters and its constants.
#include <napi.h>

#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "addon.h"
#include "fl.h"
#include "fl_gen.h"

namespace flowline {

namespace {

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
  c.backoff.share_core = bo.Get("shareCore").ToBoolean() ? 1 : 0;
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
  uint32_t id = NextId();
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
  return Float64s(info.Env(), v.data(), (size_t)n * FL_GEN_FLOW_CTRS);
}

Napi::Value GenHistogram(const Napi::CallbackInfo &info) {
  uint64_t v[FL_GEN_HIST];
  if (fl_gen_histogram(Gen(info[0]), U32(info[1], "flow"), v) < 0)
    throw Napi::RangeError::New(info.Env(), "flow out of range");
  return Float64s(info.Env(), v, FL_GEN_HIST);
}

Napi::Value GenGlobal(const Napi::CallbackInfo &info) {
  uint64_t v[FL_GEN_G_CTRS];
  fl_gen_global(Gen(info[0]), v);
  return Float64s(info.Env(), v, FL_GEN_G_CTRS);
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

}  // namespace

void ExportGenerator(Napi::Object exports) {
  FL_EXPORT(exports, "genCreate", GenCreate);
  FL_EXPORT(exports, "genStart", GenStart);
  FL_EXPORT(exports, "genStop", GenStop);
  FL_EXPORT(exports, "genFree", GenFree);
  FL_EXPORT(exports, "genCounters", GenCounters);
  FL_EXPORT(exports, "genHistogram", GenHistogram);
  FL_EXPORT(exports, "genGlobal", GenGlobal);
  FL_EXPORT(exports, "genConstants", GenConstants);
}

}  // namespace flowline
