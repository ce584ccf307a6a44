// ReadView: one consistent, read-only view of a store for the inspect
// functions. Holds the store's operation guard (so close() waits) and a
// snapshot, released in the destructor. Reads go through the log layer
// (log/cf_cursor.hpp).
#ifndef EVSTORE_LIB_INSPECT_READ_VIEW_HPP_
#define EVSTORE_LIB_INSPECT_READ_VIEW_HPP_

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "evstore/inspect.hpp"
#include "evstore/status.hpp"
#include "evstore/store.hpp"
#include "log/cf_cursor.hpp"
#include "log/rocks_status.hpp"
#include "log/store_impl.hpp"

namespace evstore::inspect {

using internal::InContext;

class ReadView {
 public:
  explicit ReadView(const Store& store);
  ReadView(const ReadView&) = delete;
  ReadView& operator=(const ReadView&) = delete;

  // Closed when the store is not open; then nothing else may be called.
  const Status& status() const { return status_; }

  // A cursor over `cf` at the snapshot, below `upper` when not empty. It
  // reads each block once, so it leaves the block cache to the host.
  std::unique_ptr<internal::CfCursor> Cursor(internal::Cf cf, std::string upper = {}) const;
  // Point read at the snapshot: OK, NotFound, or the error.
  Status Get(internal::Cf cf, std::string_view key, std::string* value) const;
  const internal::StoreImpl& store() const { return *impl_; }

 private:
  internal::StoreImpl* impl_;
  std::optional<internal::StoreImpl::OpGuard> guard_;
  // Declared after guard_: released while the store is still held open.
  std::optional<internal::CfSnapshot> snap_;
  Status status_;
};

// Reports progress of one phase every 4096 items and once at the end.
class Ticker {
 public:
  Ticker(const ProgressFn& fn, std::string_view phase, uint64_t total)
      : fn_(fn), phase_(phase), total_(total) {}
  void Tick() {
    if (++done_ % 4096 == 0 && fn_) fn_(Progress{phase_, done_, std::max(total_, done_)});
  }
  void Finish() {
    if (fn_) fn_(Progress{phase_, done_, done_});
  }
  uint64_t done() const { return done_; }

 private:
  const ProgressFn& fn_;
  std::string_view phase_;
  uint64_t total_;
  uint64_t done_ = 0;
};

// RocksDB's estimate of the keys in `cf` (0 when unknown).
inline uint64_t EstimateKeys(const ReadView& view, internal::Cf cf) {
  return internal::CfIntProperty(view.store(), cf, "rocksdb.estimate-num-keys").value_or(0);
}

// The end of the log (the position the next event gets) at the view's
// snapshot: one past its last key of `events`, and never below what the
// store has published (so damage at the tail of `events` cannot make the
// log look shorter than it is).
uint64_t LogEnd(const ReadView& view);

}  // namespace evstore::inspect

#endif  // EVSTORE_LIB_INSPECT_READ_VIEW_HPP_
