// The projection part of the store targets' model (store_model.hpp), shared
// by fuzz_store_ops (C++ API) and fuzz_capi_ops (C API).
//
// An input holds two projection slots, named "pj" + its namespace + "-" +
// the slot. A slot's projection counts events into keyed state:
//   "t/" + type   -> how many selected events of that type
//   "s/" + stream -> how many selected events of that stream since the last
//                    one with empty data (which erases the key)
// so that its handler reads, overwrites and erases keys within a batch. The
// targets' handlers (C++ and C) and Fold below are the same function.
//
// Operations (kProject, kProjectQuery; arguments in the Op's arg bytes):
//   kProject, arg[0] % 4:
//     0 run     run_projection, then wait until it has folded the whole log
//               (wait_for the end of the log), and leave it running. The
//               first run of a slot picks its filter and batch size from
//               arg[1] (ProjectionFilter). Running already: Busy.
//     1 stop    stop() and wait(): OK; the state is then checked exactly.
//     2 rebuild running: rebuild() (OK, or Busy while one may be under way);
//               stopped: the next version of the handler, run (an online
//               rebuild from the start, at open).
//     3 delete  delete_projection: Busy while running, NotFound when there is
//               none, else OK and projection_info is NotFound afterwards.
//   kProjectQuery, arg[0] % 4:
//     0 get     projection_get of a key (ProjectionKey(arg[1]))
//     1 scan    projection_scan of a prefix, after a key, with a limit
//     2 info    projection_info and list_projections
//     3 snapshot Store::snapshot: its position is the end of the log; its
//               projection_info, _scan and _get agree with the fold up to its
//               checkpoint; its read_all gives the input's log.
// Checks: the state always equals the fold of the model's log up to the
// projection's checkpoint (info.position), and events_handled counts the
// selected events before it. A stopped projection's checkpoint is known
// exactly (read back when it stops); a running one's lies between where its
// last run caught up and the end of the log, so a query of it must match
// the fold at one of those positions (snapshot queries: at the snapshot's).
//
// Determinism: a run catches up from its checkpoint and commits at the end
// of the log (a fresh runner moves its checkpoint past events its filter
// skips when it catches up), so wait_for returns without waiting for a
// timeout. What a running projection folds while later operations of the
// input append is up to its thread; every check holds whatever it did.
// Each input stops and deletes its projections at its end, so that the
// store does not collect them (a projection's start lists every instance
// record of the store).
#ifndef EVSTORE_FUZZ_PROJECTION_MODEL_HPP_
#define EVSTORE_FUZZ_PROJECTION_MODEL_HPP_

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "store_model.hpp"

namespace {

constexpr int kProjSlots = 2;

using ProjState = std::map<std::string, std::string>;

// The handler's change of a count, on a decimal value.
std::string Increment(const std::string* value) {
  uint64_t n = 0;
  if (value != nullptr) {
    auto r = std::from_chars(value->data(), value->data() + value->size(), n);
    FUZZ_CHECK(r.ec == std::errc() && r.ptr == value->data() + value->size());
  }
  return std::to_string(n + 1);
}

std::string TypeKey(std::string_view type) { return "t/" + std::string(type); }
std::string StreamKey(std::string_view stream) { return "s/" + std::string(stream); }

// The handler, on the model's state.
void FoldEvent(const ModelEvent& e, ProjState* st) {
  auto t = st->find(TypeKey(e.type));
  (*st)[TypeKey(e.type)] = Increment(t == st->end() ? nullptr : &t->second);
  if (e.data.empty()) {
    st->erase(StreamKey(e.stream));
  } else {
    auto s = st->find(StreamKey(e.stream));
    (*st)[StreamKey(e.stream)] = Increment(s == st->end() ? nullptr : &s->second);
  }
}

// The fold of the input's selected events before `checkpoint` (no earlier
// input's event is selected: every filter names this input's namespace),
// and how many there are.
ProjState Fold(const Model& m, const SubscriptionFilter& f, uint64_t checkpoint,
               uint64_t* handled = nullptr) {
  ProjState st;
  uint64_t n = 0;
  for (uint64_t p = m.base; p < std::min(checkpoint, m.end()); p++) {
    if (!Selects(f, m.At(p))) continue;
    FoldEvent(m.At(p), &st);
    n++;
  }
  if (handled) *handled = n;
  return st;
}

// One slot's projection as the model knows it.
struct ModelProjection {
  std::string name;
  bool chosen = false;   // filter and batch picked (at the slot's first run)
  SubscriptionFilter filter;
  size_t max_batch = 1;
  uint32_t version = 1;  // of the handler it runs with next
  bool stored = false;   // the store has it (run, not deleted since)
  bool running = false;
  // Running: its checkpoint is at least `low` (where its last run caught
  // up); stopped: it is exactly `low`.
  uint64_t low = 0;
  bool rebuild_maybe = false;  // a rebuild may be under way (rebuild() is Busy then)

  // The checkpoints the store may report now.
  uint64_t high(const Model& m) const { return running ? std::max(low, m.end()) : low; }
};

// The first run's filter (arg % 4: a stream, a category, one type, two
// types; all in the input's namespace) and batch size (1 + (arg >> 4) % 4).
void ChooseFilter(uint8_t arg, const Model& m, ModelProjection* p) {
  const uint8_t k = arg >> 2;
  switch (arg % 4) {
    case 0: p->filter = SubscriptionFilter::Stream(m.Stream(k)); break;
    case 1: p->filter = SubscriptionFilter::Category(m.Category(k & 1)); break;
    case 2: p->filter = SubscriptionFilter::Types({m.Type(k)}); break;
    default: p->filter = SubscriptionFilter::Types({m.Type(k), m.Type(k + 1)}); break;
  }
  p->max_batch = 1 + (arg >> 4) % 4;
  p->chosen = true;
}

// A key to get (arg % 8): one of the three types' and four streams' keys,
// or one that never exists.
std::string ProjectionKey(uint8_t arg, const Model& m) {
  const uint8_t k = arg % 8;
  if (k < 3) return TypeKey(m.Type(k));
  if (k < 7) return StreamKey(m.Stream(k - 3));
  return "x/none";
}

// A scan: prefix (arg % 4: all, "t/", "s/", "s/" + order's category),
// after (bit 2: a key from ProjectionKey(arg >> 3)), limit 1 + (arg >> 6).
struct ScanSpec {
  std::string prefix, start_after;
  size_t limit = 1;
};

ScanSpec MakeScan(uint8_t arg, const Model& m) {
  ScanSpec s;
  switch (arg % 4) {
    case 0: break;
    case 1: s.prefix = "t/"; break;
    case 2: s.prefix = "s/"; break;
    default: s.prefix = StreamKey(m.Category(true)); break;
  }
  if (arg & 4) s.start_after = ProjectionKey(arg >> 3, m);
  s.limit = 1 + (arg >> 6);
  return s;
}

// What a scan of `st` returns.
std::vector<ProjectionEntry> Scan(const ProjState& st, const ScanSpec& s) {
  std::vector<ProjectionEntry> out;
  for (auto it = st.lower_bound(s.prefix); it != st.end() && out.size() < s.limit; ++it) {
    if (!it->first.starts_with(s.prefix)) break;
    if (!s.start_after.empty() && it->first <= s.start_after) continue;
    out.push_back(ProjectionEntry{it->first, it->second});
  }
  return out;
}

bool Same(const std::vector<ProjectionEntry>& got, const std::vector<ProjectionEntry>& want) {
  return std::equal(got.begin(), got.end(), want.begin(), want.end(),
                    [](const ProjectionEntry& a, const ProjectionEntry& b) {
                      return a.key == b.key && a.value == b.value;
                    });
}

// Whether some checkpoint in [lo, hi] gives a state `ok` accepts (a
// running projection's queries: its checkpoint is one of them).
template <typename Accept>
bool AnyFold(const Model& m, const ModelProjection& p, const Accept& ok) {
  const uint64_t hi = p.high(m);
  for (uint64_t c = std::max(std::min(p.low, hi), m.base);; c++) {
    if (ok(Fold(m, p.filter, c))) return true;
    if (c >= hi) return false;
  }
}

// ---- the operations, for either target ----

// A target's projection calls, as the operations below make them: the C++
// target calls Store and Projection, the C target evstore.h (converting its
// codes to Status codes, its handles and lists to the C++ types). `slot`
// names the running projection's handle, which the target keeps.
class ProjectionApi {
 public:
  virtual ~ProjectionApi() = default;
  virtual Result<ProjectionInfo> Info(const std::string& name) = 0;
  virtual Result<std::vector<ProjectionInfo>> List() = 0;
  virtual Result<std::string> Get(const std::string& name, const std::string& key) = 0;
  virtual Result<std::vector<ProjectionEntry>> Scan(const std::string& name, const ScanSpec& s) = 0;
  virtual Status Delete(const std::string& name) = 0;
  // run_projection with the handler of FoldEvent; on OK the target holds
  // the handle for `slot`.
  virtual Status Run(int slot, const std::string& name, const ProjectionOptions& o) = 0;
  virtual Status WaitFor(int slot, uint64_t position) = 0;
  virtual Status Rebuild(int slot) = 0;
  virtual ProjectionStatus StatusOf(int slot) = 0;
  // stop() unless `closed`, then wait(): its result; releases the handle.
  virtual Status End(int slot, bool closed) = 0;
  // A snapshot: its position; with `log`, checks that its read of the log
  // from the input's first position gives the input's log; the projection's
  // info, a get and a scan at it, and its whole state.
  struct SnapshotRead {
    uint64_t position = 0;
    Result<ProjectionInfo> info = Status::NotFound("");
    Result<std::string> got = Status::NotFound("");
    Result<std::vector<ProjectionEntry>> page = Status::NotFound("");
    Result<std::vector<ProjectionEntry>> all = Status::NotFound("");  // the whole state
  };
  virtual SnapshotRead Snapshot(const Model& m, const std::string& name, const std::string& key,
                                const ScanSpec& spec, bool log) = 0;
};

// An input's two projections and the operations on them.
class Projections {
 public:
  Projections(const Model& m, ProjectionApi* api) : m_(m), api_(api) {
    for (int i = 0; i < kProjSlots; i++) p_[i].name = "pj" + m.ns + "-" + std::to_string(i);
  }

  void Project(const Op& op) {
    const int i = op.slot % kProjSlots;
    ModelProjection& p = p_[i];
    switch (op.arg[0] % 4) {
      case 0: Run(i, op.arg[1]); break;
      case 1:
        if (p.running) Stopped(i, /*closed=*/false);
        break;
      case 2:
        if (p.running) {
          Status st = api_->Rebuild(i);
          FUZZ_CHECK(st.ok() || (p.rebuild_maybe && st.IsBusy()));
          p.rebuild_maybe = true;
        } else {
          p.version++;
          Run(i, op.arg[1]);
        }
        break;
      default: {
        Status st = api_->Delete(p.name);
        if (p.running) {
          FUZZ_CHECK(st.IsBusy());
        } else if (!p.stored) {
          FUZZ_CHECK(st.IsNotFound());
        } else {
          FUZZ_CHECK(st.ok());
          p.stored = p.rebuild_maybe = false;
          p.low = 0;
          Check(p, /*whole=*/false);
        }
        break;
      }
    }
  }

  void Query(const Op& op) {
    const ModelProjection& p = p_[op.slot % kProjSlots];
    switch (op.arg[0] % 4) {
      case 0: {
        const std::string key = ProjectionKey(op.arg[1], m_);
        auto r = api_->Get(p.name, key);
        if (!p.stored) {
          FUZZ_CHECK(r.status().IsNotFound());
          break;
        }
        FUZZ_CHECK(r.ok() || r.status().IsNotFound());
        FUZZ_CHECK(AnyFold(m_, p, [&](const ProjState& st) {
          auto it = st.find(key);
          return r.ok() ? it != st.end() && it->second == *r : it == st.end();
        }));
        break;
      }
      case 1: {
        const ScanSpec spec = MakeScan(op.arg[1], m_);
        auto r = api_->Scan(p.name, spec);
        if (!p.stored) {
          FUZZ_CHECK(r.status().IsNotFound());
          break;
        }
        FUZZ_CHECK(r.ok());
        FUZZ_CHECK(AnyFold(m_, p, [&](const ProjState& st) { return Same(*r, ::Scan(st, spec)); }));
        break;
      }
      case 2: {
        Check(p, /*whole=*/false);
        auto list = api_->List();
        FUZZ_CHECK(list.ok());
        size_t found = 0;
        for (const ProjectionInfo& i : *list) {
          if (i.name != p.name) continue;
          found++;
          FUZZ_CHECK(InRange(p, i.position));
        }
        FUZZ_CHECK(found == (p.stored ? 1u : 0u));
        break;
      }
      default: {
        // One point in time: the log up to its end, and the projection at a
        // checkpoint no later, its state the fold up to it.
        const std::string key = ProjectionKey(op.arg[1], m_);
        const ScanSpec spec = MakeScan(op.arg[1], m_);
        ProjectionApi::SnapshotRead r = api_->Snapshot(m_, p.name, key, spec, /*log=*/true);
        FUZZ_CHECK(r.position == m_.end());
        if (!p.stored) {
          FUZZ_CHECK(r.info.status().IsNotFound() && r.got.status().IsNotFound());
          FUZZ_CHECK(r.page.status().IsNotFound() && r.all.status().IsNotFound());
          break;
        }
        FUZZ_CHECK(r.info.ok() && InRange(p, r.info->position));
        const ProjState st = Fold(m_, p.filter, r.info->position);
        auto it = st.find(key);
        FUZZ_CHECK(r.got.ok() ? it != st.end() && it->second == *r.got
                              : r.got.status().IsNotFound() && it == st.end());
        FUZZ_CHECK(r.page.ok() && Same(*r.page, ::Scan(st, spec)));
        FUZZ_CHECK(r.all.ok() && Same(*r.all, ::Scan(st, ScanSpec{"", "", 1000})));
        break;
      }
    }
  }

  // The store was closed and opened again: running projections ended with
  // Closed; every stored one is as it was when they stopped.
  void Reopened() {
    for (int i = 0; i < kProjSlots; i++) {
      if (p_[i].running) Stopped(i, /*closed=*/true);
      Check(p_[i], /*whole=*/true);
    }
  }

  // The input's end: no projection is left behind (a projection's start
  // reads every instance record of the store).
  void End() {
    for (int i = 0; i < kProjSlots; i++) {
      ModelProjection& p = p_[i];
      if (p.running) Stopped(i, /*closed=*/false);
      if (!p.stored) continue;
      FUZZ_CHECK(api_->Delete(p.name).ok());
      p.stored = false;
      Check(p, /*whole=*/false);
    }
  }

 private:
  bool InRange(const ModelProjection& p, uint64_t checkpoint) const {
    return checkpoint >= std::min(p.low, p.high(m_)) && checkpoint <= p.high(m_);
  }

  // The stored record against the model: a checkpoint the model allows,
  // the events handled before it, the version; with `whole`, the entire
  // state (read with the checkpoint at one snapshot) is the fold.
  void Check(const ModelProjection& p, bool whole) {
    auto info = api_->Info(p.name);
    if (!p.stored) {
      FUZZ_CHECK(info.status().IsNotFound());
      return;
    }
    FUZZ_CHECK(info.ok());
    FUZZ_CHECK(info->name == p.name && InRange(p, info->position));
    uint64_t handled = 0;
    Fold(m_, p.filter, info->position, &handled);
    FUZZ_CHECK(info->events_handled == handled);
    FUZZ_CHECK(info->version <= p.version && (p.rebuild_maybe || info->version == p.version));
    FUZZ_CHECK(p.rebuild_maybe || !info->rebuilding);
    if (!whole) return;
    ProjectionApi::SnapshotRead r =
        api_->Snapshot(m_, p.name, ProjectionKey(0, m_), ScanSpec(), /*log=*/false);
    FUZZ_CHECK(r.info.ok() && r.all.ok());
    FUZZ_CHECK(Same(*r.all, ::Scan(Fold(m_, p.filter, r.info->position), ScanSpec{"", "", 1000})));
  }

  void Run(int i, uint8_t arg) {
    ModelProjection& p = p_[i];
    if (!p.chosen) ChooseFilter(arg, m_, &p);
    ProjectionOptions o;
    o.filter = p.filter;
    o.version = p.version;
    o.max_batch = p.max_batch;
    o.max_retries = 1;  // a handler failure is a bug here: stop at once, do not retry
    if (!p.running) {
      // A rebuild starts when the stored version differs, or goes on.
      p.rebuild_maybe = false;
      if (p.stored) {
        auto before = api_->Info(p.name);
        FUZZ_CHECK(before.ok());
        p.rebuild_maybe = before->rebuilding || before->version != p.version;
      }
    }
    Status st = api_->Run(i, p.name, o);
    if (p.running) {
      FUZZ_CHECK(st.IsBusy());
      return;
    }
    FUZZ_CHECK(st.ok());
    Status w = api_->WaitFor(i, m_.end());
    if (!w.ok()) std::fprintf(stderr, "wait_for: %s\n", w.ToString().c_str());
    FUZZ_CHECK(w.ok());
    p.running = p.stored = true;
    p.low = m_.end();
    ProjectionStatus s = api_->StatusOf(i);
    FUZZ_CHECK(s.name == p.name && s.retries == 0 && s.last_error.empty());
    FUZZ_CHECK(s.phase == ProjectionStatus::Phase::kLive ||
               s.phase == ProjectionStatus::Phase::kCatchingUp);
    FUZZ_CHECK(s.position == m_.end());
    Check(p, /*whole=*/false);
  }

  // A running projection ends (stop, or the store closed): its checkpoint
  // is then fixed, and its state the fold up to it.
  void Stopped(int i, bool closed) {
    ModelProjection& p = p_[i];
    Status why = api_->End(i, closed);
    FUZZ_CHECK(closed ? why.IsClosed() : why.ok());
    auto info = api_->Info(p.name);
    FUZZ_CHECK(info.ok() && InRange(p, info->position));
    p.running = false;
    p.low = info->position;
    Check(p, /*whole=*/true);
  }

  const Model& m_;
  ProjectionApi* const api_;
  ModelProjection p_[kProjSlots];
};

}  // namespace

#endif  // EVSTORE_FUZZ_PROJECTION_MODEL_HPP_
