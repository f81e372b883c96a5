// Node binding over the C core (fl.h). Thin: argument checking and conversion only; the
// TypeScript layer (src/) owns validation, naming and typed errors. This file: what every
// object's file shares (addon.h), the parser and constants, and the module's exports.
#include <napi.h>

#include <cstring>
#include <string>

#include "addon.h"
#include "fl.h"

namespace flowline {

namespace {
uint32_t next_id = 1;
}  // namespace

uint32_t NextId() { return next_id++; }

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

void CopyBytes(const Napi::Value &v, uint8_t *dst, size_t n, const char *what) {
  if (!v.IsBuffer()) throw Napi::TypeError::New(v.Env(), std::string(what) + " must be a Buffer");
  auto b = v.As<Napi::Buffer<uint8_t>>();
  if (b.Length() < n)
    throw Napi::RangeError::New(v.Env(),
                                std::string(what) + " is shorter than " + std::to_string(n));
  memcpy(dst, b.Data(), n);
}

Napi::Float64Array Float64s(Napi::Env env, const uint64_t *v, size_t n) {
  Napi::Float64Array out = Napi::Float64Array::New(env, n);
  for (size_t i = 0; i < n; i++) out[i] = (double)v[i];
  return out;
}

}  // namespace flowline

namespace {

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
  flowline::ExportEal(exports);
  flowline::ExportMempool(exports);
  flowline::ExportPort(exports);
  flowline::ExportBatch(exports);
  flowline::ExportPipeline(exports);
  flowline::ExportGenerator(exports);
  flowline::ExportReplay(exports);
  flowline::ExportEsp(exports);
  FL_EXPORT(exports, "parsePacket", ParsePacket);
  exports.Set("constants", Constants(env));
  return exports;
}

}  // namespace

NODE_API_MODULE(flowline_dpdk, Init)
