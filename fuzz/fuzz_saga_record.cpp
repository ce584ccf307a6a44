// Fuzz target: saga records (lib/format/saga_record.hpp). Decoding any bytes
// under any key gives OK or Corruption; what decodes re-encodes to an equal
// record; an encoded record decodes to its fields, and no longer does once a
// byte changed, it is truncated, or it is read under another id.
//
// Input: a mode byte, then
//   0: key + stored value, decoded as is;
//   1: key + record body, sealed with its correct checksum first (so the
//      FlatBuffers verifier and the enum checks see arbitrary tables);
//   2: fields of a saga record, encoded, decoded, compared, then damaged.
#include <algorithm>

#include "format/keys.hpp"
#include "format/record.hpp"
#include "format/saga_record.hpp"
#include "fuzz_input.hpp"

using namespace evstore;
using format::SagaRecordData;

namespace {

bool Same(const SagaRecordData& a, const SagaRecordData& b) {
  if (a.history.size() != b.history.size()) return false;
  for (size_t i = 0; i < a.history.size(); i++) {
    const auto &x = a.history[i], &y = b.history[i];
    if (x.time_ms != y.time_ms || x.kind != y.kind || x.state != y.state || x.step != y.step ||
        x.attempt != y.attempt || x.text != y.text)
      return false;
  }
  return a.id == b.id && a.definition == b.definition && a.version == b.version &&
         a.fingerprint == b.fingerprint && a.state == b.state && a.stuck_phase == b.stuck_phase &&
         a.step == b.step && a.attempt == b.attempt && a.next_attempt_ms == b.next_attempt_ms &&
         a.tainted == b.tainted && a.input == b.input && a.outputs == b.outputs &&
         a.error == b.error && a.created_ms == b.created_ms && a.updated_ms == b.updated_ms &&
         a.revision == b.revision && a.resolved == b.resolved &&
         a.history_dropped == b.history_dropped;
}

void CheckReencodes(const SagaRecordData& r) {
  FUZZ_CHECK(r.state < format::kSagaStateCount && r.stuck_phase < format::kSagaStateCount);
  for (const auto& h : r.history)
    FUZZ_CHECK(h.kind < format::kSagaEventCount && h.state < format::kSagaStateCount);
  std::string rec;
  format::EncodeSagaRecord(r, &rec);
  SagaRecordData back;
  FUZZ_CHECK(format::DecodeSagaRecord(r.id, rec, &back).ok());
  FUZZ_CHECK(Same(r, back));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzInput in(data, size);
  uint8_t mode = in.Byte() % 3;
  std::string key = in.Bytes(32);
  SagaRecordData r;
  if (mode == 0 || mode == 1) {
    std::string value(in.Rest());
    if (mode == 1) {
      // The saga seed (saga_record.cpp): checked against the encoder so a
      // change of seed cannot go unnoticed here.
      constexpr uint64_t kSagaSeed = 0x7361676172656301ull;
      uint64_t seed = format::RecordChecksum(key, kSagaSeed);
      SagaRecordData probe;
      probe.id = key;
      std::string enc;
      format::EncodeSagaRecord(probe, &enc);
      size_t n = enc.size() - format::kChecksumBytes;
      FUZZ_CHECK(format::GetLE64(enc.data() + n) ==
                 format::RecordChecksum(std::string_view(enc).substr(0, n), seed));
      char sum[8];
      format::PutLE64(sum, format::RecordChecksum(value, seed));
      value.append(sum, 8);
    }
    Status s = format::DecodeSagaRecord(key, value, &r);
    FUZZ_CHECK(s.ok() || s.IsCorruption());
    if (!s.ok()) return 0;
    FUZZ_CHECK(r.id == key);
    CheckReencodes(r);
    return 0;
  }
  r.id = key;
  r.definition = in.Bytes(16);
  r.version = static_cast<uint32_t>(in.U64());
  r.fingerprint = in.U64();
  r.state = in.Byte() % format::kSagaStateCount;
  r.stuck_phase = in.Byte() % format::kSagaStateCount;
  // The decoder refuses steps below -1 ("none"); the engine never writes them.
  r.step = std::max<int32_t>(-1, static_cast<int32_t>(in.U64()));
  r.attempt = static_cast<uint32_t>(in.U64());
  r.next_attempt_ms = static_cast<int64_t>(in.U64());
  uint8_t flags = in.Byte();
  r.tainted = flags & 1;
  r.resolved = flags & 2;
  r.input = in.Bytes(40);
  for (size_t i = 0, n = in.Byte() % 4; i < n; i++) r.outputs.push_back(in.Bytes(16));
  r.error = in.Bytes(24);
  r.created_ms = static_cast<int64_t>(in.U64());
  r.updated_ms = static_cast<int64_t>(in.U64());
  r.revision = in.U64();
  for (size_t i = 0, n = in.Byte() % 6; i < n; i++) {
    format::SagaHistoryData h;
    h.time_ms = static_cast<int64_t>(in.U64());
    h.kind = in.Byte() % format::kSagaEventCount;
    h.state = in.Byte() % format::kSagaStateCount;
    h.step = static_cast<int8_t>(in.Byte());
    h.attempt = in.Byte();
    h.text = in.Bytes(12);
    r.history.push_back(std::move(h));
  }
  r.history_dropped = in.Byte();
  CheckReencodes(r);
  std::string rec;
  format::EncodeSagaRecord(r, &rec);
  SagaRecordData back;
  FUZZ_CHECK(format::DecodeSagaRecord(key + "x", rec, &back).IsCorruption());
  size_t at = in.U64() % rec.size();
  uint8_t flip = in.Byte();
  if (flip == 0) flip = 1;
  rec[at] = static_cast<char>(rec[at] ^ flip);
  FUZZ_CHECK(format::DecodeSagaRecord(key, rec, &back).IsCorruption());
  rec[at] = static_cast<char>(rec[at] ^ flip);
  rec.resize(at);
  FUZZ_CHECK(format::DecodeSagaRecord(key, rec, &back).IsCorruption());
  return 0;
}
