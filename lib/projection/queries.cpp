// Store's projection methods (include/evstore/store.hpp): starting a
// projection, and queries of stored projections. A query reads the meta
// record and the serving instance at one snapshot, so a swap after a
// rebuild (and the deletion of the old instance) never tears it.
#include <optional>

#include "evstore/store.hpp"
#include "evstore/upcast.hpp"
#include "log/cf_cursor.hpp"
#include "log/snapshot_impl.hpp"
#include "projection/runner.hpp"

namespace evstore {

namespace {

Status MovedFrom() { return Status::Closed("store handle was moved from"); }

// A snapshot held for one query, inside the store's gate.
class QuerySnapshot {
 public:
  explicit QuerySnapshot(internal::StoreImpl* s) : guard_(s) {
    if (!guard_.closed()) snap_.emplace(*s);
  }
  bool closed() const { return guard_.closed(); }
  const internal::CfSnapshot* get() const { return snap_ ? &*snap_ : nullptr; }

 private:
  internal::StoreImpl::OpGuard guard_;
  std::optional<internal::CfSnapshot> snap_;  // destroyed before the guard
};

Status NoProjection(std::string_view name) {
  return Status::NotFound("no projection '" + std::string(name) + "'");
}

Result<ProjectionInfo> InfoOf(internal::StoreImpl* impl, std::string_view name,
                              const format::ProjectionMeta& m, const internal::CfSnapshot* snap) {
  ProjectionInfo info;
  info.name = std::string(name);
  info.version = m.active_version;
  auto rec = impl->ReadProjectionInstance(m.active_id, snap);
  if (!rec.ok()) return rec.status();
  if (!rec->has_value())
    return Status::Corruption("projection '" + std::string(name) + "': its serving instance's record is missing");
  info.position = (*rec)->position;
  info.events_handled = (*rec)->handled;
  info.updated_ms = (*rec)->updated_ms;
  if (m.building_id != 0) {
    info.rebuilding = true;
    auto b = impl->ReadProjectionInstance(m.building_id, snap);
    if (!b.ok()) return b.status();
    if (b->has_value()) info.rebuild_position = (*b)->position;
  }
  return info;
}

Result<std::string> GetAt(internal::StoreImpl* impl, const internal::CfSnapshot* snap, std::string_view name,
                          std::string_view key) {
  Status s = internal::ValidProjectionName(name);
  if (!s.ok()) return s;
  if (key.empty() || key.size() > kMaxProjectionKey)
    return Status::InvalidArgument("projection_get: key must be 1.." + std::to_string(kMaxProjectionKey) +
                                   " bytes");
  auto m = impl->ReadProjectionMeta(name, snap);
  if (!m.ok()) return m.status();
  if (!m->has_value()) return NoProjection(name);
  auto v = impl->ReadProjectionValue((*m)->active_id, key, snap);
  if (!v.ok()) return v.status();
  if (!v->has_value()) return Status::NotFound("projection '" + std::string(name) + "' has no such key");
  return std::move(**v);
}

Result<std::vector<ProjectionEntry>> ScanAt(internal::StoreImpl* impl, const internal::CfSnapshot* snap,
                                            std::string_view name, std::string_view prefix,
                                            std::string_view start_after, size_t limit) {
  Status s = internal::ValidProjectionName(name);
  if (!s.ok()) return s;
  if (prefix.size() > kMaxProjectionKey || start_after.size() > kMaxProjectionKey)
    return Status::InvalidArgument("projection_scan: prefix and start_after are at most " +
                                   std::to_string(kMaxProjectionKey) + " bytes");
  auto m = impl->ReadProjectionMeta(name, snap);
  if (!m.ok()) return m.status();
  if (!m->has_value()) return NoProjection(name);
  std::vector<ProjectionEntry> out;
  s = impl->ScanProjectionState((*m)->active_id, prefix, start_after, limit, snap, &out);
  if (!s.ok()) return s;
  return out;
}

Result<ProjectionInfo> InfoAt(internal::StoreImpl* impl, const internal::CfSnapshot* snap, std::string_view name) {
  Status s = internal::ValidProjectionName(name);
  if (!s.ok()) return s;
  auto m = impl->ReadProjectionMeta(name, snap);
  if (!m.ok()) return m.status();
  if (!m->has_value()) return NoProjection(name);
  return InfoOf(impl, name, **m, snap);
}

}  // namespace

Result<std::unique_ptr<Projection>> Store::run_projection(std::string_view name,
                                                          const ProjectionOptions& options,
                                                          ProjectionHandler handler) {
  if (!impl_) return MovedFrom();
  if (handler && options.upcasters && !options.upcasters->empty()) {
    // The handler sees events as the upcasters make them; only those that
    // need it are copied.
    handler = [up = options.upcasters, inner = std::move(handler)](const RecordedEvent& e,
                                                                  ProjectionState& st) -> Status {
      if (!up->applies(e.type, e.schema_version)) return inner(e, st);
      RecordedEvent copy = e;
      Status s = up->Upcast(&copy);
      if (!s.ok()) return s;
      return inner(copy, st);
    };
  }
  return internal::ProjectionRunner::Start(impl_, name, options, std::move(handler));
}

Result<std::string> Store::projection_get(std::string_view name, std::string_view key) {
  if (!impl_) return MovedFrom();
  QuerySnapshot snap(impl_.get());
  if (snap.closed()) return Status::Closed("store is closed");
  return GetAt(impl_.get(), snap.get(), name, key);
}

Result<std::vector<ProjectionEntry>> Store::projection_scan(std::string_view name, std::string_view prefix,
                                                            std::string_view start_after, size_t limit) {
  if (!impl_) return MovedFrom();
  QuerySnapshot snap(impl_.get());
  if (snap.closed()) return Status::Closed("store is closed");
  return ScanAt(impl_.get(), snap.get(), name, prefix, start_after, limit);
}

Result<ProjectionInfo> Store::projection_info(std::string_view name) {
  if (!impl_) return MovedFrom();
  QuerySnapshot snap(impl_.get());
  if (snap.closed()) return Status::Closed("store is closed");
  return InfoAt(impl_.get(), snap.get(), name);
}

Result<std::vector<ProjectionInfo>> Store::list_projections() {
  if (!impl_) return MovedFrom();
  QuerySnapshot snap(impl_.get());
  if (snap.closed()) return Status::Closed("store is closed");
  std::vector<std::pair<std::string, format::ProjectionMeta>> metas;
  Status s = impl_->ListProjectionMetas(snap.get(), &metas);
  if (!s.ok()) return s;
  std::vector<ProjectionInfo> out;
  for (const auto& [name, m] : metas) {
    auto info = InfoOf(impl_.get(), name, m, snap.get());
    if (!info.ok()) return info.status();
    out.push_back(std::move(info).value());
  }
  return out;
}

Status Store::delete_projection(std::string_view name) {
  if (!impl_) return MovedFrom();
  Status s = internal::ValidProjectionName(name);
  if (!s.ok()) return s;
  if (impl_->options().read_only) return Status::InvalidArgument("delete_projection: the store is read-only");
  // Claiming the name keeps a runner from starting while the state goes.
  if (!impl_->ClaimProjection(name))
    return Status::Busy("projection '" + std::string(name) + "' is running");
  struct Release {
    internal::StoreImpl* impl;
    std::string_view name;
    ~Release() { impl->ReleaseProjection(name); }
  } release{impl_.get(), name};
  auto m = impl_->ReadProjectionMeta(name, nullptr);
  if (!m.ok()) return m.status();
  if (!m->has_value()) return NoProjection(name);
  // The meta goes first: from then on the projection does not exist, and
  // instances left by a crash below are deleted by the next run_projection.
  const std::string key = format::ProjMetaKey(name);
  internal::ExtraWrite w{internal::kCfProjections, key, {}, true};
  internal::CommitRequest req;
  req.extra = std::span<const internal::ExtraWrite>(&w, 1);
  s = impl_->Commit(&req);
  if (!s.ok()) return s;
  for (uint64_t id : {(*m)->active_id, (*m)->building_id}) {
    if (id == 0) continue;
    s = impl_->EraseProjectionInstance(id);
    if (!s.ok()) return s;
  }
  return Status::OK();
}

// ---- The same queries at a point-in-time Snapshot ----

Result<std::string> Snapshot::projection_get(std::string_view name, std::string_view key) const {
  if (!impl_) return Status::Closed("snapshot was moved from");
  internal::StoreImpl::OpGuard g(impl_->store());
  if (g.closed()) return Status::Closed("store is closed");
  return GetAt(impl_->store(), impl_->snap(), name, key);
}

Result<std::vector<ProjectionEntry>> Snapshot::projection_scan(std::string_view name, std::string_view prefix,
                                                               std::string_view start_after, size_t limit) const {
  if (!impl_) return Status::Closed("snapshot was moved from");
  internal::StoreImpl::OpGuard g(impl_->store());
  if (g.closed()) return Status::Closed("store is closed");
  return ScanAt(impl_->store(), impl_->snap(), name, prefix, start_after, limit);
}

Result<ProjectionInfo> Snapshot::projection_info(std::string_view name) const {
  if (!impl_) return Status::Closed("snapshot was moved from");
  internal::StoreImpl::OpGuard g(impl_->store());
  if (g.closed()) return Status::Closed("store is closed");
  return InfoAt(impl_->store(), impl_->snap(), name);
}

}  // namespace evstore
