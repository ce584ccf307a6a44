// Fuzz target: aggregate snapshot records and keys
// (lib/format/snapshot_record.hpp). Decoding any bytes under any key gives
// OK, Corruption (naming the snapshot) or, for a format byte above the
// current one, NotSupported; what decodes re-encodes to the very same bytes;
// encoded fields decode back, and no longer do once a byte changed, the
// record is cut or grown, or it is read under another key. Snapshot keys
// split back into the aggregate and stream they were made of.
//
// Input: a mode byte, then
//   0: key + stored value, decoded as is;
//   1: key + a body (format, schema, version, stream id, position, time,
//      state), sealed with its correct checksum first, so the checks after
//      the checksum see any body;
//   2: fields (aggregate, stream, schema, version, stream id, position, time,
//      state), encoded, decoded, compared, damaged.
#include <xxhash.h>

#include "format/keys.hpp"
#include "format/record.hpp"
#include "format/snapshot_record.hpp"
#include "fuzz_input.hpp"

using namespace evstore;

namespace {

bool NamesIt(const Status& s) { return s.message().find("snapshot '") != std::string_view::npos; }

bool SameFields(const format::SnapshotFields& a, const format::SnapshotFields& b) {
  return a.schema == b.schema && a.version == b.version && a.stream_id == b.stream_id &&
         a.position == b.position && a.created_ms == b.created_ms && a.state == b.state;
}

// Decodes `value` under `key` and checks the outcome against what the bytes
// say; returns whether it decoded.
bool DecodeChecked(const std::string& key, std::string_view value, format::SnapshotFields* f) {
  Status s = format::DecodeSnapshot(key, value, f);
  const bool newer = !value.empty() && static_cast<uint8_t>(value[0]) > format::kSnapshotRecordFormat;
  if (newer) {
    FUZZ_CHECK(s.IsNotSupported());
  } else {
    FUZZ_CHECK(s.ok() || s.IsCorruption());
  }
  if (!s.ok()) {
    FUZZ_CHECK(NamesIt(s));
    return false;
  }
  FUZZ_CHECK(value.size() >= format::kSnapshotHeaderBytes + format::kChecksumBytes);
  FUZZ_CHECK(format::EncodeSnapshot(key, *f) == value);
  return true;
}

// A name as the aggregate side allows: no NUL, at least one byte.
std::string Name(FuzzInput& in) {
  std::string n = in.Bytes(40);
  for (char& c : n)
    if (c == '\0') c = '0';
  return n.empty() ? std::string("n") : n;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzInput in(data, size);
  uint8_t mode = in.Byte() % 3;
  format::SnapshotFields f;
  if (mode == 0) {
    std::string key = in.Bytes(64);
    if (auto k = format::DecodeSnapshotKey(key)) {
      FUZZ_CHECK(!k->aggregate.empty() && !k->stream.empty());
      FUZZ_CHECK(k->aggregate.find('\0') == std::string_view::npos);
      FUZZ_CHECK(format::SnapshotKey(k->aggregate, k->stream) == key);
    }
    DecodeChecked(key, in.Rest(), &f);
    return 0;
  }
  if (mode == 1) {
    std::string key = in.Bytes(64);
    std::string value(in.Rest());
    if (value.size() < format::kSnapshotHeaderBytes) value.resize(format::kSnapshotHeaderBytes, '\0');
    // The seed (snapshot_record.cpp): XXH3-64 of the key. Checked against
    // the encoder so that a change of seed cannot go unnoticed here.
    const uint64_t seed = XXH3_64bits(key.data(), key.size());
    std::string probe = format::EncodeSnapshot(key, format::SnapshotFields{});
    const size_t body = probe.size() - format::kChecksumBytes;
    FUZZ_CHECK(format::GetLE64(probe.data() + body) ==
               format::RecordChecksum(std::string_view(probe).substr(0, body), seed));
    char sum[8];
    format::PutLE64(sum, format::RecordChecksum(value, seed));
    value.append(sum, 8);
    bool ok = DecodeChecked(key, value, &f);
    // Sealed, the format byte alone decides, and the fields are the body's.
    FUZZ_CHECK(ok == (static_cast<uint8_t>(value[0]) == format::kSnapshotRecordFormat));
    if (ok) {
      FUZZ_CHECK(f.version == format::GetBE64(value.data() + 5));
      FUZZ_CHECK(f.state.size() == value.size() - format::kSnapshotHeaderBytes - format::kChecksumBytes);
    }
    return 0;
  }
  std::string aggregate = Name(in), stream = Name(in);
  std::string key = format::SnapshotKey(aggregate, stream);
  auto k = format::DecodeSnapshotKey(key);
  FUZZ_CHECK(k && k->aggregate == aggregate && k->stream == stream);
  format::SnapshotFields want;
  want.schema = static_cast<uint32_t>(in.U64());
  want.version = in.U64();
  want.stream_id = in.U64();
  want.position = in.U64();
  want.created_ms = static_cast<int64_t>(in.U64());
  std::string state = in.Bytes(200);
  want.state = state;
  std::string rec = format::EncodeSnapshot(key, want);
  FUZZ_CHECK(DecodeChecked(key, rec, &f));
  FUZZ_CHECK(SameFields(f, want));
  std::string other = key + static_cast<char>(in.Byte());
  FUZZ_CHECK(format::DecodeSnapshot(other, rec, &f).IsCorruption());
  size_t at = in.U64() % rec.size();
  uint8_t flip = in.Byte();
  if (flip == 0) flip = 1;
  std::string bad = rec;
  bad[at] = static_cast<char>(bad[at] ^ flip);
  FUZZ_CHECK(!DecodeChecked(key, bad, &f));
  FUZZ_CHECK(!DecodeChecked(key, rec.substr(0, at), &f));
  FUZZ_CHECK(!DecodeChecked(key, rec + static_cast<char>(flip), &f));
  return 0;
}
