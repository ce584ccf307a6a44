// Column-family reads for the components above the log (cf_cursor.hpp).
#include "log/cf_cursor.hpp"

#include "log/rocks_status.hpp"

namespace evstore::internal {

namespace {

rocksdb::Slice ToSlice(std::string_view s) { return rocksdb::Slice(s.data(), s.size()); }
std::string_view ToView(const rocksdb::Slice& s) { return std::string_view(s.data(), s.size()); }

}  // namespace

CfSnapshot::CfSnapshot(const StoreImpl& store)
    : db_(store.db()), snap_(store.db()->GetSnapshot()) {}

CfSnapshot::~CfSnapshot() { db_->ReleaseSnapshot(snap_); }

CfCursor::CfCursor(const StoreImpl& store, Cf cf, CfCursorOptions options)
    : upper_(std::move(options.upper)), upper_slice_(upper_) {
  rocksdb::ReadOptions ro;
  if (options.snapshot != nullptr) ro.snapshot = options.snapshot->snap_;
  if (!upper_.empty()) ro.iterate_upper_bound = &upper_slice_;
  ro.fill_cache = options.fill_cache;
  // stream_index and event_ids have prefix extractors; a cursor's order is
  // the whole family's.
  ro.total_order_seek = true;
  it_.reset(store.db()->NewIterator(ro, store.cf(cf)));
}

CfCursor::~CfCursor() = default;

bool CfCursor::Valid() const { return it_->Valid(); }
void CfCursor::SeekToFirst() { it_->SeekToFirst(); }
void CfCursor::SeekToLast() { it_->SeekToLast(); }
void CfCursor::Seek(std::string_view target) { it_->Seek(ToSlice(target)); }
void CfCursor::SeekForPrev(std::string_view target) { it_->SeekForPrev(ToSlice(target)); }
void CfCursor::Next() { it_->Next(); }
std::string_view CfCursor::key() const { return ToView(it_->key()); }
std::string_view CfCursor::value() const { return ToView(it_->value()); }
Status CfCursor::status() const { return StatusFromRocks(it_->status()); }

Status CfGet(const StoreImpl& store, Cf cf, std::string_view key, std::string* value,
             const CfSnapshot* snapshot) {
  // A family that a store opened read-only lacks (added since it was
  // written) holds nothing.
  if (store.cf(cf) == nullptr) return Status::NotFound("");
  rocksdb::ReadOptions ro;
  if (snapshot != nullptr) ro.snapshot = snapshot->snap_;
  return StatusFromRocks(store.db()->Get(ro, store.cf(cf), ToSlice(key), value));
}

std::optional<uint64_t> CfIntProperty(const StoreImpl& store, Cf cf, const std::string& property) {
  uint64_t v = 0;
  if (store.cf(cf) == nullptr) return std::nullopt;
  if (!store.db()->GetIntProperty(store.cf(cf), property, &v)) return std::nullopt;
  return v;
}

}  // namespace evstore::internal
