// SnapshotImpl: the state behind evstore::Snapshot (include/evstore/
// snapshot.hpp): a snapshot of the column families, and the position published when it was
// taken. Taken in that order, every projection checkpoint it sees is at or
// below the position (a checkpoint never passes what was published).
#ifndef EVSTORE_LIB_LOG_SNAPSHOT_IMPL_HPP_
#define EVSTORE_LIB_LOG_SNAPSHOT_IMPL_HPP_

#include <memory>
#include <optional>

#include "evstore/snapshot.hpp"
#include "log/cf_cursor.hpp"
#include "log/store_impl.hpp"

namespace evstore::internal {

class SnapshotImpl {
 public:
  // REQUIRES: inside the store's gate (an OpGuard that is not closed).
  explicit SnapshotImpl(std::shared_ptr<StoreImpl> store) : store_(std::move(store)) {
    store_->IteratorOpened();  // close() waits for it like for an iterator
    try {
      snap_.emplace(*store_);
    } catch (...) {  // e.g. bad_alloc: close() must not wait for it
      store_->IteratorClosed();
      throw;
    }
    position_ = store_->visible();
  }
  ~SnapshotImpl() {
    snap_.reset();
    store_->IteratorClosed();
  }
  SnapshotImpl(const SnapshotImpl&) = delete;
  SnapshotImpl& operator=(const SnapshotImpl&) = delete;

  static Snapshot Wrap(std::unique_ptr<SnapshotImpl> impl) { return Snapshot(std::move(impl)); }
  static SnapshotImpl* Of(const Snapshot& s) { return s.impl_.get(); }

  StoreImpl* store() const { return store_.get(); }
  const CfSnapshot* snap() const { return &*snap_; }
  uint64_t position() const { return position_; }

 private:
  std::shared_ptr<StoreImpl> store_;
  std::optional<CfSnapshot> snap_;  // always engaged once constructed
  uint64_t position_ = 0;
};

}  // namespace evstore::internal

#endif  // EVSTORE_LIB_LOG_SNAPSHOT_IMPL_HPP_
