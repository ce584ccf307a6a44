// evstore::Subscription: the events of a store, delivered as they commit.
//
// A subscription reads a selection of the log (every event, one stream, one
// category, or a set of event types) in position order from a starting
// point: first what is already stored (catch-up), then each event as its
// commit publishes it (live). Both come from the log itself, bounded by what
// is published: there is no separate live buffer, so the switch from
// catch-up to live can neither skip nor repeat an event, a slow subscriber
// never holds appenders up nor grows memory, and nothing is ever dropped. A
// commit wakes live subscribers; no one polls.
//
// Delivery: pull (Subscription::next on the subscriber's own thread) or push
// (Store::subscribe with a handler, run on a thread the store starts). A
// delivery is a batch of events, or a signal: caught up (the subscription
// has delivered everything published when it looked, and waits for new
// commits from here: it is live), fell behind (it was live, and is now more
// than `behind_after` positions short of the end of the log: it reads the
// log in batches until it catches up again, which it then signals again).
//
// Checkpoints: a subscription with a checkpoint name resumes, after a
// restart, after the last position checkpointed under that name (stored in
// the `checkpoints` column family). Delivery is then at least once for
// effects outside the store: events after the checkpoint are delivered
// again. Competing consumers (several subscribers sharing one stream of
// work) are not offered: each subscription sees every selected event.
//
// Thread safety: a Subscription belongs to one thread at a time, except
// stop(), which any thread may call at any time (a push handler included).
// A PushSubscription's methods may be called from any thread. No store lock
// is held while a handler runs.
//
// Lifetime: a subscription keeps the store's internals alive. When the store
// closes, next() returns Closed and push subscriptions end with Closed.
#ifndef EVSTORE_SUBSCRIPTION_HPP_
#define EVSTORE_SUBSCRIPTION_HPP_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "evstore/event.hpp"
#include "evstore/export.hpp"
#include "evstore/status.hpp"

namespace evstore {

namespace internal {
class SubscriptionImpl;
class PushImpl;
}  // namespace internal

// What a subscription selects.
struct SubscriptionFilter {
  enum class Kind : uint8_t { kAll, kStream, kCategory, kTypes };
  Kind kind = Kind::kAll;
  std::string name;                // kStream: the stream; kCategory: the category
  std::vector<std::string> types;  // kTypes: the event types (at least one)

  static SubscriptionFilter All() { return {}; }
  static SubscriptionFilter Stream(std::string stream) {
    return {Kind::kStream, std::move(stream), {}};
  }
  static SubscriptionFilter Category(std::string category) {
    return {Kind::kCategory, std::move(category), {}};
  }
  static SubscriptionFilter Types(std::vector<std::string> types) {
    return {Kind::kTypes, {}, std::move(types)};
  }
};

// Start position meaning "only events committed after subscribing".
inline constexpr uint64_t kNow = UINT64_MAX;

struct SubscribeOptions {
  SubscriptionFilter filter;
  // The first position to deliver when no checkpoint applies: 0 for the
  // whole log, kNow for only what commits after subscribe() returns.
  uint64_t from = 0;
  // A durable checkpoint's name (1..256 bytes of UTF-8, no NUL); empty: none.
  // When a checkpoint is stored under it, delivery resumes after it and
  // `from` is ignored.
  std::string checkpoint;
  // Most events in one delivery (at least 1).
  size_t max_batch = 256;
  // A live subscription this many positions short of the end of the log is
  // told it fell behind (at least 1).
  uint64_t behind_after = 4096;
  // A live subscription woken by a commit less than this long after its
  // previous wake-up waits out the rest of the interval first, so that the
  // commits in between arrive as one batch: under a steady stream of
  // commits each subscriber wakes at most once per interval (how many
  // subscribers a store can feed without slowing its appenders), while the
  // first commit after a quiet spell is delivered at once. Zero (the
  // default): wake for every commit, for the lowest delay. At most 1 s.
  std::chrono::microseconds min_wake_interval{0};
};

// One delivery.
struct Delivery {
  enum class Kind : uint8_t {
    kEvents,      // `events` holds 1..max_batch events, in position order
    kCaughtUp,    // live from `position` on
    kFellBehind,  // more than behind_after positions short of the log's end
    kTimedOut,    // next(timeout) found nothing new in time (pull only)
  };
  Kind kind = Kind::kEvents;
  std::vector<RecordedEvent> events;
  // Every selected event before this position has been delivered: the
  // position to checkpoint once the delivery is handled.
  uint64_t position = 0;
};

class EVSTORE_EXPORT Subscription {
 public:
  Subscription(Subscription&&) noexcept;
  Subscription& operator=(Subscription&&) noexcept;
  ~Subscription();

  // The next delivery, waiting up to `timeout` for new commits when caught
  // up (kTimedOut then). Errors: Closed (stop() was called, or the store was
  // closed), Corruption or IOError from reading the log (the subscription
  // stays where it was: call next() again to retry).
  Result<Delivery> next(std::chrono::milliseconds timeout);
  // The same, into `*into`, reusing the storage of the events it holds: a
  // consumer that passes the same Delivery each time copies events into
  // strings that already have room, without allocating. On an error
  // `into->events` is empty. InvalidArgument when `into` is null.
  Status next(Delivery* into, std::chrono::milliseconds timeout);

  // Stores `position` (default: the position of the last delivery) under
  // the subscription's checkpoint name. The write is not synced on its own:
  // a power loss may set the checkpoint back (events are delivered again),
  // never forward. Errors: InvalidArgument (no checkpoint name; a position
  // beyond what was delivered or beyond the end of the log), Closed, IOError.
  Status checkpoint();
  Status checkpoint(uint64_t position);

  // Makes next() return Closed from now on (and wakes a next() waiting on
  // another thread). Idempotent; any thread.
  void stop();

  // The position of the last delivery (where delivery resumes).
  uint64_t position() const;

 private:
  friend class internal::SubscriptionImpl;
  EVSTORE_INTERNAL explicit Subscription(std::unique_ptr<internal::SubscriptionImpl> impl);
  std::unique_ptr<internal::SubscriptionImpl> impl_;
};

// A push handler: runs on the subscription's thread, one delivery at a time
// (never kTimedOut). A non-OK result ends the subscription with it.
using DeliveryHandler = std::function<Status(const Delivery&)>;

class EVSTORE_EXPORT PushSubscription {
 public:
  ~PushSubscription();  // stop() and wait(), unless called from the handler
  PushSubscription(const PushSubscription&) = delete;
  PushSubscription& operator=(const PushSubscription&) = delete;

  // Asks the subscription to end; it ends after the handler returns (if it
  // is running). Any thread, the handler included. Idempotent.
  void stop();
  // Waits until it has ended; returns why: OK after stop(), Closed when the
  // store closed, the handler's error, or a read error. REQUIRES: not called
  // from the handler.
  Status wait();
  // Whether it has ended, and the position of its last delivery.
  bool done() const;
  uint64_t position() const;

 private:
  friend class internal::PushImpl;
  EVSTORE_INTERNAL explicit PushSubscription(std::shared_ptr<internal::PushImpl> impl);
  std::shared_ptr<internal::PushImpl> impl_;
};

// A stored checkpoint.
struct CheckpointInfo {
  std::string name;
  uint64_t position = 0;     // delivery resumes here
  int64_t updated_ms = 0;    // wall clock of its last update
};

}  // namespace evstore

#endif  // EVSTORE_SUBSCRIPTION_HPP_
