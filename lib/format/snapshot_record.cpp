// Snapshot records (snapshot_record.hpp).
#include "format/snapshot_record.hpp"

#include <xxhash.h>

#include "format/keys.hpp"
#include "format/record.hpp"

namespace evstore::format {

namespace {
uint64_t Seed(std::string_view key) { return XXH3_64bits(key.data(), key.size()); }

void PutBE32(char* dst, uint32_t v) {
  for (int i = 3; i >= 0; i--) {
    dst[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
}

uint32_t GetBE32(const char* src) {
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) v = (v << 8) | static_cast<uint8_t>(src[i]);
  return v;
}

// A printable form of a key for messages (names are UTF-8; the separator
// shows as '/').
std::string Describe(std::string_view key) {
  std::string s(key);
  for (char& c : s)
    if (c == '\0') c = '/';
  return "snapshot '" + s + "'";
}
}  // namespace

std::string SnapshotKey(std::string_view aggregate, std::string_view stream) {
  std::string k;
  k.reserve(aggregate.size() + 1 + stream.size());
  k.append(aggregate);
  k.push_back('\0');
  k.append(stream);
  return k;
}

std::optional<DecodedSnapshotKey> DecodeSnapshotKey(std::string_view key) {
  size_t z = key.find('\0');
  if (z == std::string_view::npos || z == 0 || z + 1 >= key.size()) return std::nullopt;
  return DecodedSnapshotKey{key.substr(0, z), key.substr(z + 1)};
}

std::string EncodeSnapshot(std::string_view key, const SnapshotFields& f) {
  std::string out(kSnapshotHeaderBytes, '\0');
  out[0] = static_cast<char>(kSnapshotRecordFormat);
  PutBE32(out.data() + 1, f.schema);
  PutBE64(out.data() + 5, f.version);
  PutBE64(out.data() + 13, f.stream_id);
  PutBE64(out.data() + 21, f.position);
  PutBE64(out.data() + 29, static_cast<uint64_t>(f.created_ms));
  out.append(f.state);
  char sum[kChecksumBytes];
  PutLE64(sum, RecordChecksum(out, Seed(key)));
  out.append(sum, kChecksumBytes);
  return out;
}

Status DecodeSnapshot(std::string_view key, std::string_view value, SnapshotFields* out) {
  auto bad = [&](const char* why) { return Status::Corruption(Describe(key) + ": " + why); };
  if (value.empty()) return bad("empty record");
  uint8_t fmt = static_cast<uint8_t>(value[0]);
  if (fmt > kSnapshotRecordFormat)
    return Status::NotSupported(Describe(key) + " uses record format " + std::to_string(fmt) +
                                ", newer than this evstore reads");
  if (fmt != kSnapshotRecordFormat) return bad("unknown record format");
  if (value.size() < kSnapshotHeaderBytes + kChecksumBytes) return bad("record too short");
  size_t n = value.size() - kChecksumBytes;
  if (RecordChecksum(value.substr(0, n), Seed(key)) != GetLE64(value.data() + n))
    return bad("checksum mismatch");
  out->schema = GetBE32(value.data() + 1);
  out->version = GetBE64(value.data() + 5);
  out->stream_id = GetBE64(value.data() + 13);
  out->position = GetBE64(value.data() + 21);
  out->created_ms = static_cast<int64_t>(GetBE64(value.data() + 29));
  out->state = value.substr(kSnapshotHeaderBytes, n - kSnapshotHeaderBytes);
  return Status::OK();
}

}  // namespace evstore::format
