// Recovery at open: building the saga indexes for a store written before
// they existed, then resuming every unfinished saga from the index of
// unfinished sagas (or parking it as stuck when its definition is not
// registered) and starting the engine's threads.
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "common/thread_name.hpp"
#include "log/cf_cursor.hpp"
#include "log/rocks_status.hpp"
#include "log/store_impl.hpp"
#include "saga/engine_impl.hpp"
#include "saga/saga_cf.hpp"

namespace evstore {

using internal::ExtraWrite;
using internal::kCfSagas;
using saga::kChunk;
using saga::PrefixEnd;
using saga::Put;
using saga::Record;

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
      std::lock_guard<std::mutex> l(mu_);
      std::string id = r.id;
      int64_t at = r.next_attempt_ms;
      ActivateLocked(id, def, std::move(r), at);
      stats_.resumed++;
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
    timer_ = std::thread([this] {
      NameThisThread("evs-saga-timer");
      TimerLoop();
    });
    if (RetentionEnabled())
      maint_ = std::thread([this] {
        NameThisThread("evs-saga-maint");
        MaintenanceLoop();
      });
  } catch (const std::system_error& e) {
    return Status::IOError(std::string("saga engine: cannot start a thread: ") + e.what());
  }
  return Status::OK();
}

}  // namespace evstore
