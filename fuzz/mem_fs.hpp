// MemFs: an in-memory RocksDB file system for the store fuzz targets
// (through evstore::internal::Seams), so that no input touches the disk.
// It is RocksDB's own (NewMemEnv) with the two things a store needs on top:
//  - IsDirectory, which RocksDB's in-memory file system does not implement:
//    directories made through this wrapper are remembered (and follow a
//    rename, as the store's creation renames its directory into place);
//  - WAL files that say their Sync is thread-safe, so that DB::SyncWAL (run
//    by Store::close) works. It is: the in-memory Sync only stores the size
//    in an atomic.
#ifndef EVSTORE_FUZZ_MEM_FS_HPP_
#define EVSTORE_FUZZ_MEM_FS_HPP_

#include <rocksdb/env.h>
#include <rocksdb/file_system.h>

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "fuzz_input.hpp"

class MemFs : public rocksdb::FileSystemWrapper {
 public:
  MemFs() : MemFs(std::unique_ptr<rocksdb::Env>(rocksdb::NewMemEnv(rocksdb::Env::Default()))) {}
  const char* Name() const override { return "EvstoreFuzzMemFs"; }

  rocksdb::IOStatus NewWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                    std::unique_ptr<rocksdb::FSWritableFile>* r,
                                    rocksdb::IODebugContext* d) override {
    std::unique_ptr<rocksdb::FSWritableFile> file;
    rocksdb::IOStatus s = target()->NewWritableFile(f, o, &file, d);
    if (s.ok()) *r = std::make_unique<SyncSafeFile>(std::move(file));
    return s;
  }
  rocksdb::IOStatus CreateDir(const std::string& p, const rocksdb::IOOptions& o,
                              rocksdb::IODebugContext* d) override {
    rocksdb::IOStatus s = target()->CreateDir(p, o, d);
    if (s.ok()) Remember(p);
    return s;
  }
  rocksdb::IOStatus CreateDirIfMissing(const std::string& p, const rocksdb::IOOptions& o,
                                       rocksdb::IODebugContext* d) override {
    rocksdb::IOStatus s = target()->CreateDirIfMissing(p, o, d);
    if (s.ok()) Remember(p);
    return s;
  }
  rocksdb::IOStatus DeleteDir(const std::string& p, const rocksdb::IOOptions& o,
                              rocksdb::IODebugContext* d) override {
    rocksdb::IOStatus s = target()->DeleteDir(p, o, d);
    if (s.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      dirs_.erase(p);
    }
    return s;
  }
  rocksdb::IOStatus IsDirectory(const std::string& p, const rocksdb::IOOptions&, bool* is_dir,
                                rocksdb::IODebugContext*) override {
    std::lock_guard<std::mutex> lock(mu_);
    *is_dir = dirs_.count(p) > 0;
    return rocksdb::IOStatus::OK();
  }
  rocksdb::IOStatus RenameFile(const std::string& from, const std::string& to,
                               const rocksdb::IOOptions& o, rocksdb::IODebugContext* d) override {
    rocksdb::IOStatus s = target()->RenameFile(from, to, o, d);
    if (s.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      if (dirs_.erase(from) > 0) dirs_.insert(to);
    }
    return s;
  }

  // The files of directory `dir` (no subdirectories) and their contents,
  // but for RocksDB's LOCK, which the in-memory file system will not read
  // (RocksDB makes it again at open).
  std::map<std::string, std::string> ReadFiles(const std::string& dir) {
    rocksdb::IOOptions io;
    std::vector<std::string> names;
    FUZZ_CHECK(GetChildren(dir, io, &names, nullptr).ok());
    std::map<std::string, std::string> files;
    for (const std::string& n : names) {
      if (n == "LOCK") continue;
      std::unique_ptr<rocksdb::FSSequentialFile> f;
      FUZZ_CHECK(NewSequentialFile(dir + "/" + n, rocksdb::FileOptions(), &f, nullptr).ok());
      std::string& out = files[n];
      std::string buf(1 << 16, '\0');
      for (;;) {
        rocksdb::Slice got;
        FUZZ_CHECK(f->Read(buf.size(), io, &got, buf.data(), nullptr).ok());
        if (got.empty()) break;
        out.append(got.data(), got.size());
      }
    }
    return files;
  }

  // Makes directory `dir` (and its parent) holding `files`.
  void WriteFiles(const std::string& dir, const std::map<std::string, std::string>& files) {
    rocksdb::IOOptions io;
    std::string parent = dir.substr(0, dir.rfind('/'));
    if (!parent.empty()) FUZZ_CHECK(CreateDirIfMissing(parent, io, nullptr).ok());
    FUZZ_CHECK(CreateDirIfMissing(dir, io, nullptr).ok());
    for (const auto& [name, bytes] : files) {
      std::unique_ptr<rocksdb::FSWritableFile> f;
      FUZZ_CHECK(NewWritableFile(dir + "/" + name, rocksdb::FileOptions(), &f, nullptr).ok());
      FUZZ_CHECK(f->Append(bytes, io, nullptr).ok());
      FUZZ_CHECK(f->Sync(io, nullptr).ok());
      FUZZ_CHECK(f->Close(io, nullptr).ok());
    }
  }

 private:
  class SyncSafeFile : public rocksdb::FSWritableFileOwnerWrapper {
   public:
    using rocksdb::FSWritableFileOwnerWrapper::FSWritableFileOwnerWrapper;
    bool IsSyncThreadSafe() const override { return true; }
  };

  explicit MemFs(std::unique_ptr<rocksdb::Env> env)
      : rocksdb::FileSystemWrapper(env->GetFileSystem()), env_(std::move(env)) {}

  void Remember(const std::string& p) {
    std::lock_guard<std::mutex> lock(mu_);
    dirs_.insert(p);
  }

  std::unique_ptr<rocksdb::Env> env_;  // owns the in-memory file system
  std::mutex mu_;
  std::set<std::string> dirs_;
};

#endif  // EVSTORE_FUZZ_MEM_FS_HPP_
