// Events as evstore's callers write and read them.
//
// EventData is what a caller appends; RecordedEvent is an owning copy of a
// stored event; EventView is a zero-copy view of one, valid only as long as
// the iterator that produced it stays where it is (see store.hpp).
//
// Thread safety: these are plain values; share them read-only or copy them.
#ifndef EVSTORE_EVENT_HPP_
#define EVSTORE_EVENT_HPP_

#include <compare>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "evstore/export.hpp"

namespace evstore {

// A 16-byte UUID. The all-zero UUID means "not given": append generates a
// random (version 4) one.
struct EVSTORE_EXPORT Uuid {
  uint8_t bytes[16] = {};

  bool is_nil() const noexcept;
  // A fresh random version-4 UUID. Thread-safe.
  static Uuid Random();
  // Parses "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" (case-insensitive);
  // nullopt on any other input.
  static std::optional<Uuid> Parse(std::string_view text);
  // Canonical lower-case text form.
  std::string ToString() const;

  friend bool operator==(const Uuid&, const Uuid&) = default;
  friend auto operator<=>(const Uuid&, const Uuid&) = default;
};

// Longest correlation or causation id, in bytes.
inline constexpr size_t kMaxProvenanceBytes = 1024;

// One event to append.
struct EventData {
  Uuid id;                   // nil: generated at append; given: enables idempotent retry
  std::string type;          // required: 1..Options::max_type_name_bytes of UTF-8
  std::string data;          // opaque bytes (JSON or FlatBuffers by convention)
  std::string metadata;      // opaque bytes
  std::string content_type;  // e.g. "application/json"; may be empty
  // Provenance: the id of the conversation or business process the event
  // belongs to, and the id of what caused it (a command, a saga step, an
  // earlier event). Optional: 0..1024 bytes of UTF-8 without NUL each. Set by
  // command handling and sagas (docs/event-sourcing.md); not compared by
  // idempotent retries.
  std::string correlation_id = {};
  std::string causation_id = {};
  // The version of the event's data layout under its type, for upcasting
  // (upcast.hpp). At least 1.
  uint32_t schema_version = 1;
};

// The version a stream must be at for an append to proceed.
class ExpectedVersion {
 public:
  enum class Kind : uint8_t { kAny, kNoStream, kStreamExists, kExact };

  // Append whatever the stream's state.
  static constexpr ExpectedVersion Any() { return ExpectedVersion(Kind::kAny, 0); }
  // The stream must not exist yet.
  static constexpr ExpectedVersion NoStream() { return ExpectedVersion(Kind::kNoStream, 0); }
  // The stream must exist (hold at least one event).
  static constexpr ExpectedVersion StreamExists() {
    return ExpectedVersion(Kind::kStreamExists, 0);
  }
  // The stream's last event must have exactly this version (0-based).
  static constexpr ExpectedVersion Exact(uint64_t version) {
    return ExpectedVersion(Kind::kExact, version);
  }

  constexpr Kind kind() const { return kind_; }
  constexpr uint64_t version() const { return version_; }
  friend constexpr bool operator==(const ExpectedVersion&, const ExpectedVersion&) = default;

 private:
  constexpr ExpectedVersion(Kind k, uint64_t v) : kind_(k), version_(v) {}
  Kind kind_;
  uint64_t version_;
};

// Where an append landed. Versions are per stream (0-based, dense); positions
// are global (0-based, dense, in commit order).
struct AppendResult {
  uint64_t first_version = 0;
  uint64_t last_version = 0;
  uint64_t first_position = 0;
  uint64_t last_position = 0;
  // True when every event was already stored at exactly this place by an
  // earlier append with the same ids and content: nothing was written.
  bool idempotent_replay = false;

  friend bool operator==(const AppendResult&, const AppendResult&) = default;
};

// One stream's part of a multi-stream transaction.
struct StreamAppend {
  std::string stream;
  ExpectedVersion expected = ExpectedVersion::Any();
  std::vector<EventData> events;
};

// An owning copy of a stored event.
struct RecordedEvent {
  Uuid id;
  std::string stream;
  std::string type;
  std::string content_type;
  std::string data;
  std::string metadata;
  uint64_t version = 0;      // in its stream
  uint64_t position = 0;     // in the global log
  int64_t timestamp_ms = 0;  // commit time, ms since the Unix epoch
  std::string correlation_id = {};  // as in EventData (empty in events of format-1 stores)
  std::string causation_id = {};
  uint32_t schema_version = 1;  // 1 in events of format-1 stores
};

// A zero-copy view of a stored event. The string views point into memory
// owned by the iterator that returned it and stay valid until that iterator
// moves, is destroyed, or its store is closed.
struct EventView {
  Uuid id;
  std::string_view stream;
  std::string_view type;
  std::string_view content_type;
  std::string_view data;
  std::string_view metadata;
  uint64_t version = 0;
  uint64_t position = 0;
  int64_t timestamp_ms = 0;
  std::string_view correlation_id = {};
  std::string_view causation_id = {};
  uint32_t schema_version = 1;

  // Copies into `out`, reusing the storage its strings already have.
  void CopyTo(RecordedEvent* out) const {
    out->id = id;
    out->stream.assign(stream);
    out->type.assign(type);
    out->content_type.assign(content_type);
    out->data.assign(data);
    out->metadata.assign(metadata);
    out->version = version;
    out->position = position;
    out->timestamp_ms = timestamp_ms;
    out->correlation_id.assign(correlation_id);
    out->causation_id.assign(causation_id);
    out->schema_version = schema_version;
  }
  RecordedEvent ToRecorded() const {
    return RecordedEvent{id,
                         std::string(stream),
                         std::string(type),
                         std::string(content_type),
                         std::string(data),
                         std::string(metadata),
                         version,
                         position,
                         timestamp_ms,
                         std::string(correlation_id),
                         std::string(causation_id),
                         schema_version};
  }
};

// The category of a stream: its name up to the first '-' ("order-42" ->
// "order"); the whole name when it has no '-'.
inline std::string_view CategoryOf(std::string_view stream) {
  size_t dash = stream.find('-');
  return dash == std::string_view::npos ? stream : stream.substr(0, dash);
}

}  // namespace evstore

#endif  // EVSTORE_EVENT_HPP_
