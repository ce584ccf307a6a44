#include "format/record.hpp"

#include <xxhash.h>

#include <cstring>

#include "event_generated.h"
#include "format/keys.hpp"
#include "stream_generated.h"

namespace evstore::format {
namespace {

// The stream record's checksum seed: distinct from any event position's
// domain only by construction of the key space, so a fixed constant is fine.
constexpr uint64_t kStreamSeed = 0x73747265616d0001ull;

fb::Uuid ToFb(const Uuid& id) {
  uint64_t hi = 0, lo = 0;
  for (int i = 0; i < 8; i++) hi = (hi << 8) | id.bytes[i];
  for (int i = 8; i < 16; i++) lo = (lo << 8) | id.bytes[i];
  return fb::Uuid(hi, lo);
}

Uuid FromFb(const fb::Uuid& u) {
  Uuid id;
  uint64_t hi = u.hi(), lo = u.lo();
  for (int i = 7; i >= 0; i--) {
    id.bytes[i] = static_cast<uint8_t>(hi & 0xff);
    hi >>= 8;
  }
  for (int i = 15; i >= 8; i--) {
    id.bytes[i] = static_cast<uint8_t>(lo & 0xff);
    lo >>= 8;
  }
  return id;
}

std::string_view View(const flatbuffers::String* s) {
  return s ? std::string_view(s->data(), s->size()) : std::string_view();
}

std::string_view View(const flatbuffers::Vector<uint8_t>* v) {
  return v ? std::string_view(reinterpret_cast<const char*>(v->data()), v->size())
           : std::string_view();
}

void Finish(flatbuffers::FlatBufferBuilder& fbb, uint64_t seed, std::string* out) {
  const char* p = reinterpret_cast<const char*>(fbb.GetBufferPointer());
  size_t n = fbb.GetSize();
  out->resize(n + kChecksumBytes);
  std::memcpy(out->data(), p, n);
  PutLE64(out->data() + n, RecordChecksum(std::string_view(p, n), seed));
}

// Copies the record body into aligned scratch memory after checking length
// and checksum. Returns the body view or an error message.
const char* CheckBody(std::string_view value, uint64_t seed, std::string* scratch,
                      size_t* body_len) {
  if (value.size() < kChecksumBytes + 8) return "record too short";
  size_t n = value.size() - kChecksumBytes;
  uint64_t stored = GetLE64(value.data() + n);
  if (RecordChecksum(value.substr(0, n), seed) != stored) return "checksum mismatch";
  scratch->assign(value.data(), n);  // std::string storage is malloc-aligned
  *body_len = n;
  return nullptr;
}

}  // namespace

uint64_t RecordChecksum(std::string_view body, uint64_t seed) {
  return XXH3_64bits_withSeed(body.data(), body.size(), seed);
}

RecordEncoder::RecordEncoder() : fbb_(new flatbuffers::FlatBufferBuilder(512)) {}
RecordEncoder::~RecordEncoder() { delete fbb_; }

void RecordEncoder::EncodeEvent(const EventFields& f, std::string* out) {
  auto& fbb = *fbb_;
  fbb.Clear();
  auto stream = fbb.CreateString(f.stream.data(), f.stream.size());
  auto type = fbb.CreateString(f.type.data(), f.type.size());
  auto ctype = fbb.CreateString(f.content_type.data(), f.content_type.size());
  auto data = fbb.CreateVector(reinterpret_cast<const uint8_t*>(f.data.data()), f.data.size());
  auto meta =
      fbb.CreateVector(reinterpret_cast<const uint8_t*>(f.metadata.data()), f.metadata.size());
  // Absent when empty: an event without provenance costs nothing extra.
  flatbuffers::Offset<flatbuffers::String> corr, cause;
  if (!f.correlation_id.empty()) corr = fbb.CreateString(f.correlation_id.data(), f.correlation_id.size());
  if (!f.causation_id.empty()) cause = fbb.CreateString(f.causation_id.data(), f.causation_id.size());
  fb::EventRecordBuilder b(fbb);
  fb::Uuid id = ToFb(f.id);
  b.add_id(&id);
  b.add_position(f.position);
  b.add_stream(stream);
  b.add_stream_id(f.stream_id);
  b.add_version(f.version);
  b.add_type(type);
  b.add_content_type(ctype);
  b.add_data(data);
  b.add_metadata(meta);
  b.add_timestamp_ms(f.timestamp_ms);
  if (!corr.IsNull()) b.add_correlation_id(corr);
  if (!cause.IsNull()) b.add_causation_id(cause);
  b.add_schema_version(f.schema_version);
  fbb.Finish(b.Finish());
  Finish(fbb, f.position, out);
}

void RecordEncoder::EncodeStream(uint64_t stream_id, std::string_view name,
                                 uint64_t created_position, int64_t created_ms,
                                 std::string* out) {
  auto& fbb = *fbb_;
  fbb.Clear();
  auto n = fbb.CreateString(name.data(), name.size());
  fb::StreamRecordBuilder b(fbb);
  b.add_stream_id(stream_id);
  b.add_name(n);
  b.add_created_position(created_position);
  b.add_created_ms(created_ms);
  fbb.Finish(b.Finish());
  Finish(fbb, kStreamSeed, out);
}

Status DecodeEvent(uint64_t position, std::string_view value, std::string* scratch,
                   EventView* out) {
  size_t n = 0;
  if (const char* err = CheckBody(value, position, scratch, &n)) {
    return Status::Corruption("event record at position " + std::to_string(position) + ": " +
                              err);
  }
  const auto* buf = reinterpret_cast<const uint8_t*>(scratch->data());
  flatbuffers::Verifier verifier(buf, n);
  if (!fb::VerifyEventRecordBuffer(verifier)) {
    return Status::Corruption("event record at position " + std::to_string(position) +
                              ": schema verification failed");
  }
  const fb::EventRecord* r = fb::GetEventRecord(buf);
  if (r->position() != position || r->id() == nullptr || r->stream() == nullptr ||
      r->type() == nullptr) {
    return Status::Corruption("event record at position " + std::to_string(position) +
                              ": fields disagree with its key");
  }
  out->id = FromFb(*r->id());
  out->position = position;
  out->stream = View(r->stream());
  out->version = r->version();
  out->type = View(r->type());
  out->content_type = View(r->content_type());
  out->data = View(r->data());
  out->metadata = View(r->metadata());
  out->timestamp_ms = r->timestamp_ms();
  out->correlation_id = View(r->correlation_id());
  out->causation_id = View(r->causation_id());
  out->schema_version = r->schema_version();
  return Status::OK();
}

Status DecodeStream(std::string_view name, std::string_view value, std::string* scratch,
                    StreamFields* out) {
  size_t n = 0;
  if (const char* err = CheckBody(value, kStreamSeed, scratch, &n)) {
    return Status::Corruption("stream record '" + std::string(name) + "': " + err);
  }
  const auto* buf = reinterpret_cast<const uint8_t*>(scratch->data());
  flatbuffers::Verifier verifier(buf, n);
  if (!fb::VerifyStreamRecordBuffer(verifier)) {
    return Status::Corruption("stream record '" + std::string(name) +
                              "': schema verification failed");
  }
  const fb::StreamRecord* r = fb::GetStreamRecord(buf);
  if (View(r->name()) != name) {
    return Status::Corruption("stream record '" + std::string(name) + "': name disagrees with key");
  }
  out->stream_id = r->stream_id();
  out->name = View(r->name());
  out->created_position = r->created_position();
  out->created_ms = r->created_ms();
  return Status::OK();
}

}  // namespace evstore::format
