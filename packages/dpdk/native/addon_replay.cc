// The frame replay (fl_replay.h): create from ports, a pool and frames; start, select, stop;
// counters per port.
#include <napi.h>

#include <cstring>
#include <map>
#include <vector>

#include "addon.h"
#include "fl.h"
#include "fl_replay.h"

namespace flowline {

namespace {

std::map<uint32_t, fl_replay *> replays;

fl_replay *Replay(const Napi::Value &v) {
  auto it = replays.find(U32(v, "replay"));
  if (it == replays.end()) throw Napi::Error::New(v.Env(), "replay was freed");
  return it->second;
}

Napi::Value ReplayCreate(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  RequireEal(env);
  Napi::Object o = info[0].As<Napi::Object>();
  fl_replay_conf c;
  memset(&c, 0, sizeof(c));
  c.lcore = U32(o.Get("lcore"), "lcore");
  c.burst = (uint16_t)U32(o.Get("burst"), "burst");
  c.pool = Pool(o.Get("pool"));
  Napi::Array ports = o.Get("ports").As<Napi::Array>();
  if (ports.Length() > FL_REPLAY_MAX_PORTS) throw Napi::RangeError::New(env, "too many ports");
  c.n_ports = (uint16_t)ports.Length();
  for (uint32_t i = 0; i < ports.Length(); i++) c.ports[i] = Port(ports.Get(i));
  Napi::Buffer<uint8_t> frames = o.Get("frames").As<Napi::Buffer<uint8_t>>();
  c.frame_len = (uint16_t)U32(o.Get("frameLength"), "frameLength");
  c.n_frames = c.frame_len ? (uint32_t)(frames.Length() / c.frame_len) : 0;
  c.frames = frames.Data();
  char err[FL_ERR_LEN] = "";
  fl_replay *r = fl_replay_create(&c, err);
  if (!r) Throw(env, -EINVAL, "replay_create", err);
  uint32_t id = NextId();
  replays[id] = r;
  return Napi::Number::New(env, id);
}

Napi::Value ReplayStart(const Napi::CallbackInfo &info) {
  char err[FL_ERR_LEN] = "";
  int rc = fl_replay_start(Replay(info[0]), err);
  if (rc < 0) Throw(info.Env(), rc, "replay_start", err);
  return info.Env().Undefined();
}

Napi::Value ReplaySelect(const Napi::CallbackInfo &info) {
  char err[FL_ERR_LEN] = "";
  int rc = fl_replay_select(Replay(info[0]), info[1].As<Napi::Number>().Int32Value(), err);
  if (rc < 0) Throw(info.Env(), rc, "replay_select", err);
  return info.Env().Undefined();
}

Napi::Value ReplayStop(const Napi::CallbackInfo &info) {
  fl_replay_stop(Replay(info[0]));
  return info.Env().Undefined();
}

Napi::Value ReplayFree(const Napi::CallbackInfo &info) {
  auto it = replays.find(U32(info[0], "replay"));
  if (it != replays.end()) {
    fl_replay_free(it->second);
    replays.erase(it);
  }
  return info.Env().Undefined();
}

// FL_REPLAY_CTRS counters per port, in the order the ports were given.
Napi::Value ReplayCounters(const Napi::CallbackInfo &info) {
  uint64_t v[FL_REPLAY_MAX_PORTS * FL_REPLAY_CTRS] = {0};
  fl_replay_counters(Replay(info[0]), v);
  return Float64s(info.Env(), v, (size_t)FL_REPLAY_MAX_PORTS * FL_REPLAY_CTRS);
}

}  // namespace

void ExportReplay(Napi::Object exports) {
  FL_EXPORT(exports, "replayCreate", ReplayCreate);
  FL_EXPORT(exports, "replayStart", ReplayStart);
  FL_EXPORT(exports, "replaySelect", ReplaySelect);
  FL_EXPORT(exports, "replayStop", ReplayStop);
  FL_EXPORT(exports, "replayFree", ReplayFree);
  FL_EXPORT(exports, "replayCounters", ReplayCounters);
}

}  // namespace flowline
