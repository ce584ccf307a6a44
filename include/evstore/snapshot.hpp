// evstore::Snapshot: a consistent, point-in-time view of a store.
//
// A snapshot fixes one position P: its reads see the log, the stream heads
// and every projection as they were when it was taken — the events before P,
// and each projection's state at its checkpoint then (never beyond P) — so a
// query can read a read model and the events it was built from without
// tearing, while appends and projections go on.
//
// A snapshot pins what it sees (a RocksDB snapshot): hold it for a query,
// not for hours. Like an iterator, it keeps Store::close() returning Busy
// until it is destroyed.
//
// Thread safety: a Snapshot's const methods may be called from any number of
// threads at once.
#ifndef EVSTORE_SNAPSHOT_HPP_
#define EVSTORE_SNAPSHOT_HPP_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "evstore/event.hpp"
#include "evstore/export.hpp"
#include "evstore/projection.hpp"
#include "evstore/status.hpp"
#include "evstore/store.hpp"

namespace evstore {

namespace internal {
class SnapshotImpl;
}  // namespace internal

class EVSTORE_EXPORT Snapshot {
 public:
  Snapshot(Snapshot&&) noexcept;
  Snapshot& operator=(Snapshot&&) noexcept;
  ~Snapshot();

  // Every event before this position is in the snapshot; none after.
  uint64_t position() const;

  // As the Store methods of the same names, bounded by position(). A stream
  // created after position() is NotFound.
  Result<EventIterator> read_stream(std::string_view stream, uint64_t from,
                                    Direction dir = Direction::kForward,
                                    uint64_t limit = UINT64_MAX) const;
  Result<EventIterator> read_all(uint64_t from, Direction dir = Direction::kForward,
                                 uint64_t limit = UINT64_MAX) const;
  Result<EventIterator> read_category(std::string_view category, uint64_t from,
                                      Direction dir = Direction::kForward,
                                      uint64_t limit = UINT64_MAX) const;
  Result<EventIterator> read_type(std::string_view type, uint64_t from,
                                  Direction dir = Direction::kForward,
                                  uint64_t limit = UINT64_MAX) const;
  Result<StreamInfo> stream_head(std::string_view stream) const;

  // As the Store methods of the same names, as of the snapshot: the state
  // matches projection_info(name).position.
  Result<std::string> projection_get(std::string_view name, std::string_view key) const;
  Result<std::vector<ProjectionEntry>> projection_scan(std::string_view name, std::string_view prefix,
                                                       std::string_view start_after = {},
                                                       size_t limit = 1000) const;
  Result<ProjectionInfo> projection_info(std::string_view name) const;

 private:
  friend class internal::SnapshotImpl;
  EVSTORE_INTERNAL explicit Snapshot(std::unique_ptr<internal::SnapshotImpl> impl);
  std::unique_ptr<internal::SnapshotImpl> impl_;
};

}  // namespace evstore

#endif  // EVSTORE_SNAPSHOT_HPP_
