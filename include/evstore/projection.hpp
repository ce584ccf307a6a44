// evstore::Projection: a read model kept in the store, exactly once.
//
// A projection is a named handler over selected events (a SubscriptionFilter)
// that keeps keyed state in the store, in its own key space. The handler
// reads and changes that state through ProjectionState; the changes of a
// batch of events and the projection's checkpoint commit in one write, so the
// state always equals a fold of the log up to the checkpoint, across crashes
// and power loss: no event is folded in twice, none is skipped.
//
// Running: Store::run_projection starts the projection on a thread of its
// own; it catches up from its checkpoint, then follows commits live (like a
// subscription). Queries (Store::projection_get, projection_scan) work
// whether or not the projection runs, and from any thread.
//
// Handler contract: deterministic given the event and the state it reads
// (a batch whose commit fails is handled again); effects outside the state
// are not exactly once. A handler error (a non-OK Status or an exception)
// discards the batch's changes and retries it after a backoff that doubles up
// to retry_max; status() shows the error meanwhile. After max_retries (when
// set) the projection stops in the failed state. Other projections and the
// store are not affected.
//
// Rebuilds: rebuild(), or a `version` that differs from the stored one, folds
// the log again from the start into a new instance of the state while the
// old instance keeps serving queries; when the new one has caught up, one
// write swaps them and the old state is deleted.
//
// Thread safety: a Projection handle's methods may be called from any thread;
// the handler runs on the projection's thread, with no store lock held.
#ifndef EVSTORE_PROJECTION_HPP_
#define EVSTORE_PROJECTION_HPP_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "evstore/event.hpp"
#include "evstore/export.hpp"
#include "evstore/status.hpp"
#include "evstore/subscription.hpp"

namespace evstore {

class Upcasters;  // upcast.hpp

namespace internal {
class ProjectionRunner;
class StateOverlay;
}  // namespace internal

// Largest state key and value, in bytes.
inline constexpr size_t kMaxProjectionKey = 1024;
inline constexpr size_t kMaxProjectionValue = 16u << 20;

// The projection's state as the handler sees it: the committed state plus
// the changes of the batch being handled.
class EVSTORE_EXPORT ProjectionState {
 public:
  // The value under `key`; NotFound when none. IOError/Corruption reading.
  Result<std::string> get(std::string_view key);
  // InvalidArgument for an empty key, a key over kMaxProjectionKey or a
  // value over kMaxProjectionValue.
  Status put(std::string_view key, std::string_view value);
  Status erase(std::string_view key);

 private:
  friend class internal::ProjectionRunner;
  explicit ProjectionState(internal::StateOverlay* overlay) : overlay_(overlay) {}
  internal::StateOverlay* overlay_;
};

// Folds one event into the state. Called in position order.
using ProjectionHandler = std::function<Status(const RecordedEvent& event, ProjectionState& state)>;

struct ProjectionOptions {
  SubscriptionFilter filter;
  // The handler's version: a stored projection with another version is
  // rebuilt (online) when it starts.
  uint32_t version = 1;
  // Most events folded per commit (at least 1).
  size_t max_batch = 512;
  // Backoff after a handler error: starts at retry_initial, doubles up to
  // retry_max. max_retries consecutive failures stop the projection (0:
  // retry for ever).
  std::chrono::milliseconds retry_initial{100};
  std::chrono::milliseconds retry_max{30000};
  uint32_t max_retries = 0;
  // Upgrades old events to their newest layout before the handler sees
  // them (upcast.hpp); null: none. An upcaster's error is a handler error.
  std::shared_ptr<const Upcasters> upcasters;
};

struct ProjectionStatus {
  enum class Phase : uint8_t {
    kStarting,    // reading its stored state
    kCatchingUp,  // behind the end of the log
    kLive,        // caught up; following commits
    kRetrying,    // the handler failed; waiting to retry (see last_error)
    kFailed,      // stopped by an error (see last_error)
    kStopped,     // stop() was called, or the store closed
  };
  std::string name;
  Phase phase = Phase::kStarting;
  uint32_t version = 0;
  uint64_t position = 0;     // every selected event before it is folded in (serving instance)
  uint64_t lag_events = 0;   // positions between `position` and the end of the log
  int64_t lag_ms = 0;        // age of the oldest event not yet folded in; 0 when caught up
  double events_per_s = 0;   // recent rate of events handled
  uint64_t events_handled = 0;  // by this run
  uint64_t retries = 0;         // handler failures of this run
  std::string last_error;       // empty when none
  bool rebuilding = false;      // a new instance is being built
  uint64_t rebuild_position = 0;
  uint64_t rebuilds = 0;        // rebuilds this run completed (swapped in, old state deleted)
};

class EVSTORE_EXPORT Projection {
 public:
  ~Projection();  // stop() and wait(), unless called from the handler
  Projection(const Projection&) = delete;
  Projection& operator=(const Projection&) = delete;

  ProjectionStatus status() const;
  // Waits until the serving state includes every selected event before
  // `position` (read your writes: pass an append's position + 1). Errors:
  // TimedOut; the projection's error when it failed; Closed when it stopped.
  Status wait_for(uint64_t position, std::chrono::milliseconds timeout);
  // Starts an online rebuild (see above). Busy while one is under way.
  Status rebuild();
  // Asks the projection to stop after the batch in hand; any thread, the
  // handler included. Idempotent.
  void stop();
  // Waits until it has stopped; returns why: OK after stop(), Closed when the
  // store closed, or the error that failed it. Busy from the handler.
  Status wait();

 private:
  friend class internal::ProjectionRunner;
  EVSTORE_INTERNAL explicit Projection(std::shared_ptr<internal::ProjectionRunner> runner);
  std::shared_ptr<internal::ProjectionRunner> runner_;
};

// A stored projection (whether running or not).
struct ProjectionInfo {
  std::string name;
  uint32_t version = 0;
  uint64_t position = 0;
  uint64_t events_handled = 0;  // by the serving instance since it began
  int64_t updated_ms = 0;
  bool rebuilding = false;
  uint64_t rebuild_position = 0;
};

struct ProjectionEntry {
  std::string key;
  std::string value;
};

}  // namespace evstore

#endif  // EVSTORE_PROJECTION_HPP_
