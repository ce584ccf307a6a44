// Command log records (command_record.hpp).
#include "format/command_record.hpp"

#include <xxhash.h>

#include "format/keys.hpp"
#include "format/record.hpp"

namespace evstore::format {

namespace {

constexpr size_t kFixedBytes = 1 + 1 + 4 + 8 + 8 + 8 + 8;

uint64_t Seed(std::string_view key) { return XXH3_64bits(key.data(), key.size()); }

void PutBE(std::string* out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; i--) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// Reads big-endian integers and length-prefixed strings off the front of a
// view; fails (false) instead of reading past its end.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool Int(int bytes, uint64_t* v) {
    if (in_.size() < static_cast<size_t>(bytes)) return false;
    *v = 0;
    for (int i = 0; i < bytes; i++) *v = (*v << 8) | static_cast<uint8_t>(in_[static_cast<size_t>(i)]);
    in_.remove_prefix(static_cast<size_t>(bytes));
    return true;
  }
  bool Str(int len_bytes, std::string* s) {
    uint64_t n = 0;
    if (!Int(len_bytes, &n) || in_.size() < n) return false;
    s->assign(in_.data(), n);
    in_.remove_prefix(n);
    return true;
  }
  bool empty() const { return in_.empty(); }

 private:
  std::string_view in_;
};

std::string Describe(std::string_view key) {
  std::string id(key.empty() ? key : key.substr(1));
  return "command record '" + id + "'";
}

}  // namespace

std::string CommandKey(std::string_view id) {
  std::string k(1, kCommandTag);
  k.append(id);
  return k;
}

std::string CommandAgeKey(int64_t handled_ms, std::string_view id) {
  std::string k(9, '\0');
  k[0] = kCommandAgeTag;
  PutBE64(k.data() + 1, static_cast<uint64_t>(handled_ms < 0 ? 0 : handled_ms));
  k.append(id);
  return k;
}

std::optional<DecodedAgeKey> DecodeCommandAgeKey(std::string_view key) {
  if (key.size() < 10 || key[0] != kCommandAgeTag) return std::nullopt;
  return DecodedAgeKey{static_cast<int64_t>(GetBE64(key.data() + 1)), key.substr(9)};
}

uint64_t CommandFingerprint(std::string_view type, std::string_view stream,
                            std::string_view payload) {
  // Each part seeds the next; the lengths go first, so that no two
  // splits of the same bytes collide by construction.
  char lens[24];
  PutBE64(lens, type.size());
  PutBE64(lens + 8, stream.size());
  PutBE64(lens + 16, payload.size());
  uint64_t h = XXH3_64bits(lens, sizeof lens);
  h = XXH3_64bits_withSeed(type.data(), type.size(), h);
  h = XXH3_64bits_withSeed(stream.data(), stream.size(), h);
  return XXH3_64bits_withSeed(payload.data(), payload.size(), h);
}

std::string EncodeCommand(std::string_view key, const CommandFields& f) {
  std::string out;
  out.reserve(kFixedBytes + 10 + f.type.size() + f.stream.size() + f.error_code.size() +
              f.error_message.size() + kChecksumBytes);
  out.push_back(static_cast<char>(kCommandRecordFormat));
  out.push_back(static_cast<char>(f.outcome));
  PutBE(&out, f.tries, 4);
  PutBE(&out, static_cast<uint64_t>(f.handled_ms), 8);
  PutBE(&out, f.fingerprint, 8);
  PutBE(&out, f.base, 8);
  PutBE(&out, f.events, 8);
  PutBE(&out, f.type.size(), 2);
  out += f.type;
  PutBE(&out, f.stream.size(), 2);
  out += f.stream;
  PutBE(&out, f.error_code.size(), 2);
  out += f.error_code;
  PutBE(&out, f.error_message.size(), 4);
  out += f.error_message;
  char sum[kChecksumBytes];
  PutLE64(sum, RecordChecksum(out, Seed(key)));
  out.append(sum, kChecksumBytes);
  return out;
}

Status DecodeCommand(std::string_view key, std::string_view value, CommandFields* out) {
  auto bad = [&](const char* why) { return Status::Corruption(Describe(key) + ": " + why); };
  if (value.empty()) return bad("empty record");
  uint8_t fmt = static_cast<uint8_t>(value[0]);
  if (fmt > kCommandRecordFormat)
    return Status::NotSupported(Describe(key) + " uses record format " + std::to_string(fmt) +
                                ", newer than this evstore reads");
  if (fmt != kCommandRecordFormat) return bad("unknown record format");
  if (value.size() < kFixedBytes + 10 + kChecksumBytes) return bad("record too short");
  size_t n = value.size() - kChecksumBytes;
  if (RecordChecksum(value.substr(0, n), Seed(key)) != GetLE64(value.data() + n))
    return bad("checksum mismatch");
  Reader r(value.substr(1, n - 1));
  uint64_t outcome = 0, tries = 0, ms = 0;
  CommandFields f;
  if (!r.Int(1, &outcome) || !r.Int(4, &tries) || !r.Int(8, &ms) || !r.Int(8, &f.fingerprint) ||
      !r.Int(8, &f.base) || !r.Int(8, &f.events) || !r.Str(2, &f.type) || !r.Str(2, &f.stream) ||
      !r.Str(2, &f.error_code) || !r.Str(4, &f.error_message) || !r.empty())
    return bad("fields do not fit the record");
  if (outcome > kOutcomeRejected) return bad("unknown outcome");
  if (outcome == kOutcomeRejected && f.events != 0) return bad("a rejected command with events");
  f.outcome = static_cast<uint8_t>(outcome);
  f.tries = static_cast<uint32_t>(tries);
  f.handled_ms = static_cast<int64_t>(ms);
  *out = std::move(f);
  return Status::OK();
}

}  // namespace evstore::format
