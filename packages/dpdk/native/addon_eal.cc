// The EAL: init (argv from JavaScript, the log captured), cleanup of everything the binding
// holds, state, lcores (and a cache line's round trip between two), hugepage heap use.
#include <napi.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "addon.h"
#include "fl.h"

namespace flowline {

namespace {

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
  ReleasePipelines();
  ReleaseBatches();
  int rc = fl_eal_cleanup(err);
  ForgetPools();
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

Napi::Value LcoreRoundTrip(const Napi::CallbackInfo &info) {
  RequireEal(info.Env());
  char err[FL_ERR_LEN] = "";
  double cycles = 0;
  int rc = fl_lcore_round_trip(info[0].As<Napi::Number>().Uint32Value(),
                               info[1].As<Napi::Number>().Uint32Value(), &cycles, err);
  if (rc < 0) Throw(info.Env(), rc, "lcore_round_trip", err);
  return Napi::Number::New(info.Env(), cycles);
}

Napi::Value HeapBytes(const Napi::CallbackInfo &info) {
  RequireEal(info.Env());
  return Napi::Number::New(info.Env(), (double)fl_heap_bytes());
}

}  // namespace

void ExportEal(Napi::Object exports) {
  FL_EXPORT(exports, "ealInit", EalInit);
  FL_EXPORT(exports, "ealCleanup", EalCleanup);
  FL_EXPORT(exports, "ealState", EalState);
  FL_EXPORT(exports, "lcores", Lcores);
  FL_EXPORT(exports, "heapBytes", HeapBytes);
  FL_EXPORT(exports, "lcoreRoundTrip", LcoreRoundTrip);
}

}  // namespace flowline
