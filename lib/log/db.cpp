// Opening and closing the RocksDB instance behind a store.
#include <rocksdb/cache.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/memtablerep.h>
#include <rocksdb/options.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <system_error>

#include "format/keys.hpp"
#include "format/record.hpp"
#include "log/store_impl.hpp"

namespace evstore::internal {

const char* const kCfNames[kNumCfs] = {
    "default",        "events",     "stream_index", "streams",     "event_ids",
    "category_index", "type_index", "sagas",        "checkpoints", "snapshots",
};

namespace fs = std::filesystem;

namespace {

Status FromRocks(const rocksdb::Status& s, std::string_view what) {
  std::string msg = std::string(what) + ": " + s.ToString();
  if (s.IsCorruption()) return Status::Corruption(msg);
  if (s.IsNotFound()) return Status::NotFound(msg);
  if (s.IsNotSupported()) return Status::NotSupported(msg);
  if (s.IsInvalidArgument()) return Status::InvalidArgument(msg);
  if (s.IsBusy() || s.IsTryAgain()) return Status::Busy(msg);
  return Status::IOError(msg);
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The name part (everything before the 0x00 + 8-byte position) of a
// category_index or type_index key. Used as a memtable insert hint: keys of
// one name arrive in position order.
class NamePrefix : public rocksdb::SliceTransform {
 public:
  const char* Name() const override { return "evstore.NamePrefix"; }
  rocksdb::Slice Transform(const rocksdb::Slice& key) const override {
    return rocksdb::Slice(key.data(), key.size() - 9);
  }
  bool InDomain(const rocksdb::Slice& key) const override { return key.size() >= 9; }
};

rocksdb::ColumnFamilyOptions CfOptions(Cf cf, const std::shared_ptr<rocksdb::Cache>& cache) {
  rocksdb::ColumnFamilyOptions o;
  // Memtable insert hints: positions only grow, so inserts into `events`, into
  // one name's index keys and into one stream's index keys land next to the
  // previous insert of the same prefix. A hint's ~250 bytes come from the
  // memtable's arena, so they count against write_buffer_size.
  if (cf == kCfEvents) o.memtable_insert_with_hint_prefix_extractor.reset(rocksdb::NewFixedPrefixTransform(0));
  if (cf == kCfStreamIndex)
    o.memtable_insert_with_hint_prefix_extractor.reset(rocksdb::NewFixedPrefixTransform(8));
  if (cf == kCfCategoryIndex || cf == kCfTypeIndex)
    o.memtable_insert_with_hint_prefix_extractor = std::make_shared<NamePrefix>();
  rocksdb::BlockBasedTableOptions t;
  t.block_cache = cache;
  t.format_version = 5;
  t.checksum = rocksdb::kXXH3;
  t.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  if (cf == kCfStreamIndex) {
    // Reads of one stream stay inside its 8-byte stream-id prefix.
    o.prefix_extractor.reset(rocksdb::NewFixedPrefixTransform(8));
    o.memtable_prefix_bloom_size_ratio = 0.05;
    t.whole_key_filtering = true;
  }
  if (cf == kCfEventIds) {
    // Only point lookups: a hash memtable makes inserts of random ids O(1).
    o.prefix_extractor.reset(rocksdb::NewFixedPrefixTransform(16));
    o.memtable_factory.reset(rocksdb::NewHashSkipListRepFactory(1 << 16));
  }
  // Index entries are small and their inserts land all over the key space:
  // small memtables stay in the CPU cache (measured: ~20% faster appends).
  if (cf != kCfEvents && cf != kCfDefault) o.write_buffer_size = 4u << 20;
  // Index entries are keys of a few dozen bytes with tiny values: compressing
  // their blocks costs flush CPU for little space.
  if (cf == kCfStreamIndex || cf == kCfCategoryIndex || cf == kCfTypeIndex || cf == kCfEventIds)
    o.compression = rocksdb::kNoCompression;
  o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
  return o;
}

}  // namespace

Status StatusFromRocks(const rocksdb::Status& s, std::string_view what) { return FromRocks(s, what); }

StoreImpl::StoreImpl(std::string path, const Options& options)
    : path_(std::move(path)), options_(options) {
  MakeCaches();
}

void StoreImpl::MakeCaches() {
  if (options_.head_cache_entries > 0) {
    CacheOptions ho;
    ho.l1.capacity = options_.head_cache_entries;
    heads_ = std::make_unique<HeadCache>(ho);
  }
  if (options_.event_cache_l1_bytes + options_.event_cache_l2_bytes > 0) {
    CacheOptions eo;
    eo.l1.capacity = options_.event_cache_l1_bytes;
    eo.l2.capacity = options_.event_cache_l2_bytes;
    eo.l1.ttl = eo.l2.ttl = std::chrono::milliseconds(options_.event_cache_ttl_ms);
    // L2 holds the stored record bytes, prefixed with the position that
    // seeds their checksum; a hit there is verified again when decoded.
    CacheCodec<RecordRef> codec;
    codec.encode = [](const RecordRef& r) {
      std::string out(8, '\0');
      format::PutBE64(out.data(), r->view.position);
      out += r->body;
      char sum[8];
      format::PutLE64(sum, format::RecordChecksum(r->body, r->view.position));
      out.append(sum, 8);
      return out;
    };
    codec.decode = [](std::string_view b) -> Result<RecordRef> {
      if (b.size() < 8) return Status::Corruption("cached event is too short");
      auto rec = std::make_shared<CachedRecord>();
      Status s = format::DecodeEvent(format::GetBE64(b.data()), b.substr(8), &rec->body, &rec->view);
      if (!s.ok()) return s;
      return RecordRef(std::move(rec));
    };
    CacheWeighers<uint64_t, RecordRef> w;
    w.decoded = [](const uint64_t&, const RecordRef& r) {
      return static_cast<uint64_t>(sizeof(CachedRecord) + r->body.capacity() + 64);
    };
    w.encoded = [](const uint64_t&, std::string_view b) { return static_cast<uint64_t>(b.size() + 32); };
    events_cache_ = std::make_unique<EventCache>(eo, std::move(codec), std::move(w));
  }
}

StoreImpl::~StoreImpl() { CloseDb(); }

Result<std::shared_ptr<StoreImpl>> StoreImpl::Open(std::string_view path, const Options& options) {
  if (path.empty()) return Status::InvalidArgument("store path is empty");
  if (path.find('\0') != std::string_view::npos)
    return Status::InvalidArgument("store path contains a NUL byte");
  if (options.max_group_requests == 0 || options.max_events_per_append == 0)
    return Status::InvalidArgument("options: group and append limits must be at least 1");
  std::shared_ptr<StoreImpl> impl(new StoreImpl(std::string(path), options));
  Status s = impl->OpenDb();
  if (!s.ok()) return s;
  return impl;
}

rocksdb::DBOptions StoreImpl::BaseDbOptions() const {
  rocksdb::DBOptions dbo;
  // Acknowledged data never rolls back: refuse to open on a corruption in
  // the middle of the log rather than silently dropping what follows it.
  dbo.wal_recovery_mode = rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords;
  dbo.max_background_jobs = 2;
  // One committer writes at a time (group commit), so concurrent memtable
  // writes buy nothing, and turning them off enables insert hints.
  dbo.allow_concurrent_memtable_write = false;
  dbo.keep_log_file_num = 4;
  dbo.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;
  return dbo;
}

// Creates an empty store next to `path_` and renames it into place, so that
// a crash during creation never leaves a half-made store at `path_` (only a
// temporary directory, removed by the next creation).
Status StoreImpl::CreateStore() {
  std::error_code ec;
  fs::path dir = fs::path(path_).lexically_normal();
  if (!dir.has_filename()) dir = dir.parent_path();
  fs::path tmp = dir;
  tmp += ".evstore-creating";
  fs::remove_all(tmp, ec);
  if (dir.has_parent_path()) fs::create_directories(dir.parent_path(), ec);
  rocksdb::DBOptions dbo = BaseDbOptions();
  dbo.create_if_missing = true;
  dbo.create_missing_column_families = true;
  std::vector<rocksdb::ColumnFamilyDescriptor> descs;
  for (int c = 0; c < kNumCfs; c++)
    descs.emplace_back(kCfNames[c], CfOptions(static_cast<Cf>(c), block_cache_));
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  rocksdb::Status os = rocksdb::DB::Open(dbo, tmp.string(), descs, &handles, &db);
  if (!os.ok()) return FromRocks(os, "cannot create a store next to '" + path_ + "'");
  rocksdb::WriteBatch b;
  b.Put(handles[kCfDefault], std::string(format::kFormatKey),
        format::EncodeFormatRecord(format::kFormatVersion, NowMs()));
  b.Put(handles[kCfDefault], std::string(format::kNextStreamIdKey),
        std::string(format::Be64(1).view()));
  Uuid r = Uuid::Random();
  b.Put(handles[kCfDefault], std::string(format::kIdTagKey),
        std::string(reinterpret_cast<const char*>(r.bytes), 8));
  rocksdb::WriteOptions wo;
  wo.sync = true;
  rocksdb::Status ws = db->Write(wo, &b);
  for (auto* h : handles) db->DestroyColumnFamilyHandle(h).PermitUncheckedError();
  rocksdb::Status cs = db->Close();
  delete db;
  if (!ws.ok()) return FromRocks(ws, "cannot initialise the store");
  if (!cs.ok()) return FromRocks(cs, "cannot initialise the store");
  // rename(2) replaces an empty directory, so a pre-made empty `path_` is fine.
  fs::rename(tmp, dir, ec);
  if (ec) return Status::IOError("cannot move the new store into '" + path_ + "': " + ec.message());
  int fd = ::open(dir.has_parent_path() ? dir.parent_path().c_str() : ".", O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
  return Status::OK();
}

Status StoreImpl::OpenDb() {
  std::error_code ec;
  fs::path dir(path_);
  bool exists = fs::exists(dir, ec);
  if (ec) return Status::IOError("cannot access '" + path_ + "': " + ec.message());
  bool existing_db = false;
  if (exists) {
    if (!fs::is_directory(dir, ec))
      return Status::InvalidArgument("'" + path_ + "' exists and is not a directory");
    existing_db = fs::exists(dir / "CURRENT", ec);
    if (!existing_db) {
      bool empty = fs::is_empty(dir, ec);
      if (ec) return Status::IOError("cannot read '" + path_ + "': " + ec.message());
      if (!empty)
        return Status::InvalidArgument("'" + path_ +
                                       "' is not an evstore store (the directory holds other files)");
    }
  }
  if (!existing_db && (options_.read_only || !options_.create_if_missing))
    return Status::NotFound("no evstore store at '" + path_ + "'");

  block_cache_ = rocksdb::NewLRUCache(options_.block_cache_bytes);
  if (!existing_db) {
    Status cs = CreateStore();
    if (!cs.ok()) return cs;
  }
  rocksdb::DBOptions dbo = BaseDbOptions();

  std::vector<std::string> names;
  rocksdb::Status ls = rocksdb::DB::ListColumnFamilies(dbo, path_, &names);
  if (!ls.ok()) return FromRocks(ls, "cannot list column families of '" + path_ + "'");
  // An evstore store has every column family of ours; anything else is
  // not one of ours, and opening it must not change it.
  if (std::find(names.begin(), names.end(), kCfNames[kCfEvents]) == names.end())
    return Status::InvalidArgument("'" + path_ + "' is not an evstore store");

  std::vector<rocksdb::ColumnFamilyDescriptor> descs;
  for (const auto& n : names) {
    Cf which = kNumCfs;
    for (int i = 0; i < kNumCfs; i++)
      if (n == kCfNames[i]) which = static_cast<Cf>(i);
    descs.emplace_back(n, CfOptions(which == kNumCfs ? kCfDefault : which, block_cache_));
  }

  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::Status os =
      options_.read_only ? rocksdb::DB::OpenForReadOnly(dbo, path_, descs, &handles, &db_)
                         : rocksdb::DB::Open(dbo, path_, descs, &handles, &db_);
  if (!os.ok()) {
    db_ = nullptr;
    return FromRocks(os, "cannot open '" + path_ + "'");
  }
  cfs_.assign(kNumCfs, nullptr);
  for (size_t i = 0; i < names.size(); i++) {
    bool ours = false;
    for (int c = 0; c < kNumCfs; c++) {
      if (names[i] == kCfNames[c]) {
        cfs_[c] = handles[i];
        ours = true;
      }
    }
    if (!ours) other_cfs_.push_back(handles[i]);
  }

  rocksdb::ReadOptions ro;
  std::string fmt;
  {
    rocksdb::Status gs = db_->Get(ro, cfs_[kCfDefault], std::string(format::kFormatKey), &fmt);
    if (gs.IsNotFound()) {
      CloseDb();
      return Status::InvalidArgument("'" + path_ + "' is not an evstore store (no format record)");
    }
    if (!gs.ok()) {
      CloseDb();
      return FromRocks(gs, "cannot read the format record");
    }
    auto rec = format::DecodeFormatRecord(fmt);
    if (!rec) {
      CloseDb();
      return Status::Corruption("'" + path_ + "': the format record is damaged");
    }
    if (rec->version > format::kFormatVersion) {
      CloseDb();
      return Status::NotSupported("'" + path_ + "' uses on-disk format " +
                                  std::to_string(rec->version) + "; this evstore reads up to " +
                                  std::to_string(format::kFormatVersion));
    }
    // A store from an older release may lack families added since.
    for (int c = 0; c < kNumCfs; c++) {
      if (cfs_[c] != nullptr) continue;
      if (options_.read_only) {
        CloseDb();
        return Status::NotSupported("'" + path_ + "' lacks column family " + kCfNames[c] +
                                    "; open it once read-write to upgrade it");
      }
      rocksdb::Status cs = db_->CreateColumnFamily(CfOptions(static_cast<Cf>(c), block_cache_),
                                                   kCfNames[c], &cfs_[c]);
      if (!cs.ok()) {
        CloseDb();
        return FromRocks(cs, "cannot create column family");
      }
    }
    std::string tag;
    rocksdb::Status ts = db_->Get(ro, cfs_[kCfDefault], std::string(format::kIdTagKey), &tag);
    if (!ts.ok() || tag.size() != 8) {
      CloseDb();
      return ts.ok() || ts.IsNotFound()
                 ? Status::Corruption("'" + path_ + "': the id tag record is missing or damaged")
                 : FromRocks(ts, "cannot read the id tag");
    }
    id_tag_ = format::GetBE64(tag.data());
    std::string nsid;
    rocksdb::Status ns = db_->Get(ro, cfs_[kCfDefault], std::string(format::kNextStreamIdKey), &nsid);
    if (ns.ok()) {
      auto v = format::DecodePositionValue(nsid);
      if (!v) {
        CloseDb();
        return Status::Corruption("'" + path_ + "': the next-stream-id record is damaged");
      }
      next_stream_id_ = *v;
    } else if (!ns.IsNotFound()) {
      CloseDb();
      return FromRocks(ns, "cannot read the next stream id");
    }
  }

  // The next position is one past the last key of `events`: a seek, not a scan.
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cfs_[kCfEvents]));
  it->SeekToLast();
  if (it->Valid()) {
    auto pos = format::DecodeEventKey(std::string_view(it->key().data(), it->key().size()));
    if (!pos) {
      it.reset();
      CloseDb();
      return Status::Corruption("'" + path_ + "': malformed key in the events column family");
    }
    next_position_ = *pos + 1;
  } else if (!it->status().ok()) {
    Status s = FromRocks(it->status(), "cannot find the end of the log");
    it.reset();
    CloseDb();
    return s;
  }
  it.reset();
  visible_.store(next_position_, std::memory_order_release);
  return Status::OK();
}

void StoreImpl::CloseDb() {
  if (db_ == nullptr) return;
  if (!options_.read_only) {
    // A clean close loses nothing even with sync=false: DB::Close does not
    // sync the WAL by itself. Flushing the memtables makes the next open
    // quick (no log replay).
    db_->SyncWAL().PermitUncheckedError();
    std::vector<rocksdb::ColumnFamilyHandle*> all;
    for (auto* h : cfs_)
      if (h != nullptr) all.push_back(h);
    db_->Flush(rocksdb::FlushOptions(), all).PermitUncheckedError();
  }
  for (auto* h : cfs_)
    if (h != nullptr && h != db_->DefaultColumnFamily()) db_->DestroyColumnFamilyHandle(h).PermitUncheckedError();
  for (auto* h : other_cfs_) db_->DestroyColumnFamilyHandle(h).PermitUncheckedError();
  cfs_.clear();
  other_cfs_.clear();
  db_->Close().PermitUncheckedError();
  delete db_;
  db_ = nullptr;
}

Status StoreImpl::Close() {
  std::unique_lock<std::shared_mutex> g(life_mu_);
  if (closed_) return Status::OK();
  int64_t n = live_iterators_.load(std::memory_order_relaxed);
  if (n > 0)
    return Status::Busy("cannot close: " + std::to_string(n) + " iterator(s) still open");
  closed_ = true;
  CloseDb();
  return Status::OK();
}

}  // namespace evstore::internal
