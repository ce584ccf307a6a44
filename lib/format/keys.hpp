// Key codecs for every column family (docs/format.md is the grammar).
// Fixed-width integers are big-endian so that bytewise order is numeric order.
#ifndef EVSTORE_LIB_FORMAT_KEYS_HPP_
#define EVSTORE_LIB_FORMAT_KEYS_HPP_

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace evstore::format {

inline void PutBE64(char* dst, uint64_t v) {
  for (int i = 7; i >= 0; i--) {
    dst[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
}

inline uint64_t GetBE64(const char* src) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = (v << 8) | static_cast<uint8_t>(src[i]);
  return v;
}

inline void PutLE64(char* dst, uint64_t v) {
  for (int i = 0; i < 8; i++) {
    dst[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
}

inline uint64_t GetLE64(const char* src) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = (v << 8) | static_cast<uint8_t>(src[i]);
  return v;
}

// A fixed 8-byte big-endian key or value.
struct Be64 {
  char buf[8];
  explicit Be64(uint64_t v) { PutBE64(buf, v); }
  std::string_view view() const { return std::string_view(buf, 8); }
};

// events: position (8 bytes BE).
inline Be64 EventKey(uint64_t position) { return Be64(position); }
std::optional<uint64_t> DecodeEventKey(std::string_view key);

// stream_index: stream id (8 BE) + version (8 BE); value: position (8 BE).
struct StreamIndexKey {
  char buf[16];
  StreamIndexKey(uint64_t stream_id, uint64_t version) {
    PutBE64(buf, stream_id);
    PutBE64(buf + 8, version);
  }
  std::string_view view() const { return std::string_view(buf, 16); }
};
struct DecodedStreamIndexKey {
  uint64_t stream_id;
  uint64_t version;
};
std::optional<DecodedStreamIndexKey> DecodeStreamIndexKey(std::string_view key);
std::optional<uint64_t> DecodePositionValue(std::string_view value);

// category_index and type_index: name + 0x00 + position (8 BE); empty value.
// Names never contain 0x00, so one name's keys are contiguous.
std::string NameIndexKey(std::string_view name, uint64_t position);
void AppendNameIndexKey(std::string* out, std::string_view name, uint64_t position);
// The prefix shared by all keys of `name` (name + 0x00).
std::string NameIndexPrefix(std::string_view name);
struct DecodedNameIndexKey {
  std::string_view name;
  uint64_t position;
};
std::optional<DecodedNameIndexKey> DecodeNameIndexKey(std::string_view key);

// default column family: store metadata keys.
inline constexpr std::string_view kFormatKey = "evstore.format";
inline constexpr std::string_view kNextStreamIdKey = "evstore.next_stream_id";
inline constexpr std::string_view kIdTagKey = "evstore.id_tag";

// Event ids that evstore generates are position-derived version-8 UUIDs:
// bytes 0..7 hold the store's random id tag (with the version nibble),
// bytes 8..15 hold the position (with the RFC 4122 variant bits). Such an id
// is found by reading the event at its position, so it needs no entry in
// event_ids; caller-supplied ids are indexed there.
void MakeGeneratedId(uint64_t tag, uint64_t position, uint8_t out[16]);
// The position a generated id of this store names, if `id` is one.
std::optional<uint64_t> GeneratedIdPosition(uint64_t tag, const uint8_t id[16]);

// The on-disk format version this build writes and the newest it reads.
// 2: event records may carry correlation_id, causation_id and
// schema_version (absent in format 1: empty, empty, 1). A format-1 store
// opened read-write is marked 2.
inline constexpr uint32_t kFormatVersion = 2;
inline constexpr std::string_view kFormatMagic = "evstore\x1f";

// Format record: magic (8) + version (4 BE) + created_ms (8 BE).
std::string EncodeFormatRecord(uint32_t version, int64_t created_ms);
struct FormatRecord {
  uint32_t version;
  int64_t created_ms;
};
std::optional<FormatRecord> DecodeFormatRecord(std::string_view value);

}  // namespace evstore::format

#endif  // EVSTORE_LIB_FORMAT_KEYS_HPP_
