// Saga records: the value stored under a saga id in the `sagas` column family.
// A FlatBuffers table (saga.fbs) followed by an 8-byte little-endian XXH3-64
// checksum of the table, seeded with a hash of the key, so that a record
// copied under another id does not verify. No RocksDB here.
#ifndef EVSTORE_LIB_FORMAT_SAGA_RECORD_HPP_
#define EVSTORE_LIB_FORMAT_SAGA_RECORD_HPP_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "evstore/status.hpp"

namespace evstore::format {

// Upper bounds the decoder enforces on values of the enums in saga.fbs.
inline constexpr uint8_t kSagaStateCount = 6;  // SagaState
inline constexpr uint8_t kSagaEventCount = 15;  // SagaEvent

// Keys of the `sagas` column family. A record lives under its saga id, which
// never starts with 0x00; the engine's indexes live under keys that do, so
// they sort before every record (docs/format.md):
//   0x00 'v'                           -> u32be index version
//   0x00 'o' saga-id                   -> empty: the saga is not final (or its
//                                         record is damaged)
//   0x00 'f' finished-ms:u64be saga-id -> empty: the saga is final, since then
// Each index entry is written in the same batch as the record change that
// makes it true. A store without the version key was written before the
// indexes existed; the engine builds them once, then writes the key.
inline constexpr uint32_t kSagaIndexVersion = 1;
inline constexpr std::string_view kSagaIndexVersionKey{"\0v", 2};
inline constexpr std::string_view kSagaOpenPrefix{"\0o", 2};
inline constexpr std::string_view kSagaFinishedPrefix{"\0f", 2};
// The first key a record can have.
inline constexpr std::string_view kSagaRecordsStart{"\x01", 1};

inline bool IsSagaIndexKey(std::string_view key) { return !key.empty() && key[0] == '\0'; }
std::string SagaOpenKey(std::string_view id);
// Times before the epoch are stored as 0.
std::string SagaFinishedKey(int64_t finished_ms, std::string_view id);
std::string EncodeSagaIndexVersion(uint32_t version);
// Nullopt unless `value` is 4 bytes.
std::optional<uint32_t> DecodeSagaIndexVersion(std::string_view value);

// A parsed index key; `id` points into the key.
struct SagaIndexEntry {
  char kind = 0;  // 'v', 'o' or 'f'
  int64_t finished_ms = 0;
  std::string_view id;
};
// False when `key` is not a well-formed index key (unknown kind, missing or
// over-long id, an id with a 0x00 byte).
bool ParseSagaIndexKey(std::string_view key, SagaIndexEntry* out);

struct SagaHistoryData {
  int64_t time_ms = 0;
  uint8_t kind = 0;
  uint8_t state = 0;
  int32_t step = -1;
  uint32_t attempt = 0;
  std::string text;
};

// An owning, decoded saga record.
struct SagaRecordData {
  std::string id;
  std::string definition;
  uint32_t version = 0;
  uint64_t fingerprint = 0;
  uint8_t state = 0;
  uint8_t stuck_phase = 0;
  int32_t step = 0;
  uint32_t attempt = 0;
  int64_t next_attempt_ms = 0;
  bool tainted = false;
  std::string input;
  std::vector<std::string> outputs;
  std::string error;
  int64_t created_ms = 0;
  int64_t updated_ms = 0;
  uint64_t revision = 0;
  bool resolved = false;
  std::vector<SagaHistoryData> history;
  uint32_t history_dropped = 0;
  uint32_t started = 0;  // attempts of the current step begun
};

// Encodes `r` + checksum into *out (replacing its contents). The key is r.id.
void EncodeSagaRecord(const SagaRecordData& r, std::string* out);

// Decodes and verifies the record stored under `key`. Any byte string is
// safe to pass: Corruption (naming the saga id) when the value is too short,
// its checksum or the FlatBuffers verifier fails, an enum is out of range,
// or the stored id disagrees with the key. *out is unspecified on error.
Status DecodeSagaRecord(std::string_view key, std::string_view value, SagaRecordData* out);

}  // namespace evstore::format

#endif  // EVSTORE_LIB_FORMAT_SAGA_RECORD_HPP_
