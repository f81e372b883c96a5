// ESP stages (fl_ipsec.h): the stage added to a pipeline, its SAs added and deleted, their
// counters, its policies replaced and counted. Keys arrive as Buffers and are wiped from the
// native copies once the crypto session holds them.
#include <napi.h>

#include <cstring>
#include <string>
#include <vector>

#include "addon.h"
#include "fl_ipsec.h"

namespace flowline {

namespace {

int StageIndex(const Napi::Value &v) { return (int)U32(v, "stage"); }

uint64_t U64(const Napi::Object &o, const char *key) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return 0;
  if (v.IsBigInt()) {
    bool lossless = true;
    uint64_t x = v.As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless) throw Napi::RangeError::New(v.Env(), std::string(key) + " is out of range");
    return x;
  }
  if (!v.IsNumber()) throw Napi::TypeError::New(v.Env(), std::string(key) + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (d < 0 || d > 9007199254740991.0 || d != (double)(uint64_t)d)
    throw Napi::RangeError::New(v.Env(), std::string(key) + " must be an unsigned integer");
  return (uint64_t)d;
}

// Copies a Buffer of at most max bytes; returns its length.
uint8_t Bytes(const Napi::Value &v, uint8_t *dst, size_t max, const char *what) {
  if (v.IsUndefined()) return 0;
  if (!v.IsBuffer()) throw Napi::TypeError::New(v.Env(), std::string(what) + " must be a Buffer");
  auto b = v.As<Napi::Buffer<uint8_t>>();
  if (b.Length() > max)
    throw Napi::RangeError::New(v.Env(), std::string(what) + ": at most " + std::to_string(max) +
                                             " bytes, got " + std::to_string(b.Length()));
  memcpy(dst, b.Data(), b.Length());
  return (uint8_t)b.Length();
}

Napi::Value PipelineAddEsp(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  fl_pipeline *p = PipelineById(info[0]);
  fl_esp_conf c;
  memset(&c, 0, sizeof(c));
  c.dir = (uint8_t)U32(info[1], "direction");
  if (info[2].IsObject()) {
    Napi::Object o = info[2].As<Napi::Object>();
    c.spd = o.Get("spd").ToBoolean() ? 1 : 0;
    Napi::Value ports = o.Get("inPorts");
    if (ports.IsArray()) {
      Napi::Array a = ports.As<Napi::Array>();
      for (uint32_t i = 0; i < a.Length(); i++) {
        uint32_t port = U32(a.Get(i), "inPorts");
        if (port >= 64) throw Napi::RangeError::New(env, "inPorts: port ids are 0..63");
        c.in_ports |= 1ull << port;
      }
    }
  }
  char err[FL_ERR_LEN] = "";
  int rc = fl_pipeline_add_esp(p, &c, err);
  if (rc < 0) Throw(env, rc, "pipeline_add_stage", err);
  return Napi::Number::New(env, rc);
}

Napi::Value EspAddSa(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  fl_pipeline *p = PipelineById(info[0]);
  int stage = StageIndex(info[1]);
  Napi::Object o = info[2].As<Napi::Object>();
  fl_esp_sa_conf c;
  memset(&c, 0, sizeof(c));
  c.spi = U32(o.Get("spi"), "spi");
  c.alg = (uint8_t)U32(o.Get("alg"), "alg");
  c.inner_family = (uint8_t)U32(o.Get("innerFamily"), "innerFamily");
  c.outer_family = (uint8_t)U32(o.Get("outerFamily"), "outerFamily");
  c.esn = o.Get("esn").ToBoolean() ? 1 : 0;
  c.ttl = (uint8_t)OptU32(o, "ttl", 0);
  c.key_len = Bytes(o.Get("key"), c.key, sizeof(c.key), "key");
  c.auth_key_len = Bytes(o.Get("authKey"), c.auth_key, sizeof(c.auth_key), "authKey");
  Bytes(o.Get("outerSrc"), c.outer_src, 16, "outerSrc");
  Bytes(o.Get("outerDst"), c.outer_dst, 16, "outerDst");
  c.replay_window = OptU32(o, "replayWindow", 0);
  c.seq = U64(o, "seq");
  c.soft_packets = U64(o, "softPackets");
  c.hard_packets = U64(o, "hardPackets");
  c.soft_bytes = U64(o, "softBytes");
  c.hard_bytes = U64(o, "hardBytes");
  char err[FL_ERR_LEN] = "";
  int rc = fl_pipeline_esp_add_sa(p, stage, &c, err);
  // The session holds the keys now (or nothing does): no copy left on this stack.
  volatile uint8_t *k = c.key;
  for (size_t i = 0; i < sizeof(c.key); i++) k[i] = 0;
  volatile uint8_t *a = c.auth_key;
  for (size_t i = 0; i < sizeof(c.auth_key); i++) a[i] = 0;
  if (rc < 0) Throw(env, rc, "esp_add_sa", err);
  return env.Undefined();
}

Napi::Object Counters(Napi::Env env, const fl_esp_sa_counters &c) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("packets", (double)c.packets);
  o.Set("bytes", (double)c.bytes);
  o.Set("authFailures", (double)c.auth_failures);
  o.Set("replays", (double)c.replays);
  o.Set("lifetimeDrops", (double)c.lifetime_drops);
  o.Set("trailerErrors", (double)c.trailer_errors);
  o.Set("errors", (double)c.errors);
  o.Set("seq", Napi::BigInt::New(env, c.seq));
  o.Set("softExpired", c.soft_expired != 0);
  o.Set("hardExpired", c.hard_expired != 0);
  o.Set("cpuCrypto", c.cpu_crypto != 0);
  o.Set("device", c.device);
  return o;
}

Napi::Value EspDelSa(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  fl_esp_sa_counters last;
  char err[FL_ERR_LEN] = "";
  int rc = fl_pipeline_esp_del_sa(PipelineById(info[0]), StageIndex(info[1]), U32(info[2], "spi"),
                                  &last, err);
  if (rc < 0) Throw(env, rc, "esp_del_sa", err);
  return Counters(env, last);
}

Napi::Value EspSaCounters(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  fl_esp_sa_counters c;
  char err[FL_ERR_LEN] = "";
  int rc = fl_pipeline_esp_sa_counters(PipelineById(info[0]), StageIndex(info[1]),
                                       U32(info[2], "spi"), &c, err);
  if (rc < 0) Throw(env, rc, "esp_sa_counters", err);
  return Counters(env, c);
}

Napi::Value EspSpis(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  static uint32_t spis[FL_ESP_MAX_SAS];
  int n = fl_pipeline_esp_spis(PipelineById(info[0]), StageIndex(info[1]), spis, FL_ESP_MAX_SAS);
  if (n < 0) Throw(env, n, "esp_spis", "not an ESP stage");
  Napi::Array a = Napi::Array::New(env, (size_t)n);
  for (int i = 0; i < n; i++) a.Set((uint32_t)i, spis[i]);
  return a;
}

// The policy rules: the selectors packed by packAcl, then per rule 12 bytes (u32 LE policy
// index, u8 action, 3 bytes of padding, u32 LE SPI); the policies' count. Returns the old set's
// final counts (its policies, then no policy matched).
Napi::Value EspSetPolicies(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::vector<fl_acl_rule> sel = AclRules(info[2]);
  if (!info[3].IsBuffer()) throw Napi::TypeError::New(env, "policy actions must be a Buffer");
  auto b = info[3].As<Napi::Buffer<uint8_t>>();
  if (b.Length() != sel.size() * 12)
    throw Napi::RangeError::New(env, "policy actions: 12 bytes per selector");
  const uint8_t *d = b.Data();
  auto u32 = [](const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
  };
  std::vector<fl_esp_policy_rule> r(sel.size());
  for (size_t i = 0; i < sel.size(); i++, d += 12) {
    r[i].m = sel[i];
    r[i].policy = u32(d);
    r[i].action = d[4];
    r[i].spi = u32(d + 8);
  }
  uint32_t n_policies = U32(info[4], "policies");
  std::vector<uint64_t> retired(FL_ESP_MAX_POLICY_RULES + 1);
  char err[FL_ERR_LEN] = "";
  int rc = fl_pipeline_esp_set_policies(PipelineById(info[0]), StageIndex(info[1]), r.data(),
                                        (uint32_t)r.size(), n_policies, retired.data(),
                                        (uint32_t)retired.size(), err);
  if (rc < 0) Throw(env, rc, "esp_set_policies", err);
  return Float64s(env, retired.data(), (size_t)rc);
}

Napi::Value EspPolicyHits(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::vector<uint64_t> hits(FL_ESP_MAX_POLICY_RULES + 1);
  int n = fl_pipeline_esp_policy_hits(PipelineById(info[0]), StageIndex(info[1]), hits.data(),
                                      (uint32_t)hits.size());
  if (n < 0) Throw(env, n, "esp_policy_hits", "not an ESP stage");
  return Float64s(env, hits.data(), (size_t)n);
}

}  // namespace

void ExportEsp(Napi::Object exports) {
  FL_EXPORT(exports, "pipelineAddEsp", PipelineAddEsp);
  FL_EXPORT(exports, "espAddSa", EspAddSa);
  FL_EXPORT(exports, "espDelSa", EspDelSa);
  FL_EXPORT(exports, "espSaCounters", EspSaCounters);
  FL_EXPORT(exports, "espSpis", EspSpis);
  FL_EXPORT(exports, "espSetPolicies", EspSetPolicies);
  FL_EXPORT(exports, "espPolicyHits", EspPolicyHits);
}

}  // namespace flowline
