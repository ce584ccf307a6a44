// SagaEngine::Impl: the saga engine's internals. See include/evstore/saga.hpp
// for the contract and docs/sagas.md for the design.
//
// Concurrency model:
// - mu_ guards the scheduling state: active_, starting_, ready_, timers_, the
//   fencing tokens and in_flight flags of instances, and the counters. It is
//   never held while a handler or callback runs, nor while committing (a
//   commit's precheck takes mu_ in the group-commit leader).
// - An active instance has one owner at a time: the ready queue, a timer
//   entry, a worker running its handler, or a thread committing its next
//   transition. Only the owner replaces inst->rec (under mu_), so the owner
//   may read it without mu_.
// - Fencing: every attempt gets a fresh token. Whoever claims the attempt
//   first (the worker when the handler returns, or the timer when its
//   deadline passes) replaces the token; the other sees the mismatch and
//   discards its result.
#ifndef EVSTORE_LIB_SAGA_ENGINE_IMPL_HPP_
#define EVSTORE_LIB_SAGA_ENGINE_IMPL_HPP_

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "evstore/options.hpp"
#include "evstore/saga.hpp"
#include "format/saga_record.hpp"

namespace evstore::internal {
class StoreImpl;
}

namespace evstore::saga {

inline constexpr size_t kMaxNameBytes = 256;

Status ValidateDefinition(const SagaDefinition& d);
Status ValidateSagaId(std::string_view id);

struct Def {
  SagaDefinition d;
  uint64_t fingerprint = 0;
  std::vector<std::string> step_names;
};

using Record = format::SagaRecordData;
using RecordPtr = std::shared_ptr<const Record>;
using Clock = std::chrono::steady_clock;

struct Instance {
  std::string id;
  std::shared_ptr<const Def> def;
  RecordPtr rec;  // as last committed; replaced only by the owner, under mu_
  bool in_flight = false;
  uint64_t token = 0;
  std::shared_ptr<std::atomic<bool>> cancel;
  // The instance's pending timer entry, if any (key into timers_).
  bool has_timer = false;
  std::pair<Clock::time_point, uint64_t> timer_key;
};
using InstPtr = std::shared_ptr<Instance>;

// The outcome of one attempt, as the state machine sees it.
struct Outcome {
  enum class Kind : uint8_t { kSuccess, kRetry, kFail, kTimedOut };
  Kind kind = Kind::kSuccess;
  std::string output;
  std::string error;
  bool partial = false;
  std::vector<StreamAppend> events;
};

SagaInfo ToInfo(const Record& r, bool in_flight);

}  // namespace evstore::saga

namespace evstore {

class SagaEngine::Impl {
 public:
  Impl(std::shared_ptr<internal::StoreImpl> store, const SagaEngineOptions& options);
  ~Impl();

  Status Register(std::span<const SagaDefinition> defs);
  // Scans the store, resumes unfinished sagas, starts the threads. Sagas that
  // were or became stuck are returned for the on_stuck report.
  Status Recover(std::vector<SagaInfo>* stuck);

  Result<bool> Start(std::string_view definition, std::string_view id, std::string_view input);
  Result<SagaInfo> Get(std::string_view id);
  Result<std::vector<SagaInfo>> List(SagaState state, size_t limit);
  Result<SagaInfo> Wait(std::string_view id, std::chrono::milliseconds timeout);
  Status WaitIdle(std::chrono::milliseconds timeout);
  Status Retry(std::string_view id);
  Status Resolve(std::string_view id, std::string_view note);
  SagaStats Stats() const;
  Status EngineStatus() const;
  Status Shutdown();

  const SagaEngineOptions& options() const { return opt_; }

 private:
  using TimerKey = std::pair<saga::Clock::time_point, uint64_t>;
  struct TimerEntry {
    saga::InstPtr inst;
    bool timeout;  // true: the attempt's deadline; false: a retry wait ends
  };

  // Execution (executor.cpp).
  void WorkerLoop();
  void TimerLoop();
  // Runs the instance's next attempt; true when the caller should run the
  // instance again right away.
  bool RunOnce(const saga::InstPtr& inst);
  // Computes and commits the transition after an attempt of the current
  // step. REQUIRES: the caller owns inst and has claimed the attempt.
  bool Transition(const saga::InstPtr& inst, saga::Outcome out, uint32_t attempt);
  bool CommitTransition(const saga::InstPtr& inst, saga::Record next,
                        std::vector<StreamAppend> events, uint32_t attempt);
  // Installs a committed record and schedules what comes next.
  bool Apply(const saga::InstPtr& inst, saga::Record next);
  void ScheduleLocked(const saga::InstPtr& inst, int64_t next_attempt_ms);
  void EraseTimerLocked(saga::Instance* inst);
  void FailLocked(const Status& s);
  void RecordLatencyLocked(double us);

  // Persistence (engine.cpp).
  Status CommitRecord(saga::Record* next, std::span<const StreamAppend> events,
                      std::function<Status()> precheck);
  Status ReadRecord(std::string_view id, saga::Record* out);
  void AddHistory(saga::Record* r, SagaEvent e, int32_t step, uint32_t attempt,
                  std::string text) const;
  std::shared_ptr<const saga::Def> FindDef(std::string_view name, uint64_t fingerprint) const;
  std::string MissingDefMessage(const saga::Record& r) const;
  Status CheckOpenLocked() const;
  Status SettleByHand(std::string_view id, bool resolve, std::string_view note);
  // Runs the callbacks for a settled saga. REQUIRES: *l holds mu_ and the
  // id was added to notifying_; returns with mu_ held and the id removed.
  void Notify(std::unique_lock<std::mutex>* l, bool is_stuck, SagaInfo info);
  // Wakes wait() callers of `id` and every settle_cv_ waiter.
  void SettledLocked(const std::string& id) {
    auto range = waiters_.equal_range(id);
    for (auto it = range.first; it != range.second; ++it) it->second->notify_all();
    settle_cv_.notify_all();
  }
  void WakeAllLocked() {
    for (auto& [id, cv] : waiters_) cv->notify_all();
    settle_cv_.notify_all();
  }
  bool BusyLocked(const std::string& id) const {
    return active_.count(id) || starting_.count(id) || notifying_.count(id);
  }

  std::shared_ptr<internal::StoreImpl> store_;
  const SagaEngineOptions opt_;
  std::unordered_map<std::string, std::vector<std::shared_ptr<const saga::Def>>> defs_;

  mutable std::mutex mu_;
  std::condition_variable work_cv_, timer_cv_;
  // Signalled whenever a saga settles, a reservation in starting_ ends, or the
  // engine stops; waited on by wait_idle() and by reservations.
  std::condition_variable settle_cv_;
  // wait() callers, by saga id: each has its own condition variable, so a
  // saga settling wakes only the threads waiting for it.
  std::unordered_multimap<std::string, std::condition_variable*> waiters_;
  std::unordered_map<std::string, saga::InstPtr> active_;
  std::unordered_set<std::string> starting_;  // ids being started, retried or resolved
  // Sagas that just settled and whose callbacks run: wait() returns after them.
  std::unordered_multiset<std::string> notifying_;
  std::deque<saga::InstPtr> ready_;
  std::map<TimerKey, TimerEntry> timers_;
  uint64_t seq_ = 0;
  bool stopping_ = false;
  bool closed_ = false;
  Status failed_;
  std::vector<std::thread> workers_;
  std::thread timer_;

  // Counters (under mu_).
  SagaStats stats_;
  std::array<uint64_t, 64> latency_buckets_{};
  double latency_sum_us_ = 0;
};

}  // namespace evstore

#endif  // EVSTORE_LIB_SAGA_ENGINE_IMPL_HPP_
