// inspect: Verify — every record and both directions of every index.
#include <algorithm>
#include <cstring>
#include <map>
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

class Verifier {
 public:
  Verifier(const ReadView& view, const VerifyOptions& o, VerifyReport* r)
      : view_(view), o_(o), r_(r) {}

  Status Run() {
    Status s = CheckMetadata();
    if (s.ok()) s = CheckStreams();
    if (s.ok()) s = CheckEvents();
    if (s.ok()) s = CheckStreamIndex();
    if (s.ok()) s = CheckNameIndex(internal::kCfCategoryIndex, &r_->category_index_entries);
    if (s.ok()) s = CheckNameIndex(internal::kCfTypeIndex, &r_->type_index_entries);
    if (s.ok()) s = CheckEventIds();
    if (s.ok()) s = CheckSagas();
    if (s.ok()) s = CheckCheckpoints();
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

  // Reports a missing or wrong index entry; an error only when reading fails.
  Status ExpectKey(Cf cf, std::string_view key, std::string_view want_value, std::string label,
                   uint64_t position) {
    Status s = view_.Get(cf, key, &value_);
    if (s.IsNotFound()) {
      Report(cf, std::move(label), position, "index entry is missing for the event at position " +
                                                 std::to_string(position));
      return Status::OK();
    }
    if (!s.ok()) {
      Report(cf, std::move(label), position, "index entry is unreadable: " + std::string(s.message()));
      return Status::OK();
    }
    if (value_ != want_value)
      Report(cf, std::move(label), position,
             "index entry has value " + HexKey(value_) + ", expected " + HexKey(want_value) +
                 " (the event at position " + std::to_string(position) + ")");
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
        Status s = CheckEvent(it->key(), it->value(), &expect);
        if (!s.ok()) return s;
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

  // Checks one record of `events`; *expect is the next position expected.
  Status CheckEvent(std::string_view key, std::string_view value, uint64_t* expect) {
    r_->events++;
    auto pos = format::DecodeEventKey(key);
    if (!pos) {
      Report(internal::kCfEvents, HexKey(key), Problem::kNoPosition, "malformed key (not 8 bytes)");
      return Status::OK();
    }
    ReportGap(*pos, expect);
    EventView e;
    Status ds = format::DecodeEvent(*pos, value, &scratch_, &e);
    if (!ds.ok()) {
      Report(internal::kCfEvents, "position " + std::to_string(*pos), *pos, std::string(ds.message()));
      bad_.insert(*pos);
      return Status::OK();
    }
    // DecodeEvent verified the body in scratch_; the stream id is not in
    // EventView, so read it from the record itself.
    uint64_t record_sid = fb::GetEventRecord(scratch_.data())->stream_id();
    format::Be64 pv(*pos);
    return CheckEventIndexes(*pos, e, record_sid, pv.view());
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

  Status CheckEventIndexes(uint64_t pos, const EventView& e, uint64_t record_sid,
                           std::string_view pv);
  Status CheckStreamIndex();
  Status CheckNameIndex(Cf cf, uint64_t* count);
  Status CheckEventIds();
  Status CheckSagas();
  Status CheckCheckpoints();
  // Reads and decodes the event an index entry points at. False (with a
  // problem reported, unless the event itself was reported) when there is
  // none or it is damaged.
  // *damaged (optional) is set when the event exists but failed to decode.
  bool LoadTarget(Cf cf, const std::string& label, uint64_t pos, EventView* e,
                  bool* damaged = nullptr);

  const ReadView& view_;
  const VerifyOptions& o_;
  VerifyReport* r_;
  uint64_t tag_ = 0;
  bool have_tag_ = false;
  uint64_t next_stream_id_ = 0;
  uint64_t log_end_ = 0;  // one past the last position of the log
  std::unordered_map<uint64_t, StreamState> streams_;
  std::unordered_map<std::string, uint64_t> stream_ids_;  // name -> id, for events
  std::set<uint64_t> bad_;                                // positions already reported
  std::string scratch_, scratch2_, value_, target_;
};

Status Verifier::CheckEventIndexes(uint64_t pos, const EventView& e, uint64_t record_sid,
                                   std::string_view pv) {
  const std::string at = "position " + std::to_string(pos);
  auto idit = stream_ids_.find(std::string(e.stream));
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
    format::StreamIndexKey sk(sid, e.version);
    Status s = ExpectKey(internal::kCfStreamIndex, sk.view(), pv,
                         "stream " + std::to_string(sid) + " version " + std::to_string(e.version),
                         pos);
    if (!s.ok()) return s;
  }
  std::string_view cat = CategoryOf(e.stream);
  if (!cat.empty()) {
    Status s = ExpectKey(internal::kCfCategoryIndex, format::NameIndexKey(cat, pos), "",
                         NameKey(cat, pos), pos);
    if (!s.ok()) return s;
  }
  Status s = ExpectKey(internal::kCfTypeIndex, format::NameIndexKey(e.type, pos), "",
                       NameKey(e.type, pos), pos);
  if (!s.ok()) return s;
  // Generated ids are found through their position; caller ids are indexed.
  auto gp = have_tag_ ? format::GeneratedIdPosition(tag_, e.id.bytes) : std::nullopt;
  if (e.id.is_nil()) {
    Report(internal::kCfEvents, at, pos, "event id is nil");
  } else if (!gp || *gp != pos) {
    s = ExpectKey(internal::kCfEventIds,
                  std::string_view(reinterpret_cast<const char*>(e.id.bytes), 16), pv,
                  e.id.ToString(), pos);
    if (!s.ok()) return s;
  }
  return Status::OK();
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

Status Verifier::CheckStreamIndex() {
  Ticker t(o_.progress, "stream_index", EstimateKeys(view_, internal::kCfStreamIndex));
  auto it = view_.Cursor(internal::kCfStreamIndex);
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    t.Tick();
    r_->stream_index_entries++;
    auto k = format::DecodeStreamIndexKey(it->key());
    auto p = format::DecodePositionValue(it->value());
    if (!k) {
      Report(internal::kCfStreamIndex, HexKey(it->key()), Problem::kNoPosition,
             "malformed key (not 16 bytes)");
      continue;
    }
    std::string label =
        "stream " + std::to_string(k->stream_id) + " version " + std::to_string(k->version);
    if (!p) {
      Report(internal::kCfStreamIndex, label, Problem::kNoPosition,
             "malformed value (not an 8-byte position)");
      continue;
    }
    auto sit = streams_.find(k->stream_id);
    if (sit == streams_.end()) {
      Report(internal::kCfStreamIndex, label, *p,
             "entry of stream id " + std::to_string(k->stream_id) + ", which has no stream record");
    } else {
      StreamState& st = sit->second;
      if (st.index_seen && *p <= st.index_last_position)
        Report(internal::kCfStreamIndex, label, *p,
               "position " + std::to_string(*p) + " is not above the previous version's position " +
                   std::to_string(st.index_last_position));
      st.index_seen = true;
      st.index_head = k->version;  // keys ascend: the last one is the head
      st.index_last_position = *p;
    }
    EventView e;
    bool damaged = false;
    if (!LoadTarget(internal::kCfStreamIndex, label, *p, &e, &damaged)) {
      if (sit != streams_.end()) {
        sit->second.accounted++;
        if (damaged) sit->second.end = std::max(sit->second.end, k->version + 1);
      }
      continue;
    }
    uint64_t record_sid = fb::GetEventRecord(scratch2_.data())->stream_id();
    if (record_sid != k->stream_id || e.version != k->version)
      Report(internal::kCfStreamIndex, label, *p,
             "points at position " + std::to_string(*p) + ", which holds stream id " +
                 std::to_string(record_sid) + " version " + std::to_string(e.version));
  }
  if (!it->status().ok()) ReportScanFailure(internal::kCfStreamIndex, it->status());
  t.Finish();
  // Heads: the last index key of each stream is its newest event.
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
  return Status::OK();
}

Status Verifier::CheckNameIndex(Cf cf, uint64_t* count) {
  Ticker t(o_.progress, internal::kCfNames[cf], EstimateKeys(view_, cf));
  auto it = view_.Cursor(cf);
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    t.Tick();
    (*count)++;
    auto k = format::DecodeNameIndexKey(it->key());
    if (!k) {
      Report(cf, HexKey(it->key()), Problem::kNoPosition,
             "malformed key (not name + 0x00 + 8-byte position)");
      continue;
    }
    std::string label = NameKey(k->name, k->position);
    if (!it->value().empty())
      Report(cf, label, k->position, "value is not empty");
    EventView e;
    if (!LoadTarget(cf, label, k->position, &e)) {
      continue;
    }
    std::string_view have = cf == internal::kCfTypeIndex ? e.type : CategoryOf(e.stream);
    if (have != k->name)
      Report(cf, label, k->position,
             "points at position " + std::to_string(k->position) + ", whose " +
                 (cf == internal::kCfTypeIndex ? "type" : "category") + " is " + Quoted(have));
  }
  if (!it->status().ok()) ReportScanFailure(cf, it->status());
  t.Finish();
  return Status::OK();
}

Status Verifier::CheckEventIds() {
  Ticker t(o_.progress, "event_ids", EstimateKeys(view_, internal::kCfEventIds));
  auto it = view_.Cursor(internal::kCfEventIds);
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    t.Tick();
    r_->event_id_entries++;
    std::string_view key = it->key();
    if (key.size() != 16) {
      Report(internal::kCfEventIds, HexKey(key), Problem::kNoPosition, "malformed key (not 16 bytes)");
      continue;
    }
    Uuid id;
    std::memcpy(id.bytes, key.data(), 16);
    std::string label = id.ToString();
    auto p = format::DecodePositionValue(it->value());
    if (!p) {
      Report(internal::kCfEventIds, label, Problem::kNoPosition,
             "malformed value (not an 8-byte position)");
      continue;
    }
    EventView e;
    if (!LoadTarget(internal::kCfEventIds, label, *p, &e)) {
      continue;
    }
    if (e.id != id)
      Report(internal::kCfEventIds, label, *p,
             "points at position " + std::to_string(*p) + ", whose event id is " + e.id.ToString());
  }
  if (!it->status().ok()) ReportScanFailure(internal::kCfEventIds, it->status());
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
