// Mempools: create, free, info, and the one external ArrayBuffer over a pool's memory (the
// packet views of batches).
#include <napi.h>

#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "addon.h"
#include "fl.h"

namespace flowline {

namespace {

struct PoolEntry {
  void *pool;
  Napi::ObjectReference view;  // the one external ArrayBuffer over the pool's memory
};

std::map<uint32_t, PoolEntry> pools;

Napi::Value PoolCreate(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  RequireEal(env);
  std::string name = info[0].As<Napi::String>();
  char err[FL_ERR_LEN] = "";
  void *p = fl_pool_create(name.c_str(), U32(info[1], "size"), U32(info[2], "cacheSize"),
                           U32(info[3], "dataRoom"), info[4].As<Napi::Number>().Int32Value(), err);
  if (!p) Throw(env, -ENOMEM, "rte_pktmbuf_pool_create", err);
  uint32_t id = NextId();
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

}  // namespace

void *Pool(const Napi::Value &v) {
  auto it = pools.find(U32(v, "pool"));
  if (it == pools.end()) throw Napi::Error::New(v.Env(), "mempool was freed");
  return it->second.pool;
}

void ForgetPools() { pools.clear(); }

void ExportMempool(Napi::Object exports) {
  FL_EXPORT(exports, "poolCreate", PoolCreate);
  FL_EXPORT(exports, "poolFree", PoolFree);
  FL_EXPORT(exports, "poolInfo", PoolInfo);
  FL_EXPORT(exports, "poolView", PoolView);
}

}  // namespace flowline
