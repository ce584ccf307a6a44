// The model and helpers shared by the store operation fuzz targets
// (fuzz_store_ops: C++ API, fuzz_capi_ops: C API). One translation unit
// includes it per target.
#ifndef EVSTORE_FUZZ_STORE_MODEL_HPP_
#define EVSTORE_FUZZ_STORE_MODEL_HPP_

#include <stdlib.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <vector>
#include "evstore/inspect.hpp"
#include "evstore/store.hpp"
#include "fuzz_input.hpp"

using namespace evstore;

namespace {

const char* const kStreams[] = {"order-1", "order-2", "cart-1", "solo"};
const char* const kTypes[] = {"Placed", "Shipped", "Added"};
const char* const kData[] = {"{}", "{\"a\":1}", "", "\x01\xff binary"};

struct ModelEvent {
  std::optional<Uuid> id;  // caller-supplied
  std::string stream, type, data, metadata, content_type;
  uint64_t version, position;
};

struct Model {
  std::vector<ModelEvent> log;                      // by position
  std::map<std::string, std::vector<uint64_t>> streams;  // name -> positions by version
  std::map<Uuid, uint64_t> ids;

  bool Same(const EventData& e, const ModelEvent& m) const {
    return e.type == m.type && e.data == m.data && e.metadata == m.metadata &&
           e.content_type == m.content_type;
  }
};

Uuid PoolId(uint8_t k) {
  Uuid u;
  u.bytes[0] = 0xa0;
  u.bytes[15] = k;
  u.bytes[6] = 0x40;
  u.bytes[8] = 0x80;
  return u;
}

EventData MakeEvent(FuzzInput& in) {
  EventData e;
  uint8_t b = in.Byte();
  e.type = kTypes[b % 3];
  e.data = kData[(b >> 2) % 4];
  e.metadata = (b & 0x10) ? "m" : "";
  e.content_type = (b & 0x20) ? "application/json" : "";
  if (b & 0x40) e.id = PoolId(in.Byte() % 6);
  return e;
}

ExpectedVersion MakeExpected(FuzzInput& in, const Model& m, const std::string& stream) {
  uint8_t b = in.Byte();
  auto it = m.streams.find(stream);
  uint64_t head = it == m.streams.end() ? 0 : it->second.size() - 1;
  switch (b % 5) {
    case 0: return ExpectedVersion::Any();
    case 1: return ExpectedVersion::NoStream();
    case 2: return ExpectedVersion::StreamExists();
    case 3: return ExpectedVersion::Exact(head);  // usually right
    default: return ExpectedVersion::Exact(in.Byte() % 4);
  }
}

// What the model says an append of `events` to `stream` does.
enum class Outcome { kAppend, kReplay, kWrongVersion, kDuplicate, kInvalid };

Outcome Predict(const Model& m, const std::string& stream, ExpectedVersion exp,
                const std::vector<EventData>& events, AppendResult* replay) {
  size_t known = 0;
  for (size_t i = 0; i < events.size(); i++) {
    if (events[i].id.is_nil()) continue;
    for (size_t j = 0; j < i; j++)
      if (events[j].id == events[i].id) return Outcome::kInvalid;
    known += m.ids.count(events[i].id);
  }
  if (known > 0) {
    if (known != events.size()) return Outcome::kDuplicate;
    for (size_t i = 0; i < events.size(); i++) {
      const ModelEvent& s = m.log[m.ids.at(events[i].id)];
      if (s.stream != stream || !m.Same(events[i], s)) return Outcome::kDuplicate;
      if (i == 0) {
        replay->first_version = s.version;
        replay->first_position = s.position;
      } else if (s.version != replay->first_version + i) {
        return Outcome::kDuplicate;
      }
      replay->last_version = s.version;
      replay->last_position = s.position;
    }
    replay->idempotent_replay = true;
    return Outcome::kReplay;
  }
  auto it = m.streams.find(stream);
  bool exists = it != m.streams.end();
  switch (exp.kind()) {
    case ExpectedVersion::Kind::kAny: break;
    case ExpectedVersion::Kind::kNoStream:
      if (exists) return Outcome::kWrongVersion;
      break;
    case ExpectedVersion::Kind::kStreamExists:
      if (!exists) return Outcome::kWrongVersion;
      break;
    case ExpectedVersion::Kind::kExact:
      if (!exists || it->second.size() - 1 != exp.version()) return Outcome::kWrongVersion;
      break;
  }
  return Outcome::kAppend;
}

AppendResult Apply(Model& m, const std::string& stream, const std::vector<EventData>& events) {
  auto& positions = m.streams[stream];
  AppendResult r;
  r.first_version = positions.size();
  r.first_position = m.log.size();
  for (const EventData& e : events) {
    ModelEvent me{e.id.is_nil() ? std::nullopt : std::optional<Uuid>(e.id),
                  stream, e.type, e.data, e.metadata, e.content_type,
                  positions.size(), m.log.size()};
    if (!e.id.is_nil()) m.ids[e.id] = me.position;
    positions.push_back(me.position);
    m.log.push_back(me);
  }
  r.last_version = positions.size() - 1;
  r.last_position = m.log.size() - 1;
  return r;
}

void CheckEvent(const Model& m, const EventView& v) {
  FUZZ_CHECK(v.position < m.log.size());
  const ModelEvent& e = m.log[v.position];
  FUZZ_CHECK(v.stream == e.stream && v.type == e.type && v.data == e.data &&
             v.metadata == e.metadata && v.content_type == e.content_type &&
             v.version == e.version);
  FUZZ_CHECK(!v.id.is_nil());
  if (e.id) FUZZ_CHECK(v.id == *e.id);
}

// Checks an iterator against the expected positions.
[[maybe_unused]] void CheckRead(const Model& m, Result<EventIterator> r, const std::vector<uint64_t>& want) {
  FUZZ_CHECK(r.ok());
  size_t n = 0;
  for (; r->Valid(); r->Next()) {
    FUZZ_CHECK(n < want.size());
    FUZZ_CHECK(r->value().position == want[n]);
    CheckEvent(m, r->value());
    n++;
  }
  FUZZ_CHECK(r->status().ok());
  FUZZ_CHECK(n == want.size());
}

// Positions of `all` (ascending) selected by a read from `from` in `dir` with `limit`;
// key(p) is what `from` is compared with (a version or a position).
template <typename Key>
std::vector<uint64_t> Select(const std::vector<uint64_t>& all, uint64_t from, Direction dir,
                             uint64_t limit, Key key) {
  std::vector<uint64_t> out;
  if (dir == Direction::kForward) {
    for (uint64_t p : all)
      if (key(p) >= from && out.size() < limit) out.push_back(p);
  } else {
    for (auto it = all.rbegin(); it != all.rend(); ++it)
      if (key(*it) <= from && out.size() < limit) out.push_back(*it);
  }
  return out;
}

[[maybe_unused]] Options StoreOptions() {
  Options o = Options::Fast();
  o.block_cache_bytes = 1u << 20;
  o.max_event_bytes = 1024;
  o.max_events_per_append = 8;
  return o;
}

void CheckWhole(const Store& s, const Model& m) {
  auto r = inspect::Verify(s);
  FUZZ_CHECK(r.ok());
  if (!r->ok()) {
    for (const auto& p : r->problems)
      std::fprintf(stderr, "verify: %s [%s]: %s\n", p.column_family.c_str(), p.key.c_str(),
                   p.message.c_str());
  }
  FUZZ_CHECK(r->ok());
  FUZZ_CHECK(r->events == m.log.size());
  FUZZ_CHECK(r->streams == m.streams.size());
  FUZZ_CHECK(r->event_id_entries == m.ids.size());
  inspect::DumpSummary sum;
  FUZZ_CHECK(inspect::Dump(s, inspect::DumpOptions(), [](std::string_view) {}, &sum).ok());
  FUZZ_CHECK(sum.events == m.log.size() && sum.corrupt == 0);
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "evstore-fuzz-XXXXXX").string();
    FUZZ_CHECK(mkdtemp(tmpl.data()) != nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string db() const { return path_ + "/db"; }

 private:
  std::string path_;
};

}  // namespace

#endif  // EVSTORE_FUZZ_STORE_MODEL_HPP_
