// The `checkpoints` column family: key = checkpoint name; value = a fixed
// 25-byte record (docs/format.md):
//   u8  format (1) | u64 BE position | i64 BE updated_ms | u64 LE XXH3-64 of
//   the 17 bytes before it, seeded with the XXH3-64 of the name.
// The seed ties a record to its key, so a value copied under another name
// fails verification.
#ifndef EVSTORE_LIB_FORMAT_CHECKPOINT_RECORD_HPP_
#define EVSTORE_LIB_FORMAT_CHECKPOINT_RECORD_HPP_

#include <cstdint>
#include <string>
#include <string_view>

#include "evstore/status.hpp"

namespace evstore::format {

inline constexpr uint8_t kCheckpointFormat = 1;
inline constexpr size_t kCheckpointRecordBytes = 25;

struct CheckpointFields {
  uint64_t position = 0;
  int64_t updated_ms = 0;
};

std::string EncodeCheckpoint(std::string_view name, const CheckpointFields& f);
// Corruption (naming the checkpoint) when the value is not a sound record
// for `name`; NotSupported for a newer format.
Status DecodeCheckpoint(std::string_view name, std::string_view value, CheckpointFields* out);

}  // namespace evstore::format

#endif  // EVSTORE_LIB_FORMAT_CHECKPOINT_RECORD_HPP_
