// Projection records in the `projections` column family
// (format/projection_record.hpp): the log layer's reads and writes of them,
// used by the projection runner (lib/projection) and the queries.
#include <algorithm>

#include "format/keys.hpp"
#include "log/cf_cursor.hpp"
#include "log/rocks_status.hpp"
#include "log/store_impl.hpp"

namespace evstore::internal {

namespace {

// Keys erased per commit when an instance is deleted: bounds the batch.
constexpr size_t kEraseChunk = 1024;

rocksdb::ReadOptions At(const CfSnapshot* snap) {
  rocksdb::ReadOptions ro;
  ro.snapshot = snap != nullptr ? snap->rocks() : nullptr;
  return ro;
}

std::string_view SV(const rocksdb::Slice& s) { return std::string_view(s.data(), s.size()); }

}  // namespace

Result<std::optional<format::ProjectionMeta>> StoreImpl::ReadProjectionMeta(
    std::string_view name, const CfSnapshot* snap) {
  OpGuard g(this);
  if (g.closed()) return Status::Closed("store is closed");
  if (cfs_[kCfProjections] == nullptr) return std::optional<format::ProjectionMeta>();
  std::string key = format::ProjMetaKey(name), value;
  rocksdb::Status s = db_->Get(At(snap), cfs_[kCfProjections], key, &value);
  if (s.IsNotFound()) return std::optional<format::ProjectionMeta>();
  if (!s.ok()) return StatusFromRocks(s, "reading projection '" + std::string(name) + "'");
  format::ProjectionMeta m;
  Status ds = format::DecodeProjectionMeta(key, value, &m);
  if (!ds.ok()) return ds;
  return std::optional<format::ProjectionMeta>(m);
}

Result<std::optional<format::ProjectionInstance>> StoreImpl::ReadProjectionInstance(
    uint64_t id, const CfSnapshot* snap) {
  OpGuard g(this);
  if (g.closed()) return Status::Closed("store is closed");
  if (cfs_[kCfProjections] == nullptr) return std::optional<format::ProjectionInstance>();
  std::string key = format::ProjInstanceKey(id), value;
  rocksdb::Status s = db_->Get(At(snap), cfs_[kCfProjections], key, &value);
  if (s.IsNotFound()) return std::optional<format::ProjectionInstance>();
  if (!s.ok()) return StatusFromRocks(s, "reading projection instance " + std::to_string(id));
  format::ProjectionInstance r;
  Status ds = format::DecodeProjectionInstance(key, value, &r);
  if (!ds.ok()) return ds;
  return std::optional<format::ProjectionInstance>(std::move(r));
}

Result<std::optional<std::string>> StoreImpl::ReadProjectionValue(uint64_t id, std::string_view key,
                                                                  const CfSnapshot* snap) {
  OpGuard g(this);
  if (g.closed()) return Status::Closed("store is closed");
  if (cfs_[kCfProjections] == nullptr) return std::optional<std::string>();
  std::string value;
  rocksdb::Status s = db_->Get(At(snap), cfs_[kCfProjections], format::ProjStateKey(id, key), &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  if (!s.ok()) return StatusFromRocks(s, "reading projection state");
  return std::optional<std::string>(std::move(value));
}

Status StoreImpl::ScanProjectionState(uint64_t id, std::string_view prefix, std::string_view start_after,
                                      size_t limit, const CfSnapshot* snap,
                                      std::vector<ProjectionEntry>* out) {
  OpGuard g(this);
  if (g.closed()) return Status::Closed("store is closed");
  if (cfs_[kCfProjections] == nullptr || limit == 0) return Status::OK();
  const std::string instance = format::ProjStateKey(id, {});
  const std::string lower = format::ProjStateKey(id, prefix);
  // Every key of the instance sorts below the next instance's prefix.
  const std::string upper = format::ProjStateKey(id + 1, {});
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro = At(snap);
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cfs_[kCfProjections]));
  std::string from = lower;
  if (!start_after.empty()) from = std::max(lower, format::ProjStateKey(id, start_after));
  for (it->Seek(from); it->Valid() && out->size() < limit; it->Next()) {
    std::string_view k = SV(it->key());
    if (k.substr(0, lower.size()) != lower) break;  // past the prefix
    std::string_view user = k.substr(instance.size());
    if (!start_after.empty() && user == start_after) continue;
    out->push_back(ProjectionEntry{std::string(user), std::string(SV(it->value()))});
  }
  if (!it->status().ok()) return StatusFromRocks(it->status(), "reading projection state");
  return Status::OK();
}

Status StoreImpl::ListProjectionMetas(const CfSnapshot* snap,
                                      std::vector<std::pair<std::string, format::ProjectionMeta>>* out) {
  OpGuard g(this);
  if (g.closed()) return Status::Closed("store is closed");
  if (cfs_[kCfProjections] == nullptr) return Status::OK();
  const std::string lower(1, format::kProjMetaTag), upper(1, format::kProjMetaTag + 1);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro = At(snap);
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cfs_[kCfProjections]));
  for (it->Seek(lower); it->Valid(); it->Next()) {
    format::ProjectionMeta m;
    Status ds = format::DecodeProjectionMeta(SV(it->key()), SV(it->value()), &m);
    if (!ds.ok()) return ds;
    out->emplace_back(std::string(SV(it->key()).substr(1)), m);
  }
  if (!it->status().ok()) return StatusFromRocks(it->status(), "reading projections");
  return Status::OK();
}

Status StoreImpl::ListProjectionInstances(std::vector<std::pair<uint64_t, format::ProjectionInstance>>* out) {
  OpGuard g(this);
  if (g.closed()) return Status::Closed("store is closed");
  if (cfs_[kCfProjections] == nullptr) return Status::OK();
  const std::string lower(1, format::kProjInstanceTag), upper(1, format::kProjInstanceTag + 1);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cfs_[kCfProjections]));
  for (it->Seek(lower); it->Valid(); it->Next()) {
    std::string_view k = SV(it->key());
    if (k.size() != 9) return Status::Corruption("projection instance key has the wrong length");
    format::ProjectionInstance r;
    Status ds = format::DecodeProjectionInstance(k, SV(it->value()), &r);
    if (!ds.ok()) return ds;
    out->emplace_back(format::GetBE64(k.data() + 1), std::move(r));
  }
  if (!it->status().ok()) return StatusFromRocks(it->status(), "reading projection instances");
  return Status::OK();
}

Result<uint64_t> StoreImpl::AllocateProjectionInstance() {
  OpGuard g(this);
  if (g.closed()) return Status::Closed("store is closed");
  std::lock_guard<std::mutex> l(proj_mu_);
  if (next_projection_instance_ == 0) {
    // Above the highest id with keys on disk (and every id handed out since
    // open), so state left by a deleted instance is never taken for a new
    // one's.
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cfs_[kCfProjections]));
    uint64_t high = 0;
    for (char tag : {format::kProjInstanceTag, format::kProjStateTag}) {
      it->SeekForPrev(std::string(1, tag) + std::string(8, '\xff') + std::string(1, '\xff'));
      if (it->Valid() && !it->key().empty() && it->key()[0] == tag && it->key().size() >= 9)
        high = std::max(high, format::GetBE64(it->key().data() + 1));
    }
    if (!it->status().ok()) return StatusFromRocks(it->status(), "reading projection instances");
    next_projection_instance_ = high + 1;
  }
  return next_projection_instance_++;
}

Status StoreImpl::EraseProjectionInstance(uint64_t id) {
  const std::string lower = format::ProjStateKey(id, {});
  const std::string upper = format::ProjStateKey(id + 1, {});
  for (;;) {
    std::vector<ExtraWrite> writes;
    {
      OpGuard g(this);
      if (g.closed()) return Status::Closed("store is closed");
      rocksdb::Slice upper_slice(upper);
      rocksdb::ReadOptions ro;
      ro.iterate_upper_bound = &upper_slice;
      std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cfs_[kCfProjections]));
      for (it->Seek(lower); it->Valid() && writes.size() < kEraseChunk; it->Next())
        writes.push_back(ExtraWrite{kCfProjections, std::string(SV(it->key())), {}, true});
      if (!it->status().ok()) return StatusFromRocks(it->status(), "reading projection state");
    }
    const bool last = writes.size() < kEraseChunk;
    if (last) writes.push_back(ExtraWrite{kCfProjections, format::ProjInstanceKey(id), {}, true});
    CommitRequest req;
    req.extra = std::span<const ExtraWrite>(writes);
    req.sync = false;  // an instance left behind by a crash is deleted at the next start
    Status s = Commit(&req);
    if (!s.ok() || last) return s;
  }
}

bool StoreImpl::ClaimProjection(std::string_view name) {
  std::lock_guard<std::mutex> l(proj_mu_);
  return running_projections_.emplace(name).second;
}

void StoreImpl::ReleaseProjection(std::string_view name) {
  std::lock_guard<std::mutex> l(proj_mu_);
  auto it = running_projections_.find(name);
  if (it != running_projections_.end()) running_projections_.erase(it);
}

}  // namespace evstore::internal
