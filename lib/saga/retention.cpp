// Retention of finished sagas: a pass deletes the oldest beyond
// max_finished and those finished keep_finished_for ago or earlier, found
// through the index of finished sagas.
#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "common/time.hpp"
#include "log/cf_cursor.hpp"
#include "log/rocks_status.hpp"
#include "log/store_impl.hpp"
#include "saga/engine_impl.hpp"
#include "saga/saga_cf.hpp"

namespace evstore {

using internal::ExtraWrite;
using internal::kCfSagas;
using saga::Erase;
using saga::kChunk;
using saga::PrefixEnd;
using saga::Record;

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
