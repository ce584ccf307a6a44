// inspect: Verify — every record and both directions of every index.
//
// The indexes are checked both ways without a point read per entry (under a
// sanitizer, verifying by point reads cost as much as writing the events):
// - index -> event: the index entries are read first (up to a bounded batch)
//   and sorted by the position they name; the scan of the log then checks
//   each against the event it has just decoded. Entries beyond the batch are
//   checked in further batches, each walking the log with one cursor in
//   position order.
// - event -> index: counted. An entry that matches its event exactly is the
//   one entry that event needs in that index (its key is made from the event),
//   so when an index holds as many matching entries as the sound events need,
//   none is missing. Only when the counts differ are the events read again,
//   looking each entry up, to name what is missing or wrong.
#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <unordered_map>

#include "common/utf8.hpp"
#include "event_generated.h"
#include "evstore/inspect.hpp"
#include "format/checkpoint_record.hpp"
#include "format/keys.hpp"
#include "format/record.hpp"
#include "format/saga_record.hpp"
#include "inspect/read_view.hpp"
#include "inspect/text.hpp"
#include "inspect/verify_projections.hpp"
#include "log/subscription_impl.hpp"

namespace evstore::inspect {

using internal::Cf;

namespace {

// What the passes learn about one stream. Versions are dense when the events
// that decode (`good`) plus those an index entry shows to be damaged or
// missing (`accounted`) cover 0..end-1; each of those is reported on its own,
// so density only flags versions that nothing at all accounts for.
struct StreamState {
  std::string name;
  uint64_t good = 0;      // events of the stream that decode
  uint64_t end = 0;       // one past the highest version seen (events, or damaged via the index)
  uint64_t last_good = 0; // version of the previous good event, in position order
  uint64_t accounted = 0; // index entries pointing at damaged or missing events
  bool index_seen = false;
  uint64_t index_head = 0;
  uint64_t index_last_position = 0;
};

std::string Quoted(std::string_view s) {
  std::string out = "\"";
  AppendEscaped(s, &out);
  out.push_back('"');
  return out;
}

std::string HexKey(std::string_view s) {
  std::string out = "0x";
  AppendHex(s, &out);
  return out;
}

std::string NameKey(std::string_view name, uint64_t pos) {
  return Quoted(name) + " @" + std::to_string(pos);
}

std::string StreamIndexLabel(uint64_t sid, uint64_t version) {
  return "stream " + std::to_string(sid) + " version " + std::to_string(version);
}

// Index entries held at once: bounds the memory of a batch (the names and
// ids of its keys); a store with more entries is checked in several batches.
constexpr size_t kBatchEntries = 1u << 16;
constexpr size_t kBatchBytes = 8u << 20;
// How far the walking cursor steps forward before it seeks instead.
constexpr int kWalkSteps = 16;

// The indexes checked both ways, in the order they are read.
enum Index { kStreamIdx, kCategoryIdx, kTypeIdx, kIdsIdx, kNumIndexes };
constexpr Cf kIndexCf[kNumIndexes] = {internal::kCfStreamIndex, internal::kCfCategoryIndex,
                                      internal::kCfTypeIndex, internal::kCfEventIds};

// An index entry waiting for the event it names.
struct Entry {
  uint64_t position = 0;
  Index index = kStreamIdx;
  // stream_index: the key's stream id and version, and the stream with
  // that id (null: no stream record has it).
  uint64_t stream_id = 0, version = 0;
  StreamState* stream = nullptr;
  // category_index, type_index: the key's name; whether the value is empty.
  std::string name;
  bool empty_value = true;
  // event_ids: the key.
  Uuid id;
};

// One index being read, batch by batch.
struct IndexScan {
  std::unique_ptr<internal::CfCursor> cursor;  // null until it starts
  std::optional<Ticker> ticker;
  bool done = false;
};

class Verifier {
 public:
  Verifier(const ReadView& view, const VerifyOptions& o, VerifyReport* r)
      : view_(view), o_(o), r_(r) {}

  Status Run() {
    Status s = CheckMetadata();
    if (s.ok()) s = CheckStreams();
    if (s.ok()) {
      // The first batch of index entries is checked during the scan of the
      // log, the rest (if any) afterwards.
      ReadEntries();
      s = CheckEvents();
    }
    while (s.ok() && ReadEntries()) WalkEntries();
    if (s.ok()) CheckStreamHeads();
    if (s.ok()) s = FindMissingEntries();
    if (s.ok()) s = CheckSagas();
    if (s.ok()) s = CheckCheckpoints();
    if (s.ok())
      VerifyProjections(view_, log_end_, o_.progress,
                        [this](Cf cf, std::string key, uint64_t position, std::string message) {
                          Report(cf, std::move(key), position, std::move(message));
                        });
    return s;
  }

 private:
  void Report(Cf cf, std::string key, uint64_t position, std::string message) {
    r_->problem_count++;
    if (r_->problems.size() < o_.max_problems)
      r_->problems.push_back(
          Problem{internal::kCfNames[cf], std::move(key), position, std::move(message)});
  }

  Status CheckMetadata() {
    std::string v;
    Status s = view_.Get(internal::kCfDefault, format::kFormatKey, &v);
    if (s.IsNotFound()) {
      Report(internal::kCfDefault, std::string(format::kFormatKey), Problem::kNoPosition,
             "format record is missing");
    } else if (!s.ok()) {
      return InContext(s, "reading the format record");
    } else if (auto fr = format::DecodeFormatRecord(v); !fr) {
      Report(internal::kCfDefault, std::string(format::kFormatKey), Problem::kNoPosition,
             "format record is damaged");
    } else if (fr->version > format::kFormatVersion) {
      Report(internal::kCfDefault, std::string(format::kFormatKey), Problem::kNoPosition,
             "format " + std::to_string(fr->version) + " is newer than this build reads");
    }
    s = view_.Get(internal::kCfDefault, format::kIdTagKey, &v);
    if (!s.ok() && !s.IsNotFound()) return InContext(s, "reading the id tag");
    if (s.ok() && v.size() == 8) {
      tag_ = format::GetBE64(v.data());
      have_tag_ = true;
    } else {
      Report(internal::kCfDefault, std::string(format::kIdTagKey), Problem::kNoPosition,
             "id tag record is missing or damaged");
    }
    s = view_.Get(internal::kCfDefault, format::kNextStreamIdKey, &v);
    if (!s.ok() && !s.IsNotFound()) return InContext(s, "reading the next stream id");
    if (s.ok()) {
      if (auto n = format::DecodePositionValue(v)) {
        next_stream_id_ = *n;
      } else {
        Report(internal::kCfDefault, std::string(format::kNextStreamIdKey), Problem::kNoPosition,
               "next-stream-id record is damaged");
      }
    }
    return Status::OK();
  }

  Status CheckStreams() {
    Ticker t(o_.progress, "streams", EstimateKeys(view_, internal::kCfStreams));
    auto it = view_.Cursor(internal::kCfStreams);
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      t.Tick();
      r_->streams++;
      std::string_view name = it->key();
      format::StreamFields f{};
      Status ds = format::DecodeStream(name, it->value(), &scratch_, &f);
      if (!ds.ok()) {
        Report(internal::kCfStreams, Quoted(name), Problem::kNoPosition,
               std::string(ds.message()));
        continue;
      }
      if (name.empty() || !IsValidName(name))
        Report(internal::kCfStreams, Quoted(name), Problem::kNoPosition,
               "stream name is empty, not UTF-8 or holds NUL");
      if (f.stream_id == 0 || (next_stream_id_ != 0 && f.stream_id >= next_stream_id_))
        Report(internal::kCfStreams, Quoted(name), Problem::kNoPosition,
               "stream id " + std::to_string(f.stream_id) + " is outside [1, next stream id " +
                   std::to_string(next_stream_id_) + ")");
      stream_ids_[std::string(name)] = f.stream_id;
      auto [pos, inserted] = streams_.try_emplace(f.stream_id, StreamState{std::string(name)});
      if (!inserted)
        Report(internal::kCfStreams, Quoted(name), Problem::kNoPosition,
               "stream id " + std::to_string(f.stream_id) + " is also used by stream " +
                   Quoted(pos->second.name));
    }
    if (!it->status().ok()) ReportScanFailure(internal::kCfStreams, it->status());
    t.Finish();
    return Status::OK();
  }

  Status CheckEvents() {
    Ticker t(o_.progress, "events", EstimateKeys(view_, internal::kCfEvents));
    auto it = view_.Cursor(internal::kCfEvents);
    uint64_t expect = 0, last_resume = 0;
    bool resumed = false, yielded = false;
    it->SeekToFirst();
    for (;;) {
      for (; it->Valid(); it->Next()) {
        t.Tick();
        yielded = true;
        CheckEvent(it->key(), it->value(), &expect);
      }
      if (it->status().ok()) break;
      // RocksDB found damage under the records (a block failing its
      // checksum, an unreadable file). Report each position it hides and
      // carry on after it.
      Status err = ToStatus(it->status());
      // A position readable by itself but where a scan fails at once is
      // counted with the damage, so every round makes progress.
      if (resumed && !yielded) ReportUnreadable(last_resume, &expect, err);
      uint64_t resume = SkipDamaged(&expect, err);
      if (resume == kNoResume) break;
      resumed = true;
      yielded = false;
      last_resume = resume;
      it = view_.Cursor(internal::kCfEvents);
      it->Seek(format::Be64(resume).view());
    }
    // Entries naming positions past the last event the scan read.
    JoinEntriesBefore(UINT64_MAX);
    // Also past damage that hid the last records: a checkpoint there is not
    // beyond the end.
    log_end_ = std::max(expect, LogEnd(view_));
    t.Finish();
    return Status::OK();
  }

  static constexpr uint64_t kNoResume = UINT64_MAX;

  // RocksDB could not read `cf` past some point (damage under its entries):
  // reported, and verification goes on with what was read. Only the log
  // itself is read around damage (SkipDamaged), since its keys are dense.
  void ReportScanFailure(Cf cf, const Status& s) {
    Report(cf, std::string(internal::kCfNames[cf]), Problem::kNoPosition,
           "cannot be read to its end: " + std::string(s.message()));
  }

  static Status ToStatus(const Status& s) { return InContext(s, "reading events"); }

  // Checks one record of `events`, and the batch's index entries naming
  // positions up to it; *expect is the next position expected.
  void CheckEvent(std::string_view key, std::string_view value, uint64_t* expect) {
    r_->events++;
    auto pos = format::DecodeEventKey(key);
    if (!pos) {
      Report(internal::kCfEvents, HexKey(key), Problem::kNoPosition, "malformed key (not 8 bytes)");
      return;
    }
    ReportGap(*pos, expect);
    JoinEntriesBefore(*pos);
    EventView e;
    Status ds = format::DecodeEvent(*pos, value, &scratch_, &e);
    if (!ds.ok()) {
      Report(internal::kCfEvents, "position " + std::to_string(*pos), *pos, std::string(ds.message()));
      bad_.insert(*pos);
      for (; join_ < batch_.size() && batch_[join_].position == *pos; join_++)
        CheckEntry(batch_[join_], nullptr, 0, /*damaged=*/true);
      return;
    }
    // DecodeEvent verified the body in scratch_; the stream id is not in
    // EventView, so read it from the record itself.
    uint64_t record_sid = fb::GetEventRecord(scratch_.data())->stream_id();
    CheckEventAndCount(*pos, e, record_sid);
    for (; join_ < batch_.size() && batch_[join_].position == *pos; join_++)
      CheckEntry(batch_[join_], &e, record_sid, false);
  }

  // Position `pos` was found; *expect the next one expected.
  void ReportGap(uint64_t pos, uint64_t* expect) {
    if (pos != *expect)
      Report(internal::kCfEvents, "position " + std::to_string(pos), pos,
             pos > *expect ? "positions " + std::to_string(*expect) + ".." +
                                 std::to_string(pos - 1) + " are missing (the log has a gap)"
                           : "position out of order");
    if (pos >= *expect) *expect = pos + 1;
  }

  void ReportUnreadable(uint64_t pos, uint64_t* expect, const Status& why) {
    r_->events++;
    ReportGap(pos, expect);
    Report(internal::kCfEvents, "position " + std::to_string(pos), pos,
           "unreadable: " + std::string(why.message()));
    bad_.insert(pos);
  }

  // The scan stopped with `err` before *expect. Reads the positions from
  // there one by one (positions are dense, so each hidden record is one of
  // them) up to the end of the log, reporting those that cannot be read.
  // Returns the first readable position after the damage, or kNoResume.
  uint64_t SkipDamaged(uint64_t* expect, const Status& err) {
    const uint64_t end = view_.store().visible();
    bool reported = false;
    for (uint64_t p = *expect; p < end; p++) {
      format::Be64 k(p);
      Status gs = view_.Get(internal::kCfEvents, k.view(), &value_);
      if (gs.ok()) return p;
      if (gs.IsNotFound()) continue;  // a gap: reported when the scan resumes
      ReportUnreadable(p, expect, ToStatus(gs));
      reported = true;
    }
    // Damage that hides no position (say, past the last record the store
    // knows of) is still damage.
    if (!reported)
      Report(internal::kCfEvents, "position " + std::to_string(*expect), *expect,
             "the log cannot be read from here: " + std::string(err.message()));
    return kNoResume;
  }

  // The event's own checks against its stream; counts the index entries it
  // needs (want_).
  void CheckEventAndCount(uint64_t pos, const EventView& e, uint64_t record_sid);
  // The stream id the stream record of `stream` gives, if it has one.
  std::optional<uint64_t> StreamIdOf(std::string_view stream) const {
    auto it = stream_ids_.find(stream);
    if (it == stream_ids_.end()) return std::nullopt;
    return it->second;
  }
  // Whether an event_ids entry is needed for `id` at `pos` (generated ids
  // are found through their position instead).
  bool NeedsIdEntry(const Uuid& id, uint64_t pos) const {
    if (id.is_nil()) return false;
    auto gp = have_tag_ ? format::GeneratedIdPosition(tag_, id.bytes) : std::nullopt;
    return !gp || *gp != pos;
  }

  // ---- index -> event ----

  // Reads the next batch of index entries (all four indexes in turn,
  // reporting what is wrong with a key or value on its own) into batch_,
  // sorted by the position each names. False when every index was read.
  bool ReadEntries();
  // Adds the entry under the cursor of `index` to batch_, or reports it.
  void ReadEntry(Index index, const internal::CfCursor& it);
  // Checks `x` against its event: `e` (with its record's stream id), or
  // none, `damaged` when the event exists but is damaged (reported already).
  void CheckEntry(const Entry& x, const EventView* e, uint64_t record_sid, bool damaged);
  // The entries of batch_ from join_ naming positions below `pos`, which the
  // scan of the log did not yield: each is looked up by itself.
  void JoinEntriesBefore(uint64_t pos);
  // Checks the entries of batch_ by walking the log in their order.
  void WalkEntries();
  std::string LabelOf(const Entry& x) const;
  // Reads and decodes the event an index entry points at. False (with a
  // problem reported, unless the event itself was reported) when there is
  // none or it is damaged.
  // *damaged (optional) is set when the event exists but failed to decode.
  bool LoadTarget(Cf cf, const std::string& label, uint64_t pos, EventView* e,
                  bool* damaged = nullptr);
  // LoadTarget through the walking cursor, for positions in ascending order
  // (WalkEntries). *record_sid receives the record's stream id. The event's
  // views stay valid until the next call.
  bool WalkTo(const Entry& x, EventView* e, uint64_t* record_sid, bool* damaged);
  // Positions the walking cursor at the first key at or after `key`; its
  // error, if it cannot read there.
  Status Walk(std::string_view key);
  // After every entry: the stream heads and the density of versions.
  void CheckStreamHeads();

  // ---- event -> index ----

  // When an index holds fewer matching entries than the events need, reads
  // the events again and looks their entries up, reporting each one missing
  // or wrong.
  Status FindMissingEntries();
  // Calls fn(position, value) for each event record that can be read, in
  // position order, stepping over damage (reported by CheckEvents).
  template <typename Fn>
  void ForEachReadableEvent(const Fn& fn);
  // Reports a missing or wrong index entry (labelled by label()).
  template <typename Label>
  void ExpectKey(Cf cf, std::string_view key, std::string_view want_value, const Label& label,
                 uint64_t position);

  Status CheckSagas();
  Status CheckCheckpoints();

  const ReadView& view_;
  const VerifyOptions& o_;
  VerifyReport* r_;
  uint64_t tag_ = 0;
  bool have_tag_ = false;
  uint64_t next_stream_id_ = 0;
  uint64_t log_end_ = 0;  // one past the last position of the log
  std::unordered_map<uint64_t, StreamState> streams_;
  // name -> id, for events
  std::unordered_map<std::string, uint64_t, internal::StringHash, std::equal_to<>> stream_ids_;
  std::set<uint64_t> bad_;  // positions already reported
  std::string scratch_, scratch2_, value_, target_;
  // Index entries: the indexes being read, the batch in hand (sorted by
  // position) and, while the log is scanned, the first entry not yet checked.
  IndexScan scans_[kNumIndexes];
  std::vector<Entry> batch_;
  size_t join_ = 0;
  // Index entries the events need, and those that match their event.
  uint64_t want_[kNumIndexes] = {};
  uint64_t matched_[kNumIndexes] = {};
  // The walking cursor over `events` and what it found at walk_pos_.
  std::unique_ptr<internal::CfCursor> walker_;
  bool walked_ = false;  // the walk_* fields describe walk_pos_
  uint64_t walk_pos_ = 0;
  bool walk_found_ = false;
  Status walk_decode_;
  EventView walk_event_;
  uint64_t walk_sid_ = 0;
};

void Verifier::CheckEventAndCount(uint64_t pos, const EventView& e, uint64_t record_sid) {
  const std::string at = "position " + std::to_string(pos);
  auto idit = stream_ids_.find(e.stream);
  if (idit == stream_ids_.end()) {
    Report(internal::kCfEvents, at, pos, "event of stream " + Quoted(e.stream) +
                                             ", which has no stream record");
  } else {
    uint64_t sid = idit->second;
    if (record_sid != sid)
      Report(internal::kCfEvents, at, pos,
             "event names stream id " + std::to_string(record_sid) + " but stream " +
                 Quoted(e.stream) + " has id " + std::to_string(sid));
    StreamState& st = streams_[sid];
    if (st.good > 0 && e.version <= st.last_good)
      Report(internal::kCfEvents, at, pos,
             "stream " + Quoted(e.stream) + " version " + std::to_string(e.version) +
                 " follows version " + std::to_string(st.last_good) +
                 " at a lower position (versions must grow with positions)");
    st.good++;
    st.last_good = e.version;
    st.end = std::max(st.end, e.version + 1);
    want_[kStreamIdx]++;
  }
  if (!CategoryOf(e.stream).empty()) want_[kCategoryIdx]++;
  want_[kTypeIdx]++;
  if (e.id.is_nil()) {
    Report(internal::kCfEvents, at, pos, "event id is nil");
  } else if (NeedsIdEntry(e.id, pos)) {
    want_[kIdsIdx]++;
  }
}

bool Verifier::ReadEntries() {
  batch_.clear();
  join_ = 0;
  size_t bytes = 0;
  for (int i = 0; i < kNumIndexes; i++) {
    const Index index = static_cast<Index>(i);
    IndexScan& scan = scans_[i];
    if (scan.done) continue;
    const Cf cf = kIndexCf[i];
    if (!scan.cursor) {
      scan.ticker.emplace(o_.progress, internal::kCfNames[cf], EstimateKeys(view_, cf));
      scan.cursor = view_.Cursor(cf);
      scan.cursor->SeekToFirst();
    }
    internal::CfCursor& it = *scan.cursor;
    for (; it.Valid(); it.Next()) {
      if (batch_.size() >= kBatchEntries || bytes >= kBatchBytes) break;
      scan.ticker->Tick();
      const size_t before = batch_.size();
      ReadEntry(index, it);
      if (batch_.size() > before) bytes += sizeof(Entry) + batch_.back().name.size();
    }
    if (it.Valid()) break;  // the batch is full
    if (!it.status().ok()) ReportScanFailure(cf, it.status());
    scan.ticker->Finish();
    scan.cursor.reset();
    scan.done = true;
  }
  // Reports come in the log's order; among entries naming one position, in
  // the order the indexes were read.
  std::stable_sort(batch_.begin(), batch_.end(),
                   [](const Entry& a, const Entry& b) { return a.position < b.position; });
  return !batch_.empty();
}

void Verifier::ReadEntry(Index index, const internal::CfCursor& it) {
  const Cf cf = kIndexCf[index];
  std::string_view key = it.key();
  Entry x;
  x.index = index;
  switch (index) {
    case kStreamIdx: {
      r_->stream_index_entries++;
      auto k = format::DecodeStreamIndexKey(key);
      auto p = format::DecodePositionValue(it.value());
      if (!k) {
        Report(cf, HexKey(key), Problem::kNoPosition, "malformed key (not 16 bytes)");
        return;
      }
      if (!p) {
        Report(cf, StreamIndexLabel(k->stream_id, k->version), Problem::kNoPosition,
               "malformed value (not an 8-byte position)");
        return;
      }
      auto sit = streams_.find(k->stream_id);
      if (sit == streams_.end()) {
        Report(cf, StreamIndexLabel(k->stream_id, k->version), *p,
               "entry of stream id " + std::to_string(k->stream_id) + ", which has no stream record");
      } else {
        StreamState& st = sit->second;
        if (st.index_seen && *p <= st.index_last_position)
          Report(cf, StreamIndexLabel(k->stream_id, k->version), *p,
                 "position " + std::to_string(*p) + " is not above the previous version's position " +
                     std::to_string(st.index_last_position));
        st.index_seen = true;
        st.index_head = k->version;  // keys ascend: the last one is the head
        st.index_last_position = *p;
        x.stream = &st;
      }
      x.position = *p;
      x.stream_id = k->stream_id;
      x.version = k->version;
      break;
    }
    case kCategoryIdx:
    case kTypeIdx: {
      (*(index == kTypeIdx ? &r_->type_index_entries : &r_->category_index_entries))++;
      auto k = format::DecodeNameIndexKey(key);
      if (!k) {
        Report(cf, HexKey(key), Problem::kNoPosition,
               "malformed key (not name + 0x00 + 8-byte position)");
        return;
      }
      x.position = k->position;
      x.name = std::string(k->name);
      x.empty_value = it.value().empty();
      if (!x.empty_value) Report(cf, NameKey(k->name, k->position), k->position, "value is not empty");
      break;
    }
    case kIdsIdx: {
      r_->event_id_entries++;
      if (key.size() != 16) {
        Report(cf, HexKey(key), Problem::kNoPosition, "malformed key (not 16 bytes)");
        return;
      }
      std::memcpy(x.id.bytes, key.data(), 16);
      auto p = format::DecodePositionValue(it.value());
      if (!p) {
        Report(cf, x.id.ToString(), Problem::kNoPosition, "malformed value (not an 8-byte position)");
        return;
      }
      x.position = *p;
      break;
    }
    case kNumIndexes: return;
  }
  batch_.push_back(std::move(x));
}

std::string Verifier::LabelOf(const Entry& x) const {
  switch (x.index) {
    case kStreamIdx: return StreamIndexLabel(x.stream_id, x.version);
    case kIdsIdx: return x.id.ToString();
    default: return NameKey(x.name, x.position);
  }
}

void Verifier::CheckEntry(const Entry& x, const EventView* e, uint64_t record_sid, bool damaged) {
  const Cf cf = kIndexCf[x.index];
  if (e == nullptr) {
    if (x.index == kStreamIdx && x.stream != nullptr) {
      x.stream->accounted++;
      if (damaged) x.stream->end = std::max(x.stream->end, x.version + 1);
    }
    return;
  }
  const std::string_view pos = "points at position ";
  switch (x.index) {
    case kStreamIdx:
      if (record_sid != x.stream_id || e->version != x.version) {
        Report(cf, LabelOf(x), x.position,
               std::string(pos) + std::to_string(x.position) + ", which holds stream id " +
                   std::to_string(record_sid) + " version " + std::to_string(e->version));
      } else if (StreamIdOf(e->stream) == x.stream_id) {
        matched_[x.index]++;
      }
      break;
    case kCategoryIdx:
    case kTypeIdx: {
      std::string_view have = x.index == kTypeIdx ? e->type : CategoryOf(e->stream);
      if (have != x.name) {
        Report(cf, LabelOf(x), x.position,
               std::string(pos) + std::to_string(x.position) + ", whose " +
                   (x.index == kTypeIdx ? "type" : "category") + " is " + Quoted(have));
      } else if (x.empty_value) {
        matched_[x.index]++;
      }
      break;
    }
    case kIdsIdx:
      if (e->id != x.id) {
        Report(cf, LabelOf(x), x.position,
               std::string(pos) + std::to_string(x.position) + ", whose event id is " +
                   e->id.ToString());
      } else if (NeedsIdEntry(x.id, x.position)) {
        matched_[x.index]++;
      }
      break;
    case kNumIndexes: break;
  }
}

void Verifier::JoinEntriesBefore(uint64_t pos) {
  for (; join_ < batch_.size() && batch_[join_].position < pos; join_++) {
    const Entry& x = batch_[join_];
    if (bad_.count(x.position)) {  // reported with the event (unreadable)
      CheckEntry(x, nullptr, 0, /*damaged=*/true);
      continue;
    }
    EventView e;
    bool damaged = false;
    if (!LoadTarget(kIndexCf[x.index], LabelOf(x), x.position, &e, &damaged)) {
      CheckEntry(x, nullptr, 0, damaged);
      continue;
    }
    CheckEntry(x, &e, fb::GetEventRecord(scratch2_.data())->stream_id(), false);
  }
}

bool Verifier::LoadTarget(Cf cf, const std::string& label, uint64_t pos, EventView* e,
                          bool* damaged) {
  Status s = view_.Get(internal::kCfEvents, format::EventKey(pos).view(), &target_);
  if (s.IsNotFound()) {
    Report(cf, label, pos, "points at position " + std::to_string(pos) + ", which holds no event");
    return false;
  }
  if (bad_.count(pos)) {  // reported with the event (unreadable or damaged)
    if (damaged) *damaged = true;
    return false;
  }
  if (!s.ok()) {
    // Unreadable here although the scan of the log did not report it.
    if (damaged) *damaged = true;
    Report(cf, label, pos, "points at position " + std::to_string(pos) + ", which is unreadable: " +
                               std::string(s.message()));
    return false;
  }
  Status ds = format::DecodeEvent(pos, target_, &scratch2_, e);
  if (!ds.ok()) {
    if (damaged) *damaged = true;
    Report(cf, label, pos, std::string(ds.message()));
    return false;
  }
  return true;
}

void Verifier::WalkEntries() {
  walker_.reset();
  walked_ = false;
  for (const Entry& x : batch_) {
    EventView e;
    uint64_t record_sid = 0;
    bool damaged = false;
    if (WalkTo(x, &e, &record_sid, &damaged))
      CheckEntry(x, &e, record_sid, false);
    else
      CheckEntry(x, nullptr, 0, damaged);
  }
  walker_.reset();
  walked_ = false;
}

Status Verifier::Walk(std::string_view key) {
  if (!walker_) {
    walker_ = view_.Cursor(internal::kCfEvents);
    walker_->Seek(key);
    return walker_->status();
  }
  // The cursor is at the first key at or after the previous position (or
  // past the last key): a key above `key` means none lies between.
  for (int steps = 0; walker_->Valid() && walker_->key() < key; steps++) {
    if (steps == kWalkSteps) {
      walker_->Seek(key);
      break;
    }
    walker_->Next();
  }
  return walker_->status();
}

bool Verifier::WalkTo(const Entry& x, EventView* e, uint64_t* record_sid, bool* damaged) {
  const uint64_t pos = x.position;
  const Cf cf = kIndexCf[x.index];
  if (!walked_ || walk_pos_ != pos) {
    walked_ = false;
    format::Be64 k(pos);
    if (!Walk(k.view()).ok()) {
      // The cursor cannot read here (damage under the records): a point
      // read says what is there, and the next position seeks afresh.
      walker_.reset();
      if (!LoadTarget(cf, LabelOf(x), pos, e, damaged)) return false;
      *record_sid = fb::GetEventRecord(scratch2_.data())->stream_id();
      return true;
    }
    walked_ = true;
    walk_pos_ = pos;
    walk_found_ = walker_->Valid() && walker_->key() == k.view();
    walk_decode_ = Status::OK();
    if (walk_found_ && !bad_.count(pos)) {
      walk_decode_ = format::DecodeEvent(pos, walker_->value(), &scratch2_, &walk_event_);
      if (walk_decode_.ok()) walk_sid_ = fb::GetEventRecord(scratch2_.data())->stream_id();
    }
  }
  if (!walk_found_) {
    Report(cf, LabelOf(x), pos, "points at position " + std::to_string(pos) + ", which holds no event");
    return false;
  }
  if (bad_.count(pos)) {  // reported with the event (unreadable or damaged)
    *damaged = true;
    return false;
  }
  if (!walk_decode_.ok()) {
    *damaged = true;
    Report(cf, LabelOf(x), pos, std::string(walk_decode_.message()));
    return false;
  }
  *e = walk_event_;
  *record_sid = walk_sid_;
  return true;
}

void Verifier::CheckStreamHeads() {
  // The last index key of each stream is its newest event.
  std::map<std::string, const StreamState*> ordered;
  for (const auto& [sid, st] : streams_) ordered.emplace(st.name, &st);
  for (const auto& [name, st] : ordered) {
    if (st->end == 0 && !st->index_seen) {
      Report(internal::kCfStreams, Quoted(name), Problem::kNoPosition, "stream has no events");
      continue;
    }
    if (!st->index_seen || st->index_head + 1 != st->end)
      Report(internal::kCfStreams, Quoted(name), Problem::kNoPosition,
             "stream head in stream_index is " +
                 (st->index_seen ? "version " + std::to_string(st->index_head) : std::string("absent")) +
                 " but its events end at " +
                 (st->end ? "version " + std::to_string(st->end - 1) : std::string("no event")));
    if (st->good + st->accounted < st->end)
      Report(internal::kCfStreams, Quoted(name), Problem::kNoPosition,
             "versions are not dense: " + std::to_string(st->end - st->good - st->accounted) +
                 " of versions 0.." + std::to_string(st->end - 1) + " have no event");
  }
}

template <typename Label>
void Verifier::ExpectKey(Cf cf, std::string_view key, std::string_view want_value,
                         const Label& label, uint64_t position) {
  Status s = view_.Get(cf, key, &value_);
  if (s.IsNotFound()) {
    Report(cf, label(), position, "index entry is missing for the event at position " +
                                      std::to_string(position));
  } else if (!s.ok()) {
    Report(cf, label(), position, "index entry is unreadable: " + std::string(s.message()));
  } else if (value_ != want_value) {
    Report(cf, label(), position,
           "index entry has value " + HexKey(value_) + ", expected " + HexKey(want_value) +
               " (the event at position " + std::to_string(position) + ")");
  }
}

template <typename Fn>
void Verifier::ForEachReadableEvent(const Fn& fn) {
  uint64_t from = 0;
  while (from < log_end_) {
    auto it = view_.Cursor(internal::kCfEvents);
    it->Seek(format::Be64(from).view());
    bool moved = false;
    for (; it->Valid(); it->Next()) {
      auto pos = format::DecodeEventKey(it->key());
      if (!pos) continue;
      fn(*pos, it->value());
      from = *pos + 1;
      moved = true;
    }
    if (it->status().ok()) return;
    // Damage the scan cannot pass: step over the position it stopped at.
    if (!moved) from++;
  }
}

Status Verifier::FindMissingEntries() {
  bool need[kNumIndexes];
  bool any = false;
  for (int i = 0; i < kNumIndexes; i++) {
    need[i] = matched_[i] < want_[i];
    any |= need[i];
  }
  if (!any) return Status::OK();
  Ticker t(o_.progress, "index_lookups", log_end_);
  std::string key;
  ForEachReadableEvent([&](uint64_t pos, std::string_view value) {
    t.Tick();
    EventView e;
    if (bad_.count(pos) || !format::DecodeEvent(pos, value, &scratch_, &e).ok()) return;
    format::Be64 pv(pos);
    auto sid = StreamIdOf(e.stream);
    if (need[kStreamIdx] && sid) {
      format::StreamIndexKey sk(*sid, e.version);
      ExpectKey(internal::kCfStreamIndex, sk.view(), pv.view(),
                [&] { return StreamIndexLabel(*sid, e.version); }, pos);
    }
    std::string_view cat = CategoryOf(e.stream);
    if (need[kCategoryIdx] && !cat.empty()) {
      key.clear();
      format::AppendNameIndexKey(&key, cat, pos);
      ExpectKey(internal::kCfCategoryIndex, key, "", [&] { return NameKey(cat, pos); }, pos);
    }
    if (need[kTypeIdx]) {
      key.clear();
      format::AppendNameIndexKey(&key, e.type, pos);
      ExpectKey(internal::kCfTypeIndex, key, "", [&] { return NameKey(e.type, pos); }, pos);
    }
    if (need[kIdsIdx] && NeedsIdEntry(e.id, pos))
      ExpectKey(internal::kCfEventIds,
                std::string_view(reinterpret_cast<const char*>(e.id.bytes), 16), pv.view(),
                [&] { return e.id.ToString(); }, pos);
  });
  t.Finish();
  return Status::OK();
}

Status Verifier::CheckSagas() {
  Ticker t(o_.progress, "sagas", EstimateKeys(view_, internal::kCfSagas));
  auto it = view_.Cursor(internal::kCfSagas);
  format::SagaRecordData rec;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    t.Tick();
    if (format::IsSagaIndexKey(it->key())) {
      // The saga engine's index entries, beside the records.
      format::SagaIndexEntry e;
      if (!format::ParseSagaIndexKey(it->key(), &e))
        Report(internal::kCfSagas, HexKey(it->key()), Problem::kNoPosition,
               "malformed saga index key");
      continue;
    }
    r_->saga_records++;
    Status ds = format::DecodeSagaRecord(it->key(), it->value(), &rec);
    if (!ds.ok())
      Report(internal::kCfSagas, Quoted(it->key()), Problem::kNoPosition,
             std::string(ds.message()));
  }
  if (!it->status().ok()) ReportScanFailure(internal::kCfSagas, it->status());
  t.Finish();
  return Status::OK();
}

// Checkpoints are written by subscriptions in the same commit as, or after,
// the events they cover, so one past the end of the log means lost events or
// a damaged record.
Status Verifier::CheckCheckpoints() {
  Ticker t(o_.progress, "checkpoints", EstimateKeys(view_, internal::kCfCheckpoints));
  auto it = view_.Cursor(internal::kCfCheckpoints);
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    t.Tick();
    r_->checkpoint_records++;
    std::string_view name = it->key();
    if (!internal::ValidCheckpointName(name).ok()) {
      Report(internal::kCfCheckpoints, Quoted(name), Problem::kNoPosition,
             "checkpoint name is empty, longer than 256 bytes, not UTF-8 or holds NUL");
      continue;
    }
    format::CheckpointFields f;
    Status ds = format::DecodeCheckpoint(name, it->value(), &f);
    if (!ds.ok()) {
      Report(internal::kCfCheckpoints, Quoted(name), Problem::kNoPosition,
             std::string(ds.message()));
      continue;
    }
    if (f.position > log_end_)
      Report(internal::kCfCheckpoints, Quoted(name), f.position,
             "checkpoint '" + std::string(name) + "' is at position " +
                 std::to_string(f.position) + ", beyond the end of the log (the next event gets " +
                 std::to_string(log_end_) + "): events it covers are missing");
  }
  if (!it->status().ok()) ReportScanFailure(internal::kCfCheckpoints, it->status());
  t.Finish();
  return Status::OK();
}

}  // namespace

Result<VerifyReport> Verify(const Store& store, const VerifyOptions& options) {
  ReadView view(store);
  if (!view.status().ok()) return view.status();
  VerifyReport report;
  Verifier v(view, options, &report);
  Status s = v.Run();
  if (!s.ok()) return s;
  return report;
}

}  // namespace evstore::inspect
