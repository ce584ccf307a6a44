// SagaEngine::Impl: the saga engine's internals. See include/evstore/saga.hpp
// for the contract and docs/sagas.md for the design.
//
// Concurrency model:
// - mu_ guards the scheduling state: active_, starting_, ready_, timers_, the
//   fencing tokens, in_flight flags and runners of instances, the thread and
//   write counts, and the counters. It is never held while a handler or
//   callback runs, nor while committing (a commit's precheck takes mu_ in the
//   group-commit leader).
// - An active instance has one owner at a time: the ready queue, a timer
//   entry, a worker running its handler, or a worker committing its next
//   transition. Only the owner replaces inst->rec (under mu_), so the owner
//   may read it without mu_. Every commit of a transition runs on a worker
//   (or the thread of a by-hand operation); the timer thread only hands
//   expired retry waits and timed-out attempts to the workers.
// - Fencing: every attempt gets a fresh token. Whoever claims the attempt
//   first (the worker when the handler returns, the timer when its deadline
//   passes, shutdown when it stops waiting) replaces the token; the other
//   sees the mismatch and discards its result.
// - Lifetime: the Impl is shared. Each worker thread holds a reference, so a
//   handler that outlives its attempt, or shutdown(), finds everything it
//   touches afterwards still alive. shutdown() joins the workers that
//   exited and detaches the ones it gave up on; the Impl is freed by
//   whichever holder lets go last. No write of the engine starts after
//   shutdown() closed the write gate (writes_closed_), and shutdown() waits
//   for those in progress before it detaches from the store.
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
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "evstore/metrics.hpp"
#include "evstore/options.hpp"
#include "evstore/saga.hpp"
#include "format/saga_record.hpp"

namespace evstore::internal {
class StoreImpl;
struct ExtraWrite;
}

namespace evstore::saga {

inline constexpr size_t kMaxNameBytes = 256;

Status ValidateDefinition(const SagaDefinition& d);
Status ValidateSagaId(std::string_view id);
// A clock reading `d` from now, clamped so that huge durations cannot overflow.
std::chrono::steady_clock::time_point After(std::chrono::milliseconds d);

struct Def {
  SagaDefinition d;
  uint64_t fingerprint = 0;
  std::vector<std::string> step_names;
};

using Record = format::SagaRecordData;
using RecordPtr = std::shared_ptr<const Record>;
using Clock = std::chrono::steady_clock;

// The outcome of one attempt, as the state machine sees it.
struct Outcome {
  enum class Kind : uint8_t { kSuccess, kRetry, kFail, kTimedOut, kInterrupted };
  Kind kind = Kind::kSuccess;
  std::string output;
  std::string error;
  bool partial = false;
  std::vector<StreamAppend> events;
};

// One worker thread, known to the instance whose handler it runs (under mu_).
struct Worker {
  // Set by the timer when the handler outlived its attempt: the pool may
  // have replaced this worker meanwhile.
  bool abandoned = false;
};

struct Instance {
  std::string id;
  std::shared_ptr<const Def> def;
  RecordPtr rec;  // as last committed; replaced only by the owner, under mu_
  bool in_flight = false;
  uint64_t token = 0;
  std::shared_ptr<std::atomic<bool>> cancel;
  Worker* runner = nullptr;  // the worker running its handler, while in_flight
  // An attempt the timer claimed when its deadline passed: a worker commits
  // its failure.
  std::optional<Outcome> timed_out;
  uint32_t timed_out_attempt = 0;
  // rec->started already counts the next attempt: the commit of the last
  // transition did, for the worker that runs it right away.
  bool prestarted = false;
  // The instance's pending timer entry, if any (key into timers_).
  bool has_timer = false;
  std::pair<Clock::time_point, uint64_t> timer_key;
};
using InstPtr = std::shared_ptr<Instance>;

SagaInfo ToInfo(const Record& r, bool in_flight);
// Corruption unless the record's step and outputs fit its definition.
Status CheckShape(const Record& r, const Def& d);

}  // namespace evstore::saga

namespace evstore {

// Hidden although nested in an exported class: libevstore.so exports only the
// public API, and the engine's internals are no part of it.
class [[gnu::visibility("hidden")]] SagaEngine::Impl
    : public std::enable_shared_from_this<SagaEngine::Impl> {
 public:
  Impl(std::shared_ptr<internal::StoreImpl> store, const SagaEngineOptions& options);
  ~Impl();

  // Set-up, starting, shutdown (engine.cpp).
  Status Register(std::span<const SagaDefinition> defs);
  Result<bool> Start(std::string_view definition, std::string_view id, std::string_view input);
  Status EngineStatus() const;
  Status Shutdown();

  // Recovery (recovery.cpp). Reads the unfinished sagas (building the index
  // first for a store written before it existed), resumes them, starts the
  // threads. Sagas that were or became stuck are returned for the on_stuck
  // report; damaged ones are kept in damaged_. REQUIRES: the Impl is owned
  // by a shared_ptr.
  Status Recover(std::vector<SagaInfo>* stuck);

  // Queries (queries.cpp).
  Result<SagaInfo> Get(std::string_view id);
  Result<SagaPage> List(SagaState state, std::string_view after_id, size_t limit);
  Result<SagaInfo> Wait(std::string_view id, std::chrono::milliseconds timeout);
  Status WaitIdle(std::chrono::milliseconds timeout);
  std::vector<SagaDamage> Damaged() const;
  SagaStats Stats() const;

  // Settling stuck sagas by hand (settlement.cpp).
  Status Retry(std::string_view id);
  Status Resolve(std::string_view id, std::string_view note);

  // Retention (retention.cpp).
  Result<uint64_t> Purge();

  const SagaEngineOptions& options() const { return opt_; }
  void set_attached() { attached_ = true; }
  // The engine's part of the store's metrics (metrics.hpp), step latency
  // aside (the store's hub keeps that). Takes mu_.
  void FillMetrics(SagaMetrics* m) const;

 private:
  using TimerKey = std::pair<saga::Clock::time_point, uint64_t>;
  struct TimerEntry {
    saga::InstPtr inst;
    bool timeout;  // true: the attempt's deadline; false: a retry wait ends
  };

  // Execution (executor.cpp).
  bool SpawnWorkerLocked();
  // Joins the workers that left the pool on their own.
  void ReapWorkersLocked();
  void WorkerLoop(uint64_t id);
  void TimerLoop();
  void MaintenanceLoop();
  // Runs the instance's next attempt (or commits its timed-out or
  // interrupted one); true when the caller should run the instance again
  // right away.
  bool RunOnce(const saga::InstPtr& inst, saga::Worker* me);
  // Computes and commits the transition after an attempt of the current
  // step. REQUIRES: the caller owns inst and has claimed the attempt.
  bool Transition(const saga::InstPtr& inst, saga::Outcome out, uint32_t attempt);
  bool CommitTransition(const saga::InstPtr& inst, saga::Record next,
                        std::vector<StreamAppend> events, uint32_t attempt);
  // Commits `next`, computed from inst->rec, unless the saga changed since.
  // REQUIRES: the caller owns inst.
  Status CommitFenced(const saga::InstPtr& inst, saga::Record* next,
                      std::span<const StreamAppend> events, bool sync);
  // A commit by the owner of an instance failed: stop the engine, unless it
  // was fenced or refused by shutdown.
  void CommitFailed(const Status& s);
  // Installs a committed record and schedules what comes next.
  bool Apply(const saga::InstPtr& inst, saga::Record next);
  // Uncounts the attempt a transition counted when it will not run after all.
  // REQUIRES: the caller owns inst.
  void UndoPrestart(const saga::InstPtr& inst);
  void ScheduleLocked(const saga::InstPtr& inst, int64_t next_attempt_ms);
  void EraseTimerLocked(saga::Instance* inst);
  void FailLocked(const Status& s);
  void RecordLatencyLocked(double us);

  // Persistence (records.cpp).
  // Commits the record `next` (revision and update time advanced) with the
  // index changes its state implies, `events`, and `precheck`. is_new: the
  // saga has no record yet. Closed once shutdown refuses writes.
  Status CommitRecord(saga::Record* next, bool is_new, std::span<const StreamAppend> events,
                      std::function<Status()> precheck, bool sync = true);
  // Commits other writes to the sagas column family (index upkeep, retention).
  Status CommitWrites(std::span<const internal::ExtraWrite> writes, bool sync);
  // Admits one write of the engine (Closed once shutdown stopped admitting
  // them); EndWrite() when it returned.
  Status BeginWrite();
  void EndWrite();
  Status ReadRecord(std::string_view id, saga::Record* out);
  void AddHistory(saga::Record* r, SagaEvent e, int32_t step, uint32_t attempt,
                  std::string text) const;

  // Builds the indexes when the store has none; checks their version
  // (recovery.cpp).
  Status EnsureIndex();
  // Retry (resolve false) or resolve a stuck saga (settlement.cpp).
  Status SettleByHand(std::string_view id, bool resolve, std::string_view note);

  // Definitions and state (engine.cpp).
  std::shared_ptr<const saga::Def> FindDef(std::string_view name, uint64_t fingerprint) const;
  std::string MissingDefMessage(const saga::Record& r) const;
  Status CheckOpenLocked() const;
  // Start, retry and resolve reserve a saga's id in starting_ while they
  // read and commit its record. Waits until no other holds `id`. REQUIRES:
  // *l holds mu_; returns with it held: OK, or why the engine takes no more
  // requests.
  Status AwaitReservationLocked(std::unique_lock<std::mutex>* l, const std::string& id);
  // Ends the reservation of `id` and wakes whoever waits for it. REQUIRES:
  // mu_ held.
  void EndReservationLocked(const std::string& id);
  // Makes `r` (committed) the active instance `id` of `def`, its next
  // attempt due at `next_attempt_ms` (0: now). REQUIRES: mu_ held.
  void ActivateLocked(const std::string& id, std::shared_ptr<const saga::Def> def, saga::Record r,
                      int64_t next_attempt_ms);
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
  bool RetentionEnabled() const {
    return opt_.keep_finished_for != std::chrono::milliseconds::max() ||
           opt_.max_finished != SIZE_MAX;
  }

  // First, so destroyed last: once the user's handlers are gone, so is the
  // rest of the engine.
  std::unordered_map<std::string, std::vector<std::shared_ptr<const saga::Def>>> defs_;
  std::shared_ptr<internal::StoreImpl> store_;
  const SagaEngineOptions opt_;
  bool attached_ = false;  // holds the store's one saga-engine slot

  mutable std::mutex mu_;
  std::condition_variable work_cv_, timer_cv_, maint_cv_;
  // Signalled when a worker thread exits or the last write in progress ends.
  std::condition_variable exit_cv_;
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
  std::vector<SagaDamage> damaged_;
  // Worker threads, by id; `exited` once the thread no longer touches the
  // engine (it only lets go of its reference).
  struct WorkerThread {
    std::thread thread;
    bool exited = false;
  };
  std::map<uint64_t, WorkerThread> workers_;
  uint64_t worker_seq_ = 0;
  // Worker threads alive, serving the pool, and abandoned by a timed-out
  // handler that has not returned yet.
  size_t threads_ = 0;
  // Of threads_, those inside a step handler (abandoned ones included): the
  // only ones shutdown gives up on.
  size_t in_handler_ = 0;
  size_t live_workers_ = 0;
  size_t abandoned_ = 0;
  // The engine's writes in progress, and whether shutdown refuses new ones.
  size_t writes_ = 0;
  bool writes_closed_ = false;
  std::thread timer_, maint_;
  std::mutex purge_mu_;  // one retention pass at a time

  // Counters (under mu_).
  SagaStats stats_;
  std::array<uint64_t, 64> latency_buckets_{};
  double latency_sum_us_ = 0;
};

}  // namespace evstore

#endif  // EVSTORE_LIB_SAGA_ENGINE_IMPL_HPP_
