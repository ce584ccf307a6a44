// The `snapshots` column family: durable snapshots of aggregate state
// (docs/format.md, docs/event-sourcing.md). Key and value:
//   key:    aggregate name | 0x00 | stream name
//   record: u8 format (1) | u32 BE schema | u64 BE version | u64 BE stream id |
//           u64 BE position | i64 BE created_ms | state bytes | u64 LE sum
// `schema` is the aggregate's own snapshot schema version (not the record
// format): a reader with another schema ignores the snapshot. The sum is the
// XXH3-64 of every byte before it, seeded with the XXH3-64 of the key, so a
// record copied under another key fails verification.
#ifndef EVSTORE_LIB_FORMAT_SNAPSHOT_RECORD_HPP_
#define EVSTORE_LIB_FORMAT_SNAPSHOT_RECORD_HPP_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "evstore/status.hpp"

namespace evstore::format {

inline constexpr uint8_t kSnapshotRecordFormat = 1;
// Bytes before the state.
inline constexpr size_t kSnapshotHeaderBytes = 37;

struct SnapshotFields {
  uint32_t schema = 0;
  uint64_t version = 0;    // the stream version the state reflects
  uint64_t stream_id = 0;  // the stream it was taken of (its internal id)
  uint64_t position = 0;   // the global position of the event at `version`
  int64_t created_ms = 0;
  std::string_view state;  // the codec's bytes; points into the decoded value
};

// aggregate name 0x00 stream. Names never contain 0x00, so one aggregate's
// snapshots are contiguous.
std::string SnapshotKey(std::string_view aggregate, std::string_view stream);
struct DecodedSnapshotKey {
  std::string_view aggregate;
  std::string_view stream;
};
std::optional<DecodedSnapshotKey> DecodeSnapshotKey(std::string_view key);

std::string EncodeSnapshot(std::string_view key, const SnapshotFields& f);
// Corruption (naming the key) when `value` is not a sound record for `key`;
// NotSupported for a newer record format. out->state points into `value`.
Status DecodeSnapshot(std::string_view key, std::string_view value, SnapshotFields* out);

}  // namespace evstore::format

#endif  // EVSTORE_LIB_FORMAT_SNAPSHOT_RECORD_HPP_
