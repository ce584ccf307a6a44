// Fuzz target: key codecs (lib/format/keys.hpp). Every decoder accepts
// exactly the encodings of its encoder (decode then encode gives the input
// back), encode then decode gives the values back, and the byte order of
// keys is the numeric / (name, position) order the indexes rely on.
#include <algorithm>
#include <cstring>

#include "evstore/event.hpp"
#include "format/keys.hpp"
#include "fuzz_input.hpp"

using namespace evstore;
using namespace evstore::format;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view raw(reinterpret_cast<const char*>(data), size);

  // Decoders on the raw input.
  if (auto p = DecodeEventKey(raw)) FUZZ_CHECK(EventKey(*p).view() == raw);
  else FUZZ_CHECK(raw.size() != 8);
  if (auto k = DecodeStreamIndexKey(raw)) {
    FUZZ_CHECK(StreamIndexKey(k->stream_id, k->version).view() == raw);
  } else {
    FUZZ_CHECK(raw.size() != 16);
  }
  if (auto p = DecodePositionValue(raw)) FUZZ_CHECK(Be64(*p).view() == raw);
  if (auto k = DecodeNameIndexKey(raw)) {
    FUZZ_CHECK(!k->name.empty() && k->name.find('\0') == std::string_view::npos);
    FUZZ_CHECK(NameIndexKey(k->name, k->position) == raw);
    FUZZ_CHECK(raw.starts_with(NameIndexPrefix(k->name)));
  } else if (raw.size() >= 10) {
    // Refused only when the name part holds a NUL or the separator is not one.
    std::string_view name = raw.substr(0, raw.size() - 9);
    FUZZ_CHECK(raw[raw.size() - 9] != '\0' || name.find('\0') != std::string_view::npos);
  }
  if (auto f = DecodeFormatRecord(raw)) {
    FUZZ_CHECK(EncodeFormatRecord(f->version, f->created_ms) == raw);
  }
  if (auto u = Uuid::Parse(raw)) {
    std::string lower(raw);
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](char c) { return c >= 'A' && c <= 'F' ? static_cast<char>(c + 32) : c; });
    FUZZ_CHECK(u->ToString() == lower);
  }

  // Encoders on values taken from the input.
  FuzzInput in(data, size);
  uint64_t a = in.U64(), b = in.U64(), c = in.U64(), d = in.U64();
  FUZZ_CHECK(DecodeEventKey(EventKey(a).view()) == a);
  FUZZ_CHECK((EventKey(a).view() < EventKey(b).view()) == (a < b));
  auto sk = DecodeStreamIndexKey(StreamIndexKey(a, b).view());
  FUZZ_CHECK(sk && sk->stream_id == a && sk->version == b);
  // Keys of one stream are contiguous and ordered by version.
  FUZZ_CHECK((StreamIndexKey(a, b).view() < StreamIndexKey(c, d).view()) ==
             (a < c || (a == c && b < d)));
  char buf[8];
  PutLE64(buf, a);
  FUZZ_CHECK(GetLE64(buf) == a);

  std::string n1 = in.Bytes(12), n2 = in.Bytes(12);
  std::replace(n1.begin(), n1.end(), '\0', 'x');
  std::replace(n2.begin(), n2.end(), '\0', 'x');
  if (!n1.empty()) {
    std::string key = NameIndexKey(n1, a);
    auto k = DecodeNameIndexKey(key);
    FUZZ_CHECK(k && k->name == n1 && k->position == a);
    FUZZ_CHECK((NameIndexKey(n1, a) < NameIndexKey(n1, b)) == (a < b));
    if (!n2.empty() && n1 != n2) {
      // One name's keys never interleave with another's.
      bool before = NameIndexPrefix(n1) < NameIndexPrefix(n2);
      FUZZ_CHECK((NameIndexKey(n1, a) < NameIndexKey(n2, b)) == before);
      FUZZ_CHECK((NameIndexKey(n1, UINT64_MAX) < NameIndexKey(n2, 0)) == before);
    }
  }

  uint32_t version = static_cast<uint32_t>(c);
  auto fr = DecodeFormatRecord(EncodeFormatRecord(version, static_cast<int64_t>(d)));
  FUZZ_CHECK(fr && fr->version == version && fr->created_ms == static_cast<int64_t>(d));

  // Generated ids name their position under their store's tag, and no other
  // store's tag (unless the tags agree on every bit the id keeps).
  uint64_t pos = b & ((uint64_t{1} << 62) - 1);
  uint8_t id[16];
  MakeGeneratedId(a, pos, id);
  FUZZ_CHECK((id[6] >> 4) == 8 && (id[8] >> 6) == 2);
  auto gp = GeneratedIdPosition(a, id);
  FUZZ_CHECK(gp && *gp == pos);
  uint8_t mine[16], theirs[16];
  MakeGeneratedId(a, 0, mine);
  MakeGeneratedId(c, 0, theirs);
  bool same_tag = std::memcmp(mine, theirs, 8) == 0;
  FUZZ_CHECK(GeneratedIdPosition(c, id).has_value() == same_tag);
  Uuid u;
  std::memcpy(u.bytes, id, 16);
  FUZZ_CHECK(!u.is_nil());
  auto back = Uuid::Parse(u.ToString());
  FUZZ_CHECK(back && *back == u);
  return 0;
}
