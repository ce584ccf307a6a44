// Saga persistence: record commits with their index entries, recovery from
// the index of unfinished sagas, list pages, and retention of finished
// sagas. The key layout is in format/saga_record.hpp and docs/format.md.
#include <algorithm>
#include <array>

#include "common/time.hpp"
#include "log/cf_cursor.hpp"
#include "log/rocks_status.hpp"
#include "log/store_impl.hpp"
#include "saga/engine_impl.hpp"

namespace evstore {

using internal::ExtraWrite;
using internal::kCfSagas;
using saga::Def;
using saga::Instance;
using saga::Record;

namespace saga {

Status CheckShape(const Record& r, const Def& d) {
  size_t n = d.d.steps.size();
  if (r.step < 0 || static_cast<size_t>(r.step) >= n || r.outputs.size() > n)
    return Status::Corruption("saga record '" + r.id + "': step " + std::to_string(r.step) +
                              " does not fit definition '" + r.definition + "'");
  return Status::OK();
}

}  // namespace saga

namespace {

ExtraWrite Put(std::string key, std::string value = {}) {
  ExtraWrite w;
  w.cf = kCfSagas;
  w.key = std::move(key);
  w.value = std::move(value);
  return w;
}

ExtraWrite Erase(std::string key) {
  ExtraWrite w = Put(std::move(key));
  w.erase = true;
  return w;
}

// The first key after every key that starts with `prefix` (its last byte
// is below 0xff in every prefix used here).
std::string PrefixEnd(std::string_view prefix) {
  std::string e(prefix);
  e.back() = static_cast<char>(e.back() + 1);
  return e;
}

// Index upkeep and retention commit in chunks of this many writes, so that
// none makes a commit group large.
constexpr size_t kChunk = 512;

}  // namespace

// ---- Writes ----

Status SagaEngine::Impl::BeginWrite() {
  std::lock_guard<std::mutex> l(mu_);
  if (writes_closed_) return Status::Closed("saga engine is shut down");
  writes_++;
  return Status::OK();
}

void SagaEngine::Impl::EndWrite() {
  std::lock_guard<std::mutex> l(mu_);
  if (--writes_ == 0) exit_cv_.notify_all();
}

Status SagaEngine::Impl::CommitRecord(Record* next, bool is_new,
                                      std::span<const StreamAppend> events,
                                      std::function<Status()> precheck, bool sync) {
  next->revision++;
  next->updated_ms = NowMs();
  std::array<ExtraWrite, 3> w;
  size_t n = 0;
  w[n] = Put(next->id);
  format::EncodeSagaRecord(*next, &w[n++].value);
  // The indexes change with the record, in the same batch.
  if (is_new) w[n++] = Put(format::SagaOpenKey(next->id));
  if (IsFinal(static_cast<SagaState>(next->state))) {
    w[n++] = Erase(format::SagaOpenKey(next->id));
    w[n++] = Put(format::SagaFinishedKey(next->updated_ms, next->id));
  }
  std::vector<internal::PartRef> parts;
  parts.reserve(events.size());
  for (const StreamAppend& p : events)
    parts.push_back(internal::PartRef{p.stream, p.expected, p.events});
  internal::CommitRequest req;
  req.parts = parts;
  req.extra = std::span<const ExtraWrite>(w.data(), n);
  req.precheck = std::move(precheck);
  req.sync = sync;
  Status s = BeginWrite();
  if (!s.ok()) return s;
  s = store_->Commit(&req);
  EndWrite();
  return s;
}

Status SagaEngine::Impl::CommitWrites(std::span<const ExtraWrite> writes, bool sync) {
  internal::CommitRequest req;
  req.extra = writes;
  req.sync = sync;
  Status s = BeginWrite();
  if (!s.ok()) return s;
  s = store_->Commit(&req);
  EndWrite();
  return s;
}

Status SagaEngine::Impl::ReadRecord(std::string_view id, Record* out) {
  internal::StoreImpl::OpGuard g(store_.get());
  if (g.closed()) return Status::Closed("store is closed");
  std::string v;
  Status s = internal::CfGet(*store_, kCfSagas, id, &v);
  if (s.IsNotFound()) return Status::NotFound("no saga '" + std::string(id) + "'");
  if (!s.ok()) return internal::InContext(s, "reading saga '" + std::string(id) + "'");
  return format::DecodeSagaRecord(id, v, out);
}

void SagaEngine::Impl::AddHistory(Record* r, SagaEvent e, int32_t step, uint32_t attempt,
                                  std::string text) const {
  r->history.push_back(format::SagaHistoryData{NowMs(), static_cast<uint8_t>(e), r->state,
                                               step, attempt, std::move(text)});
  if (r->history.size() > opt_.max_history) {
    size_t drop = r->history.size() - opt_.max_history;
    r->history.erase(r->history.begin(), r->history.begin() + static_cast<ptrdiff_t>(drop));
    r->history_dropped += static_cast<uint32_t>(drop);
  }
}

// ---- Recovery ----

Status SagaEngine::Impl::EnsureIndex() {
  internal::StoreImpl::OpGuard g(store_.get());
  if (g.closed()) return Status::Closed("store is closed");
  std::string v;
  Status gs = internal::CfGet(*store_, kCfSagas, format::kSagaIndexVersionKey, &v);
  if (gs.ok()) {
    auto version = format::DecodeSagaIndexVersion(v);
    if (!version) return Status::Corruption("the saga index version record is damaged");
    if (*version > format::kSagaIndexVersion)
      return Status::NotSupported("the sagas of this store are indexed by a newer evstore (index "
                                  "version " + std::to_string(*version) +
                                  "); this build reads up to version " +
                                  std::to_string(format::kSagaIndexVersion));
    return Status::OK();
  }
  if (!gs.IsNotFound()) return internal::InContext(gs, "reading the saga index version");

  // Written before the indexes existed: index every record once. A crash
  // midway leaves no version record, and the next open starts over.
  std::vector<ExtraWrite> batch;
  internal::CfCursor it(*store_, kCfSagas);
  Record r;
  for (it.Seek(format::kSagaRecordsStart); it.Valid(); it.Next()) {
    std::string_view key = it.key();
    Status ds = format::DecodeSagaRecord(key, it.value(), &r);
    // A damaged record counts as unfinished, so that every open reports it.
    if (ds.ok() && IsFinal(static_cast<SagaState>(r.state)))
      batch.push_back(Put(format::SagaFinishedKey(r.updated_ms, key)));
    else
      batch.push_back(Put(format::SagaOpenKey(key)));
    if (batch.size() >= kChunk) {
      Status s = CommitWrites(batch, /*sync=*/false);
      if (!s.ok()) return s;
      batch.clear();
    }
  }
  if (!it.status().ok()) return internal::InContext(it.status(), "scanning the sagas column family");
  // Synced, and after every index entry in the log: once it is there, so
  // are they.
  batch.push_back(Put(std::string(format::kSagaIndexVersionKey),
                      format::EncodeSagaIndexVersion(format::kSagaIndexVersion)));
  return CommitWrites(batch, /*sync=*/true);
}

Status SagaEngine::Impl::Recover(std::vector<SagaInfo>* stuck) {
  Status s = EnsureIndex();
  if (!s.ok()) return s;
  std::vector<Record> open_sagas;
  std::vector<SagaDamage> damaged;
  {
    internal::StoreImpl::OpGuard g(store_.get());
    if (g.closed()) return Status::Closed("store is closed");
    internal::CfCursor it(*store_, kCfSagas, {.upper = PrefixEnd(format::kSagaOpenPrefix)});
    std::string v;
    Record r;
    for (it.Seek(format::kSagaOpenPrefix); it.Valid(); it.Next()) {
      format::SagaIndexEntry e;
      if (!format::ParseSagaIndexKey(it.key(), &e))
        return Status::Corruption("the saga index holds a malformed key");
      Status gs = internal::CfGet(*store_, kCfSagas, e.id, &v);
      if (gs.IsNotFound()) {
        damaged.push_back({std::string(e.id),
                           Status::Corruption("saga '" + std::string(e.id) +
                                              "' is in the index of unfinished sagas but has "
                                              "no record")});
        continue;
      }
      if (!gs.ok()) return internal::InContext(gs, "reading an unfinished saga");
      Status ds = format::DecodeSagaRecord(e.id, v, &r);
      if (!ds.ok()) {
        damaged.push_back({std::string(e.id), ds});
        continue;
      }
      auto st = static_cast<SagaState>(r.state);
      if (st == SagaState::kStuck) {
        stuck->push_back(saga::ToInfo(r, false));
      } else if (!IsFinal(st)) {
        open_sagas.push_back(std::move(r));
        r = Record();
      }
    }
    if (!it.status().ok())
      return internal::InContext(it.status(), "reading the index of unfinished sagas");
  }
  for (Record& r : open_sagas) {
    auto def = FindDef(r.definition, r.fingerprint);
    if (def) {
      Status cs = saga::CheckShape(r, *def);
      if (!cs.ok()) {
        damaged.push_back({r.id, cs});
        continue;
      }
      auto inst = std::make_shared<Instance>();
      inst->id = r.id;
      inst->def = def;
      int64_t at = r.next_attempt_ms;
      inst->rec = std::make_shared<const Record>(std::move(r));
      std::lock_guard<std::mutex> l(mu_);
      active_[inst->id] = inst;
      stats_.resumed++;
      ScheduleLocked(inst, at);
      continue;
    }
    // Not runnable here: park it as stuck, remembering where it was.
    Record next = r;
    next.stuck_phase = next.state;
    next.state = static_cast<uint8_t>(SagaState::kStuck);
    next.error = MissingDefMessage(r);
    next.started = next.attempt;
    AddHistory(&next, SagaEvent::kStuck, next.step, next.attempt, next.error);
    s = CommitRecord(&next, /*is_new=*/false, {}, nullptr);
    if (!s.ok()) return s;
    {
      std::lock_guard<std::mutex> l(mu_);
      stats_.stuck++;
    }
    stuck->push_back(saga::ToInfo(next, false));
  }
  std::lock_guard<std::mutex> l(mu_);
  damaged_ = std::move(damaged);
  for (size_t i = 0; i < opt_.threads; i++)
    if (!SpawnWorkerLocked()) return Status::IOError("saga engine: cannot start a worker thread");
  try {
    timer_ = std::thread([this] { TimerLoop(); });
    if (RetentionEnabled()) maint_ = std::thread([this] { MaintenanceLoop(); });
  } catch (const std::system_error& e) {
    return Status::IOError(std::string("saga engine: cannot start a thread: ") + e.what());
  }
  return Status::OK();
}

// ---- Queries ----

Result<SagaPage> SagaEngine::Impl::List(SagaState state, std::string_view after_id,
                                        size_t limit) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (closed_) return Status::Closed("saga engine is shut down");
  }
  SagaPage page;
  if (limit == 0) return page;
  internal::StoreImpl::OpGuard g(store_.get());
  if (g.closed()) return Status::Closed("store is closed");
  // Unfinished sagas are few and indexed; finished ones are scanned.
  const bool indexed = !IsFinal(state);
  std::string start;
  internal::CfCursorOptions co;
  if (indexed) {
    start = format::SagaOpenKey(after_id);
    co.upper = PrefixEnd(format::kSagaOpenPrefix);
  } else {
    start = std::max(std::string(after_id), std::string(format::kSagaRecordsStart));
  }
  internal::CfCursor it(*store_, kCfSagas, std::move(co));
  std::string v;
  Record r;
  for (it.Seek(start); it.Valid(); it.Next()) {
    std::string_view id;
    std::string_view value;
    if (indexed) {
      format::SagaIndexEntry e;
      if (!format::ParseSagaIndexKey(it.key(), &e)) continue;
      id = e.id;
      Status gs = internal::CfGet(*store_, kCfSagas, id, &v);
      if (gs.IsNotFound()) continue;  // retention, or a damaged index: not in any state
      if (!gs.ok()) return internal::InContext(gs, "reading saga '" + std::string(id) + "'");
      value = v;
    } else {
      id = it.key();
      value = it.value();
    }
    if (id == after_id) continue;
    if (!format::DecodeSagaRecord(id, value, &r).ok()) {
      page.damaged.emplace_back(id);
      continue;
    }
    if (static_cast<SagaState>(r.state) != state) continue;
    bool in_flight = false;
    {
      std::lock_guard<std::mutex> l(mu_);
      auto a = active_.find(r.id);
      in_flight = a != active_.end() && a->second->in_flight;
    }
    page.sagas.push_back(saga::ToInfo(r, in_flight));
    if (page.sagas.size() == limit) {
      page.next_after = r.id;
      break;
    }
  }
  if (!it.status().ok()) return internal::InContext(it.status(), "scanning the sagas column family");
  return page;
}

// ---- Retention ----

Result<uint64_t> SagaEngine::Impl::Purge() {
  {
    std::lock_guard<std::mutex> l(mu_);
    Status s = CheckOpenLocked();
    if (!s.ok()) return s;
  }
  if (!RetentionEnabled()) return uint64_t{0};
  std::lock_guard<std::mutex> one_pass(purge_mu_);
  internal::StoreImpl::OpGuard g(store_.get());
  if (g.closed()) return Status::Closed("store is closed");
  const auto& prefix = format::kSagaFinishedPrefix;
  const std::string end = PrefixEnd(prefix);

  // Finished sagas are indexed by finish time: the ones to delete are a
  // prefix of the index, the oldest beyond max_finished and those that
  // finished keep_finished_for ago or earlier.
  const int64_t cutoff = opt_.keep_finished_for == std::chrono::milliseconds::max()
                             ? INT64_MIN
                             : NowMs() - opt_.keep_finished_for.count();
  uint64_t excess = 0;
  if (opt_.max_finished != SIZE_MAX) {
    uint64_t finished = 0;
    internal::CfCursor it(*store_, kCfSagas, {.upper = end});
    for (it.Seek(prefix); it.Valid(); it.Next()) finished++;
    if (!it.status().ok())
      return internal::InContext(it.status(), "reading the index of finished sagas");
    if (finished > opt_.max_finished) excess = finished - opt_.max_finished;
  }

  uint64_t deleted = 0;
  std::vector<ExtraWrite> batch;
  uint64_t batch_deleted = 0;
  auto flush = [&]() -> Status {
    if (batch.empty()) return Status::OK();
    // Unsynced: a deletion lost in a power cut is simply made again.
    Status s = CommitWrites(batch, /*sync=*/false);
    if (!s.ok()) return s;
    deleted += batch_deleted;
    batch.clear();
    batch_deleted = 0;
    return Status::OK();
  };
  internal::CfCursor it(*store_, kCfSagas, {.upper = end});
  std::string v;
  Record r;
  for (it.Seek(prefix); it.Valid(); it.Next()) {
    format::SagaIndexEntry e;
    std::string key(it.key());
    if (!format::ParseSagaIndexKey(key, &e)) {
      batch.push_back(Erase(key));  // not an entry this engine could have written
      continue;
    }
    if (excess == 0 && e.finished_ms > cutoff) break;
    if (excess > 0) excess--;
    std::string id(e.id);
    {
      std::lock_guard<std::mutex> l(mu_);
      if (stopping_) break;
      if (BusyLocked(id)) continue;  // being started or reported: the next pass
    }
    Status gs = internal::CfGet(*store_, kCfSagas, id, &v);
    if (!gs.ok() && !gs.IsNotFound()) return internal::InContext(gs, "reading saga '" + id + "'");
    batch.push_back(Erase(key));
    // Only a record this entry describes goes: a damaged one stays for a
    // person to inspect, an unfinished one (a stale entry) keeps running.
    if (gs.ok() && format::DecodeSagaRecord(id, v, &r).ok() &&
        IsFinal(static_cast<SagaState>(r.state)) &&
        std::max<int64_t>(r.updated_ms, 0) == e.finished_ms) {
      batch.push_back(Erase(id));
      batch_deleted++;
    }
    if (batch.size() >= kChunk) {
      Status s = flush();
      if (!s.ok()) return s;
    }
  }
  if (!it.status().ok())
    return internal::InContext(it.status(), "reading the index of finished sagas");
  Status s = flush();
  if (!s.ok()) return s;
  std::lock_guard<std::mutex> l(mu_);
  stats_.purged += deleted;
  return deleted;
}

}  // namespace evstore
