// Fuzz target: command log records and keys
// (lib/format/command_record.hpp). Decoding any bytes under any key gives
// OK, Corruption (naming the record) or, for a format byte above the current
// one, NotSupported; what decodes re-encodes to the very same bytes (every
// field is stored); encoded fields decode back, and no longer do once a byte
// changed, the record is cut or grown, or it is read under another key. Age
// index keys decode back to their time and id; fingerprints depend on where
// the type, stream and payload split.
//
// Input: a mode byte, then
//   0: key + stored value, decoded as is (the key also to the age decoder);
//   1: key + a body sealed with its correct checksum first, so the length
//      and field checks after the checksum see any body;
//   2: fields (id, outcome, tries, time, fingerprint, base, events, type,
//      stream, error code and message), encoded, decoded, compared, damaged.
#include <xxhash.h>

#include "format/command_record.hpp"
#include "format/keys.hpp"
#include "format/record.hpp"
#include "fuzz_input.hpp"

using namespace evstore;

namespace {

bool NamesIt(const Status& s) { return s.message().find("command record '") != std::string_view::npos; }

bool SameFields(const format::CommandFields& a, const format::CommandFields& b) {
  return a.outcome == b.outcome && a.tries == b.tries && a.handled_ms == b.handled_ms &&
         a.fingerprint == b.fingerprint && a.base == b.base && a.events == b.events && a.type == b.type &&
         a.stream == b.stream && a.error_code == b.error_code && a.error_message == b.error_message;
}

bool DecodeChecked(const std::string& key, std::string_view value, format::CommandFields* f) {
  Status s = format::DecodeCommand(key, value, f);
  const bool newer = !value.empty() && static_cast<uint8_t>(value[0]) > format::kCommandRecordFormat;
  if (newer) {
    FUZZ_CHECK(s.IsNotSupported());
  } else {
    FUZZ_CHECK(s.ok() || s.IsCorruption());
  }
  if (!s.ok()) {
    FUZZ_CHECK(NamesIt(s));
    return false;
  }
  FUZZ_CHECK(f->outcome <= format::kOutcomeRejected);
  FUZZ_CHECK(f->outcome == format::kOutcomeAccepted || f->events == 0);
  FUZZ_CHECK(format::EncodeCommand(key, *f) == value);
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzInput in(data, size);
  uint8_t mode = in.Byte() % 3;
  format::CommandFields f;
  if (mode == 0) {
    std::string key = in.Bytes(64);
    if (auto a = format::DecodeCommandAgeKey(key)) {
      FUZZ_CHECK(!a->id.empty());
      FUZZ_CHECK(format::CommandAgeKey(a->handled_ms, a->id) == key || a->handled_ms < 0);
    }
    DecodeChecked(key, in.Rest(), &f);
    return 0;
  }
  if (mode == 1) {
    std::string key = in.Bytes(64);
    std::string value(in.Rest());
    const uint64_t seed = XXH3_64bits(key.data(), key.size());
    std::string probe = format::EncodeCommand(key, format::CommandFields{});
    const size_t body = probe.size() - format::kChecksumBytes;
    FUZZ_CHECK(format::GetLE64(probe.data() + body) ==
               format::RecordChecksum(std::string_view(probe).substr(0, body), seed));
    char sum[8];
    format::PutLE64(sum, format::RecordChecksum(value, seed));
    value.append(sum, 8);
    DecodeChecked(key, value, &f);
    return 0;
  }
  std::string id = in.Bytes(40);
  if (id.empty()) id.push_back('c');
  std::string key = format::CommandKey(id);
  format::CommandFields want;
  want.outcome = in.Byte() % 2;
  want.tries = static_cast<uint32_t>(in.U64());
  want.handled_ms = static_cast<int64_t>(in.U64() >> 1);
  want.fingerprint = in.U64();
  want.base = in.U64();
  want.events = want.outcome == format::kOutcomeRejected ? 0 : in.U64();
  want.type = in.Bytes(40);
  want.stream = in.Bytes(40);
  want.error_code = in.Bytes(40);
  want.error_message = in.Bytes(100);
  std::string rec = format::EncodeCommand(key, want);
  FUZZ_CHECK(DecodeChecked(key, rec, &f));
  FUZZ_CHECK(SameFields(f, want));
  const std::string age_key = format::CommandAgeKey(want.handled_ms, id);
  auto age = format::DecodeCommandAgeKey(age_key);
  FUZZ_CHECK(age && age->handled_ms == want.handled_ms && age->id == id);
  // The split between type, stream and payload is part of the fingerprint.
  const std::string& t = want.type;
  if (!t.empty()) {
    // The type's first byte moved to the stream: the same bytes, split
    // elsewhere.
    std::string shorter(t.begin() + 1, t.end()), longer(want.stream);
    longer.insert(longer.begin(), t.front());
    FUZZ_CHECK(format::CommandFingerprint(t, want.stream, "p") ==
               format::CommandFingerprint(t, want.stream, "p"));
    FUZZ_CHECK(format::CommandFingerprint(t, want.stream, "p") !=
               format::CommandFingerprint(shorter, longer, "p"));
  }
  std::string other = key + static_cast<char>(in.Byte());
  FUZZ_CHECK(format::DecodeCommand(other, rec, &f).IsCorruption());
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
