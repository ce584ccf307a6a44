// evstore::Aggregate<S>: the state of a stream, folded from its events and
// served fast.
//
// An aggregate type is a state type S, an initial state, and
// evolve(state, event) -> state. load(stream) returns the state after every
// event of the stream, and the version of the last one (the expectation to
// append with; see command.hpp, which builds command handling on this).
// States are served, in this order, from:
//   1. a tiered cache of states keyed by (stream, version), with single
//      flight: concurrent loads of one stream at one version fold once;
//   2. the newest cached state of the stream, plus the events after it;
//   3. a durable snapshot (the store's `snapshots` column family), plus the
//      events after it: written by a background writer every
//      SnapshotPolicy::every_events events or every_bytes bytes folded,
//      through a codec of yours, tagged with your snapshot schema version (a
//      snapshot of another schema is ignored, never decoded);
//   4. the stream's events from the start.
//
// Freshness: load reads the stream's published head first and returns a
// state at least that recent, so it never returns a state older than an
// append that returned before load began.
//
// Snapshots never slow appends or commands down: they are encoded and
// written on the aggregate's own thread, in commits that need no sync of
// their own. A snapshot is a cache: losing one (a power loss, a damaged or
// undecodable record, a schema change) only means folding more events.
//
// Thread safety: Aggregate is a handle; copies share one cache and one
// snapshot writer. Every method may be called from any number of threads at
// once. evolve, the codec and the weigher run with no evstore lock held, on
// the loading threads (several at once, for different streams or versions)
// and, for the codec's encode, on the snapshot writer's thread: they must be
// safe to call concurrently, and must not call back into this aggregate.
//
// Lifetime: an aggregate keeps the store's internals alive; once the store is
// closed, load returns Closed. When the last handle goes, the snapshot
// writer thread stops (snapshots still queued are written first, unless the
// store is closed).
#ifndef EVSTORE_AGGREGATE_HPP_
#define EVSTORE_AGGREGATE_HPP_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "evstore/cache_stats.hpp"
#include "evstore/event.hpp"
#include "evstore/export.hpp"
#include "evstore/status.hpp"

namespace evstore {

class Store;
class Upcasters;  // upcast.hpp

// When the background writer snapshots a stream: once this many events, or
// this many bytes of event data and metadata, were folded since the stream's
// last snapshot. 0 turns a trigger off; both 0: no snapshots.
struct SnapshotPolicy {
  uint64_t every_events = 0;
  uint64_t every_bytes = 0;
};

struct AggregateOptions {
  // The aggregate type's name: 1..256 bytes of UTF-8 without NUL. Snapshots
  // are stored under it, so two aggregate types folding the same streams
  // must have different names.
  std::string name;

  // ---- Snapshots (need a codec) ----
  SnapshotPolicy snapshots;
  // Your version of the encoded state's layout. Change it when the codec
  // changes: snapshots written under another schema are ignored (and
  // replaced by the next snapshot), never handed to decode.
  uint32_t snapshot_schema = 1;
  // Encoded states larger than this are not snapshotted (counted in
  // snapshot_errors).
  size_t max_snapshot_bytes = 64u << 20;  // 64 MiB
  // Snapshots waiting for the writer; past it, new ones are dropped
  // (counted in snapshots_dropped). A queued stream's newer snapshot
  // replaces its older one instead of queueing.
  size_t max_pending_snapshots = 4096;

  // ---- Cache ----
  // States by (stream, version). L1 holds states as they are (weighed by the
  // weigher), L2 their encoded bytes (needs a codec); 0 disables a tier.
  size_t cache_l1_bytes = 16u << 20;  // 16 MiB
  size_t cache_l2_bytes = 0;

  // ---- Reading ----
  // Upgrades old events to their newest layout before evolve sees them
  // (upcast.hpp); null: none. Changing the upcasters of an aggregate whose
  // snapshots were folded under others calls for a new snapshot_schema.
  std::shared_ptr<const Upcasters> upcasters;
};

// Where a load found its state.
enum class LoadSource : uint8_t {
  kCache,          // the cache held the state at the stream's head
  kCacheAndLog,    // a cached older state, plus the events after it
  kSnapshot,       // a snapshot, plus the events after it
  kLog,            // every event of the stream, from the initial state
  kEmpty,          // the stream has no events: the initial state
};
EVSTORE_EXPORT const char* LoadSourceName(LoadSource s) noexcept;

struct AggregateStats {
  uint64_t loads = 0;             // loads that returned a state
  uint64_t from_cache = 0;        // ... by source (see LoadSource)
  uint64_t from_cache_and_log = 0;
  uint64_t from_snapshot = 0;
  uint64_t from_log = 0;
  uint64_t events_folded = 0;     // evolve calls
  uint64_t snapshots_written = 0;
  uint64_t snapshots_dropped = 0;  // the writer's queue was full
  // Snapshots not written (encode failed, too large) or not used (damaged
  // record, decode failed); last_snapshot_error says the latest.
  uint64_t snapshot_errors = 0;
  uint64_t snapshots_ignored = 0;  // of another snapshot schema
  std::string last_snapshot_error;
  CacheStats cache;
};

// The untyped form of an aggregate type: states are opaque objects behind
// shared pointers. Aggregate<S> (below) and the C API build on it; use it
// directly only to host states whose type is not known at compile time.
// Every function may report an error (or throw: an exception is reported as
// Aborted with its message).
struct StateOps {
  // A new initial state. Required.
  std::function<std::shared_ptr<void>()> make_initial;
  // A copy of `state` that evolve may change. Required.
  std::function<std::shared_ptr<void>(const void* state)> clone;
  // Folds `event` into `state`, in place. Required.
  std::function<Status(void* state, const EventView& event)> evolve;
  // The state's bytes for snapshots and the cache's L2. Optional (both or
  // neither).
  std::function<Result<std::string>(const void* state)> encode;
  std::function<Result<std::shared_ptr<void>>(std::string_view bytes)> decode;
  // The state's weight in L1, in bytes. Optional: 256 per state.
  std::function<size_t(const void* state)> weigh;
};

// The untyped aggregate (see StateOps). Thread safety and lifetime as
// Aggregate<S>.
class EVSTORE_EXPORT UntypedAggregate {
 public:
  class Impl;

  struct Loaded {
    std::shared_ptr<const void> state;  // never null
    int64_t version = -1;    // of the newest event folded in; -1: none
    uint64_t position = 0;   // global position of that event (0 when none)
    LoadSource source = LoadSource::kEmpty;
  };

  // Errors: InvalidArgument (name, a missing function, snapshots or L2
  // without a codec), Closed.
  static Result<std::shared_ptr<UntypedAggregate>> Open(Store& store, AggregateOptions options,
                                                        StateOps ops);
  ~UntypedAggregate();
  UntypedAggregate(const UntypedAggregate&) = delete;
  UntypedAggregate& operator=(const UntypedAggregate&) = delete;

  Result<Loaded> Load(std::string_view stream);
  Status SaveSnapshot(std::string_view stream);
  Status FlushSnapshots();
  void ClearCache();
  AggregateStats Stats() const;
  const std::string& name() const;
  Impl* impl() const { return impl_.get(); }

 private:
  EVSTORE_INTERNAL explicit UntypedAggregate(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A loaded state: the state after every event of the stream up to `version`.
template <typename S>
struct Loaded {
  std::shared_ptr<const S> state;  // never null; shared with the cache: do not cast away const
  int64_t version = -1;            // of the newest event folded in; -1: the stream has none
  uint64_t position = 0;           // global position of that event (0 when none)
  LoadSource source = LoadSource::kEmpty;

  const S& operator*() const { return *state; }
  const S* operator->() const { return state.get(); }
  // The expectation under which an append keeps this state current.
  ExpectedVersion expected() const {
    return version < 0 ? ExpectedVersion::NoStream()
                       : ExpectedVersion::Exact(static_cast<uint64_t>(version));
  }
};

// Encodes a state for snapshots and the cache's L2. decode returns an error
// for bytes it cannot read; encode may throw (reported as a snapshot error).
template <typename S>
struct StateCodec {
  std::function<std::string(const S&)> encode;
  std::function<Result<S>(std::string_view)> decode;
  bool valid() const { return encode && decode; }
};

// An aggregate type: its initial state, evolve, and optionally a codec and a
// weigher. REQUIRES: S is copy-constructible and move-assignable.
template <typename S>
struct AggregateType {
  S initial{};
  // Returns the state after `event` (upcast, when the aggregate has
  // upcasters). The event's views are valid during the call. A throw fails
  // the load (Aborted, with the stream and version).
  std::function<S(S state, const EventView& event)> evolve;
  StateCodec<S> codec;
  // The weight of a state in the cache's L1, in bytes; empty: sizeof(S).
  std::function<size_t(const S&)> weigh;
};

template <typename S>
class Aggregate {
 public:
  // Opens an aggregate type on `store`. Errors: InvalidArgument (name,
  // missing evolve, snapshots or L2 without a codec), Closed.
  static Result<Aggregate> open(Store& store, AggregateOptions options, AggregateType<S> type);

  // The state of `stream` after every event that was published when load
  // began (and maybe more). A stream with no events yields the initial
  // state at version -1. Errors: InvalidArgument (stream name), Aborted
  // (evolve threw or failed: naming the stream and version), Corruption,
  // IOError, Closed.
  Result<Loaded<S>> load(std::string_view stream) {
    auto r = core_->Load(stream);
    if (!r.ok()) return r.status();
    return Loaded<S>{std::static_pointer_cast<const S>(r->state), r->version, r->position,
                     r->source};
  }
  // Loads `stream` and writes its snapshot now, on this thread (not synced
  // on its own). InvalidArgument without a codec; the codec's error.
  Status save_snapshot(std::string_view stream) { return core_->SaveSnapshot(stream); }
  // Waits until every snapshot queued before the call is written or has
  // failed. OK, or Closed.
  Status flush_snapshots() { return core_->FlushSnapshots(); }
  // Drops every cached state (snapshots stay).
  void clear_cache() { core_->ClearCache(); }
  AggregateStats stats() const { return core_->Stats(); }
  const std::string& name() const { return core_->name(); }
  // The untyped aggregate behind this handle (for the command side).
  const std::shared_ptr<UntypedAggregate>& untyped() const { return core_; }

 private:
  explicit Aggregate(std::shared_ptr<UntypedAggregate> core) : core_(std::move(core)) {}
  std::shared_ptr<UntypedAggregate> core_;
};

template <typename S>
Result<Aggregate<S>> Aggregate<S>::open(Store& store, AggregateOptions options,
                                        AggregateType<S> type) {
  if (!type.evolve) return Status::InvalidArgument("aggregate: evolve is required");
  if (type.codec.encode.operator bool() != type.codec.decode.operator bool())
    return Status::InvalidArgument("aggregate: a codec needs both encode and decode");
  auto initial = std::make_shared<const S>(std::move(type.initial));
  StateOps ops;
  ops.make_initial = [initial]() -> std::shared_ptr<void> { return std::make_shared<S>(*initial); };
  ops.clone = [](const void* s) -> std::shared_ptr<void> {
    return std::make_shared<S>(*static_cast<const S*>(s));
  };
  ops.evolve = [evolve = std::move(type.evolve)](void* s, const EventView& e) -> Status {
    S& state = *static_cast<S*>(s);
    state = evolve(std::move(state), e);
    return Status::OK();
  };
  if (type.codec.valid()) {
    ops.encode = [enc = std::move(type.codec.encode)](const void* s) -> Result<std::string> {
      return enc(*static_cast<const S*>(s));
    };
    ops.decode = [dec = std::move(type.codec.decode)](
                     std::string_view b) -> Result<std::shared_ptr<void>> {
      Result<S> r = dec(b);
      if (!r.ok()) return r.status();
      return std::shared_ptr<void>(std::make_shared<S>(std::move(r).value()));
    };
  }
  if (type.weigh)
    ops.weigh = [w = std::move(type.weigh)](const void* s) { return w(*static_cast<const S*>(s)); };
  else
    ops.weigh = [](const void*) { return sizeof(S); };
  auto core = UntypedAggregate::Open(store, std::move(options), std::move(ops));
  if (!core.ok()) return core.status();
  return Aggregate(std::move(core).value());
}

}  // namespace evstore

#endif  // EVSTORE_AGGREGATE_HPP_
