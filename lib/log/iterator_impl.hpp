// IteratorImpl: the state behind evstore::EventIterator.
#ifndef EVSTORE_LIB_LOG_ITERATOR_IMPL_HPP_
#define EVSTORE_LIB_LOG_ITERATOR_IMPL_HPP_

#include <rocksdb/iterator.h>

#include <memory>
#include <optional>
#include <string>

#include "log/store_impl.hpp"

namespace evstore::internal {

class IteratorImpl {
 public:
  enum class Kind { kAll, kStream, kIndex };

  IteratorImpl(std::shared_ptr<StoreImpl> store, Kind kind, Direction dir, uint64_t limit);
  ~IteratorImpl();

  // Creates the RocksDB iterators; [lower, upper) bounds the index iterator.
  void Init(Cf idx_cf, std::string lower, std::string upper);
  void Seek(uint64_t from);
  void Next();
  bool Valid() const { return valid_; }
  const EventView& value() const { return view_; }
  const Status& status() const { return status_; }
  // Ends the read: an exception interrupted a move. Allocates nothing (the
  // status was built with the iterator), so it works when memory is out.
  void Abandon() noexcept {
    valid_ = false;
    // Present: moves re-arm it (Seek), and Next does nothing once !Valid().
    if (interrupted_) status_ = std::move(*interrupted_);
    interrupted_.reset();
  }

  // Set by the read entry points before Init.
  uint64_t stream_id_ = 0;
  std::string name_;  // stream, category or type
  Cf index_cf_ = kCfEvents;
  uint64_t visible_ = 0;

 private:
  void Settle();
  bool FetchEvent(uint64_t pos);
  bool TryAdjacent();
  void Fail(Status s);

  // Declared first: destroyed last, after the RocksDB iterators.
  std::shared_ptr<StoreImpl> store_;
  const Kind kind_;
  const Direction dir_;
  const uint64_t limit_;
  uint64_t count_ = 0;
  // The status Abandon() installs, made in advance.
  std::optional<Status> interrupted_;
  // Where the read is heading (a version for stream reads, a position
  // otherwise): errors name it.
  uint64_t want_ = 0;
  uint64_t expect_version_ = 0;
  bool valid_ = false;
  Status status_;
  EventView view_;
  std::string scratch_, spare_;
  // Stream reads: whether the last two events came from adjacent positions
  // (then the next one is tried from the log directly), and the last
  // position taken through the index.
  bool adjacent_run_ = false;
  bool have_prev_ = false;
  uint64_t prev_pos_ = 0;
  std::string lower_, upper_, ev_upper_;
  rocksdb::Slice lower_slice_, upper_slice_, ev_upper_slice_;
  std::unique_ptr<rocksdb::Iterator> ev_;
  std::unique_ptr<rocksdb::Iterator> idx_;
};

}  // namespace evstore::internal

#endif  // EVSTORE_LIB_LOG_ITERATOR_IMPL_HPP_
