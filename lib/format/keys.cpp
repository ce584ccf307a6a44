#include "format/keys.hpp"

namespace evstore::format {

std::optional<uint64_t> DecodeEventKey(std::string_view key) {
  if (key.size() != 8) return std::nullopt;
  return GetBE64(key.data());
}

std::optional<DecodedStreamIndexKey> DecodeStreamIndexKey(std::string_view key) {
  if (key.size() != 16) return std::nullopt;
  return DecodedStreamIndexKey{GetBE64(key.data()), GetBE64(key.data() + 8)};
}

std::optional<uint64_t> DecodePositionValue(std::string_view value) {
  if (value.size() != 8) return std::nullopt;
  return GetBE64(value.data());
}

void AppendNameIndexKey(std::string* out, std::string_view name, uint64_t position) {
  out->append(name);
  out->push_back('\0');
  char buf[8];
  PutBE64(buf, position);
  out->append(buf, 8);
}

std::string NameIndexKey(std::string_view name, uint64_t position) {
  std::string k;
  k.reserve(name.size() + 9);
  AppendNameIndexKey(&k, name, position);
  return k;
}

std::string NameIndexPrefix(std::string_view name) {
  std::string k(name);
  k.push_back('\0');
  return k;
}

std::optional<DecodedNameIndexKey> DecodeNameIndexKey(std::string_view key) {
  if (key.size() < 10) return std::nullopt;  // at least 1 name byte + 0x00 + 8
  size_t name_len = key.size() - 9;
  if (key[name_len] != '\0') return std::nullopt;
  std::string_view name = key.substr(0, name_len);
  if (name.find('\0') != std::string_view::npos) return std::nullopt;
  return DecodedNameIndexKey{name, GetBE64(key.data() + name_len + 1)};
}

void MakeGeneratedId(uint64_t tag, uint64_t position, uint8_t out[16]) {
  char* p = reinterpret_cast<char*>(out);
  PutBE64(p, tag);
  PutBE64(p + 8, position);
  out[6] = static_cast<uint8_t>((out[6] & 0x0f) | 0x80);  // version 8
  out[8] = static_cast<uint8_t>((out[8] & 0x3f) | 0x80);  // variant 10
}

std::optional<uint64_t> GeneratedIdPosition(uint64_t tag, const uint8_t id[16]) {
  uint8_t expect[16];
  MakeGeneratedId(tag, 0, expect);
  if (std::memcmp(expect, id, 8) != 0 || (id[8] & 0xc0) != 0x80) return std::nullopt;
  return GetBE64(reinterpret_cast<const char*>(id) + 8) & ((uint64_t{1} << 62) - 1);
}

std::string EncodeFormatRecord(uint32_t version, int64_t created_ms) {
  std::string v(kFormatMagic);
  char buf[8];
  PutBE64(buf, version);
  v.append(buf + 4, 4);
  PutBE64(buf, static_cast<uint64_t>(created_ms));
  v.append(buf, 8);
  return v;
}

std::optional<FormatRecord> DecodeFormatRecord(std::string_view value) {
  if (value.size() != kFormatMagic.size() + 12) return std::nullopt;
  if (value.substr(0, kFormatMagic.size()) != kFormatMagic) return std::nullopt;
  const char* p = value.data() + kFormatMagic.size();
  uint32_t version = 0;
  for (int i = 0; i < 4; i++) version = (version << 8) | static_cast<uint8_t>(p[i]);
  return FormatRecord{version, static_cast<int64_t>(GetBE64(p + 4))};
}

}  // namespace evstore::format
