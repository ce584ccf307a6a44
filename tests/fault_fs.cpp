// FaultFs (see fault_fs.hpp): the model of what a power loss keeps, and the
// wrappers of RocksDB's files and directories that report to it.
#include "fault_fs.hpp"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <utility>

namespace evtest {

using rocksdb::FileOptions;
using rocksdb::IODebugContext;
using rocksdb::IOOptions;
using rocksdb::IOStatus;
using rocksdb::Slice;

// A file's bytes as the model sees them; shared by every name (hard links)
// and handle of the file. Guarded by FaultFs::mu_.
struct FaultFs::Inode {
  uint64_t written = 0;
  uint64_t synced = 0;
};

// A change of a directory entry, durable once directory `dir` is synced
// after it. Durable creations leave the journal; durable renames stay, so
// that older entries' paths can be followed through them when reverting.
struct FaultFs::NsOp {
  enum class Type : uint8_t { kCreate, kRename };
  enum class Replaced : uint8_t { kNothing, kFile, kEmptyDir };
  Type type = Type::kCreate;
  uint64_t seq = 0;
  uint64_t dir = 0;
  bool durable = false;
  std::string path;  // what was created, or the rename's source
  std::string to;    // the rename's target
  Replaced replaced = Replaced::kNothing;
  std::string replaced_data;  // the durable bytes of a file the rename replaced
};

namespace {

bool StartsWith(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }
bool EndsWith(std::string_view s, std::string_view p) {
  return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
}

// `path` itself or something under it.
bool Under(std::string_view path, std::string_view root) {
  return path == root ||
         (StartsWith(path, root) && path.size() > root.size() && path[root.size()] == '/');
}

// A file written through FaultFs: every change is checked against the rules
// and the power, and reported to the model.
class Writer : public rocksdb::FSWritableFileWrapper {
 public:
  Writer(FaultFs* fs, std::string path, std::shared_ptr<FaultFs::Inode> inode,
         std::unique_ptr<rocksdb::FSWritableFile> base)
      : FSWritableFileWrapper(base.get()),
        fs_(fs),
        path_(std::move(path)),
        kind_(KindOf(path_)),
        inode_(std::move(inode)),
        base_(std::move(base)) {}
  ~Writer() override {
    // Closing the descriptor trims preallocated space down to the bytes
    // written, which changes nothing a reader (or the model) sees.
    base_.reset();
    fs_->WriterClosed();
  }

  IOStatus Append(const Slice& data, const IOOptions& o, IODebugContext* dbg) override {
    return DoAppend(data.size(), std::nullopt, [&] { return base_->Append(data, o, dbg); });
  }
  IOStatus Append(const Slice& data, const IOOptions& o, const rocksdb::DataVerificationInfo& v,
                  IODebugContext* dbg) override {
    return DoAppend(data.size(), std::nullopt, [&] { return base_->Append(data, o, v, dbg); });
  }
  IOStatus PositionedAppend(const Slice& data, uint64_t offset, const IOOptions& o,
                            IODebugContext* dbg) override {
    return DoAppend(data.size(), offset,
                    [&] { return base_->PositionedAppend(data, offset, o, dbg); });
  }
  IOStatus PositionedAppend(const Slice& data, uint64_t offset, const IOOptions& o,
                            const rocksdb::DataVerificationInfo& v, IODebugContext* dbg) override {
    return DoAppend(data.size(), offset,
                    [&] { return base_->PositionedAppend(data, offset, o, v, dbg); });
  }
  IOStatus Truncate(uint64_t size, const IOOptions& o, IODebugContext* dbg) override {
    if (Mute()) return IOStatus::OK();
    uint64_t epoch = fs_->PowerEpoch();
    IOStatus s = fs_->Check(FsOp::kTruncate, kind_, path_);
    if (!s.ok()) return s;
    s = base_->Truncate(size, o, dbg);
    if (!s.ok()) return s;
    // Even when the power went off meanwhile: the model only ever shrinks.
    fs_->TruncatedTo(inode_.get(), size);
    if (fs_->PowerEpoch() != epoch) return FaultFs::PoweredOff("truncate " + path_);
    return s;
  }
  IOStatus Close(const IOOptions& o, IODebugContext* dbg) override {
    if (Mute()) return IOStatus::OK();
    IOStatus s = fs_->Check(FsOp::kClose, kind_, path_);
    if (!s.ok()) return s;
    return base_->Close(o, dbg);
  }
  IOStatus Flush(const IOOptions& o, IODebugContext* dbg) override {
    if (Mute()) return IOStatus::OK();
    if (fs_->powered_off()) return FaultFs::PoweredOff("flush " + path_);
    return base_->Flush(o, dbg);
  }
  IOStatus Sync(const IOOptions& o, IODebugContext* dbg) override {
    return DoSync([&] { return base_->Sync(o, dbg); });
  }
  IOStatus Fsync(const IOOptions& o, IODebugContext* dbg) override {
    return DoSync([&] { return base_->Fsync(o, dbg); });
  }
  // Asks the kernel to start writing back; promises nothing, so the model
  // counts nothing as durable.
  IOStatus RangeSync(uint64_t offset, uint64_t n, const IOOptions& o,
                     IODebugContext* dbg) override {
    if (Mute()) return IOStatus::OK();
    if (fs_->powered_off()) return FaultFs::PoweredOff("range sync " + path_);
    return base_->RangeSync(offset, n, o, dbg);
  }
  IOStatus Allocate(uint64_t offset, uint64_t len, const IOOptions& o,
                    IODebugContext* dbg) override {
    if (Mute()) return IOStatus::OK();
    if (fs_->powered_off()) return FaultFs::PoweredOff("allocate " + path_);
    return base_->Allocate(offset, len, o, dbg);
  }

 private:
  // Once the power is off, the info log (RocksDB's LOG) takes every call and
  // writes nothing: a dead machine logs nothing, and RocksDB's log writer
  // must not see errors (a second failed write after the first trips an
  // assertion in RocksDB's debug builds).
  bool Mute() const { return kind_ == FileKind::kInfoLog && fs_->powered_off(); }

  template <typename Fn>
  IOStatus DoAppend(size_t n, std::optional<uint64_t> offset, Fn&& write) {
    if (Mute()) return IOStatus::OK();
    uint64_t epoch = fs_->PowerEpoch();
    FaultFs::Verdict v;
    IOStatus s = fs_->Check(FsOp::kAppend, kind_, path_, &v);
    if (!s.ok() && !v.apply_anyway) return s;
    IOStatus ws = write();
    if (!ws.ok()) return ws;
    if (!fs_->Appended(inode_.get(), n, offset, epoch))
      return FaultFs::PoweredOff("append to " + path_);
    if (v.power_loss_after) fs_->PowerLoss();
    return s;
  }
  template <typename Fn>
  IOStatus DoSync(Fn&& sync) {
    if (Mute()) return IOStatus::OK();
    uint64_t epoch = fs_->PowerEpoch();
    FaultFs::Verdict v;
    IOStatus s = fs_->Check(FsOp::kSync, kind_, path_, &v);
    if (!s.ok() && !v.apply_anyway) return s;
    // What was appended before the sync began is durable when it returns.
    uint64_t upto = fs_->WrittenOf(inode_.get());
    IOStatus ss = sync();
    if (!ss.ok()) return ss;
    if (!fs_->Synced(inode_.get(), upto, epoch)) return FaultFs::PoweredOff("sync of " + path_);
    if (v.power_loss_after) fs_->PowerLoss();
    return s;
  }

  FaultFs* fs_;
  std::string path_;
  FileKind kind_;
  std::shared_ptr<FaultFs::Inode> inode_;
  std::unique_ptr<rocksdb::FSWritableFile> base_;
};

// Flips one byte of a successful read (kCorruptRead), in the caller's
// scratch buffer.
void Corrupt(Slice* result, char* scratch) {
  if (result->empty() || scratch == nullptr) return;
  if (result->data() != scratch) std::memmove(scratch, result->data(), result->size());
  scratch[result->size() / 2] ^= 0x20;
  *result = Slice(scratch, result->size());
}

class SeqReader : public rocksdb::FSSequentialFileOwnerWrapper {
 public:
  SeqReader(FaultFs* fs, std::string path, std::unique_ptr<rocksdb::FSSequentialFile> base)
      : FSSequentialFileOwnerWrapper(std::move(base)),
        fs_(fs),
        path_(std::move(path)),
        kind_(KindOf(path_)) {}
  IOStatus Read(size_t n, const IOOptions& o, Slice* result, char* scratch,
                IODebugContext* dbg) override {
    FaultFs::Verdict v;
    IOStatus s = fs_->Check(FsOp::kRead, kind_, path_, &v);
    if (!s.ok()) return s;
    s = target()->Read(n, o, result, scratch, dbg);
    if (s.ok() && v.corrupt) Corrupt(result, scratch);
    return s;
  }
  IOStatus PositionedRead(uint64_t offset, size_t n, const IOOptions& o, Slice* result,
                          char* scratch, IODebugContext* dbg) override {
    FaultFs::Verdict v;
    IOStatus s = fs_->Check(FsOp::kRead, kind_, path_, &v);
    if (!s.ok()) return s;
    s = target()->PositionedRead(offset, n, o, result, scratch, dbg);
    if (s.ok() && v.corrupt) Corrupt(result, scratch);
    return s;
  }

 private:
  FaultFs* fs_;
  std::string path_;
  FileKind kind_;
};

class RandomReader : public rocksdb::FSRandomAccessFileOwnerWrapper {
 public:
  RandomReader(FaultFs* fs, std::string path, std::unique_ptr<rocksdb::FSRandomAccessFile> base)
      : FSRandomAccessFileOwnerWrapper(std::move(base)),
        fs_(fs),
        path_(std::move(path)),
        kind_(KindOf(path_)) {}
  IOStatus Read(uint64_t offset, size_t n, const IOOptions& o, Slice* result, char* scratch,
                IODebugContext* dbg) const override {
    FaultFs::Verdict v;
    IOStatus s = fs_->Check(FsOp::kRead, kind_, path_, &v);
    if (!s.ok()) return s;
    s = target()->Read(offset, n, o, result, scratch, dbg);
    if (s.ok() && v.corrupt) Corrupt(result, scratch);
    return s;
  }
  // Through Read, one request at a time, so that every request meets the rules.
  IOStatus MultiRead(rocksdb::FSReadRequest* reqs, size_t n, const IOOptions& o,
                     IODebugContext* dbg) override {
    return FSRandomAccessFile::MultiRead(reqs, n, o, dbg);
  }
  IOStatus ReadAsync(rocksdb::FSReadRequest& req, const IOOptions& o,
                     std::function<void(const rocksdb::FSReadRequest&, void*)> cb, void* cb_arg,
                     void** handle, rocksdb::IOHandleDeleter* del, IODebugContext* dbg) override {
    return FSRandomAccessFile::ReadAsync(req, o, std::move(cb), cb_arg, handle, del, dbg);
  }

 private:
  FaultFs* fs_;
  std::string path_;
  FileKind kind_;
};

class Dir : public rocksdb::FSDirectory {
 public:
  Dir(FaultFs* fs, std::string path, std::unique_ptr<rocksdb::FSDirectory> base)
      : fs_(fs), path_(std::move(path)), base_(std::move(base)) {}
  IOStatus Fsync(const IOOptions& o, IODebugContext* dbg) override {
    return DoSync([&] { return base_->Fsync(o, dbg); });
  }
  IOStatus FsyncWithDirOptions(const IOOptions& o, IODebugContext* dbg,
                               const rocksdb::DirFsyncOptions& d) override {
    return DoSync([&] { return base_->FsyncWithDirOptions(o, dbg, d); });
  }
  IOStatus Close(const IOOptions& o, IODebugContext* dbg) override { return base_->Close(o, dbg); }
  size_t GetUniqueId(char* id, size_t max) const override { return base_->GetUniqueId(id, max); }

 private:
  template <typename Fn>
  IOStatus DoSync(Fn&& sync) {
    uint64_t epoch = fs_->PowerEpoch();
    IOStatus s = fs_->Check(FsOp::kDirSync, FileKind::kDir, path_);
    if (!s.ok()) return s;
    // Entries changed before the sync began are durable when it returns.
    uint64_t seq = fs_->NextSeq();
    s = sync();
    if (!s.ok()) return s;
    if (!fs_->DirSynced(path_, seq, epoch))
      return FaultFs::PoweredOff("sync of directory " + path_);
    return s;
  }

  FaultFs* fs_;
  std::string path_;
  std::unique_ptr<rocksdb::FSDirectory> base_;
};

}  // namespace

FileKind KindOf(std::string_view path) {
  size_t slash = path.find_last_of('/');
  std::string_view b = slash == std::string_view::npos ? path : path.substr(slash + 1);
  if (b == "CURRENT") return FileKind::kCurrent;
  if (StartsWith(b, "MANIFEST-")) return FileKind::kManifest;
  if (StartsWith(b, "OPTIONS-")) return FileKind::kOptions;
  if (EndsWith(b, ".log")) return FileKind::kWal;
  if (EndsWith(b, ".sst")) return FileKind::kSst;
  if (EndsWith(b, ".dbtmp")) return FileKind::kTemp;
  if (b == "LOG" || StartsWith(b, "LOG.old")) return FileKind::kInfoLog;
  if (b == "LOCK") return FileKind::kLock;
  return FileKind::kOther;
}

const char* FileKindName(FileKind k) {
  switch (k) {
    case FileKind::kWal:
      return "wal";
    case FileKind::kSst:
      return "sst";
    case FileKind::kManifest:
      return "manifest";
    case FileKind::kCurrent:
      return "current";
    case FileKind::kOptions:
      return "options";
    case FileKind::kTemp:
      return "temp";
    case FileKind::kInfoLog:
      return "info-log";
    case FileKind::kLock:
      return "lock";
    case FileKind::kDir:
      return "dir";
    case FileKind::kOther:
      return "other";
    case FileKind::kAny:
      return "any";
  }
  return "?";
}

const char* FsOpName(FsOp op) {
  switch (op) {
    case FsOp::kCreate:
      return "create";
    case FsOp::kOpenRead:
      return "open-read";
    case FsOp::kAppend:
      return "append";
    case FsOp::kSync:
      return "sync";
    case FsOp::kClose:
      return "close";
    case FsOp::kRead:
      return "read";
    case FsOp::kRename:
      return "rename";
    case FsOp::kDelete:
      return "delete";
    case FsOp::kTruncate:
      return "truncate";
    case FsOp::kDirSync:
      return "dir-sync";
    case FsOp::kAny:
      return "any";
  }
  return "?";
}

FaultFs::FaultFs(std::shared_ptr<rocksdb::FileSystem> base) : FileSystemWrapper(base) {}
FaultFs::~FaultFs() = default;

IOStatus FaultFs::PoweredOff(const std::string& what) {
  return IOStatus::IOError("power lost (fault injection): " + what);
}

std::string FaultFs::Norm(const std::string& p) {
  std::string n = std::filesystem::path(p).lexically_normal().string();
  while (n.size() > 1 && n.back() == '/') n.pop_back();
  return n;
}

std::string FaultFs::Parent(const std::string& p) {
  std::string parent = std::filesystem::path(p).parent_path().string();
  return parent.empty() ? "." : parent;
}

// ---- Power ----

void FaultFs::PowerLoss() {
  std::lock_guard<std::mutex> l(mu_);
  if (off_.load()) return;
  epoch_.fetch_add(1);
  off_.store(true, std::memory_order_release);
  off_cv_.notify_all();
}

bool FaultFs::WaitForPowerLoss(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> l(mu_);
  return off_cv_.wait_for(l, timeout, [this] { return off_.load(); });
}

void FaultFs::SetTornWrites(bool on, uint64_t seed) {
  std::lock_guard<std::mutex> l(mu_);
  torn_ = on;
  rng_.seed(seed);
}

uint64_t FaultFs::NextSeq() {
  std::lock_guard<std::mutex> l(mu_);
  return ++seq_;
}

bool FaultFs::Appended(Inode* inode, uint64_t n, std::optional<uint64_t> offset, uint64_t epoch) {
  std::lock_guard<std::mutex> l(mu_);
  if (epoch_.load() != epoch) return false;
  if (offset)
    inode->written = std::max(inode->written, *offset + n);
  else
    inode->written += n;
  return true;
}

uint64_t FaultFs::WrittenOf(Inode* inode) {
  std::lock_guard<std::mutex> l(mu_);
  return inode->written;
}

bool FaultFs::Synced(Inode* inode, uint64_t upto, uint64_t epoch) {
  std::lock_guard<std::mutex> l(mu_);
  if (epoch_.load() != epoch) return false;
  inode->synced = std::max(inode->synced, std::min(upto, inode->written));
  return true;
}

void FaultFs::TruncatedTo(Inode* inode, uint64_t size) {
  std::lock_guard<std::mutex> l(mu_);
  inode->written = size;
  inode->synced = std::min(inode->synced, size);
}

bool FaultFs::DirSynced(const std::string& dir, uint64_t seq, uint64_t epoch) {
  std::lock_guard<std::mutex> l(mu_);
  if (epoch_.load() != epoch) return false;
  uint64_t id = DirIdLocked(Norm(dir));
  for (NsOp& op : journal_)
    if (op.seq < seq && op.dir == id) op.durable = true;
  journal_.erase(
      std::remove_if(journal_.begin(), journal_.end(),
                     [](const NsOp& op) { return op.durable && op.type == NsOp::Type::kCreate; }),
      journal_.end());
  return true;
}

// ---- Rules and counters ----

IOStatus FaultFs::Check(FsOp op, FileKind kind, const std::string& path, Verdict* v) {
  std::lock_guard<std::mutex> l(mu_);
  counts_[static_cast<size_t>(op)][static_cast<size_t>(kind)]++;
  const bool reads = op == FsOp::kRead || op == FsOp::kOpenRead;
  if (!reads && off_.load()) return PoweredOff(std::string(FsOpName(op)) + " " + path);
  // Only appends and syncs can take effect despite a failure.
  const bool can_apply = op == FsOp::kAppend || op == FsOp::kSync;
  for (Rule& rule : rules_) {
    const FaultRule& r = rule.r;
    if (r.op != FsOp::kAny && r.op != op) continue;
    if (r.kind != FileKind::kAny && r.kind != kind) continue;
    if (!r.path_contains.empty() && path.find(r.path_contains) == std::string::npos) continue;
    rule.seen++;
    if (rule.seen <= r.skip || rule.injected >= r.count) continue;
    rule.injected++;
    injected_total_++;
    Verdict d;
    d.apply_anyway = r.apply_anyway && can_apply;
    std::string what = std::string("injected fault: ") + FsOpName(op) + " " + path;
    IOStatus s = IOStatus::IOError(what);
    switch (r.effect) {
      case FaultEffect::kIoError:
        break;
      case FaultEffect::kNoSpace:
        if (!reads) s = IOStatus::NoSpace(what);
        break;
      case FaultEffect::kCorruptRead:
        if (op == FsOp::kRead) {
          d.corrupt = true;
          s = IOStatus::OK();
        }
        break;
      case FaultEffect::kPowerLoss:
        s = PoweredOff(std::string(FsOpName(op)) + " " + path);
        if (d.apply_anyway) {
          d.power_loss_after = true;  // the caller turns the power off
        } else if (!off_.load()) {
          epoch_.fetch_add(1);
          off_.store(true, std::memory_order_release);
          off_cv_.notify_all();
        }
        break;
    }
    // A caller that cannot act on a verdict gets the plain error.
    if (v != nullptr) {
      *v = d;
    } else if (d.corrupt || d.power_loss_after) {
      if (d.power_loss_after && !off_.load()) {
        epoch_.fetch_add(1);
        off_.store(true, std::memory_order_release);
        off_cv_.notify_all();
      }
      if (d.corrupt) s = IOStatus::IOError(what);
    }
    return s;
  }
  return IOStatus::OK();
}

int FaultFs::AddRule(const FaultRule& rule) {
  std::lock_guard<std::mutex> l(mu_);
  rules_.push_back(Rule{rule, 0, 0});
  return static_cast<int>(rules_.size() - 1);
}

void FaultFs::ClearRules() {
  std::lock_guard<std::mutex> l(mu_);
  rules_.clear();
}

uint64_t FaultFs::Injected(int id) const {
  std::lock_guard<std::mutex> l(mu_);
  if (id < 0 || static_cast<size_t>(id) >= rules_.size()) return 0;
  return rules_[static_cast<size_t>(id)].injected;
}

uint64_t FaultFs::InjectedTotal() const {
  std::lock_guard<std::mutex> l(mu_);
  return injected_total_;
}

uint64_t FaultFs::Count(FsOp op, FileKind kind) const {
  std::lock_guard<std::mutex> l(mu_);
  uint64_t n = 0;
  for (size_t o = 0; o < kNumFsOps; o++) {
    if (op != FsOp::kAny && o != static_cast<size_t>(op)) continue;
    for (size_t k = 0; k < kNumFileKinds; k++)
      if (kind == FileKind::kAny || k == static_cast<size_t>(kind)) n += counts_[o][k];
  }
  return n;
}

std::optional<FaultFs::FileState> FaultFs::Tracked(const std::string& path) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = files_.find(Norm(path));
  if (it == files_.end()) return std::nullopt;
  return FileState{it->second->written, it->second->synced};
}

size_t FaultFs::PendingEntries() const {
  std::lock_guard<std::mutex> l(mu_);
  size_t n = 0;
  for (const NsOp& op : journal_) n += !op.durable;
  return n;
}

// ---- Namespace bookkeeping (mu_ held) ----

uint64_t FaultFs::DirIdLocked(const std::string& dir) {
  auto [it, added] = dir_ids_.try_emplace(dir, next_dir_id_);
  if (added) next_dir_id_++;
  return it->second;
}

void FaultFs::RekeyLocked(const std::string& from, const std::string& to) {
  auto move_keys = [&](auto& m) {
    std::vector<std::string> keys;
    for (auto it = m.lower_bound(from); it != m.end() && StartsWith(it->first, from); ++it)
      if (Under(it->first, from)) keys.push_back(it->first);
    for (const std::string& k : keys) {
      auto node = m.extract(k);
      node.key() = to + k.substr(from.size());
      m.insert(std::move(node));
    }
  };
  move_keys(files_);
  move_keys(dir_ids_);
}

void FaultFs::EraseTreeLocked(const std::string& path) {
  auto erase = [&](auto& m) {
    for (auto it = m.lower_bound(path); it != m.end() && StartsWith(it->first, path);)
      it = Under(it->first, path) ? m.erase(it) : std::next(it);
  };
  erase(files_);
  erase(dir_ids_);
}

void FaultFs::AddOpLocked(NsOp op) {
  op.seq = ++seq_;
  journal_.push_back(std::move(op));
}

// ---- Files ----

IOStatus FaultFs::OpenWritable(const std::string& f, const FileOptions& o,
                               std::unique_ptr<rocksdb::FSWritableFile>* r, IODebugContext* dbg,
                               bool reopen) {
  std::string path = Norm(f);
  IOStatus s = Check(FsOp::kCreate, KindOf(path), path);
  if (!s.ok()) return s;
  std::lock_guard<std::mutex> l(mu_);
  if (off_.load()) return PoweredOff("create " + path);
  const bool existed = target()->FileExists(path, o.io_options, dbg).ok();
  uint64_t size = 0;
  if (reopen && existed) {
    s = target()->GetFileSize(path, o.io_options, &size, dbg);
    if (!s.ok()) return s;
  }
  // Preallocation changes no byte a reader sees, and on tmpfs it costs real
  // memory and most of the time of a small store's open.
  FileOptions fo = o;
  fo.allow_fallocate = false;
  std::unique_ptr<rocksdb::FSWritableFile> base;
  s = reopen ? target()->ReopenWritableFile(path, fo, &base, dbg)
             : target()->NewWritableFile(path, fo, &base, dbg);
  if (!s.ok()) return s;
  std::shared_ptr<Inode>& inode = files_[path];
  if (!reopen || !inode) {
    // A new file, a truncated one (nothing of it durable), or one that was
    // on disk before this instance saw it (all of it durable).
    inode = std::make_shared<Inode>();
    inode->written = inode->synced = size;
  }
  if (!existed) {
    NsOp op;
    op.type = NsOp::Type::kCreate;
    op.path = path;
    op.dir = DirIdLocked(Parent(path));
    AddOpLocked(std::move(op));
  }
  open_writers_.fetch_add(1);
  *r = std::make_unique<Writer>(this, path, inode, std::move(base));
  return IOStatus::OK();
}

IOStatus FaultFs::NewWritableFile(const std::string& f, const FileOptions& o,
                                  std::unique_ptr<rocksdb::FSWritableFile>* r,
                                  IODebugContext* dbg) {
  return OpenWritable(f, o, r, dbg, /*reopen=*/false);
}

IOStatus FaultFs::ReopenWritableFile(const std::string& f, const FileOptions& o,
                                     std::unique_ptr<rocksdb::FSWritableFile>* r,
                                     IODebugContext* dbg) {
  return OpenWritable(f, o, r, dbg, /*reopen=*/true);
}

IOStatus FaultFs::ReuseWritableFile(const std::string&, const std::string&, const FileOptions&,
                                    std::unique_ptr<rocksdb::FSWritableFile>*, IODebugContext*) {
  return IOStatus::NotSupported("FaultFs does not model reused (recycled) files");
}

IOStatus FaultFs::NewRandomRWFile(const std::string&, const FileOptions&,
                                  std::unique_ptr<rocksdb::FSRandomRWFile>*, IODebugContext*) {
  return IOStatus::NotSupported("FaultFs does not model files written in place");
}

IOStatus FaultFs::NewMemoryMappedFileBuffer(const std::string&,
                                            std::unique_ptr<rocksdb::MemoryMappedFileBuffer>*) {
  return IOStatus::NotSupported("FaultFs does not model memory-mapped writes");
}

IOStatus FaultFs::NewSequentialFile(const std::string& f, const FileOptions& o,
                                    std::unique_ptr<rocksdb::FSSequentialFile>* r,
                                    IODebugContext* dbg) {
  std::string path = Norm(f);
  IOStatus s = Check(FsOp::kOpenRead, KindOf(path), path);
  if (!s.ok()) return s;
  std::unique_ptr<rocksdb::FSSequentialFile> base;
  s = target()->NewSequentialFile(path, o, &base, dbg);
  if (!s.ok()) return s;
  *r = std::make_unique<SeqReader>(this, path, std::move(base));
  return s;
}

IOStatus FaultFs::NewRandomAccessFile(const std::string& f, const FileOptions& o,
                                      std::unique_ptr<rocksdb::FSRandomAccessFile>* r,
                                      IODebugContext* dbg) {
  std::string path = Norm(f);
  IOStatus s = Check(FsOp::kOpenRead, KindOf(path), path);
  if (!s.ok()) return s;
  std::unique_ptr<rocksdb::FSRandomAccessFile> base;
  s = target()->NewRandomAccessFile(path, o, &base, dbg);
  if (!s.ok()) return s;
  *r = std::make_unique<RandomReader>(this, path, std::move(base));
  return s;
}

IOStatus FaultFs::NewDirectory(const std::string& d, const IOOptions& o,
                               std::unique_ptr<rocksdb::FSDirectory>* r, IODebugContext* dbg) {
  std::string path = Norm(d);
  std::unique_ptr<rocksdb::FSDirectory> base;
  IOStatus s = target()->NewDirectory(path, o, &base, dbg);
  if (!s.ok()) return s;
  *r = std::make_unique<Dir>(this, path, std::move(base));
  return s;
}

IOStatus FaultFs::NewLogger(const std::string& f, const IOOptions& o,
                            std::shared_ptr<rocksdb::Logger>* r, IODebugContext* dbg) {
  // FileSystem's own implementation writes through NewWritableFile (ours);
  // the wrapper's would go straight to the target, past the model.
  return FileSystem::NewLogger(f, o, r, dbg);
}

IOStatus FaultFs::DeleteFile(const std::string& f, const IOOptions& o, IODebugContext* dbg) {
  std::string path = Norm(f);
  IOStatus s = Check(FsOp::kDelete, KindOf(path), path);
  if (!s.ok()) return s;
  std::lock_guard<std::mutex> l(mu_);
  if (off_.load()) return PoweredOff("delete " + path);
  s = target()->DeleteFile(path, o, dbg);
  if (s.ok()) files_.erase(path);
  return s;
}

IOStatus FaultFs::DeleteDir(const std::string& d, const IOOptions& o, IODebugContext* dbg) {
  std::string path = Norm(d);
  IOStatus s = Check(FsOp::kDelete, FileKind::kDir, path);
  if (!s.ok()) return s;
  std::lock_guard<std::mutex> l(mu_);
  if (off_.load()) return PoweredOff("delete " + path);
  s = target()->DeleteDir(path, o, dbg);
  if (s.ok()) EraseTreeLocked(path);
  return s;
}

IOStatus FaultFs::Truncate(const std::string& f, size_t size, const IOOptions& o,
                           IODebugContext* dbg) {
  std::string path = Norm(f);
  IOStatus s = Check(FsOp::kTruncate, KindOf(path), path);
  if (!s.ok()) return s;
  std::lock_guard<std::mutex> l(mu_);
  if (off_.load()) return PoweredOff("truncate " + path);
  s = target()->Truncate(path, size, o, dbg);
  if (!s.ok()) return s;
  std::shared_ptr<Inode>& inode = files_[path];
  if (!inode) {
    inode = std::make_shared<Inode>();
    inode->synced = size;
  }
  inode->written = size;
  inode->synced = std::min<uint64_t>(inode->synced, size);
  return s;
}

IOStatus FaultFs::CreateDirImpl(const std::string& d, const IOOptions& o, IODebugContext* dbg,
                                bool if_missing) {
  std::string path = Norm(d);
  IOStatus s = Check(FsOp::kCreate, FileKind::kDir, path);
  if (!s.ok()) return s;
  std::lock_guard<std::mutex> l(mu_);
  if (off_.load()) return PoweredOff("create directory " + path);
  const bool existed = target()->FileExists(path, o, dbg).ok();
  s = if_missing ? target()->CreateDirIfMissing(path, o, dbg) : target()->CreateDir(path, o, dbg);
  if (!s.ok() || existed) return s;
  EraseTreeLocked(path);  // a stale id of a directory removed behind our back
  NsOp op;
  op.type = NsOp::Type::kCreate;
  op.path = path;
  op.dir = DirIdLocked(Parent(path));
  AddOpLocked(std::move(op));
  return s;
}

IOStatus FaultFs::CreateDir(const std::string& d, const IOOptions& o, IODebugContext* dbg) {
  return CreateDirImpl(d, o, dbg, false);
}

IOStatus FaultFs::CreateDirIfMissing(const std::string& d, const IOOptions& o,
                                     IODebugContext* dbg) {
  return CreateDirImpl(d, o, dbg, true);
}

IOStatus FaultFs::RenameFile(const std::string& s_in, const std::string& t_in, const IOOptions& o,
                             IODebugContext* dbg) {
  std::string src = Norm(s_in), dst = Norm(t_in);
  bool src_dir = false;
  (void)target()->IsDirectory(src, o, &src_dir, dbg);
  IOStatus s = Check(FsOp::kRename, src_dir ? FileKind::kDir : KindOf(dst), dst);
  if (!s.ok()) return s;
  std::lock_guard<std::mutex> l(mu_);
  if (off_.load()) return PoweredOff("rename " + src + " to " + dst);
  NsOp op;
  op.type = NsOp::Type::kRename;
  op.path = src;
  op.to = dst;
  op.dir = DirIdLocked(Parent(dst));
  if (target()->FileExists(dst, o, dbg).ok()) {
    bool dst_dir = false;
    s = target()->IsDirectory(dst, o, &dst_dir, dbg);
    if (!s.ok()) return s;
    if (dst_dir) {
      op.replaced = NsOp::Replaced::kEmptyDir;  // rename(2) replaces only empty ones
    } else {
      auto it = files_.find(dst);
      s = ReadWhole(dst, it == files_.end() ? UINT64_MAX : it->second->synced, &op.replaced_data);
      if (!s.ok()) return s;
      op.replaced = NsOp::Replaced::kFile;
    }
  }
  s = target()->RenameFile(src, dst, o, dbg);
  if (!s.ok()) return s;
  EraseTreeLocked(dst);
  RekeyLocked(src, dst);
  AddOpLocked(std::move(op));
  return s;
}

IOStatus FaultFs::LinkFile(const std::string& s_in, const std::string& t_in, const IOOptions& o,
                           IODebugContext* dbg) {
  std::string src = Norm(s_in), dst = Norm(t_in);
  IOStatus s = Check(FsOp::kRename, KindOf(dst), dst);
  if (!s.ok()) return s;
  std::lock_guard<std::mutex> l(mu_);
  if (off_.load()) return PoweredOff("link " + src + " to " + dst);
  s = target()->LinkFile(src, dst, o, dbg);
  if (!s.ok()) return s;
  if (auto it = files_.find(src); it != files_.end()) files_[dst] = it->second;
  NsOp op;
  op.type = NsOp::Type::kCreate;
  op.path = dst;
  op.dir = DirIdLocked(Parent(dst));
  AddOpLocked(std::move(op));
  return s;
}

IOStatus FaultFs::LockFile(const std::string& f, const IOOptions& o, rocksdb::FileLock** lock,
                           IODebugContext* dbg) {
  std::string path = Norm(f);
  IOStatus s = Check(FsOp::kCreate, FileKind::kLock, path);
  if (!s.ok()) return s;
  std::lock_guard<std::mutex> l(mu_);
  if (off_.load()) return PoweredOff("lock " + path);
  const bool existed = target()->FileExists(path, o, dbg).ok();
  s = target()->LockFile(path, o, lock, dbg);
  if (s.ok() && !existed) {
    NsOp op;
    op.type = NsOp::Type::kCreate;
    op.path = path;
    op.dir = DirIdLocked(Parent(path));
    AddOpLocked(std::move(op));
  }
  return s;
}

// ---- Power loss: what survives ----

IOStatus FaultFs::ReadWhole(const std::string& path, uint64_t limit, std::string* out) {
  out->clear();
  std::unique_ptr<rocksdb::FSSequentialFile> f;
  IOStatus s = target()->NewSequentialFile(path, FileOptions(), &f, nullptr);
  if (!s.ok()) return s;
  std::string buf(1 << 16, '\0');
  while (out->size() < limit) {
    Slice got;
    size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), limit - out->size()));
    s = f->Read(want, IOOptions(), &got, buf.data(), nullptr);
    if (!s.ok()) return s;
    if (got.empty()) break;
    out->append(got.data(), got.size());
  }
  return IOStatus::OK();
}

IOStatus FaultFs::WriteWhole(const std::string& path, const std::string& data) {
  std::unique_ptr<rocksdb::FSWritableFile> f;
  IOStatus s = target()->NewWritableFile(path, FileOptions(), &f, nullptr);
  if (s.ok()) s = f->Append(data, IOOptions(), nullptr);
  if (s.ok()) s = f->Sync(IOOptions(), nullptr);
  IOStatus c = f ? f->Close(IOOptions(), nullptr) : IOStatus::OK();
  return s.ok() ? c : s;
}

// Through an open file: not every file system truncates by name.
IOStatus FaultFs::TruncateFile(const std::string& path, uint64_t size) {
  std::unique_ptr<rocksdb::FSWritableFile> f;
  IOStatus s = target()->ReopenWritableFile(path, FileOptions(), &f, nullptr);
  if (s.ok()) s = f->Truncate(size, IOOptions(), nullptr);
  if (s.ok()) s = f->Fsync(IOOptions(), nullptr);
  IOStatus c = f ? f->Close(IOOptions(), nullptr) : IOStatus::OK();
  return s.ok() ? c : s;
}

IOStatus FaultFs::RemoveTree(const std::string& path) {
  bool is_dir = false;
  IOStatus s = target()->IsDirectory(path, IOOptions(), &is_dir, nullptr);
  if (!s.ok()) return s;
  if (!is_dir) return target()->DeleteFile(path, IOOptions(), nullptr);
  std::vector<std::string> children;
  s = target()->GetChildren(path, IOOptions(), &children, nullptr);
  if (!s.ok()) return s;
  for (const std::string& c : children) {
    if (c == "." || c == "..") continue;
    s = RemoveTree(path + "/" + c);
    if (!s.ok()) return s;
  }
  return target()->DeleteDir(path, IOOptions(), nullptr);
}

IOStatus FaultFs::DropUnsyncedData(DropReport* report) {
  DropReport rep;
  std::lock_guard<std::mutex> l(mu_);
  if (open_writers_.load() > 0)
    return IOStatus::IOError("DropUnsyncedData: " + std::to_string(open_writers_.load()) +
                             " file(s) still open for writing");
  if (!off_.load()) {
    epoch_.fetch_add(1);
    off_.store(true, std::memory_order_release);
    off_cv_.notify_all();
  }
  const IOOptions io;
  // File data first, at the files' current names: the reverts below move
  // whole files, whose bytes are then already what survives.
  for (const auto& [path, inode] : files_) {
    uint64_t keep = inode->synced;
    if (torn_ && inode->written > inode->synced) {
      uint64_t extra = rng_() % (inode->written - inode->synced + 1);
      keep += extra;
      rep.torn_bytes_kept += extra;
    }
    uint64_t size = 0;
    if (!target()->GetFileSize(path, io, &size, nullptr).ok()) continue;  // gone
    if (size <= keep) continue;
    IOStatus s = TruncateFile(path, keep);
    if (!s.ok()) return s;
    rep.files_truncated++;
    rep.bytes_dropped += size - keep;
  }
  // Torn-write mode: a journaling file system commits directory changes in
  // order, and may have committed some not yet synced: keep a random prefix.
  if (torn_) {
    size_t pending = 0;
    for (const NsOp& op : journal_) pending += !op.durable;
    size_t keep = static_cast<size_t>(rng_() % (pending + 1));
    for (NsOp& op : journal_) {
      if (keep == 0) break;
      if (op.durable) continue;
      op.durable = true;
      keep--;
      rep.torn_entries_kept++;
    }
  }
  // Directory entries, newest change first. A durable rename stays, so
  // older changes under its source are followed to where it moved them.
  std::vector<std::pair<std::string, std::string>> kept;  // newest first
  auto follow = [&kept](std::string p) {
    for (auto it = kept.rbegin(); it != kept.rend(); ++it)
      if (Under(p, it->first)) p = it->second + p.substr(it->first.size());
    return p;
  };
  for (auto it = journal_.rbegin(); it != journal_.rend(); ++it) {
    const NsOp& op = *it;
    if (op.type == NsOp::Type::kRename && op.durable) {
      kept.emplace_back(op.path, op.to);
      continue;
    }
    if (op.durable) continue;
    if (op.type == NsOp::Type::kCreate) {
      std::string p = follow(op.path);
      if (!target()->FileExists(p, io, nullptr).ok()) continue;  // deleted since
      IOStatus s = RemoveTree(p);
      if (!s.ok()) return s;
      rep.entries_removed++;
      continue;
    }
    std::string from = follow(op.path), to = follow(op.to);
    if (!target()->FileExists(to, io, nullptr).ok()) continue;  // deleted since
    IOStatus s = target()->RenameFile(to, from, io, nullptr);
    if (!s.ok()) return s;
    if (op.replaced == NsOp::Replaced::kFile) s = WriteWhole(to, op.replaced_data);
    if (op.replaced == NsOp::Replaced::kEmptyDir) s = target()->CreateDir(to, io, nullptr);
    if (!s.ok()) return s;
    rep.renames_reverted++;
  }
  if (report != nullptr) *report = rep;
  uint64_t counts[kNumFsOps][kNumFileKinds];
  std::memcpy(counts, counts_, sizeof counts);
  uint64_t injected = injected_total_;
  ResetLocked();
  std::memcpy(counts_, counts, sizeof counts);
  injected_total_ = injected;
  return IOStatus::OK();
}

void FaultFs::ResetLocked() {
  files_.clear();
  dir_ids_.clear();
  journal_.clear();
  rules_.clear();
  injected_total_ = 0;
  std::memset(counts_, 0, sizeof counts_);
  off_.store(false, std::memory_order_release);
}

IOStatus FaultFs::Reset() {
  std::lock_guard<std::mutex> l(mu_);
  if (open_writers_.load() > 0)
    return IOStatus::IOError("Reset: " + std::to_string(open_writers_.load()) +
                             " file(s) still open for writing");
  ResetLocked();
  return IOStatus::OK();
}

}  // namespace evtest
