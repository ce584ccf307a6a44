#include "format/saga_record.hpp"

#include <cstring>

#include "format/keys.hpp"
#include "format/record.hpp"
#include "saga_generated.h"

namespace evstore::format {
namespace {

constexpr uint64_t kSagaSeed = 0x7361676172656301ull;

uint64_t SeedFor(std::string_view key) { return RecordChecksum(key, kSagaSeed); }

std::string_view View(const flatbuffers::String* s) {
  return s ? std::string_view(s->data(), s->size()) : std::string_view();
}

std::string_view View(const flatbuffers::Vector<uint8_t>* v) {
  return v ? std::string_view(reinterpret_cast<const char*>(v->data()), v->size())
           : std::string_view();
}

flatbuffers::Offset<flatbuffers::Vector<uint8_t>> Bytes(flatbuffers::FlatBufferBuilder& fbb,
                                                        std::string_view s) {
  return fbb.CreateVector(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

std::string PrintableKey(std::string_view key) {
  std::string out;
  for (char c : key.substr(0, 64)) {
    auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f) {
      out += c;
    } else {
      static const char* kHex = "0123456789abcdef";
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
  if (key.size() > 64) out += "...";
  return out;
}

}  // namespace

void EncodeSagaRecord(const SagaRecordData& r, std::string* out) {
  thread_local flatbuffers::FlatBufferBuilder fbb(1024);
  fbb.Clear();
  std::vector<flatbuffers::Offset<fb::SagaBytes>> outs;
  outs.reserve(r.outputs.size());
  for (const std::string& o : r.outputs) {
    auto d = Bytes(fbb, o);
    outs.push_back(fb::CreateSagaBytes(fbb, d));
  }
  std::vector<flatbuffers::Offset<fb::SagaHistoryEntry>> hist;
  hist.reserve(r.history.size());
  for (const SagaHistoryData& h : r.history) {
    auto t = fbb.CreateString(h.text.data(), h.text.size());
    hist.push_back(
        fb::CreateSagaHistoryEntry(fbb, h.time_ms, h.kind, h.state, h.step, h.attempt, t));
  }
  auto id = fbb.CreateString(r.id.data(), r.id.size());
  auto def = fbb.CreateString(r.definition.data(), r.definition.size());
  auto input = Bytes(fbb, r.input);
  auto outputs = fbb.CreateVector(outs);
  auto error = fbb.CreateString(r.error.data(), r.error.size());
  auto history = fbb.CreateVector(hist);
  fb::SagaRecordBuilder b(fbb);
  b.add_id(id);
  b.add_definition(def);
  b.add_version(r.version);
  b.add_fingerprint(r.fingerprint);
  b.add_state(r.state);
  b.add_stuck_phase(r.stuck_phase);
  b.add_step(r.step);
  b.add_attempt(r.attempt);
  b.add_next_attempt_ms(r.next_attempt_ms);
  b.add_tainted(r.tainted);
  b.add_input(input);
  b.add_outputs(outputs);
  b.add_error(error);
  b.add_created_ms(r.created_ms);
  b.add_updated_ms(r.updated_ms);
  b.add_revision(r.revision);
  b.add_resolved(r.resolved);
  b.add_history(history);
  b.add_history_dropped(r.history_dropped);
  b.add_started(r.started);
  fbb.Finish(b.Finish());
  const char* p = reinterpret_cast<const char*>(fbb.GetBufferPointer());
  size_t n = fbb.GetSize();
  out->resize(n + kChecksumBytes);
  std::memcpy(out->data(), p, n);
  PutLE64(out->data() + n, RecordChecksum(std::string_view(p, n), SeedFor(r.id)));
}

Status DecodeSagaRecord(std::string_view key, std::string_view value, SagaRecordData* out) {
  auto bad = [&](const char* why) {
    return Status::Corruption("saga record '" + PrintableKey(key) + "': " + why);
  };
  if (value.size() < kChecksumBytes + 8) return bad("record too short");
  size_t n = value.size() - kChecksumBytes;
  if (RecordChecksum(value.substr(0, n), SeedFor(key)) != GetLE64(value.data() + n))
    return bad("checksum mismatch");
  // FlatBuffers needs aligned memory: std::string storage is malloc-aligned.
  std::string body(value.data(), n);
  const auto* buf = reinterpret_cast<const uint8_t*>(body.data());
  flatbuffers::Verifier verifier(buf, n);
  if (!fb::VerifySagaRecordBuffer(verifier)) return bad("schema verification failed");
  const fb::SagaRecord* r = fb::GetSagaRecord(buf);
  if (r->id() == nullptr || View(r->id()) != key) return bad("stored id disagrees with its key");
  if (r->definition() == nullptr) return bad("no definition name");
  if (r->state() >= kSagaStateCount || r->stuck_phase() >= kSagaStateCount)
    return bad("state out of range");
  if (r->step() < -1) return bad("step out of range");
  out->id = std::string(key);
  out->definition = std::string(View(r->definition()));
  out->version = r->version();
  out->fingerprint = r->fingerprint();
  out->state = r->state();
  out->stuck_phase = r->stuck_phase();
  out->step = r->step();
  out->attempt = r->attempt();
  out->next_attempt_ms = r->next_attempt_ms();
  out->tainted = r->tainted();
  out->input = std::string(View(r->input()));
  out->outputs.clear();
  if (const auto* outs = r->outputs()) {
    out->outputs.reserve(outs->size());
    for (const fb::SagaBytes* o : *outs) {
      if (o == nullptr) return bad("null output");
      out->outputs.emplace_back(View(o->data()));
    }
  }
  out->error = std::string(View(r->error()));
  out->created_ms = r->created_ms();
  out->updated_ms = r->updated_ms();
  out->revision = r->revision();
  out->resolved = r->resolved();
  out->history.clear();
  if (const auto* hs = r->history()) {
    out->history.reserve(hs->size());
    for (const fb::SagaHistoryEntry* h : *hs) {
      if (h == nullptr) return bad("null history entry");
      if (h->kind() >= kSagaEventCount || h->state() >= kSagaStateCount)
        return bad("history entry out of range");
      out->history.push_back(SagaHistoryData{h->time_ms(), h->kind(), h->state(), h->step(),
                                             h->attempt(), std::string(View(h->text()))});
    }
  }
  out->history_dropped = r->history_dropped();
  out->started = r->started();
  return Status::OK();
}

std::string SagaOpenKey(std::string_view id) {
  std::string k(kSagaOpenPrefix);
  k.append(id);
  return k;
}

std::string SagaFinishedKey(int64_t finished_ms, std::string_view id) {
  std::string k(kSagaFinishedPrefix);
  k.append(Be64(static_cast<uint64_t>(finished_ms < 0 ? 0 : finished_ms)).view());
  k.append(id);
  return k;
}

std::string EncodeSagaIndexVersion(uint32_t version) {
  char b[8];
  PutBE64(b, version);
  return std::string(b + 4, 4);
}

std::optional<uint32_t> DecodeSagaIndexVersion(std::string_view value) {
  if (value.size() != 4) return std::nullopt;
  char b[8] = {0, 0, 0, 0, value[0], value[1], value[2], value[3]};
  return static_cast<uint32_t>(GetBE64(b));
}

bool ParseSagaIndexKey(std::string_view key, SagaIndexEntry* out) {
  if (key.size() < 2 || key[0] != '\0') return false;
  *out = SagaIndexEntry();
  out->kind = key[1];
  std::string_view rest = key.substr(2);
  switch (out->kind) {
    case 'v': return rest.empty();
    case 'o': break;
    case 'f':
      if (rest.size() < 8) return false;
      out->finished_ms = static_cast<int64_t>(GetBE64(rest.data()));
      if (out->finished_ms < 0) return false;
      rest.remove_prefix(8);
      break;
    default: return false;
  }
  // Saga ids: 1..256 bytes without 0x00 (their UTF-8 is checked with the record).
  if (rest.empty() || rest.size() > 256 || rest.find('\0') != std::string_view::npos) return false;
  out->id = rest;
  return true;
}

}  // namespace evstore::format
