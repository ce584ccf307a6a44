// Fuzz target: checkpoint records (lib/format/checkpoint_record.hpp).
// Decoding any bytes under any name gives OK, Corruption (naming the
// checkpoint) or, for a format byte above the current one, NotSupported;
// what decodes re-encodes to the very same bytes (the record is fixed-size
// and every byte of it is checked); encoded fields decode back, and no longer
// do once a byte changed, the record is cut or grown, or it is read under
// another name.
//
// Input: a mode byte, then
//   0: name + stored value, decoded as is;
//   1: name + a 17-byte body (format, position, time), sealed with its
//      correct checksum first, so the checks after the checksum see any body;
//   2: fields (name, position, time), encoded, decoded, compared, damaged.
#include <xxhash.h>

#include "format/checkpoint_record.hpp"
#include "format/keys.hpp"
#include "format/record.hpp"
#include "fuzz_input.hpp"

using namespace evstore;

namespace {

constexpr size_t kBody = format::kCheckpointRecordBytes - format::kChecksumBytes;

bool NamesIt(const Status& s, const std::string& name) {
  return s.message().find("checkpoint '" + name + "'") != std::string_view::npos;
}

// Decodes `value` under `name` and checks the outcome against what the
// bytes say; returns whether it decoded.
bool DecodeChecked(const std::string& name, std::string_view value, format::CheckpointFields* f) {
  Status s = format::DecodeCheckpoint(name, value, f);
  const bool newer = !value.empty() && static_cast<uint8_t>(value[0]) > format::kCheckpointFormat;
  if (newer) {
    FUZZ_CHECK(s.IsNotSupported());
  } else {
    FUZZ_CHECK(s.ok() || s.IsCorruption());
  }
  if (!s.ok()) {
    FUZZ_CHECK(NamesIt(s, name));
    return false;
  }
  FUZZ_CHECK(value.size() == format::kCheckpointRecordBytes);
  FUZZ_CHECK(format::EncodeCheckpoint(name, *f) == value);
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzInput in(data, size);
  uint8_t mode = in.Byte() % 3;
  std::string name = in.Bytes(64);
  format::CheckpointFields f;
  if (mode == 0) {
    DecodeChecked(name, in.Rest(), &f);
    return 0;
  }
  if (mode == 1) {
    std::string value(in.Rest().substr(0, kBody));
    value.resize(kBody, '\0');
    // The seed (checkpoint_record.cpp): XXH3-64 of the name. Checked against
    // the encoder so that a change of seed cannot go unnoticed here.
    const uint64_t seed = XXH3_64bits(name.data(), name.size());
    std::string probe = format::EncodeCheckpoint(name, {7, 9});
    FUZZ_CHECK(format::GetLE64(probe.data() + kBody) ==
               format::RecordChecksum(std::string_view(probe).substr(0, kBody), seed));
    char sum[8];
    format::PutLE64(sum, format::RecordChecksum(value, seed));
    value.append(sum, 8);
    bool ok = DecodeChecked(name, value, &f);
    // Sealed, the body alone decides: format 1 decodes, with its fields.
    FUZZ_CHECK(ok == (static_cast<uint8_t>(value[0]) == format::kCheckpointFormat));
    if (ok) {
      FUZZ_CHECK(f.position == format::GetBE64(value.data() + 1));
      FUZZ_CHECK(f.updated_ms == static_cast<int64_t>(format::GetBE64(value.data() + 9)));
    }
    return 0;
  }
  format::CheckpointFields want{in.U64(), static_cast<int64_t>(in.U64())};
  std::string rec = format::EncodeCheckpoint(name, want);
  FUZZ_CHECK(rec.size() == format::kCheckpointRecordBytes);
  FUZZ_CHECK(DecodeChecked(name, rec, &f));
  FUZZ_CHECK(f.position == want.position && f.updated_ms == want.updated_ms);
  std::string other = name + static_cast<char>(in.Byte());
  FUZZ_CHECK(format::DecodeCheckpoint(other, rec, &f).IsCorruption());
  size_t at = in.U64() % rec.size();
  uint8_t flip = in.Byte();
  if (flip == 0) flip = 1;
  std::string bad = rec;
  bad[at] = static_cast<char>(bad[at] ^ flip);
  FUZZ_CHECK(!DecodeChecked(name, bad, &f));
  FUZZ_CHECK(!DecodeChecked(name, rec.substr(0, at), &f));
  FUZZ_CHECK(!DecodeChecked(name, rec + static_cast<char>(flip), &f));
  return 0;
}
