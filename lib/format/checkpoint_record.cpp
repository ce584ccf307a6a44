// Checkpoint records (checkpoint_record.hpp).
#include "format/checkpoint_record.hpp"

#include <xxhash.h>

#include "format/keys.hpp"
#include "format/record.hpp"

namespace evstore::format {

namespace {
uint64_t Seed(std::string_view name) { return XXH3_64bits(name.data(), name.size()); }
}  // namespace

std::string EncodeCheckpoint(std::string_view name, const CheckpointFields& f) {
  std::string out(kCheckpointRecordBytes, '\0');
  out[0] = static_cast<char>(kCheckpointFormat);
  PutBE64(out.data() + 1, f.position);
  PutBE64(out.data() + 9, static_cast<uint64_t>(f.updated_ms));
  PutLE64(out.data() + 17, RecordChecksum(std::string_view(out.data(), 17), Seed(name)));
  return out;
}

Status DecodeCheckpoint(std::string_view name, std::string_view value, CheckpointFields* out) {
  auto bad = [&](const char* why) {
    return Status::Corruption("checkpoint '" + std::string(name) + "': " + why);
  };
  if (value.empty()) return bad("empty record");
  if (static_cast<uint8_t>(value[0]) > kCheckpointFormat)
    return Status::NotSupported("checkpoint '" + std::string(name) + "' uses record format " +
                                std::to_string(static_cast<uint8_t>(value[0])) +
                                ", newer than this evstore reads");
  if (static_cast<uint8_t>(value[0]) != kCheckpointFormat) return bad("unknown record format");
  if (value.size() != kCheckpointRecordBytes) return bad("record has the wrong length");
  if (RecordChecksum(value.substr(0, 17), Seed(name)) != GetLE64(value.data() + 17))
    return bad("checksum mismatch");
  out->position = GetBE64(value.data() + 1);
  out->updated_ms = static_cast<int64_t>(GetBE64(value.data() + 9));
  return Status::OK();
}

}  // namespace evstore::format
