// Opening and closing the RocksDB instance behind a store, and the secondary
// instance that follows a store another process has open (secondary.hpp).
#include <rocksdb/cache.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/listener.h>
#include <rocksdb/memtablerep.h>
#include <rocksdb/options.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>

#include <algorithm>
#include <chrono>
#include <filesystem>

#include "format/keys.hpp"
#include "format/record.hpp"
#include "common/time.hpp"
#include "log/rocks_status.hpp"
#include "log/secondary.hpp"
#include "log/store_impl.hpp"
#include "metrics/hub.hpp"
#include "metrics/rocks_hooks.hpp"

namespace evstore::internal {

const char* const kCfNames[kNumCfs] = {
    "default",        "events",     "stream_index", "streams",     "event_ids",
    "category_index", "type_index", "sagas",        "checkpoints", "snapshots",
    "projections",    "commands",
};

namespace fs = std::filesystem;

namespace {

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
  // small memtables stay in the CPU cache (docs/benchmarks.md, event log).
  if (cf != kCfEvents && cf != kCfDefault) o.write_buffer_size = 4u << 20;
  // Index entries are keys of a few dozen bytes with tiny values: compressing
  // their blocks costs flush CPU for little space.
  if (cf == kCfStreamIndex || cf == kCfCategoryIndex || cf == kCfTypeIndex || cf == kCfEventIds)
    o.compression = rocksdb::kNoCompression;
  o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
  return o;
}

// The column families of the store at `path` into *names. An evstore store
// has every family of ours; without `events` it is not one of ours
// (InvalidArgument), and opening it must not change it.
Status ListStoreFamilies(const rocksdb::DBOptions& dbo, const std::string& path,
                         std::vector<std::string>* names) {
  rocksdb::Status ls = rocksdb::DB::ListColumnFamilies(dbo, path, names);
  if (!ls.ok()) return StatusFromRocks(ls, "cannot list column families of '" + path + "'");
  if (std::find(names->begin(), names->end(), kCfNames[kCfEvents]) == names->end())
    return Status::InvalidArgument("'" + path + "' is not an evstore store");
  return Status::OK();
}

// The verdict of the format record of the store at `path`, given its read
// (`read`, and `value` when that is OK): OK when this evstore reads the
// format.
Status CheckFormatRecord(const std::string& path, const rocksdb::Status& read,
                         const std::string& value) {
  if (read.IsNotFound())
    return Status::InvalidArgument("'" + path + "' is not an evstore store (no format record)");
  if (!read.ok()) return StatusFromRocks(read, "cannot read the format record");
  auto rec = format::DecodeFormatRecord(value);
  if (!rec) return Status::Corruption("'" + path + "': the format record is damaged");
  if (rec->version > format::kFormatVersion)
    return Status::NotSupported("'" + path + "' uses on-disk format " + std::to_string(rec->version) +
                                "; this evstore reads up to " + std::to_string(format::kFormatVersion));
  return Status::OK();
}

// ---- Directory operations through the store's file system ----

Status Exists(rocksdb::FileSystem* fs, const std::string& path, bool* exists) {
  rocksdb::IOStatus s = fs->FileExists(path, rocksdb::IOOptions(), nullptr);
  *exists = s.ok();
  if (s.ok() || s.IsNotFound()) return Status::OK();
  return StatusFromRocks(s, "cannot access '" + path + "'");
}

// The entries of directory `path`, without "." and "..".
Status ListDir(rocksdb::FileSystem* fs, const std::string& path, std::vector<std::string>* out) {
  std::vector<std::string> all;
  rocksdb::IOStatus s = fs->GetChildren(path, rocksdb::IOOptions(), &all, nullptr);
  if (!s.ok()) return StatusFromRocks(s, "cannot read '" + path + "'");
  out->clear();
  for (std::string& n : all)
    if (n != "." && n != "..") out->push_back(std::move(n));
  return Status::OK();
}

// Removes `path` and everything under it; OK when it does not exist.
Status RemoveTree(rocksdb::FileSystem* fs, const std::string& path) {
  bool exists = false;
  Status s = Exists(fs, path, &exists);
  if (!s.ok() || !exists) return s;
  bool is_dir = false;
  rocksdb::IOStatus ds = fs->IsDirectory(path, rocksdb::IOOptions(), &is_dir, nullptr);
  if (!ds.ok()) return StatusFromRocks(ds, "cannot access '" + path + "'");
  if (!is_dir) {
    rocksdb::IOStatus fs_status = fs->DeleteFile(path, rocksdb::IOOptions(), nullptr);
    return fs_status.ok() ? Status::OK() : StatusFromRocks(fs_status, "cannot remove '" + path + "'");
  }
  std::vector<std::string> children;
  s = ListDir(fs, path, &children);
  if (!s.ok()) return s;
  for (const std::string& c : children) {
    s = RemoveTree(fs, (fs::path(path) / c).string());
    if (!s.ok()) return s;
  }
  rocksdb::IOStatus rs = fs->DeleteDir(path, rocksdb::IOOptions(), nullptr);
  if (!rs.ok()) return StatusFromRocks(rs, "cannot remove '" + path + "'");
  return Status::OK();
}

// Creates `dir` and its missing ancestors.
Status CreateDirs(rocksdb::FileSystem* fs, const fs::path& dir) {
  fs::path so_far;
  for (const fs::path& part : dir) {
    so_far /= part;
    if (part == "/" || part == "." || part.empty()) continue;
    rocksdb::IOStatus s = fs->CreateDirIfMissing(so_far.string(), rocksdb::IOOptions(), nullptr);
    if (!s.ok()) return StatusFromRocks(s, "cannot create directory '" + so_far.string() + "'");
  }
  return Status::OK();
}

Status SyncDir(rocksdb::FileSystem* fs, const std::string& dir) {
  std::unique_ptr<rocksdb::FSDirectory> d;
  rocksdb::IOStatus s = fs->NewDirectory(dir, rocksdb::IOOptions(), &d, nullptr);
  if (s.ok()) s = d->Fsync(rocksdb::IOOptions(), nullptr);
  if (s.ok()) s = d->Close(rocksdb::IOOptions(), nullptr);
  if (!s.ok()) return StatusFromRocks(s, "cannot sync directory '" + dir + "'");
  return Status::OK();
}

}  // namespace

// Turns RocksDB's background errors into the store's fail-stop state and
// keeps RocksDB from recovering on its own.
class StoreImpl::ErrorListener : public rocksdb::EventListener {
 public:
  explicit ErrorListener(StoreImpl* store) : store_(store) {}
  void OnBackgroundError(rocksdb::BackgroundErrorReason reason, rocksdb::Status* error) override {
    if (error == nullptr || error->ok()) return;
    const char* what = "a background write";
    switch (reason) {
      case rocksdb::BackgroundErrorReason::kFlush:
      case rocksdb::BackgroundErrorReason::kFlushNoWAL: what = "a memtable flush"; break;
      case rocksdb::BackgroundErrorReason::kCompaction: what = "a compaction"; break;
      case rocksdb::BackgroundErrorReason::kWriteCallback:
      case rocksdb::BackgroundErrorReason::kMemTable:
        what = "a log write";
        store_->log_failed_.store(true, std::memory_order_release);
        break;
      case rocksdb::BackgroundErrorReason::kManifestWrite:
      case rocksdb::BackgroundErrorReason::kManifestWriteNoWAL: what = "a MANIFEST write"; break;
    }
    store_->metrics()->background_errors.fetch_add(1, std::memory_order_relaxed);
    store_->metrics()->Log(LogLevel::kError, std::string("RocksDB background error in ") + what + ": " +
                                                 error->ToString());
    store_->FailStop(Status::IOError(std::string(what) + " failed (" + error->ToString() +
                                     "); the store accepts no more writes until it is reopened"));
  }
  void OnStallConditionsChanged(const rocksdb::WriteStallInfo& info) override {
    if (info.condition.cur == rocksdb::WriteStallCondition::kDelayed)
      store_->metrics()->write_stalls.fetch_add(1, std::memory_order_relaxed);
    if (info.condition.cur == rocksdb::WriteStallCondition::kStopped)
      store_->metrics()->write_stops.fetch_add(1, std::memory_order_relaxed);
  }
  void OnErrorRecoveryBegin(rocksdb::BackgroundErrorReason, rocksdb::Status error,
                            bool* auto_recovery) override {
    error.PermitUncheckedError();
    if (auto_recovery != nullptr) *auto_recovery = false;
  }

 private:
  StoreImpl* store_;
};


StoreImpl::StoreImpl(std::string path, const Options& options, Seams seams)
    : path_(std::move(path)),
      options_(options),
      seams_(std::move(seams)),
      metrics_(std::make_shared<metrics::MetricsHub>(options)) {
  // Every file goes through the sync timer (WAL sync latency and count);
  // it passes everything through to the seam's file system or the disk.
  fs_ = metrics::NewSyncTimingFs(seams_.file_system ? seams_.file_system : rocksdb::FileSystem::Default(),
                                 metrics_);
  env_ = rocksdb::NewCompositeEnv(fs_);
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

StoreImpl::~StoreImpl() { (void)CloseDb(); }

Result<std::shared_ptr<StoreImpl>> StoreImpl::Open(std::string_view path, const Options& options,
                                                   Seams seams) {
  if (path.empty()) return Status::InvalidArgument("store path is empty");
  if (path.find('\0') != std::string_view::npos)
    return Status::InvalidArgument("store path contains a NUL byte");
  if (options.max_group_requests == 0 || options.max_events_per_append == 0)
    return Status::InvalidArgument("options: group and append limits must be at least 1");
  std::shared_ptr<StoreImpl> impl(new StoreImpl(std::string(path), options, std::move(seams)));
  Status s = impl->OpenDb();
  if (!s.ok()) return s;
  return impl;
}

rocksdb::DBOptions StoreImpl::BaseDbOptions() {
  rocksdb::DBOptions dbo;
  if (env_) dbo.env = env_.get();
  // Acknowledged data never rolls back: refuse to open on a corruption in
  // the middle of the log rather than silently dropping what follows it.
  dbo.wal_recovery_mode = rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords;
  dbo.max_background_jobs = 2;
  // One committer writes at a time (group commit), so concurrent memtable
  // writes buy nothing, and turning them off enables insert hints.
  dbo.allow_concurrent_memtable_write = false;
  dbo.keep_log_file_num = 4;
  dbo.max_total_wal_size = options_.max_wal_bytes;
  dbo.info_log_level = metrics::RocksLevel(options_.log_level);
  if (metrics_->has_callback()) dbo.info_log = metrics::NewCallbackLogger(metrics_);
  // Fail-stop: after any write, sync, flush or compaction error the store
  // takes no more writes until it is reopened (RocksDB would otherwise
  // resume by itself after some errors, e.g. a full disk, while evstore's
  // state may not match what landed). The listener records why.
  dbo.max_bgerror_resume_count = 0;
  dbo.listeners.push_back(std::make_shared<ErrorListener>(this));
  return dbo;
}

// Creates an empty store next to `path_` and renames it into place, so that
// a crash during creation never leaves a half-made store at `path_` (only a
// temporary directory, removed by the next creation). Every directory
// operation goes through fs_, so a test file system sees (and may fail)
// each of them.
Status StoreImpl::CreateStore() {
  fs::path dir = fs::path(path_).lexically_normal();
  if (!dir.has_filename()) dir = dir.parent_path();
  fs::path tmp = dir;
  tmp += ".evstore-creating";
  fs::path parent = dir.has_parent_path() ? dir.parent_path() : fs::path(".");
  Status s = RemoveTree(fs_.get(), tmp.string());
  if (!s.ok()) return s;
  s = CreateDirs(fs_.get(), parent);
  if (!s.ok()) return s;
  rocksdb::DBOptions dbo = BaseDbOptions();
  dbo.create_if_missing = true;
  dbo.create_missing_column_families = true;
  std::vector<rocksdb::ColumnFamilyDescriptor> descs;
  for (int c = 0; c < kNumCfs; c++)
    descs.emplace_back(kCfNames[c], CfOptions(static_cast<Cf>(c), block_cache_));
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  rocksdb::Status os = rocksdb::DB::Open(dbo, tmp.string(), descs, &handles, &db);
  if (!os.ok()) return StatusFromRocks(os, "cannot create a store next to '" + path_ + "'");
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
  if (!ws.ok()) return StatusFromRocks(ws, "cannot initialise the store");
  if (!cs.ok()) return StatusFromRocks(cs, "cannot initialise the store");
  // rename(2) replaces an empty directory, so a pre-made empty `path_` is fine.
  rocksdb::IOStatus rs = fs_->RenameFile(tmp.string(), dir.string(), rocksdb::IOOptions(), nullptr);
  if (!rs.ok()) return StatusFromRocks(rs, "cannot move the new store into '" + path_ + "'");
  // The rename is durable once the parent directory is synced.
  return SyncDir(fs_.get(), parent.string());
}

Status StoreImpl::OpenDb() {
  bool exists = false, existing_db = false;
  Status s = Exists(fs_.get(), path_, &exists);
  if (!s.ok()) return s;
  if (exists) {
    bool is_dir = false;
    rocksdb::IOStatus ds = fs_->IsDirectory(path_, rocksdb::IOOptions(), &is_dir, nullptr);
    if (!ds.ok()) return StatusFromRocks(ds, "cannot access '" + path_ + "'");
    if (!is_dir) return Status::InvalidArgument("'" + path_ + "' exists and is not a directory");
    s = Exists(fs_.get(), (fs::path(path_) / "CURRENT").string(), &existing_db);
    if (!s.ok()) return s;
    if (!existing_db) {
      std::vector<std::string> children;
      s = ListDir(fs_.get(), path_, &children);
      if (!s.ok()) return s;
      if (!children.empty())
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
  s = ListStoreFamilies(dbo, path_, &names);
  if (!s.ok()) return s;

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
    if (os.IsCorruption())
      return StatusFromRocks(os, "cannot open '" + path_ +
                               "': a file of the store is damaged (recovery stops at damage in "
                               "the log rather than drop the acknowledged events after it; see "
                               "docs/reliability.md)");
    return StatusFromRocks(os, "cannot open '" + path_ + "'");
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
    Status fc = CheckFormatRecord(path_, gs, fmt);
    if (!fc.ok()) {
      (void)CloseDb();
      return fc;
    }
    // A store from an older release may lack families added since.
    for (int c = 0; c < kNumCfs; c++) {
      if (cfs_[c] != nullptr) continue;
      // Read-only: a store from before projections (or the command log)
      // reads as having none.
      if (options_.read_only && (c == kCfProjections || c == kCfCommands)) continue;
      if (options_.read_only) {
        (void)CloseDb();
        return Status::NotSupported("'" + path_ + "' lacks column family " + kCfNames[c] +
                                    "; open it once read-write to upgrade it");
      }
      rocksdb::Status cs = db_->CreateColumnFamily(CfOptions(static_cast<Cf>(c), block_cache_),
                                                   kCfNames[c], &cfs_[c]);
      if (!cs.ok()) {
        (void)CloseDb();
        return StatusFromRocks(cs, "cannot create column family");
      }
    }
    // An older format is upgraded in place: what changed since is additive
    // (new record fields, new column families), so its records read as they
    // are. Marking it keeps builds that predate the change from opening a
    // store whose new records they would misread.
    auto rec = format::DecodeFormatRecord(fmt);  // checked above
    if (rec && rec->version < format::kFormatVersion && !options_.read_only) {
      rocksdb::WriteOptions wo;
      wo.sync = true;
      rocksdb::Status us = db_->Put(wo, cfs_[kCfDefault], std::string(format::kFormatKey),
                                    format::EncodeFormatRecord(format::kFormatVersion, rec->created_ms));
      if (!us.ok()) {
        (void)CloseDb();
        return StatusFromRocks(us, "cannot upgrade the format record");
      }
    }
    std::string tag;
    rocksdb::Status ts = db_->Get(ro, cfs_[kCfDefault], std::string(format::kIdTagKey), &tag);
    if (!ts.ok() || tag.size() != 8) {
      (void)CloseDb();
      return ts.ok() || ts.IsNotFound()
                 ? Status::Corruption("'" + path_ + "': the id tag record is missing or damaged")
                 : StatusFromRocks(ts, "cannot read the id tag");
    }
    id_tag_ = format::GetBE64(tag.data());
    std::string nsid;
    rocksdb::Status ns = db_->Get(ro, cfs_[kCfDefault], std::string(format::kNextStreamIdKey), &nsid);
    if (ns.ok()) {
      auto v = format::DecodePositionValue(nsid);
      if (!v) {
        (void)CloseDb();
        return Status::Corruption("'" + path_ + "': the next-stream-id record is damaged");
      }
      next_stream_id_ = *v;
    } else if (!ns.IsNotFound()) {
      (void)CloseDb();
      return StatusFromRocks(ns, "cannot read the next stream id");
    }
  }

  // The next position is one past the last key of `events`: a seek, not a scan.
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cfs_[kCfEvents]));
  it->SeekToLast();
  if (it->Valid()) {
    auto pos = format::DecodeEventKey(std::string_view(it->key().data(), it->key().size()));
    if (!pos) {
      it.reset();
      (void)CloseDb();
      return Status::Corruption("'" + path_ + "': malformed key in the events column family");
    }
    next_position_ = *pos + 1;
  } else if (!it->status().ok()) {
    Status s = StatusFromRocks(it->status(), "cannot find the end of the log");
    it.reset();
    (void)CloseDb();
    return s;
  }
  it.reset();
  visible_.store(next_position_, std::memory_order_release);
  // Without a callback, the store's own messages (fail-stop) join RocksDB's
  // in the LOG file.
  if (!metrics_->has_callback()) metrics_->SetFallbackLog(db_->GetDBOptions().info_log);
  return Status::OK();
}

Status StoreImpl::CloseDb() {
  if (db_ == nullptr) return Status::OK();
  metrics_->SetFallbackLog(nullptr);  // RocksDB's logger closes with the database
  Status first;
  auto note = [&first](const rocksdb::Status& s, std::string_view what) {
    if (!s.ok() && first.ok()) first = StatusFromRocks(s, what);
  };
  if (!options_.read_only) {
    Status stopped = WriteError();
    if (!stopped.ok())
      first = Status::IOError("close: the store had stopped writing: " + std::string(stopped.message()));
    // A clean close loses nothing even with sync=false: DB::Close does not
    // sync the WAL by itself. After a failed log write the log writer is
    // unusable (RocksDB asserts on its next sync), and what it holds is
    // settled by the reopen.
    if (!log_failed_.load(std::memory_order_acquire))
      note(db_->SyncWAL(), "close: syncing the write-ahead log failed (appends made with sync=false "
                           "may not survive a power loss)");
    // Flushing the memtables makes the next open quick (no log replay). A
    // failure loses nothing: the synced log still holds their data.
    if (stopped.ok()) {
      note(db_->Flush(rocksdb::FlushOptions(), OpenHandles()),
           "close: flushing the memtables failed (nothing is lost: the next open replays the log)");
    }
  }
  for (auto* h : cfs_)
    if (h != nullptr && h != db_->DefaultColumnFamily()) db_->DestroyColumnFamilyHandle(h).PermitUncheckedError();
  for (auto* h : other_cfs_) db_->DestroyColumnFamilyHandle(h).PermitUncheckedError();
  cfs_.clear();
  other_cfs_.clear();
  note(db_->Close(), "close");
  delete db_;
  db_ = nullptr;
  return first;
}

std::vector<rocksdb::ColumnFamilyHandle*> StoreImpl::OpenHandles() const {
  std::vector<rocksdb::ColumnFamilyHandle*> all;
  for (auto* h : cfs_)
    if (h != nullptr) all.push_back(h);
  return all;
}

Status StoreImpl::FlushMemtables() {
  OpGuard g(this);
  if (g.closed()) return Status::Closed("store is closed");
  rocksdb::Status s = db_->Flush(rocksdb::FlushOptions(), OpenHandles());
  return s.ok() ? Status::OK() : StatusFromRocks(s, "flushing the memtables");
}

Status StoreImpl::Close() {
  Status result;
  auto r = gate_.Close([&] {
    int64_t n = live_iterators_.load(std::memory_order_relaxed);
    if (n > 0) {
      result = Status::Busy("cannot close: " + std::to_string(n) + " iterator(s) still open");
      return false;
    }
    result = CloseDb();
    return true;
  });
  if (r == LifeGate::CloseResult::kFromInside)
    return Status::Busy("cannot close a store from inside one of its own operations (a callback)");
  if (gate_.closed()) WakeTail();  // live readers see the store closed
  return result;
}

// ---- SecondaryDb ----

Result<std::unique_ptr<SecondaryDb>> SecondaryDb::Open(const std::string& path,
                                                       const std::string& scratch_dir,
                                                       std::initializer_list<Cf> cfs) {
  rocksdb::DBOptions dbo;
  dbo.max_open_files = -1;  // required of a secondary (rocksdb/db.h)
  dbo.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;
  std::vector<std::string> names;
  Status s = ListStoreFamilies(dbo, path, &names);
  if (!s.ok()) return s;

  std::vector<Cf> wanted{kCfDefault};
  for (Cf c : cfs) {
    // A family the store lacks (one added by a later release) stays closed.
    bool stored = std::find(names.begin(), names.end(), kCfNames[c]) != names.end();
    if (stored && std::find(wanted.begin(), wanted.end(), c) == wanted.end()) wanted.push_back(c);
  }
  // The families' own options (their filters, their order) without the
  // writer's block cache: RocksDB gives each a small one.
  std::vector<rocksdb::ColumnFamilyDescriptor> descs;
  for (Cf c : wanted) descs.emplace_back(kCfNames[c], CfOptions(c, nullptr));

  std::unique_ptr<SecondaryDb> db(new SecondaryDb());
  rocksdb::Status os =
      rocksdb::DB::OpenAsSecondary(dbo, path, scratch_dir, descs, &db->handles_, &db->db_);
  if (!os.ok()) {
    db->db_ = nullptr;
    db->handles_.clear();
    return StatusFromRocks(os, "cannot open '" + path + "' to follow it");
  }
  for (size_t i = 0; i < wanted.size(); i++) db->cfs_[wanted[i]] = db->handles_[i];

  std::string fmt;
  rocksdb::Status gs =
      db->db_->Get(rocksdb::ReadOptions(), db->cfs_[kCfDefault], std::string(format::kFormatKey), &fmt);
  s = CheckFormatRecord(path, gs, fmt);
  if (!s.ok()) return s;
  return db;
}

SecondaryDb::~SecondaryDb() {
  if (db_ == nullptr) return;
  for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h).PermitUncheckedError();
  db_->Close().PermitUncheckedError();
  delete db_;
}

Status SecondaryDb::CatchUp() {
  rocksdb::Status s = db_->TryCatchUpWithPrimary();
  return s.ok() ? Status::OK() : StatusFromRocks(s, "catching up with the store's writer");
}

}  // namespace evstore::internal
