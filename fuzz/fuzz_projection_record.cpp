// Fuzz target: projection records (format/projection_record.hpp). Decoding
// any bytes under any key gives OK, Corruption or NotSupported; what decodes
// re-encodes to the same bytes; a record with any byte changed or cut short
// never decodes; a record never decodes under another key.
//
// Input: a mode byte, then
//   0: key + stored value, decoded as a meta and as an instance record;
//   1: meta fields, encoded, decoded and compared, then damaged;
//   2: instance fields (name included), the same.
#include "format/projection_record.hpp"
#include "fuzz_input.hpp"

using namespace evstore;

namespace {

bool Expected(const Status& s) { return s.ok() || s.IsCorruption() || s.IsNotSupported(); }

// Flips one byte (chosen by `at`) and cuts one record short: neither decodes.
template <typename Decode>
void Damage(FuzzInput& in, const std::string& key, const std::string& rec, Decode decode) {
  std::string bad = rec;
  size_t at = in.U64() % bad.size();
  uint8_t x = in.Byte();
  bad[at] = static_cast<char>(bad[at] ^ (x == 0 ? 1 : x));
  FUZZ_CHECK(!decode(key, bad).ok());
  FUZZ_CHECK(!decode(key, std::string_view(rec).substr(0, in.U64() % rec.size())).ok());
  FUZZ_CHECK(!decode(key + "x", rec).ok());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzInput in(data, size);
  uint8_t mode = in.Byte() % 3;
  auto meta = [](std::string_view k, std::string_view v) {
    format::ProjectionMeta m;
    return format::DecodeProjectionMeta(k, v, &m);
  };
  auto instance = [](std::string_view k, std::string_view v) {
    format::ProjectionInstance r;
    return format::DecodeProjectionInstance(k, v, &r);
  };
  if (mode == 0) {
    std::string key = in.Bytes(64);
    std::string value(in.Rest());
    format::ProjectionMeta m;
    Status s = format::DecodeProjectionMeta(key, value, &m);
    FUZZ_CHECK(Expected(s));
    if (s.ok()) FUZZ_CHECK(format::EncodeProjectionMeta(key, m) == value);
    format::ProjectionInstance r;
    s = format::DecodeProjectionInstance(key, value, &r);
    FUZZ_CHECK(Expected(s));
    if (s.ok()) FUZZ_CHECK(format::EncodeProjectionInstance(key, r) == value);
    return 0;
  }
  if (mode == 1) {
    std::string key = format::ProjMetaKey(in.Bytes(64));
    format::ProjectionMeta m;
    m.active_id = in.U64();
    m.active_version = static_cast<uint32_t>(in.U64());
    m.building_id = in.U64();
    m.building_version = static_cast<uint32_t>(in.U64());
    std::string rec = format::EncodeProjectionMeta(key, m);
    format::ProjectionMeta back;
    FUZZ_CHECK(format::DecodeProjectionMeta(key, rec, &back).ok());
    FUZZ_CHECK(back.active_id == m.active_id && back.active_version == m.active_version &&
               back.building_id == m.building_id && back.building_version == m.building_version);
    Damage(in, key, rec, meta);
    return 0;
  }
  std::string key = format::ProjInstanceKey(in.U64());
  format::ProjectionInstance r;
  r.position = in.U64();
  r.handled = in.U64();
  r.updated_ms = static_cast<int64_t>(in.U64());
  r.version = static_cast<uint32_t>(in.U64());
  r.name = in.Bytes(300);
  std::string rec = format::EncodeProjectionInstance(key, r);
  format::ProjectionInstance back;
  FUZZ_CHECK(format::DecodeProjectionInstance(key, rec, &back).ok());
  FUZZ_CHECK(back.position == r.position && back.handled == r.handled && back.updated_ms == r.updated_ms &&
             back.version == r.version && back.name == r.name);
  Damage(in, key, rec, instance);
  return 0;
}
