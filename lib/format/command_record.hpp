// The `commands` column family: the command log (docs/format.md,
// docs/event-sourcing.md). Keys:
//   'C' command id                 -> command record: the outcome of the
//                                     command first handled under this id
//   'T' u64 BE handled_ms command id -> empty: the age index retention reads
// A record and its index entry are written in the same commit as the
// command's events, and deleted together.
//
// record: u8 format (1) | u8 outcome (0 accepted, 1 rejected) | u32 BE tries |
//         i64 BE handled_ms | u64 BE fingerprint | u64 BE base | u64 BE events |
//         u16 BE n + command type | u16 BE n + stream |
//         u16 BE n + error code | u32 BE n + error message | u64 LE sum
// `base` is one more than the stream version the decision was made on (0:
// the stream had no events), so the command's events, if any, are versions
// base .. base + events - 1 of the stream. The fingerprint is the XXH3-64 of
// the command's type, stream and payload. The sum is the XXH3-64 of every
// byte before it, seeded with the XXH3-64 of the key.
#ifndef EVSTORE_LIB_FORMAT_COMMAND_RECORD_HPP_
#define EVSTORE_LIB_FORMAT_COMMAND_RECORD_HPP_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "evstore/status.hpp"

namespace evstore::format {

inline constexpr uint8_t kCommandRecordFormat = 1;
inline constexpr char kCommandTag = 'C';
inline constexpr char kCommandAgeTag = 'T';
inline constexpr uint8_t kOutcomeAccepted = 0;
inline constexpr uint8_t kOutcomeRejected = 1;

struct CommandFields {
  uint8_t outcome = kOutcomeAccepted;
  uint32_t tries = 0;
  int64_t handled_ms = 0;
  uint64_t fingerprint = 0;
  uint64_t base = 0;
  uint64_t events = 0;
  std::string type;
  std::string stream;
  std::string error_code;
  std::string error_message;
};

std::string CommandKey(std::string_view id);
std::string CommandAgeKey(int64_t handled_ms, std::string_view id);
struct DecodedAgeKey {
  int64_t handled_ms;
  std::string_view id;
};
std::optional<DecodedAgeKey> DecodeCommandAgeKey(std::string_view key);

// The fingerprint of a command: what a repeated id must match.
uint64_t CommandFingerprint(std::string_view type, std::string_view stream,
                            std::string_view payload);

// REQUIRES: type, stream and error code are under 64 KiB, the message under
// 4 GiB (the command side's limits keep them far below).
std::string EncodeCommand(std::string_view key, const CommandFields& f);
// Corruption (naming the key) when `value` is not a sound record for `key`;
// NotSupported for a newer record format.
Status DecodeCommand(std::string_view key, std::string_view value, CommandFields* out);

}  // namespace evstore::format

#endif  // EVSTORE_LIB_FORMAT_COMMAND_RECORD_HPP_
