// evstore command handling: decide on an aggregate's state, append the
// events, retry conflicts, and answer repeated commands from a durable log.
//
// A command (type, target stream, payload, optional id) is handled by
// decide(state, command) -> events, or a domain error. handle:
//   1. loads the stream's aggregate state and version (aggregate.hpp);
//   2. runs decide on it;
//   3. appends the events expecting that version. When another writer got
//      there first (WrongExpectedVersion), it waits a jittered, growing
//      backoff, loads the newer state and decides again, up to max_tries.
// The result says where the events landed and how many tries it took, or
// carries the domain error (a result, not a failure: nothing is appended).
//
// Command log: a command with an id is handled at most once. Its outcome
// (where its events landed, or its domain error) is written in the same
// commit as its events (the `commands` column family), so either both
// survive a crash or neither does. Handling an id that was handled before
// returns the original outcome (from_log) and appends nothing, also across
// threads (a check inside the commit pipeline lets one of two concurrent
// handlers of an id commit; the other returns its outcome), reopens and
// crashes. The same id with another type, stream or payload is
// DuplicateEvent. Records are kept until PruneCommandLog (or a CommandBus's
// retention) deletes them; a pruned id is handled afresh.
//
// Correlation and causation: every event a command appends carries the
// command's correlation id (its id when it has none) and, as causation, the
// command id, unless decide set them itself.
//
// Thread safety: every function here may be called from any thread,
// concurrently; a CommandBus may be shared. decide runs on the calling
// thread with no evstore lock held; it may run several times for one
// command (once per try), so it must not have effects of its own.
#ifndef EVSTORE_COMMAND_HPP_
#define EVSTORE_COMMAND_HPP_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "evstore/aggregate.hpp"
#include "evstore/event.hpp"
#include "evstore/export.hpp"
#include "evstore/status.hpp"

namespace evstore {

class Store;

// Limits of a command's names (InvalidArgument beyond them).
inline constexpr size_t kMaxCommandName = 256;       // type, id, correlation id, error code
inline constexpr size_t kMaxDomainMessage = 64 << 10;  // a domain error's message

struct Command {
  std::string type;     // required: 1..256 bytes of UTF-8 without NUL
  std::string stream;   // the aggregate instance it targets (a stream name)
  std::string payload;  // opaque; at most Options::max_event_bytes
  // Optional: 1..256 bytes of UTF-8 without NUL. A command with an id is
  // handled at most once (see the command log above). Empty: no id.
  std::string id;
  // Optional, as the id: the correlation id of the events it appends.
  // Empty: the command id.
  std::string correlation_id;
};

// A refusal by the domain ("insufficient funds"): a result, not a failure.
struct DomainError {
  std::string code;     // 1..256 bytes of UTF-8 without NUL
  std::string message;  // at most 64 KiB
  friend bool operator==(const DomainError&, const DomainError&) = default;
};

// What decide returns: the events to append (none is fine), or an error.
struct Decision {
  std::vector<EventData> events;
  std::optional<DomainError> error;

  static Decision Accept(std::vector<EventData> events = {}) {
    Decision d;
    d.events = std::move(events);
    return d;
  }
  static Decision Reject(std::string code, std::string message = {}) {
    Decision d;
    d.error = DomainError{std::move(code), std::move(message)};
    return d;
  }
};

struct CommandResult {
  // Set when decide rejected the command: nothing was appended.
  std::optional<DomainError> error;
  bool accepted() const { return !error.has_value(); }
  // Events appended (0 when rejected or when decide returned none), and
  // where they landed (valid when events > 0).
  uint64_t events = 0;
  AppendResult append;
  // Decides this call ran (1 without a conflict). 0 when answered from the
  // command log.
  uint32_t tries = 0;
  // A repeated command id: the original outcome; nothing was appended now.
  bool from_log = false;
  // When the command was first handled (ms since the Unix epoch); 0 for a
  // command without an id.
  int64_t handled_ms = 0;
};

struct CommandOptions {
  // Tries (load, decide, append) before a conflict is returned; at least 1.
  uint32_t max_tries = 10;
  // Before try n+1: min(initial_backoff * 2^(n-1), max_backoff), times a
  // random factor in [1 - jitter, 1].
  std::chrono::microseconds initial_backoff{100};
  std::chrono::microseconds max_backoff{20000};
  double jitter = 0.5;  // 0 to 1
};

template <typename S>
using Decide = std::function<Decision(const S& state, const Command& command)>;
using UntypedDecide = std::function<Decision(const void* state, const Command& command)>;

// Handles `command` on `aggregate` with `decide` (the direct form; see
// CommandBus for a registry). Errors (nothing appended unless noted):
// InvalidArgument (the command's fields; decided events that are invalid
// or carry ids while the command has one), WrongExpectedVersion (still
// conflicting after max_tries), DuplicateEvent (the command id was used
// for another command), Aborted (decide threw; the load failed), IOError
// (the outcome is unknown: handle it again with the same id to learn it),
// Corruption, Closed.
EVSTORE_EXPORT Result<CommandResult> HandleUntyped(UntypedAggregate& aggregate,
                                                   const Command& command,
                                                   const UntypedDecide& decide,
                                                   const CommandOptions& options = {});

template <typename S>
Result<CommandResult> HandleCommand(const Aggregate<S>& aggregate, const Command& command,
                                    const Decide<S>& decide, const CommandOptions& options = {}) {
  if (!decide) return Status::InvalidArgument("command: decide is empty");
  return HandleUntyped(
      *aggregate.untyped(), command,
      [&decide](const void* state, const Command& c) { return decide(*static_cast<const S*>(state), c); },
      options);
}

// The stored outcome of command `id` (from_log set); NotFound when the log
// has none. Errors: InvalidArgument (id), Corruption, Closed.
EVSTORE_EXPORT Result<CommandResult> LookupCommand(Store& store, std::string_view id);

struct CommandRetention {
  // Delete records older than this; 0: no age limit.
  std::chrono::milliseconds max_age{0};
  // Keep at most this many records (the newest); 0: no count limit.
  uint64_t max_count = 0;
};

// Deletes command records by `retention`, oldest first (by the time they
// were handled, in ms; records of one millisecond in id order); returns
// how many.
// Not synced on its own. Errors: Closed, IOError, Corruption.
EVSTORE_EXPORT Result<uint64_t> PruneCommandLog(Store& store, const CommandRetention& retention);

struct CommandBusOptions {
  CommandOptions handling;
  // With a limit set, a thread of the bus prunes the command log every
  // retention_interval.
  CommandRetention retention;
  std::chrono::milliseconds retention_interval{60000};
};

// A registry of command handlers by command type. Thread safety: every
// method may be called from any thread, concurrently (registering included);
// no lock is held while decide runs. The retention thread, if any, stops
// when the bus is destroyed.
class EVSTORE_EXPORT CommandBus {
 public:
  class Impl;

  // Errors: InvalidArgument (options), Closed.
  static Result<std::unique_ptr<CommandBus>> Create(Store& store, CommandBusOptions options = {});
  ~CommandBus();
  CommandBus(const CommandBus&) = delete;
  CommandBus& operator=(const CommandBus&) = delete;

  // Handles commands of `type` with `decide` on `aggregate`. InvalidArgument
  // for a bad type, an empty decide, or a type already registered; the
  // aggregate must be on this bus's store.
  template <typename S>
  Status register_handler(std::string type, Aggregate<S> aggregate, Decide<S> decide) {
    if (!decide) return Status::InvalidArgument("command bus: decide is empty");
    return register_untyped(
        std::move(type), aggregate.untyped(),
        [d = std::move(decide)](const void* s, const Command& c) { return d(*static_cast<const S*>(s), c); });
  }
  Status register_untyped(std::string type, std::shared_ptr<UntypedAggregate> aggregate,
                          UntypedDecide decide);
  // Handles `command` by its type (as HandleUntyped). NotFound when no
  // handler is registered for it.
  Result<CommandResult> handle(const Command& command);
  bool has_handler(std::string_view type) const;
  // Prunes the command log now by the bus's retention (see
  // PruneCommandLog).
  Result<uint64_t> prune();

 private:
  EVSTORE_INTERNAL explicit CommandBus(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace evstore

#endif  // EVSTORE_COMMAND_HPP_
