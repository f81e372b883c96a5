// What the binding's files share: addon.cc (argument conversion, errors, the module's exports)
// and one file per kind of native object (addon_eal.cc, addon_mempool.cc, addon_port.cc,
// addon_batch.cc, addon_pipeline.cc, addon_generator.cc, addon_replay.cc, addon_esp.cc), each
// exporting its functions.
#ifndef FL_ADDON_H
#define FL_ADDON_H

#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "fl.h"

namespace flowline {

// ---- errors and argument conversion (addon.cc) ----
[[noreturn]] void Throw(Napi::Env env, int rc, const char *op, const char *err);
void RequireEal(Napi::Env env);
uint32_t U32(const Napi::Value &v, const char *what);
uint32_t OptU32(const Napi::Object &o, const char *key, uint32_t def);
void CopyBytes(const Napi::Value &v, uint8_t *dst, size_t n, const char *what);
// Native counters (uint64) as a Float64Array, exact up to 2^53.
Napi::Float64Array Float64s(Napi::Env env, const uint64_t *v, size_t n);
// JavaScript holds native objects by id; every kind takes its ids from this one sequence.
uint32_t NextId();

// ---- objects by the id (or port number) JavaScript gives, checked ----
uint16_t Port(const Napi::Value &v);              // addon_port.cc
void *Pool(const Napi::Value &v);                 // addon_mempool.cc
fl_batch *Batch(const Napi::Value &v);            // addon_batch.cc
fl_pipeline *PipelineById(const Napi::Value &v);  // addon_pipeline.cc
// ACL rules packed by packAcl (src/acl.ts), checked (addon_pipeline.cc; the ESP policies too).
std::vector<fl_acl_rule> AclRules(const Napi::Value &v);

// ---- what EAL cleanup (addon_eal.cc) releases, in this order ----
void ReleasePipelines();  // waits for the ACL builds in flight, then frees every pipeline
void ReleaseBatches();    // frees every batch and the packets it holds
void ForgetPools();       // after rte_eal_cleanup, which freed the pools' memory

// ---- each file's functions, set on the module's exports under their JavaScript names ----
#define FL_EXPORT(exports, name, fn) \
  (exports).Set(name, Napi::Function::New((exports).Env(), fn, name))
void ExportEal(Napi::Object exports);
void ExportMempool(Napi::Object exports);
void ExportPort(Napi::Object exports);
void ExportBatch(Napi::Object exports);
void ExportPipeline(Napi::Object exports);
void ExportGenerator(Napi::Object exports);
void ExportReplay(Napi::Object exports);
void ExportEsp(Napi::Object exports);

}  // namespace flowline

#endif
