// Saga records: the value stored under a saga id in the `sagas` column family.
// A FlatBuffers table (saga.fbs) followed by an 8-byte little-endian XXH3-64
// checksum of the table, seeded with a hash of the key, so that a record
// copied under another id does not verify. No RocksDB here.
#ifndef EVSTORE_LIB_FORMAT_SAGA_RECORD_HPP_
#define EVSTORE_LIB_FORMAT_SAGA_RECORD_HPP_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "evstore/status.hpp"

namespace evstore::format {

// Upper bounds the decoder enforces on values of the enums in saga.fbs.
inline constexpr uint8_t kSagaStateCount = 6;  // SagaState
inline constexpr uint8_t kSagaEventCount = 13;  // SagaEvent

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
