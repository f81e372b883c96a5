// Batches: packets owned by JavaScript (zero-copy views with per-packet meta) and their rx/tx
// bursts.
#include <napi.h>

#include <cstring>
#include <map>
#include <string>

#include "addon.h"
#include "fl.h"

namespace flowline {

namespace {

struct BatchEntry {
  fl_batch *batch;
  Napi::ObjectReference meta;
};

std::map<uint32_t, BatchEntry> batches;

Napi::Value BatchCreate(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  uint32_t cap = U32(info[0], "capacity");
  if (cap == 0 || cap > 4096) throw Napi::RangeError::New(env, "batch capacity must be 1..4096");
  Napi::Int32Array meta = info[1].As<Napi::Int32Array>();
  if (meta.ElementLength() < (size_t)cap * FL_META_INTS)
    throw Napi::RangeError::New(env, "batch meta array is too short");
  fl_batch *b = fl_batch_create(cap, meta.Data(), Pool(info[2]));
  if (!b) throw Napi::Error::New(env, "out of memory for a batch");
  uint32_t id = NextId();
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

Napi::Value TxBurst(const Napi::CallbackInfo &info) {
  fl_batch *b = Batch(info[2]);
  uint32_t dropped = 0;
  int sent = fl_tx_burst((uint16_t)info[0].As<Napi::Number>().Uint32Value(),
                         (uint16_t)info[1].As<Napi::Number>().Uint32Value(), b, &dropped);
  return Napi::Number::New(info.Env(), sent);
}

}  // namespace

fl_batch *Batch(const Napi::Value &v) {
  auto it = batches.find(U32(v, "batch"));
  if (it == batches.end()) throw Napi::Error::New(v.Env(), "batch was freed");
  return it->second.batch;
}

void ReleaseBatches() {
  for (auto &b : batches) {
    fl_batch_free(b.second.batch);
    b.second.meta.Reset();
  }
  batches.clear();
}

void ExportBatch(Napi::Object exports) {
  FL_EXPORT(exports, "batchCreate", BatchCreate);
  FL_EXPORT(exports, "batchFree", BatchFree);
  FL_EXPORT(exports, "batchRelease", BatchRelease);
  FL_EXPORT(exports, "batchCount", BatchCount);
  FL_EXPORT(exports, "rxBurst", RxBurst);
  FL_EXPORT(exports, "txBurst", TxBurst);
}

}  // namespace flowline
