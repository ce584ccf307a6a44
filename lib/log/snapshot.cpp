// Snapshot's log reads (include/evstore/snapshot.hpp): the ordinary reads,
// bounded by the snapshot's position. Events never change once published, so
// the bound alone gives the log as of that position.
#include "log/snapshot_impl.hpp"

namespace evstore {

namespace {
Status Moved() { return Status::Closed("snapshot was moved from"); }
}  // namespace

Snapshot::Snapshot(std::unique_ptr<internal::SnapshotImpl> impl) : impl_(std::move(impl)) {}
Snapshot::Snapshot(Snapshot&&) noexcept = default;
Snapshot& Snapshot::operator=(Snapshot&&) noexcept = default;
Snapshot::~Snapshot() = default;

uint64_t Snapshot::position() const { return impl_ ? impl_->position() : 0; }

Result<EventIterator> Snapshot::read_stream(std::string_view stream, uint64_t from, Direction dir,
                                            uint64_t limit) const {
  if (!impl_) return Moved();
  // A stream created after the snapshot does not exist in it.
  auto head = impl_->store()->StreamHeadAt(stream, impl_->position());
  if (!head.ok()) return head.status();
  return impl_->store()->ReadStream(stream, from, dir, limit, impl_->position());
}

Result<EventIterator> Snapshot::read_all(uint64_t from, Direction dir, uint64_t limit) const {
  if (!impl_) return Moved();
  return impl_->store()->ReadAll(from, dir, limit, impl_->position());
}

Result<EventIterator> Snapshot::read_category(std::string_view category, uint64_t from, Direction dir,
                                              uint64_t limit) const {
  if (!impl_) return Moved();
  return impl_->store()->ReadIndex(internal::kCfCategoryIndex, category, from, dir, limit,
                                   impl_->position());
}

Result<EventIterator> Snapshot::read_type(std::string_view type, uint64_t from, Direction dir,
                                          uint64_t limit) const {
  if (!impl_) return Moved();
  return impl_->store()->ReadIndex(internal::kCfTypeIndex, type, from, dir, limit, impl_->position());
}

Result<StreamInfo> Snapshot::stream_head(std::string_view stream) const {
  if (!impl_) return Moved();
  return impl_->store()->StreamHeadAt(stream, impl_->position());
}

}  // namespace evstore
