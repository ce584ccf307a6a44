// Column-family reads for the components above the log (cf_cursor.hpp).
#include "log/cf_cursor.hpp"

#include "log/rocks_status.hpp"
#include "log/secondary.hpp"

namespace evstore::internal {

namespace {

rocksdb::Slice ToSlice(std::string_view s) { return rocksdb::Slice(s.data(), s.size()); }
std::string_view ToView(const rocksdb::Slice& s) { return std::string_view(s.data(), s.size()); }

// Why no cursor over `cf` can be made (its handle `h` is null: a family the
// database was not opened with), or empty.
std::string NotOpen(const rocksdb::ColumnFamilyHandle* h, Cf cf) {
  return h != nullptr ? std::string() : "column family " + std::string(kCfNames[cf]) + " is not open";
}

}  // namespace

CfSnapshot::CfSnapshot(const StoreImpl& store)
    : db_(store.db()), snap_(store.db()->GetSnapshot()) {}

CfSnapshot::~CfSnapshot() { db_->ReleaseSnapshot(snap_); }

CfCursor::CfCursor(const StoreImpl& store, Cf cf, CfCursorOptions options)
    : CfCursor(store.db(), store.cf(cf), options, NotOpen(store.cf(cf), cf)) {}

CfCursor::CfCursor(const SecondaryDb& db, Cf cf, CfCursorOptions options)
    : CfCursor(db.db_, db.cfs_[cf], options,
               options.snapshot != nullptr
                   ? std::string("a cursor of a secondary instance reads without a snapshot")
                   : NotOpen(db.cfs_[cf], cf)) {}

CfCursor::CfCursor(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf, const CfCursorOptions& options,
                   const std::string& refusal)
    : upper_(options.upper), upper_slice_(upper_) {
  if (!refusal.empty()) {
    it_.reset(rocksdb::NewErrorIterator(rocksdb::Status::InvalidArgument(refusal)));
    return;
  }
  rocksdb::ReadOptions ro;
  if (options.snapshot != nullptr) ro.snapshot = options.snapshot->snap_;
  if (!upper_.empty()) ro.iterate_upper_bound = &upper_slice_;
  ro.fill_cache = options.fill_cache;
  // stream_index and event_ids have prefix extractors; a cursor's order is
  // the whole family's.
  ro.total_order_seek = true;
  it_.reset(db->NewIterator(ro, cf));
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
