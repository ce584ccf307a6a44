// The input layout, model and bookkeeping shared by the store operation fuzz
// targets (fuzz_store_ops: C++ API, fuzz_capi_ops: C API). One translation
// unit includes it per target.
//
// Speed: opening a store costs 30-60 ms of CPU under ASan (RocksDB writes
// and re-parses its OPTIONS file for ten column families), the rest of an
// input about a millisecond. So the targets never create a store per input:
// - Inputs share one open store, an "epoch". Each input works in its own
//   namespace: its streams, categories, event types and ids carry the
//   input's index in the epoch, and its positions are checked relative to
//   the store's next position when it began (Model::base). An epoch ends
//   after EpochLimit() inputs, before an input that reopens, and at exit:
//   inspect::Verify then checks the whole store against the epoch's totals,
//   and the next epoch starts on a copy of an empty store (no creation).
// - A reopen opcode takes effect in one input in kReopenOneIn, chosen by a
//   hash of the whole input (so an input always runs the same way). In the
//   other inputs it becomes a full check of the input's namespace.
//
// Reproducing a failure: an input's checks only look at its own namespace,
// so its verdict does not depend on the inputs before it unless evstore
// mixes them up. An input that reopens always runs on a fresh store, and so
// does the first input of every epoch: such inputs run exactly as when
// replayed alone. For the others, a failed check saves the epoch's inputs in
// order (Epoch::SaveHistory): `fuzz_<name> DIR/*` replays that history from
// a fresh store, i.e. the same sequence of stores. EVSTORE_FUZZ_EPOCH=1
// gives every input a fresh store (slow; for -minimize_crash). A sanitizer
// report saves no history: replay the input alone, and if that passes, run
// the fuzzer again with EVSTORE_FUZZ_EPOCH=1 to find the input alone.
#ifndef EVSTORE_FUZZ_STORE_MODEL_HPP_
#define EVSTORE_FUZZ_STORE_MODEL_HPP_

#include <errno.h>  // program_invocation_name
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "evstore/inspect.hpp"
#include "evstore/store.hpp"
#include "fuzz_input.hpp"

using namespace evstore;

namespace {

// ---- input layout ----
//
// A sequence of at most kMaxOps operations, each an opcode byte (% 14) and
// its argument bytes. The layout does not depend on the store or the model,
// so an input can be parsed before it runs (to see whether it reopens).
// Opcodes 9-11 (subscriptions and checkpoints) and 12-13 (projections,
// projection_model.hpp) came later: opcode bytes below 12 parse as they
// always did.

constexpr int kMaxOps = 48;
constexpr int kMaxReopens = 2;  // further reopen opcodes are skipped
constexpr uint32_t kReopenOneIn = 512;

const char* const kStreams[] = {"order-1", "order-2", "cart-1", "solo"};
const char* const kTypes[] = {"Placed", "Shipped", "Added"};
const char* const kData[] = {"{}", "{\"a\":1}", "", "\x01\xff binary"};

struct EventSpec {
  uint8_t shape = 0;  // type, data, metadata, content type; 0x40: has a pool id
  uint8_t id = 0;     // which pool id
};

struct ExpectSpec {
  uint8_t kind = 0;   // any, no stream, stream exists, the head, Exact(exact % 4)
  uint8_t exact = 0;
};

struct Op {
  enum Kind : uint8_t {
    kAppend, kMulti, kReadStream, kReadAll, kReadIndex, kReadEvent, kHead,
    kReopen,  // close and reopen the store
    kCheck,   // a reopen opcode in an input that does not reopen: read back everything
    kSubscribe,   // a pull subscription in a slot (see SubSpec)
    kPull,        // next() on a slot's subscription, `limit` times; mode & 0x80: stop() first
    kCheckpoint,  // one of the checkpoint operations (see CheckpointOp)
    kProject,       // a projection's run, stop, rebuild or delete (projection_model.hpp)
    kProjectQuery,  // a query of a projection: get, scan, info, snapshot
  };
  Kind kind = kAppend;
  uint8_t stream[2] = {0, 0};  // indexes into kStreams (kMulti: two distinct ones)
  ExpectSpec expect[2];
  std::vector<EventSpec> events[2];
  uint8_t mode = 0;   // a read's direction, start and limit flags; read_event's position
  uint8_t limit = 0;  // a read's limit, when mode has no 0x80
  // Subscriptions: the slot, and raw argument bytes (SubSpec, CheckpointOp).
  uint8_t slot = 0;
  uint8_t arg[3] = {0, 0, 0};
};

constexpr int kSlots = 2;         // subscriptions an input holds at once
constexpr int kCheckpoints = 3;   // checkpoint names of an input

// Whether the input's reopen opcodes take effect: FNV-1a of the input,
// finished with murmur3's mixer, is 0 mod kReopenOneIn (make_seeds.py has
// the same function).
bool ReopenAllowed(const uint8_t* data, size_t size) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < size; i++) h = (h ^ data[i]) * 16777619u;
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return h % kReopenOneIn == 0;
}

std::vector<Op> ParseOps(const uint8_t* data, size_t size) {
  const bool reopen = ReopenAllowed(data, size);
  FuzzInput in(data, size);
  auto expect = [&] {
    ExpectSpec e;
    e.kind = in.Byte() % 5;
    if (e.kind == 4) e.exact = in.Byte();
    return e;
  };
  auto event = [&] {
    EventSpec e;
    e.shape = in.Byte();
    if (e.shape & 0x40) e.id = in.Byte() % 6;
    return e;
  };
  std::vector<Op> ops;
  int reopens = 0;
  for (int n = 0; n < kMaxOps && !in.empty(); n++) {
    Op op;
    const uint8_t code = in.Byte() % 14;
    switch (code) {
      case 0:
      case 1: {
        op.kind = Op::kAppend;
        op.stream[0] = in.Byte() % 4;
        op.expect[0] = expect();
        size_t k = 1 + in.Byte() % 3;
        for (size_t i = 0; i < k; i++) op.events[0].push_back(event());
        break;
      }
      case 2: {
        op.kind = Op::kMulti;
        op.stream[0] = in.Byte() % 4;
        op.stream[1] = (op.stream[0] + 1 + in.Byte() % 3) % 4;
        for (int p = 0; p < 2; p++) {
          op.expect[p] = expect();
          size_t k = 1 + in.Byte() % 2;
          for (size_t i = 0; i < k; i++) op.events[p].push_back(event());
        }
        break;
      }
      case 3:
        op.kind = Op::kReadStream;
        op.stream[0] = in.Byte() % 4;
        op.mode = in.Byte();
        if (!(op.mode & 0x80)) op.limit = in.Byte();
        break;
      case 4:
        op.kind = Op::kReadAll;
        op.mode = in.Byte();
        if (!(op.mode & 0x80)) op.limit = in.Byte();
        break;
      case 5:
        op.kind = Op::kReadIndex;
        op.mode = in.Byte();
        break;
      case 6:
        op.kind = Op::kReadEvent;
        op.mode = in.Byte();
        break;
      case 7:
        op.kind = Op::kHead;
        op.stream[0] = in.Byte() % 4;
        break;
      case 8:
        if (reopens++ >= kMaxReopens) continue;
        op.kind = reopen ? Op::kReopen : Op::kCheck;
        break;
      case 9:
        op.kind = Op::kSubscribe;
        op.slot = in.Byte() % kSlots;
        for (uint8_t& a : op.arg) a = in.Byte();
        break;
      case 10:
        op.kind = Op::kPull;
        op.slot = in.Byte() % kSlots;
        op.mode = in.Byte();
        op.limit = 1 + op.mode % 4;
        break;
      case 11:
        op.kind = Op::kCheckpoint;
        op.slot = in.Byte() % kSlots;
        op.arg[0] = in.Byte();
        op.arg[1] = in.Byte();
        break;
      default:
        op.kind = code == 12 ? Op::kProject : Op::kProjectQuery;
        op.slot = in.Byte() % 2;  // projection_model.hpp's kProjSlots
        op.arg[0] = in.Byte();
        op.arg[1] = in.Byte();
        break;
    }
    ops.push_back(std::move(op));
  }
  return ops;
}

bool Reopens(const std::vector<Op>& ops) {
  for (const Op& op : ops)
    if (op.kind == Op::kReopen) return true;
  return false;
}

// ---- the model of one input's namespace ----

struct ModelEvent {
  std::optional<Uuid> id;  // caller-supplied
  std::string stream, type, data, metadata, content_type;
  uint64_t version, position;
};

// What one input wrote, in its namespace: the input with index `index` in
// its epoch, which began when the store's next position was `base`.
struct Model {
  Model(uint64_t base_position, size_t index)
      : base(base_position), ns_index(static_cast<uint16_t>(index)) {
    char tag[8];
    std::snprintf(tag, sizeof tag, "~%04x", static_cast<unsigned>(ns_index));
    ns = tag;
  }

  uint64_t base;
  uint16_t ns_index;                                     // in ids
  std::string ns;                                        // in names: "~" and 4 hex digits
  std::vector<ModelEvent> log;                           // log[i] is at position base + i
  std::map<std::string, std::vector<uint64_t>> streams;  // name -> positions by version
  std::map<Uuid, uint64_t> ids;                          // -> position
  std::map<std::string, uint64_t> checkpoints;           // stored: name -> position

  uint64_t end() const { return base + log.size(); }
  const ModelEvent& At(uint64_t position) const { return log[position - base]; }

  // "order-1" -> "order~0003-1": the category carries the tag too.
  std::string Stream(uint8_t i) const {
    std::string s = kStreams[i % 4];
    size_t dash = s.find('-');
    s.insert(dash == std::string::npos ? s.size() : dash, ns);
    return s;
  }
  std::string Category(bool order) const { return (order ? "order" : "cart") + ns; }
  std::string Type(uint8_t i) const { return kTypes[i % 3] + ns; }
  std::string Checkpoint(uint8_t i) const { return "cp" + ns + "-" + std::to_string(i % kCheckpoints); }
  Uuid PoolId(uint8_t k) const {
    Uuid u;
    u.bytes[0] = 0xa0;
    u.bytes[1] = static_cast<uint8_t>(ns_index >> 8);
    u.bytes[2] = static_cast<uint8_t>(ns_index);
    u.bytes[15] = k;
    u.bytes[6] = 0x40;
    u.bytes[8] = 0x80;
    return u;
  }

  bool Same(const EventData& e, const ModelEvent& m) const {
    return e.type == m.type && e.data == m.data && e.metadata == m.metadata &&
           e.content_type == m.content_type;
  }
};

EventData MakeEvent(const EventSpec& s, const Model& m) {
  EventData e;
  e.type = m.Type(s.shape % 3);
  e.data = kData[(s.shape >> 2) % 4];
  e.metadata = (s.shape & 0x10) ? "m" : "";
  e.content_type = (s.shape & 0x20) ? "application/json" : "";
  if (s.shape & 0x40) e.id = m.PoolId(s.id);
  return e;
}

std::vector<EventData> MakeEvents(const std::vector<EventSpec>& specs, const Model& m) {
  std::vector<EventData> out;
  for (const EventSpec& s : specs) out.push_back(MakeEvent(s, m));
  return out;
}

ExpectedVersion MakeExpected(const ExpectSpec& s, const Model& m, const std::string& stream) {
  auto it = m.streams.find(stream);
  uint64_t head = it == m.streams.end() ? 0 : it->second.size() - 1;
  switch (s.kind) {
    case 0: return ExpectedVersion::Any();
    case 1: return ExpectedVersion::NoStream();
    case 2: return ExpectedVersion::StreamExists();
    case 3: return ExpectedVersion::Exact(head);  // usually right
    default: return ExpectedVersion::Exact(s.exact % 4);
  }
}

// The version a WrongExpectedVersion reports for `stream`.
int64_t ActualVersion(const Model& m, const std::string& stream) {
  auto it = m.streams.find(stream);
  return it == m.streams.end() ? Status::kNoStream : static_cast<int64_t>(it->second.size() - 1);
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
      const ModelEvent& s = m.At(m.ids.at(events[i].id));
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

// A supplied id in both parts of one transaction: the store rejects the
// commit as a caller error, whatever the model says of each part.
bool SharedId(const std::vector<EventData>& a, const std::vector<EventData>& b) {
  for (const auto& e0 : a)
    for (const auto& e1 : b)
      if (!e0.id.is_nil() && e0.id == e1.id) return true;
  return false;
}

AppendResult Apply(Model& m, const std::string& stream, const std::vector<EventData>& events) {
  auto& positions = m.streams[stream];
  AppendResult r;
  r.first_version = positions.size();
  r.first_position = m.end();
  for (const EventData& e : events) {
    ModelEvent me{e.id.is_nil() ? std::nullopt : std::optional<Uuid>(e.id),
                  stream, e.type, e.data, e.metadata, e.content_type,
                  positions.size(), m.end()};
    if (!e.id.is_nil()) m.ids[e.id] = me.position;
    positions.push_back(me.position);
    m.log.push_back(me);
  }
  r.last_version = positions.size() - 1;
  r.last_position = m.end() - 1;
  return r;
}

void CheckEvent(const Model& m, const EventView& v) {
  FUZZ_CHECK(v.position >= m.base && v.position < m.end());
  const ModelEvent& e = m.At(v.position);
  FUZZ_CHECK(v.stream == e.stream && v.type == e.type && v.data == e.data &&
             v.metadata == e.metadata && v.content_type == e.content_type &&
             v.version == e.version);
  FUZZ_CHECK(!v.id.is_nil());
  if (e.id) FUZZ_CHECK(v.id == *e.id);
}

// ---- reads ----

// A read op resolved against the model: what to ask for and which
// positions must come back.
struct ReadPlan {
  enum Kind { kStream, kAll, kCategory, kType } kind = kAll;
  std::string name;  // the stream, category or type
  uint64_t from = 0;
  Direction dir = Direction::kForward;
  uint64_t limit = kNoLimit;
  bool exists = true;  // false: the stream does not exist, the read is NotFound
  std::vector<uint64_t> want;
  // A backward read of the global log goes on past this input's first
  // event into the inputs before it (position base - 1 and down).
  bool spill = false;
};

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

ReadPlan PlanRead(const Op& op, const Model& m) {
  ReadPlan p;
  uint8_t b = op.mode;
  auto pos = [](uint64_t q) { return q; };
  switch (op.kind) {
    case Op::kReadStream: {
      p.kind = ReadPlan::kStream;
      p.name = m.Stream(op.stream[0]);
      p.dir = (b & 1) ? Direction::kBackward : Direction::kForward;
      p.from = (b & 2) && p.dir == Direction::kBackward ? kEnd : (b >> 2) % 6;  // a version
      p.limit = (b & 0x80) ? kNoLimit : op.limit % 4;
      auto it = m.streams.find(p.name);
      p.exists = it != m.streams.end();
      if (p.exists)
        p.want = Select(it->second, p.from, p.dir, p.limit,
                        [&](uint64_t q) { return m.At(q).version; });
      break;
    }
    case Op::kReadAll: {
      p.kind = ReadPlan::kAll;
      p.dir = (b & 1) ? Direction::kBackward : Direction::kForward;
      p.from = (b & 2) && p.dir == Direction::kBackward ? kEnd : m.base + (b >> 2) % 24;
      p.limit = (b & 0x80) ? kNoLimit : op.limit % 6;
      std::vector<uint64_t> all(m.log.size());
      for (size_t i = 0; i < all.size(); i++) all[i] = m.base + i;
      p.want = Select(all, p.from, p.dir, p.limit, pos);
      p.spill = p.dir == Direction::kBackward;
      break;
    }
    default: {  // kReadIndex: category or type
      bool by_type = b & 1;
      p.kind = by_type ? ReadPlan::kType : ReadPlan::kCategory;
      p.name = by_type ? m.Type((b >> 1) % 3) : m.Category(b & 2);
      p.dir = (b & 8) ? Direction::kBackward : Direction::kForward;
      p.from = p.dir == Direction::kBackward ? kEnd : m.base + (b >> 4) % 16;
      std::vector<uint64_t> all;
      for (const auto& e : m.log)
        if (by_type ? e.type == p.name : CategoryOf(e.stream) == p.name) all.push_back(e.position);
      p.want = Select(all, p.from, p.dir, kNoLimit, pos);
      break;
    }
  }
  return p;
}

// kCheck's read: the input's whole log, forward.
ReadPlan WholeRead(const Model& m) {
  ReadPlan p;
  p.from = m.base;
  for (size_t i = 0; i < m.log.size(); i++) p.want.push_back(m.base + i);
  return p;
}

// Checks a reader's events, one at a time, against a plan.
class ReadCheck {
 public:
  ReadCheck(const Model& m, const ReadPlan& p) : m_(m), p_(p) {}
  // False: stop reading (the reader went on into earlier inputs' events, as
  // it must: the next older event is base - 1).
  bool Next(const EventView& v) {
    if (n_ < p_.want.size()) {
      FUZZ_CHECK(v.position == p_.want[n_]);
      CheckEvent(m_, v);
      n_++;
      return true;
    }
    FUZZ_CHECK(p_.spill && n_ < p_.limit && v.position + 1 == m_.base);
    spilled_ = true;
    return false;
  }
  // The reader ended (or spilled): every wanted event came, and a backward
  // read under its limit did not stop short of the earlier inputs' events.
  void End() const {
    FUZZ_CHECK(n_ == p_.want.size());
    if (p_.spill && n_ < p_.limit && m_.base > 0) FUZZ_CHECK(spilled_);
  }

 private:
  const Model& m_;
  const ReadPlan& p_;
  size_t n_ = 0;
  bool spilled_ = false;
};

// ---- subscriptions ----

// Whether filter `f` selects event `e`.
bool Selects(const SubscriptionFilter& f, const ModelEvent& e) {
  switch (f.kind) {
    case SubscriptionFilter::Kind::kAll: return true;
    case SubscriptionFilter::Kind::kStream: return e.stream == f.name;
    case SubscriptionFilter::Kind::kCategory: return CategoryOf(e.stream) == f.name;
    case SubscriptionFilter::Kind::kTypes: break;
  }
  return std::find(f.types.begin(), f.types.end(), e.type) != f.types.end();
}
//
// kSubscribe's arguments:
//   arg[0] the filter: % 5 = all, a stream (m.Stream(>> 3)), a category
//          (order when >> 3 is odd, else cart), one type, two types;
//   arg[1] where it starts: % 4 = 0 from base + (>> 2) % 16, 1 from now
//          (kNow), 2 the checkpoint m.Checkpoint(>> 2) (else from base +
//          (>> 4) % 8), 3 invalid options ((>> 2) % 5 says which);
//   arg[2] max_batch 1 + % 4, behind_after 1 + (>> 2) % 8 (small, so that
//          subscriptions fall behind and catch up again).
// A subscription with a checkpoint name starts at most at the end of the
// log: one starting beyond it would checkpoint a position past the end,
// which inspect::Verify reports as damage.
struct SubSpec {
  SubscribeOptions options;
  bool valid = true;
};

[[maybe_unused]] SubSpec MakeSub(const Op& op, const Model& m) {
  SubSpec s;
  SubscribeOptions& o = s.options;
  const uint8_t f = op.arg[0], st = op.arg[1], b = op.arg[2];
  switch (f % 5) {
    case 0: o.filter = SubscriptionFilter::All(); break;
    case 1: o.filter = SubscriptionFilter::Stream(m.Stream(f >> 3)); break;
    case 2: o.filter = SubscriptionFilter::Category(m.Category((f >> 3) & 1)); break;
    case 3: o.filter = SubscriptionFilter::Types({m.Type(f >> 3)}); break;
    default: o.filter = SubscriptionFilter::Types({m.Type(f >> 3), m.Type((f >> 3) + 1)}); break;
  }
  o.max_batch = 1 + b % 4;
  o.behind_after = 1 + (b >> 2) % 8;
  switch (st % 4) {
    case 0: o.from = m.base + (st >> 2) % 16; break;
    case 1: o.from = kNow; break;
    case 2:
      o.checkpoint = m.Checkpoint(st >> 2);
      o.from = std::min(m.base + (st >> 4) % 8, m.end());
      break;
    default:
      s.valid = false;
      switch ((st >> 2) % 5) {
        case 0: o.max_batch = 0; break;
        case 1: o.behind_after = 0; break;
        case 2: o.filter = SubscriptionFilter::Types({}); break;
        case 3: o.filter = SubscriptionFilter::Stream(""); break;
        default: o.checkpoint = std::string("cp\0", 3); break;
      }
  }
  return s;
}

// What next(0 ms) must return.
struct WantDelivery {
  Delivery::Kind kind = Delivery::Kind::kEvents;
  std::vector<uint64_t> positions;
  uint64_t position = 0;
};

// The model of one pull subscription: a cursor over the model's log
// (subscription_impl.hpp's next_), stepped as SubscriptionImpl::Next steps.
struct ModelSub {
  SubscribeOptions o;
  uint64_t start = 0, cursor = 0, delivered = 0;
  bool live = false;
  std::vector<uint64_t> got;  // every position delivered, in order

  ModelSub(const SubscribeOptions& options, const Model& m) : o(options) {
    start = o.from == kNow ? m.end() : o.from;
    if (!o.checkpoint.empty()) {
      auto it = m.checkpoints.find(o.checkpoint);
      if (it != m.checkpoints.end()) start = it->second;
    }
    cursor = delivered = start;
  }

  bool Selects(const ModelEvent& e) const { return ::Selects(o.filter, e); }

  WantDelivery Next(const Model& m) {
    const uint64_t end = m.end();
    WantDelivery w;
    if (live && end > cursor && end - cursor > o.behind_after) {
      live = false;
      w.kind = Delivery::Kind::kFellBehind;
      w.position = delivered = cursor;
      return w;
    }
    if (cursor < end) {
      for (uint64_t p = cursor; p < end && w.positions.size() < o.max_batch; p++)
        if (Selects(m.At(p))) w.positions.push_back(p);
      if (!w.positions.empty()) {
        cursor = w.positions.size() == o.max_batch ? w.positions.back() + 1 : end;
        got.insert(got.end(), w.positions.begin(), w.positions.end());
        w.position = delivered = cursor;
        return w;
      }
      cursor = end;
    }
    w.kind = live ? Delivery::Kind::kTimedOut : Delivery::Kind::kCaughtUp;
    if (!live) {
      // Caught up: every selected event from the start to the end of the
      // log came exactly once, in order.
      std::vector<uint64_t> all;
      for (uint64_t p = start; p < end; p++)
        if (Selects(m.At(p))) all.push_back(p);
      FUZZ_CHECK(got == all);
    }
    live = true;
    w.position = delivered = cursor;
    return w;
  }
};

// kCheckpoint's operations: arg[0] % 7 picks one; names are m.Checkpoint(arg[1]).
enum class CheckpointOp : uint8_t {
  kSubCheckpoint,     // the slot's subscription checkpoints its last delivery
  kSubCheckpointAt,   // ... a given position: arg[1] odd past it (refused), else up to 3 before
  kSet,               // set_checkpoint at base + arg[1] % (events + 1)
  kDelete,
  kGet,
  kList,              // list_checkpoints, this input's names
  kInvalid,           // set_checkpoint with a bad name ((arg[1] % 3): empty, NUL, 257 bytes)
};

// ---- the store ----

[[maybe_unused]] Options StoreOptions() {
  Options o = Options::Fast();
  o.block_cache_bytes = 1u << 20;
  o.max_event_bytes = 1024;
  o.max_events_per_append = 8;
  return o;
}

// What an epoch's inputs left in the store.
struct Totals {
  uint64_t events = 0, streams = 0, ids = 0, checkpoints = 0;
  void Add(const Model& m) {
    events += m.log.size();
    streams += m.streams.size();
    ids += m.ids.size();
    checkpoints += m.checkpoints.size();
  }
};

// Checks the whole store: inspect::Verify finds nothing wrong and counts
// what the epoch's inputs wrote; with `dump`, a dump lists every event (at
// an epoch's end each input's events were dumped already, at its end).
void CheckWhole(const Store& s, const Totals& t, bool dump = true) {
  auto r = inspect::Verify(s);
  FUZZ_CHECK(r.ok());
  if (!r->ok()) {
    for (const auto& p : r->problems)
      std::fprintf(stderr, "verify: %s [%s]: %s\n", p.column_family.c_str(), p.key.c_str(),
                   p.message.c_str());
  }
  FUZZ_CHECK(r->ok());
  FUZZ_CHECK(r->events == t.events);
  FUZZ_CHECK(r->streams == t.streams);
  FUZZ_CHECK(r->event_id_entries == t.ids);
  FUZZ_CHECK(r->checkpoint_records == t.checkpoints);
  if (!dump) return;
  inspect::DumpSummary sum;
  FUZZ_CHECK(inspect::Dump(s, inspect::DumpOptions(), [](std::string_view) {}, &sum).ok());
  FUZZ_CHECK(sum.events == t.events && sum.corrupt == 0);
}

// ---- libFuzzer ----

// libFuzzer flags these targets want unless the command line sets them
// (LLVMFuzzerInitialize may change argv before libFuzzer reads it):
// - -detect_leaks=0: per-input leak detection makes no sense when inputs
//   share a store whose memory grows from input to input; libFuzzer would
//   run a full leak scan after nearly every input (and it reports the
//   thread-local destructor list glibc allocates as a leak). LeakSanitizer
//   still checks the whole run at exit, after the store is closed.
// - -entropic_feature_frequency_threshold=16: the entropic scheduler looks
//   up every coverage feature an execution hits whose count is under this
//   threshold (default 255) in a list of rare features, linearly. These
//   executions hit thousands of features, so until most counts pass the
//   threshold (longer than a 30 s run) that lookup took a third to two
//   thirds of the time (measured: 2.4 times the executions in the same CPU
//   time with 16, and as much coverage). The schedule stays entropic.
void DefaultFlags(int* argc, char*** argv) {
  static const char* const kFlags[] = {"-detect_leaks=0", "-entropic_feature_frequency_threshold=16"};
  static std::vector<char*> args;
  args.assign(*argv, *argv + *argc);
  for (const char* flag : kFlags) {
    std::string_view name(flag, std::strchr(flag, '=') + 1 - flag);
    bool given = false;
    for (int i = 1; i < *argc; i++) given |= std::string_view((*argv)[i]).starts_with(name);
    if (!given) args.push_back(const_cast<char*>(flag));
  }
  *argc = static_cast<int>(args.size());
  args.push_back(nullptr);
  *argv = args.data();
}

// ---- epochs ----

// How many inputs share a store: EVSTORE_FUZZ_EPOCH (1 to 65536, the
// namespaces there are), default 1024. Longer epochs open stores less
// often; the whole-store check costs the same per event either way.
size_t EpochLimit() {
  static const size_t limit = [] {
    const char* v = std::getenv("EVSTORE_FUZZ_EPOCH");
    long n = v ? std::atol(v) : 1024;
    return static_cast<size_t>(std::clamp(n, 1L, 65536L));
  }();
  return limit;
}

// The inputs that ran on the current store since it was made fresh, and
// what they left in it.
class Epoch {
 public:
  size_t inputs() const { return history_.size(); }
  bool full() const { return inputs() >= EpochLimit(); }
  const Totals& totals() const { return totals_; }

  // An input begins: it is remembered for SaveHistory.
  void Begin(const uint8_t* data, size_t size) {
    history_.emplace_back(reinterpret_cast<const char*>(data), size);
    in_input_ = true;
    inputs_run_++;
    g_fuzz_on_failure = [] { Current()->SaveHistory(); };
    Current() = this;
  }
  void End(const Model& m) {
    totals_.Add(m);
    in_input_ = false;
  }
  // A fresh store replaces the epoch's one.
  void Clear() {
    history_.clear();
    totals_ = Totals();
    stores_++;
  }
  void Reopened() { reopens_++; }

  // The run in one line, for its end (tools/dev soak shows it).
  void PrintRun(const char* target) const {
    std::fprintf(stderr, "%s: %llu inputs on %llu fresh stores, %llu reopens\n", target,
                 static_cast<unsigned long long>(inputs_run_),
                 static_cast<unsigned long long>(stores_),
                 static_cast<unsigned long long>(reopens_));
  }

  // On a failed check: the inputs since the store was fresh, in order, as
  // files that `fuzz_<name> DIR/*` (or the replay build with DIR) runs
  // again from a fresh store (ending with the whole-store check at exit).
  void SaveHistory() const {
    if (history_.size() <= 1 && in_input_) {
      std::fprintf(stderr, "the failing input ran on a fresh store: replaying it alone reproduces this\n");
      return;
    }
    if (history_.empty()) return;
    std::string dir = "evstore-fuzz-history-" + std::to_string(getpid());
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    for (size_t i = 0; i < history_.size() && !ec; i++) {
      char name[32];
      std::snprintf(name, sizeof name, "/input-%05zu", i);
      std::ofstream(dir + name, std::ios::binary) << history_[i];
    }
    if (in_input_) {
      std::fprintf(stderr,
                   "the failing input ran after %zu other input(s) on the same store; all are in "
                   "%s/ (the failing one last): replay them in order with `%s %s/*`\n",
                   history_.size() - 1, dir.c_str(), program_invocation_name, dir.c_str());
    } else {
      std::fprintf(stderr,
                   "the whole-store check after %zu input(s) failed (not the input libFuzzer "
                   "saves): they are in %s/; replay them in order with `%s %s/*`\n",
                   history_.size(), dir.c_str(), program_invocation_name, dir.c_str());
    }
  }

 private:
  static Epoch*& Current() {
    static Epoch* current = nullptr;
    return current;
  }
  std::vector<std::string> history_;
  bool in_input_ = false;  // between Begin and End
  Totals totals_;
  uint64_t inputs_run_ = 0, stores_ = 0, reopens_ = 0;  // in the whole run
};

}  // namespace

#endif  // EVSTORE_FUZZ_STORE_MODEL_HPP_
