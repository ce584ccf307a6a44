// FaultFs: a RocksDB file system for fault-injection tests. It writes through
// to a real file system (the local disk by default) and keeps a model of what
// a machine would still have after losing power, so that a test can pull the
// plug at any instant, make the disk look like that machine's, and reopen.
// It also fails chosen operations (I/O errors, a full disk) by operation and
// by RocksDB file kind.
//
// Fault model (see docs/reliability.md):
// - File data: bytes appended to a file are durable once a Sync or Fsync of
//   that file returns OK (a sync counts what was appended before it began).
//   RangeSync, Flush and Close make nothing durable. A file opened with
//   NewWritableFile over an existing one starts empty and nothing of it is
//   durable; ReopenWritableFile keeps what it had. Truncation takes effect in
//   the model at once (the durable size shrinks with it).
// - Directory entries: creating a file or directory, or renaming one (a file
//   or a whole directory), is durable once the directory holding the new
//   entry has been synced (FSDirectory::Fsync or FsyncWithDirOptions) after
//   the operation. A rename that was not made durable is reverted: the
//   entry goes back to its old name, and whatever it replaced (a file's
//   durable bytes, or an empty directory) comes back. Creations that were not
//   made durable disappear, with everything under them. Only same-directory
//   renames are modelled exactly (RocksDB and evstore make no others).
// - Deletes (DeleteFile, DeleteDir) take effect, durably, at once. This is
//   the harsher choice for lost data (a file deleted too early is gone); a
//   deleted file never comes back.
// - Files and directories that existed before this instance saw them count
//   as durable.
//
// Power loss: after PowerLoss() every operation that changes the disk
// (create, open for writing, append, sync, truncate, close, rename, link,
// delete, directory sync, lock) fails with an IOError and changes nothing, so
// the store on top can be shut down; reads still work. Writes to RocksDB's
// info log (LOG) are the exception: they succeed and write nothing. An
// operation under way at that instant fails too, and nothing it did counts as
// durable. Once every file written through this instance is closed (the
// store destroyed), DropUnsyncedData() rewrites the disk to what survives:
// files truncated to their durable size, creations without a durable entry
// removed, renames not made durable reverted. In torn-write mode each file
// keeps a random prefix of its unsynced tail instead, and a random prefix (in
// order, as a journaling file system commits them) of the directory changes
// not made durable is kept. The instance is then as if the machine had
// rebooted: power on, everything on disk durable, no rules.
//
// Error injection: rules (AddRule) fail the n-th and later matching
// operations (or all of them) with an IOError, NoSpace, a corrupted read, or
// a power loss. Counters of every operation and of every injected fault are
// kept per operation and file kind.
//
// Thread safety: every method may be called from any thread (RocksDB calls
// from its background threads). NewRandomRWFile and ReuseWritableFile (file
// ingestion, WAL recycling; evstore uses neither) return NotSupported, so no
// write can bypass the model. Preallocation (fallocate) is turned off: it
// changes no byte a reader sees, and on tmpfs it costs real memory and time.
#ifndef EVSTORE_TESTS_FAULT_FS_HPP_
#define EVSTORE_TESTS_FAULT_FS_HPP_

#include <rocksdb/file_system.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace evtest {

// What a file is to RocksDB, from its name.
enum class FileKind : uint8_t {
  kWal,       // *.log
  kSst,       // *.sst
  kManifest,  // MANIFEST-*
  kCurrent,   // CURRENT (RocksDB writes it as <n>.dbtmp, then renames it)
  kOptions,   // OPTIONS-* (and its OPTIONS-*.dbtmp)
  kTemp,      // <n>.dbtmp (the next CURRENT or IDENTITY)
  kInfoLog,   // LOG, LOG.old.*
  kLock,      // LOCK
  kDir,       // a directory (directory syncs, directory creation)
  kOther,     // anything else (IDENTITY, files outside RocksDB)
  kAny,       // in rules: every kind
};
inline constexpr size_t kNumFileKinds = static_cast<size_t>(FileKind::kAny);
FileKind KindOf(std::string_view path);
const char* FileKindName(FileKind k);

// Operations, for rules and counters.
enum class FsOp : uint8_t {
  kCreate,    // NewWritableFile, ReopenWritableFile, CreateDir(IfMissing), LockFile
  kOpenRead,  // NewSequentialFile, NewRandomAccessFile
  kAppend,    // Append, PositionedAppend
  kSync,      // Sync, Fsync of a file
  kClose,     // Close of a written file
  kRead,      // any read of a file opened for reading
  kRename,    // RenameFile (its kind is the target's), LinkFile
  kDelete,    // DeleteFile, DeleteDir
  kTruncate,  // Truncate (of a path or an open file)
  kDirSync,   // FSDirectory::Fsync / FsyncWithDirOptions
  kAny,       // in rules: every operation
};
inline constexpr size_t kNumFsOps = static_cast<size_t>(FsOp::kAny);
const char* FsOpName(FsOp op);

enum class FaultEffect : uint8_t {
  kIoError,      // IOStatus::IOError
  kNoSpace,      // IOStatus::NoSpace (ENOSPC); on reads, an IOError
  kCorruptRead,  // reads: succeed with one byte flipped; other operations: IOError
  kPowerLoss,    // PowerLoss() just before the operation, which then fails;
                 // with apply_anyway (appends, syncs): just after it, so that
                 // it takes effect (a sync is durable) but reports failure
};

// Fails matching operations. The first `skip` matches pass; the next `count`
// are failed (kForever: every one after the skipped ones). When several
// rules are due at one operation, the first added applies.
//   fs->AddRule(FaultRule::On(FsOp::kSync, FileKind::kWal).After(3));
struct FaultRule {
  static constexpr uint64_t kForever = UINT64_MAX;
  static FaultRule On(FsOp op, FileKind kind = FileKind::kAny) {
    FaultRule r;
    r.op = op;
    r.kind = kind;
    return r;
  }
  FaultRule& After(uint64_t n) {
    skip = n;
    return *this;
  }
  FaultRule& Times(uint64_t n) {
    count = n;
    return *this;
  }
  FaultRule& Always() {
    count = kForever;
    return *this;
  }
  FaultRule& With(FaultEffect e) {
    effect = e;
    return *this;
  }
  FaultRule& Anyway() {
    apply_anyway = true;
    return *this;
  }
  FaultRule& OnPath(std::string part) {
    path_contains = std::move(part);
    return *this;
  }

  FsOp op = FsOp::kAppend;
  FileKind kind = FileKind::kAny;
  uint64_t skip = 0;
  uint64_t count = 1;
  FaultEffect effect = FaultEffect::kIoError;
  // Append and sync only: perform the operation, then report the error (a
  // write that landed although the caller was told it failed). Otherwise a
  // failed operation changes nothing.
  bool apply_anyway = false;
  // Only paths containing this (empty: any path).
  std::string path_contains;
};

// What DropUnsyncedData changed.
struct DropReport {
  uint64_t files_truncated = 0;    // files cut back to their durable size
  uint64_t bytes_dropped = 0;      // unsynced bytes removed
  uint64_t torn_bytes_kept = 0;    // unsynced bytes kept by torn-write mode
  uint64_t entries_removed = 0;    // files and directories whose creation was not durable
  uint64_t renames_reverted = 0;   // renames that were not durable
  uint64_t torn_entries_kept = 0;  // directory changes not synced but kept by torn-write mode
};

class FaultFs : public rocksdb::FileSystemWrapper {
 public:
  explicit FaultFs(std::shared_ptr<rocksdb::FileSystem> base = rocksdb::FileSystem::Default());
  ~FaultFs() override;

  static const char* kClassName() { return "evtest.FaultFs"; }
  const char* Name() const override { return kClassName(); }

  // ---- Power loss ----

  // From now on every operation that changes the disk fails (see above).
  // Idempotent. Wakes WaitForPowerLoss.
  void PowerLoss();
  bool powered_off() const { return off_.load(std::memory_order_acquire); }
  // True once the power is off (by PowerLoss or a kPowerLoss rule); false
  // when `timeout` passes first.
  bool WaitForPowerLoss(std::chrono::milliseconds timeout);

  // Torn-write mode: DropUnsyncedData keeps a random prefix of each file's
  // unsynced tail, and a random prefix of the directory changes not made
  // durable (drawn from `seed`), instead of dropping all of them.
  void SetTornWrites(bool on, uint64_t seed);

  // Makes the disk look like this machine's after a power loss (turning the
  // power off first if it is on), then restores power with everything on
  // disk durable, no rules, and the counters kept. REQUIRES: every writable
  // file opened through this instance is destroyed (the store above is
  // destroyed); otherwise returns an IOError and changes nothing.
  rocksdb::IOStatus DropUnsyncedData(DropReport* report = nullptr);

  // Forgets every tracked file, pending directory entry, rule and counter and
  // restores power: afterwards this instance is like a new one over the same
  // directories. REQUIRES: no writable file open (IOError otherwise).
  rocksdb::IOStatus Reset();

  // ---- Error injection ----

  // Adds a rule; returns its id for Injected().
  int AddRule(const FaultRule& rule);
  void ClearRules();
  // Faults injected by rule `id`, and in all.
  uint64_t Injected(int id) const;
  uint64_t InjectedTotal() const;
  // Operations seen (including failed ones) of `op` on files of `kind`
  // (kAny: summed).
  uint64_t Count(FsOp op, FileKind kind = FileKind::kAny) const;

  // ---- Inspection (for tests of FaultFs itself) ----

  struct FileState {
    uint64_t written = 0;  // bytes in the file now
    uint64_t synced = 0;   // bytes a power loss keeps
  };
  // The tracked state of the file at `path`, if this instance wrote it.
  std::optional<FileState> Tracked(const std::string& path) const;
  // Directory-entry changes not yet made durable.
  size_t PendingEntries() const;
  // Writable files open now.
  int64_t OpenWritableFiles() const { return open_writers_.load(); }

  // ---- rocksdb::FileSystem ----

  rocksdb::IOStatus NewSequentialFile(const std::string& f, const rocksdb::FileOptions& o,
                                      std::unique_ptr<rocksdb::FSSequentialFile>* r,
                                      rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus NewRandomAccessFile(const std::string& f, const rocksdb::FileOptions& o,
                                        std::unique_ptr<rocksdb::FSRandomAccessFile>* r,
                                        rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus NewWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                    std::unique_ptr<rocksdb::FSWritableFile>* r,
                                    rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReopenWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                       std::unique_ptr<rocksdb::FSWritableFile>* r,
                                       rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReuseWritableFile(const std::string& f, const std::string& old,
                                      const rocksdb::FileOptions& o,
                                      std::unique_ptr<rocksdb::FSWritableFile>* r,
                                      rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus NewRandomRWFile(const std::string& f, const rocksdb::FileOptions& o,
                                    std::unique_ptr<rocksdb::FSRandomRWFile>* r,
                                    rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus NewMemoryMappedFileBuffer(
      const std::string& f, std::unique_ptr<rocksdb::MemoryMappedFileBuffer>* r) override;
  rocksdb::IOStatus NewDirectory(const std::string& d, const rocksdb::IOOptions& o,
                                 std::unique_ptr<rocksdb::FSDirectory>* r,
                                 rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus DeleteFile(const std::string& f, const rocksdb::IOOptions& o,
                               rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus Truncate(const std::string& f, size_t size, const rocksdb::IOOptions& o,
                             rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus CreateDir(const std::string& d, const rocksdb::IOOptions& o,
                              rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus CreateDirIfMissing(const std::string& d, const rocksdb::IOOptions& o,
                                       rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus DeleteDir(const std::string& d, const rocksdb::IOOptions& o,
                              rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus RenameFile(const std::string& s, const std::string& t,
                               const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus LinkFile(const std::string& s, const std::string& t,
                             const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus LockFile(const std::string& f, const rocksdb::IOOptions& o,
                             rocksdb::FileLock** l, rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus NewLogger(const std::string& f, const rocksdb::IOOptions& o,
                              std::shared_ptr<rocksdb::Logger>* r,
                              rocksdb::IODebugContext* dbg) override;

  // Internal: the file and directory wrappers report through these.
  struct Inode;
  // What a rule decided beyond the returned status.
  struct Verdict {
    bool corrupt = false;           // flip a byte of the read
    bool apply_anyway = false;      // perform the operation despite the error
    bool power_loss_after = false;  // ... and then lose power
  };
  rocksdb::IOStatus Check(FsOp op, FileKind kind, const std::string& path, Verdict* v = nullptr);
  uint64_t PowerEpoch() const { return epoch_.load(std::memory_order_acquire); }
  // Records that `n` bytes were appended to `inode` (at `offset`, if given),
  // unless the power went off since `epoch`; false when it did.
  bool Appended(Inode* inode, uint64_t n, std::optional<uint64_t> offset, uint64_t epoch);
  uint64_t WrittenOf(Inode* inode);
  bool Synced(Inode* inode, uint64_t upto, uint64_t epoch);
  void TruncatedTo(Inode* inode, uint64_t size);
  bool DirSynced(const std::string& dir, uint64_t seq, uint64_t epoch);
  uint64_t NextSeq();
  void WriterClosed() { open_writers_.fetch_sub(1); }
  static rocksdb::IOStatus PoweredOff(const std::string& what);

 private:
  struct NsOp;
  struct Rule {
    FaultRule r;
    uint64_t seen = 0;
    uint64_t injected = 0;
  };

  static std::string Norm(const std::string& p);
  static std::string Parent(const std::string& p);
  uint64_t DirIdLocked(const std::string& dir);
  void RekeyLocked(const std::string& from, const std::string& to);
  void EraseTreeLocked(const std::string& path);
  void AddOpLocked(NsOp op);
  rocksdb::IOStatus OpenWritable(const std::string& f, const rocksdb::FileOptions& o,
                                 std::unique_ptr<rocksdb::FSWritableFile>* r,
                                 rocksdb::IODebugContext* dbg, bool reopen);
  rocksdb::IOStatus CreateDirImpl(const std::string& d, const rocksdb::IOOptions& o,
                                  rocksdb::IODebugContext* dbg, bool if_missing);
  rocksdb::IOStatus RemoveTree(const std::string& path);
  rocksdb::IOStatus TruncateFile(const std::string& path, uint64_t size);
  rocksdb::IOStatus ReadWhole(const std::string& path, uint64_t limit, std::string* out);
  rocksdb::IOStatus WriteWhole(const std::string& path, const std::string& data);
  void ResetLocked();

  mutable std::mutex mu_;
  std::condition_variable off_cv_;
  std::atomic<bool> off_{false};
  // Incremented at every power loss, so an operation under way can tell
  // that the power went off while it ran.
  std::atomic<uint64_t> epoch_{0};
  std::atomic<int64_t> open_writers_{0};

  // Guarded by mu_.
  std::map<std::string, std::shared_ptr<Inode>> files_;  // by current path
  std::map<std::string, uint64_t> dir_ids_;              // by current path
  uint64_t next_dir_id_ = 1;
  uint64_t seq_ = 0;
  std::vector<NsOp> journal_;  // namespace changes, oldest first
  std::vector<Rule> rules_;
  uint64_t injected_total_ = 0;
  uint64_t counts_[kNumFsOps][kNumFileKinds] = {};
  bool torn_ = false;
  std::mt19937_64 rng_;
};

}  // namespace evtest

#endif  // EVSTORE_TESTS_FAULT_FS_HPP_
