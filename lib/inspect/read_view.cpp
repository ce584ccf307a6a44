#include "inspect/read_view.hpp"

#include "log/rocks_status.hpp"

namespace evstore::inspect {

ReadView::ReadView(const Store& store) : impl_(internal::StoreAccess::Impl(store)) {
  if (impl_ == nullptr) {
    status_ = Status::Closed("store is closed");
    return;
  }
  guard_.emplace(impl_);
  if (guard_->closed()) {
    status_ = Status::Closed("store is closed");
    return;
  }
  snap_ = impl_->db()->GetSnapshot();
}

ReadView::~ReadView() {
  if (snap_ != nullptr) impl_->db()->ReleaseSnapshot(snap_);
}

std::unique_ptr<rocksdb::Iterator> ReadView::NewIterator(internal::Cf cf,
                                                         const rocksdb::Slice* upper) const {
  rocksdb::ReadOptions ro;
  ro.snapshot = snap_;
  ro.iterate_upper_bound = upper;
  // Inspection reads everything once: do not push the host's hot blocks out.
  ro.fill_cache = false;
  // stream_index has a prefix extractor; scans here cross prefixes.
  ro.total_order_seek = true;
  return std::unique_ptr<rocksdb::Iterator>(impl_->db()->NewIterator(ro, impl_->cf(cf)));
}

rocksdb::Status ReadView::Get(internal::Cf cf, std::string_view key, std::string* value) const {
  rocksdb::ReadOptions ro;
  ro.snapshot = snap_;
  return impl_->db()->Get(ro, impl_->cf(cf), rocksdb::Slice(key.data(), key.size()), value);
}

Status FromRocks(const rocksdb::Status& s, std::string_view what) {
  return internal::StatusFromRocks(s, what);
}

uint64_t EstimateKeys(const ReadView& view, internal::Cf cf) {
  uint64_t n = 0;
  if (!view.db()->GetIntProperty(view.cf(cf), "rocksdb.estimate-num-keys", &n)) return 0;
  return n;
}

}  // namespace evstore::inspect
