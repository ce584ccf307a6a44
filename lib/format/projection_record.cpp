// Projection records (projection_record.hpp).
#include "format/projection_record.hpp"

#include <xxhash.h>

#include "format/keys.hpp"
#include "format/record.hpp"

namespace evstore::format {

namespace {

constexpr size_t kMetaBytes = 1 + 8 + 4 + 8 + 4 + 8;
constexpr size_t kInstanceFixed = 1 + 8 + 8 + 8 + 4;

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

std::string Printable(std::string_view key) {
  std::string out;
  for (char c : key.substr(0, 64)) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f) {
      out += c;
    } else {
      static const char* kHex = "0123456789abcdef";
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
  return out;
}

// The format byte, the length and the checksum.
Status Check(std::string_view what, std::string_view key, std::string_view value, size_t min_size) {
  auto bad = [&](const char* why) {
    return Status::Corruption(std::string(what) + " record '" + Printable(key) + "': " + why);
  };
  if (value.empty()) return bad("empty record");
  uint8_t fmt = static_cast<uint8_t>(value[0]);
  if (fmt > kProjectionRecordFormat)
    return Status::NotSupported(std::string(what) + " record '" + Printable(key) + "' uses format " +
                                std::to_string(fmt) + ", newer than this evstore reads");
  if (fmt != kProjectionRecordFormat) return bad("unknown record format");
  if (value.size() < min_size) return bad("record is too short");
  size_t body = value.size() - 8;
  if (RecordChecksum(value.substr(0, body), Seed(key)) != GetLE64(value.data() + body))
    return bad("checksum mismatch");
  return Status::OK();
}

void Seal(std::string_view key, std::string* out) {
  size_t body = out->size();
  out->resize(body + 8);
  PutLE64(out->data() + body, RecordChecksum(std::string_view(out->data(), body), Seed(key)));
}

}  // namespace

std::string ProjMetaKey(std::string_view name) {
  std::string k(1, kProjMetaTag);
  k.append(name);
  return k;
}

std::string ProjInstanceKey(uint64_t id) {
  std::string k(9, '\0');
  k[0] = kProjInstanceTag;
  PutBE64(k.data() + 1, id);
  return k;
}

std::string ProjStateKey(uint64_t id, std::string_view key) {
  std::string k(9, '\0');
  k[0] = kProjStateTag;
  PutBE64(k.data() + 1, id);
  k.append(key);
  return k;
}

std::string EncodeProjectionMeta(std::string_view key, const ProjectionMeta& m) {
  std::string out(kMetaBytes - 8, '\0');
  out[0] = static_cast<char>(kProjectionRecordFormat);
  PutBE64(out.data() + 1, m.active_id);
  PutBE32(out.data() + 9, m.active_version);
  PutBE64(out.data() + 13, m.building_id);
  PutBE32(out.data() + 21, m.building_version);
  Seal(key, &out);
  return out;
}

std::string EncodeProjectionInstance(std::string_view key, const ProjectionInstance& r) {
  std::string out(kInstanceFixed, '\0');
  out[0] = static_cast<char>(kProjectionRecordFormat);
  PutBE64(out.data() + 1, r.position);
  PutBE64(out.data() + 9, r.handled);
  PutBE64(out.data() + 17, static_cast<uint64_t>(r.updated_ms));
  PutBE32(out.data() + 25, r.version);
  out.append(r.name);
  Seal(key, &out);
  return out;
}

Status DecodeProjectionMeta(std::string_view key, std::string_view value, ProjectionMeta* out) {
  Status s = Check("projection meta", key, value, kMetaBytes);
  if (!s.ok()) return s;
  if (value.size() != kMetaBytes)
    return Status::Corruption("projection meta record '" + Printable(key) + "': record has the wrong length");
  out->active_id = GetBE64(value.data() + 1);
  out->active_version = GetBE32(value.data() + 9);
  out->building_id = GetBE64(value.data() + 13);
  out->building_version = GetBE32(value.data() + 21);
  return Status::OK();
}

Status DecodeProjectionInstance(std::string_view key, std::string_view value, ProjectionInstance* out) {
  Status s = Check("projection instance", key, value, kInstanceFixed + 8);
  if (!s.ok()) return s;
  out->position = GetBE64(value.data() + 1);
  out->handled = GetBE64(value.data() + 9);
  out->updated_ms = static_cast<int64_t>(GetBE64(value.data() + 17));
  out->version = GetBE32(value.data() + 25);
  out->name.assign(value.data() + kInstanceFixed, value.size() - kInstanceFixed - 8);
  return Status::OK();
}

}  // namespace evstore::format
