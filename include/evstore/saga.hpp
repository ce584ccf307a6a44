// evstore::SagaEngine: durable sagas on an evstore Store.
//
// A saga is a sequence of steps, each with an action and an optional
// compensation. The engine runs the actions in order; when one fails for
// good it runs the compensations of the steps that had effects, in reverse
// order. Every state change is committed to the store (the `sagas` column
// family, through the same group commit as appends) before the next action
// runs, so after a crash each unfinished saga resumes where it was: the
// interrupted step runs again with the same idempotency key (at-least-once),
// or compensation continues. See docs/sagas.md.
//
// Guarantee: the effects of a saga's handlers are a1..an, or a1..ak followed
// by ck..c1 (a handler may run more than once: retries, timeouts and crashes
// repeat it with the same idempotency key), unless the saga becomes stuck:
// a compensation that keeps failing stops the saga in kStuck, reported
// through the API and the on_stuck callback, for a person to retry() or
// resolve().
//
// Thread safety: every SagaEngine method may be called from any thread,
// concurrently. Handlers run on the engine's worker pool, many sagas at
// once; one saga's handlers never run concurrently with each other, except
// that an attempt abandoned by its timeout (or by shutdown) may still be
// running when the next attempt starts (its result is then discarded). No
// engine lock is held while a handler or a callback runs; handlers and
// callbacks may call any engine method except shutdown() and the destructor.
//
// Lifetime: at most one engine runs on a store at a time. The engine keeps
// the store's internals alive and writes through them; shut the engine down
// (shutdown() or destroy it) before closing the store. Closing the store
// first is safe but stops the engine: every later write fails with Closed,
// the engine stops scheduling work (status() reports why), and unfinished
// sagas resume when an engine next opens the reopened store. A handler that
// never returns does not hold the engine: past its timeout its worker is
// replaced, and shutdown() waits for it only up to a bound (see
// SagaEngineOptions). Such a handler keeps running after the engine is gone;
// whatever it uses of yours must outlive it.
#ifndef EVSTORE_SAGA_HPP_
#define EVSTORE_SAGA_HPP_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "evstore/event.hpp"
#include "evstore/export.hpp"
#include "evstore/status.hpp"

namespace evstore {

class Store;

// A saga's state. Values are stored on disk: never renumber.
enum class SagaState : uint8_t {
  kPending = 0,       // started, no step has finished or failed yet
  kRunning = 1,       // running its actions forward
  kCompensating = 2,  // an action failed for good; undoing the earlier steps
  kCompleted = 3,     // every action succeeded (final)
  kCompensated = 4,   // every needed compensation succeeded, or resolved by hand (final)
  kStuck = 5,         // needs a person: retry() or resolve()
};
// "pending", "running", ...
EVSTORE_EXPORT const char* SagaStateName(SagaState s) noexcept;
// kCompleted or kCompensated.
inline bool IsFinal(SagaState s) {
  return s == SagaState::kCompleted || s == SagaState::kCompensated;
}

// What a history entry records. Values are stored on disk: never renumber.
enum class SagaEvent : uint8_t {
  kStarted = 0,
  kStepCompleted = 1,
  kStepFailed = 2,              // retryable failure; a retry is scheduled
  kStepTimedOut = 3,            // a retry is scheduled
  kCompensationStarted = 4,     // text: why the saga compensates
  kStepCompensated = 5,
  kCompensationFailed = 6,      // retryable failure; a retry is scheduled
  kCompensationTimedOut = 7,    // a retry is scheduled
  kCompleted = 8,
  kCompensated = 9,
  kStuck = 10,                  // text: why
  kRetried = 11,                // retry() by hand
  kResolved = 12,               // resolve() by hand; text: the note
  // An attempt began but never reported: the process stopped while it ran,
  // or shutdown() stopped waiting for it. Counts as a failure that may have
  // had effects; a retry is scheduled.
  kStepInterrupted = 13,
  kCompensationInterrupted = 14,
};
EVSTORE_EXPORT const char* SagaEventName(SagaEvent e) noexcept;

// How a step's action (or compensation) is retried. Attempt n (n >= 1)
// failing schedules attempt n+1 after
// min(initial_backoff * multiplier^(n-1), max_backoff), scaled by a random
// factor in [1 - jitter, 1 + jitter]. The wait is stored, so it survives a
// restart.
struct RetryPolicy {
  uint32_t max_attempts = 3;  // attempts in total, at least 1
  std::chrono::milliseconds initial_backoff{20};
  double multiplier = 2.0;  // at least 1
  std::chrono::milliseconds max_backoff{2000};
  double jitter = 0.2;  // 0 to 1

  static RetryPolicy None() {
    RetryPolicy p;
    p.max_attempts = 1;
    return p;
  }
};

// What a handler is told. Views stay valid while the handler runs.
struct EVSTORE_EXPORT StepContext {
  std::string_view saga_id;
  std::string_view definition;
  std::string_view step;
  uint32_t step_index = 0;
  // 1 for the first attempt of this step (or of its compensation). Each
  // attempt's start is recorded before its handler runs, so an attempt
  // interrupted by a crash counts: the next run gets the next number, and a
  // handler that crashes the process on every attempt uses up max_attempts
  // like one that fails. The start is written without a sync of its own:
  // after a power loss or an OS crash (not a process crash) it may be lost,
  // and the interrupted attempt's number is used again.
  uint32_t attempt = 1;
  bool compensating = false;
  // "<saga id>/<step>" for the action, "<saga id>/<step>/compensate" for the
  // compensation: the same for every attempt, before and after restarts.
  std::string_view idempotency_key;
  std::string_view input;
  // outputs[i] is the output of step i, for every step that completed.
  std::span<const std::string> outputs;
  std::span<const std::string> step_names;
  // When compensating: why the saga failed.
  std::string_view failure;
  // When this attempt times out.
  std::chrono::steady_clock::time_point deadline;
  // Set when the attempt timed out or the engine shuts down: its result will
  // be discarded. Long handlers should poll cancelled().
  const std::atomic<bool>* cancel = nullptr;

  bool cancelled() const { return cancel != nullptr && cancel->load(std::memory_order_relaxed); }
  // The output of the completed step named `step`; empty if none.
  std::string_view output_of(std::string_view step) const;
  // A UUID derived from the idempotency key and n: stable across attempts,
  // so events appended by the handler itself replay idempotently.
  Uuid event_id(uint32_t n) const;
};

// What a handler returns.
struct StepResult {
  enum class Kind : uint8_t { kSuccess, kRetry, kFail };
  Kind kind = Kind::kSuccess;
  std::string output;  // success: kept in the saga record, passed to later steps
  std::string error;   // failures: kept in the history
  // The attempt may have had effects although it failed: the step is then
  // compensated too.
  bool partial = false;
  // Appended in the same commit as the step's completion record (all or
  // nothing). Only used on success. Events without a correlation id get the
  // saga id, and without a causation id the step's idempotency key. A rejected append (wrong expected
  // version, invalid or duplicate events) counts as a retryable failure.
  std::vector<StreamAppend> events;

  static StepResult Success(std::string output = {}, std::vector<StreamAppend> events = {}) {
    StepResult r;
    r.output = std::move(output);
    r.events = std::move(events);
    return r;
  }
  static StepResult Retry(std::string error, bool partial = false) {
    StepResult r;
    r.kind = Kind::kRetry;
    r.error = std::move(error);
    r.partial = partial;
    return r;
  }
  static StepResult Fail(std::string error, bool partial = false) {
    StepResult r;
    r.kind = Kind::kFail;
    r.error = std::move(error);
    r.partial = partial;
    return r;
  }
};

// A handler. An exception escaping it counts as a retryable failure that
// may have had effects (partial): the step is compensated too if the saga
// compensates.
using StepHandler = std::function<StepResult(const StepContext&)>;

struct StepDefinition {
  std::string name;         // unique within the saga, valid UTF-8, no NUL
  StepHandler action;       // required
  StepHandler compensation;  // optional: without one the step is not undone
  // An attempt running longer counts as failed and is abandoned.
  std::chrono::milliseconds timeout{30000};
  RetryPolicy retry;
  RetryPolicy compensation_retry;
};

struct EVSTORE_EXPORT SagaDefinition {
  std::string name;
  uint32_t version = 1;
  std::vector<StepDefinition> steps;

  // A hash of what a stored saga depends on: name, version, and each step's
  // name and whether it has a compensation (not timeouts or retry policies,
  // which may change between runs).
  uint64_t fingerprint() const;
};

struct SagaHistoryEntry {
  int64_t time_ms = 0;  // wall clock, ms since the Unix epoch
  SagaEvent event = SagaEvent::kStarted;
  SagaState state = SagaState::kPending;  // after the transition
  int32_t step = -1;                      // -1: not about one step
  uint32_t attempt = 0;
  std::string text;  // error or note
};

// A saga as last committed.
struct SagaInfo {
  std::string id;
  std::string definition;
  uint32_t version = 0;
  uint64_t fingerprint = 0;
  SagaState state = SagaState::kPending;
  // For kStuck: the state retry() resumes (kRunning or kCompensating).
  SagaState stuck_in = SagaState::kPending;
  int32_t step = 0;      // the step being run or compensated
  uint32_t attempt = 0;  // attempts of that step that ended without success
  // Attempts of that step begun: attempt + 1 while one runs (or when one was
  // interrupted and the engine has not yet recorded that).
  uint32_t attempts_started = 0;
  int64_t next_attempt_ms = 0;  // 0: run as soon as a worker is free
  std::string input;
  std::vector<std::string> outputs;  // of the completed steps
  std::string error;                 // why it compensated or is stuck
  int64_t created_ms = 0;
  int64_t updated_ms = 0;
  bool resolved_by_hand = false;
  bool in_flight = false;  // a handler of this saga runs now
  std::vector<SagaHistoryEntry> history;  // oldest first, the newest max_history
  uint32_t history_dropped = 0;           // older entries no longer kept
};

// Counters since the engine opened, and gauges.
struct SagaStats {
  uint64_t started = 0;      // new sagas
  uint64_t completed = 0;
  uint64_t compensated = 0;  // including resolved by hand
  uint64_t stuck = 0;        // transitions into kStuck
  uint64_t resumed = 0;      // unfinished sagas picked up at open
  uint64_t step_retries = 0;  // failed attempts that were retried
  uint64_t timeouts = 0;
  uint64_t late_results_discarded = 0;
  uint64_t interrupted = 0;  // attempts found begun and never finished (k*Interrupted)
  uint64_t purged = 0;       // finished sagas deleted by retention
  uint64_t active = 0;     // gauge: sagas not final and not stuck
  uint64_t in_flight = 0;  // gauge: handlers running now
  // Gauge: worker threads whose handler outlived its timeout and has not
  // returned yet (each was replaced while under max_abandoned_threads).
  uint64_t abandoned_threads = 0;
  uint64_t damaged = 0;  // gauge: sagas found damaged at open (see damaged())
  // Action and compensation handler run times (successful or not).
  uint64_t step_count = 0;
  double step_mean_us = 0;
  double step_p50_us = 0;  // approximate (power-of-two buckets)
  double step_p99_us = 0;
  double step_max_us = 0;
};

// A saga the engine cannot run because its record is damaged: it fails
// verification, does not fit its definition, or is missing behind its entry
// in the index of unfinished sagas.
struct SagaDamage {
  std::string id;
  Status error;  // Corruption, naming the saga and what is wrong
};

// One page of list().
struct SagaPage {
  std::vector<SagaInfo> sagas;  // in id order
  // Pass as after_id for the next page; empty when there is none.
  std::string next_after;
  // Ids in the range scanned whose records fail verification (skipped).
  std::vector<std::string> damaged;
};

struct SagaEngineOptions {
  // ---- Behaviour ----
  // History entries kept per saga (older ones are counted, then dropped).
  size_t max_history = 64;
  // Retention of finished (completed or compensated) sagas. A background
  // pass, every retention_interval, deletes each finished saga (its record
  // and history; not the events its steps appended) that finished
  // keep_finished_for ago or earlier, and the oldest finished ones beyond
  // max_finished. A deleted saga is gone: get() returns NotFound, and
  // start() with its id starts a new saga (so an idempotent start() repeated
  // after the retention time runs the saga again). Stuck and unfinished
  // sagas are never deleted. Keep forever: milliseconds::max() and SIZE_MAX.
  std::chrono::milliseconds keep_finished_for{std::chrono::hours(24 * 7)};
  size_t max_finished = SIZE_MAX;
  std::chrono::milliseconds retention_interval{std::chrono::minutes(1)};
  // How long shutdown() waits for running handlers (and callbacks) to
  // return before it gives them up. 0: not at all.
  std::chrono::milliseconds shutdown_timeout{std::chrono::seconds(30)};
  // Called once each time a saga becomes stuck, and at open for every saga
  // already stuck. Runs on an engine thread, no lock held.
  std::function<void(const SagaInfo&)> on_stuck;
  // Called when a saga reaches kCompleted or kCompensated.
  std::function<void(const SagaInfo&)> on_finished;
  // Called at open for each unfinished saga whose record is damaged; the
  // engine runs the others. Runs on the thread calling open(), no lock held.
  std::function<void(const SagaDamage&)> on_damaged;

  // ---- Threads ----
  // Worker threads running handlers.
  size_t threads = 4;
  // A handler still running past its attempt's timeout is abandoned (its
  // result will be discarded) and its worker replaced at once, so the other
  // sagas go on; up to this many abandoned threads may exist at a time.
  // Beyond that a timed-out handler keeps its worker (the pool shrinks until
  // it returns).
  size_t max_abandoned_threads = 16;
};

class EVSTORE_EXPORT SagaEngine {
 public:
  // Opens an engine on `store` with the given definitions (several versions
  // of one name may be registered; start() uses the highest), then resumes
  // every unfinished saga found in the store (reading only those: finished
  // sagas are not read). A saga whose definition (name + fingerprint) is not
  // registered is not run: it becomes kStuck with an error naming the
  // missing definition; register it and retry(). An unfinished saga whose
  // record is damaged is not run either: it is reported (damaged(),
  // on_damaged) and the others run. Errors: InvalidArgument (no
  // definitions, a duplicate name + version, an unnamed or duplicate step, a
  // step without action, threads == 0, max_history == 0, a negative
  // retention time, retention_interval <= 0, a bad retry policy),
  // NotSupported (read-only store; sagas indexed by a newer evstore), Busy
  // (another engine is open on this store: at most one runs on a store,
  // until it is shut down or destroyed), Closed, Corruption (the saga index
  // is damaged), IOError.
  static Result<std::unique_ptr<SagaEngine>> open(Store& store,
                                                  std::span<const SagaDefinition> definitions,
                                                  const SagaEngineOptions& options = {});

  // Shuts down (see shutdown()).
  ~SagaEngine();
  SagaEngine(const SagaEngine&) = delete;
  SagaEngine& operator=(const SagaEngine&) = delete;

  // Starts saga `saga_id` under the highest registered version of
  // `definition`, with `input`. Returns true once the new saga is durably
  // recorded (its first step runs afterwards, on a worker), false when a saga
  // with this id already exists with the same definition name and input
  // (idempotent start; nothing changes). Errors: InvalidArgument (unknown
  // definition; an id that is empty, over 256 bytes or not valid UTF-8; an
  // existing saga with this id but another definition or input), Closed,
  // IOError, or the error that stopped the engine.
  Result<bool> start(std::string_view definition, std::string_view saga_id,
                     std::string_view input);

  // The saga as last committed (in_flight from memory). NotFound if absent
  // (also once retention deleted it); Corruption if its record is damaged;
  // Closed after shutdown(); the engine's error if it stopped.
  Result<SagaInfo> get(std::string_view saga_id);

  // Up to `limit` sagas in `state` whose ids come after `after_id` (empty:
  // from the first), in id order. Page through all of them by passing the
  // page's next_after until it is empty. Unfinished states (pending,
  // running, compensating, stuck) are read through the index of unfinished
  // sagas; final states scan the records. Damaged records are skipped and
  // named in the page. Errors: Closed, IOError.
  Result<SagaPage> list(SagaState state, std::string_view after_id, size_t limit);
  // The first `limit` sagas in `state` (list(state, "", limit).sagas).
  Result<std::vector<SagaInfo>> list(SagaState state, size_t limit = SIZE_MAX);

  // Waits until the saga is final or stuck, and the callbacks for that have
  // returned (so a callback must not wait() for its own saga), and returns
  // it. TimedOut when `timeout` passes first; NotFound if there is no such
  // saga; the engine's error if it stopped.
  Result<SagaInfo> wait(std::string_view saga_id, std::chrono::milliseconds timeout);

  // Waits until no saga is pending, running or compensating. TimedOut when
  // `timeout` passes first; the engine's error if it stopped.
  Status wait_idle(std::chrono::milliseconds timeout);

  // Resumes a stuck saga where it stopped, with the attempt count of that
  // step reset. Errors: NotFound, InvalidArgument (not stuck; its definition
  // is still not registered), Closed, IOError.
  Status retry(std::string_view saga_id);

  // Marks a stuck saga as settled by hand: it becomes kCompensated with
  // resolved_by_hand set and `note` in its history. Nothing runs. Errors as
  // for retry().
  Status resolve(std::string_view saga_id, std::string_view note);

  // Runs a retention pass now (see SagaEngineOptions::keep_finished_for)
  // and returns how many finished sagas it deleted. Errors: Closed, IOError,
  // the engine's error.
  Result<uint64_t> purge_finished();

  // The unfinished sagas found damaged at open (not run). Their records stay
  // as they are: evstore-inspect shows them.
  std::vector<SagaDamage> damaged() const;

  SagaStats stats() const;

  // OK while the engine runs; Closed after shutdown(); otherwise the store
  // error that stopped it (the store was closed or a write failed).
  Status status() const;

  // Stops the engine: no new handler starts, running handlers are asked to
  // stop (cancelled()) and waited for, up to options.shutdown_timeout, and
  // the results of those that return are committed when the store still
  // accepts writes. Handlers still running then are abandoned: what they
  // return is discarded, and their attempts count as interrupted at the next
  // open. Writes in progress are always waited for, and none starts
  // afterwards; then the store is free for another engine. Unfinished sagas
  // stay in the store and resume at the next open. Afterwards every method
  // returns Closed. Returns OK, or TimedOut (the engine is shut down all the
  // same) naming how many handlers were abandoned. Idempotent: later calls
  // return OK. REQUIRES: not called from a handler or callback.
  Status shutdown();

  class Impl;

 private:
  EVSTORE_INTERNAL explicit SagaEngine(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace evstore

#endif  // EVSTORE_SAGA_HPP_
