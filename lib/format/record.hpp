// Event and stream records: FlatBuffers tables followed by an 8-byte
// little-endian XXH3-64 checksum of the table bytes. The checksum of an event
// record is seeded with its position, so a record copied to another key does
// not verify.
#ifndef EVSTORE_LIB_FORMAT_RECORD_HPP_
#define EVSTORE_LIB_FORMAT_RECORD_HPP_

#include <cstdint>
#include <string>
#include <string_view>

#include "evstore/event.hpp"
#include "evstore/status.hpp"

namespace flatbuffers {
class FlatBufferBuilder;
}

namespace evstore::format {

inline constexpr size_t kChecksumBytes = 8;

// Fields of an event record, as the commit pipeline has them.
struct EventFields {
  Uuid id;
  uint64_t position;
  std::string_view stream;
  uint64_t stream_id;
  uint64_t version;
  std::string_view type;
  std::string_view content_type;
  std::string_view data;
  std::string_view metadata;
  int64_t timestamp_ms;
  std::string_view correlation_id = {};
  std::string_view causation_id = {};
  uint32_t schema_version = 1;
};

// Reusable encoder: keeps its FlatBufferBuilder between records.
class RecordEncoder {
 public:
  RecordEncoder();
  ~RecordEncoder();
  RecordEncoder(const RecordEncoder&) = delete;
  RecordEncoder& operator=(const RecordEncoder&) = delete;

  // Encodes an event record + checksum into *out (replacing its contents).
  void EncodeEvent(const EventFields& f, std::string* out);
  // Encodes a stream record + checksum into *out.
  void EncodeStream(uint64_t stream_id, std::string_view name, uint64_t created_position,
                    int64_t created_ms, std::string* out);

 private:
  flatbuffers::FlatBufferBuilder* fbb_;
};

// Decodes and verifies an event record stored at `position`. The record bytes
// are copied into *scratch (FlatBuffers needs aligned memory); the view
// points into *scratch. Corruption (naming the position) when the checksum,
// the FlatBuffers verifier or the stored position disagree.
Status DecodeEvent(uint64_t position, std::string_view value, std::string* scratch,
                   EventView* out);

struct StreamFields {
  uint64_t stream_id;
  std::string_view name;
  uint64_t created_position;
  int64_t created_ms;
};
// Decodes and verifies a stream record stored under `name` (views point into
// *scratch).
Status DecodeStream(std::string_view name, std::string_view value, std::string* scratch,
                    StreamFields* out);

// Checksum of a record body, seeded.
uint64_t RecordChecksum(std::string_view body, uint64_t seed);

}  // namespace evstore::format

#endif  // EVSTORE_LIB_FORMAT_RECORD_HPP_
