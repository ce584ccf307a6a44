// Fuzz target: event records. Decoding any bytes must give OK or Corruption,
// never a crash; what decodes re-encodes to an equal event; a record whose
// bytes changed never decodes; every decoded event renders as text, hex and
// valid JSON.
//
// Input: a mode byte, then
//   0: position (8 bytes) + a stored value, decoded as is;
//   1: position (8 bytes) + a record body, sealed with its correct checksum
//      first (so the FlatBuffers verifier sees arbitrary tables);
//   2: fields of an event, encoded, decoded and compared; then one byte of
//      the record is changed and the decode must fail.
#include <cstring>

#include "event_generated.h"
#include "evstore/inspect.hpp"
#include "format/keys.hpp"
#include "format/record.hpp"
#include "fuzz_input.hpp"
#include "json_check.hpp"

using namespace evstore;

namespace {

void CheckRenders(const EventView& e, std::string_view record) {
  for (auto f : {inspect::DumpFormat::kText, inspect::DumpFormat::kJson, inspect::DumpFormat::kHex}) {
    std::string out;
    inspect::FormatEvent(e, f, record, &out);
    FUZZ_CHECK(!out.empty() && out.back() == '\n');
    if (f == inspect::DumpFormat::kJson) FUZZ_CHECK(JsonCheck::Valid(out));
    if (f == inspect::DumpFormat::kText) FUZZ_CHECK(out.find('\n') == out.size() - 1);
  }
}

bool Same(const EventView& a, const EventView& b) {
  return a.id == b.id && a.stream == b.stream && a.type == b.type &&
         a.content_type == b.content_type && a.data == b.data && a.metadata == b.metadata &&
         a.version == b.version && a.position == b.position && a.timestamp_ms == b.timestamp_ms;
}

// Re-encodes a decoded event (its body is in `scratch`) and checks the round trip.
void CheckReencodes(const EventView& e, const std::string& scratch) {
  uint64_t sid = fb::GetEventRecord(scratch.data())->stream_id();
  format::RecordEncoder enc;
  std::string rec, scratch2;
  enc.EncodeEvent(format::EventFields{e.id, e.position, e.stream, sid, e.version, e.type,
                                      e.content_type, e.data, e.metadata, e.timestamp_ms},
                  &rec);
  EventView back;
  FUZZ_CHECK(format::DecodeEvent(e.position, rec, &scratch2, &back).ok());
  FUZZ_CHECK(Same(e, back));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzInput in(data, size);
  uint8_t mode = in.Byte() % 3;
  std::string scratch;
  EventView e;
  if (mode == 0 || mode == 1) {
    uint64_t pos = in.U64();
    std::string value(in.Rest());
    if (mode == 1) {
      char sum[8];
      format::PutLE64(sum, format::RecordChecksum(value, pos));
      value.append(sum, 8);
    }
    Status s = format::DecodeEvent(pos, value, &scratch, &e);
    FUZZ_CHECK(s.ok() || s.IsCorruption());
    if (!s.ok()) {
      FUZZ_CHECK(std::string(s.message()).find("position " + std::to_string(pos)) !=
                 std::string::npos);
      return 0;
    }
    FUZZ_CHECK(e.position == pos);
    CheckRenders(e, value);
    CheckReencodes(e, scratch);
    return 0;
  }

  format::EventFields f{};
  for (auto& b : f.id.bytes) b = in.Byte();
  f.position = in.U64();
  std::string stream = in.Bytes(40), type = in.Bytes(20), ct = in.Bytes(20), d = in.Bytes(200),
              meta = in.Bytes(40);
  f.stream = stream;
  f.type = type;
  f.content_type = ct;
  f.data = d;
  f.metadata = meta;
  f.stream_id = in.U64();
  f.version = in.U64();
  f.timestamp_ms = static_cast<int64_t>(in.U64());
  format::RecordEncoder enc;
  std::string rec;
  enc.EncodeEvent(f, &rec);
  FUZZ_CHECK(format::DecodeEvent(f.position, rec, &scratch, &e).ok());
  FUZZ_CHECK(e.id == f.id && e.stream == f.stream && e.type == f.type &&
             e.content_type == f.content_type && e.data == f.data && e.metadata == f.metadata &&
             e.version == f.version && e.timestamp_ms == f.timestamp_ms);
  FUZZ_CHECK(fb::GetEventRecord(scratch.data())->stream_id() == f.stream_id);
  CheckRenders(e, rec);
  // The checksum is seeded with the position: the record does not verify
  // under another key.
  FUZZ_CHECK(!format::DecodeEvent(f.position + 1, rec, &scratch, &e).ok());
  // A changed byte (the checksum included) never decodes.
  size_t at = in.U64() % rec.size();
  uint8_t flip = in.Byte();
  if (flip == 0) flip = 1;
  rec[at] = static_cast<char>(rec[at] ^ flip);
  FUZZ_CHECK(format::DecodeEvent(f.position, rec, &scratch, &e).IsCorruption());
  // A truncated record never decodes.
  rec[at] = static_cast<char>(rec[at] ^ flip);
  rec.resize(at);
  FUZZ_CHECK(format::DecodeEvent(f.position, rec, &scratch, &e).IsCorruption());
  return 0;
}
