// Helpers shared by the tests: temporary directories and event builders.
#ifndef EVSTORE_TESTS_TEST_UTIL_HPP_
#define EVSTORE_TESTS_TEST_UTIL_HPP_

#include <doctest/doctest.h>
#include <rocksdb/db.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "evstore/event.hpp"
#include "evstore/store.hpp"
#include "format/keys.hpp"

namespace evtest {

// A fresh directory under $TMPDIR, removed with everything in it at scope end.
// With in_memory, on /dev/shm when the machine has it: for tests whose file
// system decides what survives (FaultFs), where real fsyncs buy nothing.
class TempDir {
 public:
  explicit TempDir(bool in_memory = false) {
    std::error_code ec;
    std::filesystem::path root = std::filesystem::temp_directory_path();
    if (in_memory && std::filesystem::is_directory("/dev/shm", ec)) root = "/dev/shm";
    std::string tmpl = (root / "evstore-test-XXXXXX").string();
    char* p = mkdtemp(tmpl.data());
    if (p == nullptr && root != std::filesystem::temp_directory_path()) {
      tmpl = (std::filesystem::temp_directory_path() / "evstore-test-XXXXXX").string();
      p = mkdtemp(tmpl.data());
    }
    if (p == nullptr) abort();
    path_ = p;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  // A path inside the directory that does not exist yet.
  std::string sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline evstore::EventData Ev(std::string type, std::string data = "{}",
                             evstore::Uuid id = evstore::Uuid()) {
  evstore::EventData e;
  e.id = id;
  e.type = std::move(type);
  e.data = std::move(data);
  e.content_type = "application/json";
  return e;
}

inline std::vector<evstore::EventData> Evs(size_t n, const std::string& type = "Happened") {
  std::vector<evstore::EventData> v;
  for (size_t i = 0; i < n; i++) v.push_back(Ev(type, "{\"i\":" + std::to_string(i) + "}"));
  return v;
}

// A store opened (created) in `dir`; fails the test if it cannot open.
inline evstore::Store OpenStore(const TempDir& dir) {
  auto s = evstore::Store::open(dir.path());
  REQUIRE_MESSAGE(s.ok(), s.status().ToString());
  return std::move(s).value();
}

// Appends `n` events of `type` to `stream` at any version; returns the
// position of the last. Fails the test if the append fails.
inline uint64_t Append(evstore::Store& s, const std::string& stream, size_t n,
                       const std::string& type = "Happened") {
  auto r = s.append(stream, evstore::ExpectedVersion::Any(), Evs(n, type));
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  return r->last_position;
}

// Every event a read yields; fails the test if the read fails.
inline std::vector<evstore::RecordedEvent> Collect(evstore::Result<evstore::EventIterator> r) {
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  std::vector<evstore::RecordedEvent> out;
  for (; r->Valid(); r->Next()) out.push_back(r->value().ToRecorded());
  REQUIRE_MESSAGE(r->status().ok(), r->status().ToString());
  return out;
}

// Opens a store or fails the test with the status.
inline evstore::Store OpenOrDie(const std::string& path,
                                evstore::Options o = evstore::Options::Fast()) {
  auto r = evstore::Store::open(path, o);
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  return std::move(r).value();
}

// Runs `fn` on a closed store's RocksDB instance directly (every column
// family open, by name), as a damaged disk or a buggy writer would.
inline void WithRawDb(
    const std::string& path,
    const std::function<void(rocksdb::DB*, std::map<std::string, rocksdb::ColumnFamilyHandle*>&)>& fn) {
  std::vector<std::string> names;
  REQUIRE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), path, &names).ok());
  std::vector<rocksdb::ColumnFamilyDescriptor> descs;
  for (auto& n : names) descs.emplace_back(n, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> hs;
  rocksdb::DB* db = nullptr;
  REQUIRE(rocksdb::DB::Open(rocksdb::DBOptions(), path, descs, &hs, &db).ok());
  std::map<std::string, rocksdb::ColumnFamilyHandle*> cfs;
  for (size_t i = 0; i < names.size(); i++) cfs[names[i]] = hs[i];
  fn(db, cfs);
  REQUIRE(db->Flush(rocksdb::FlushOptions(), hs).ok());
  for (auto* h : hs) db->DestroyColumnFamilyHandle(h).PermitUncheckedError();
  REQUIRE(db->Close().ok());
  delete db;
}

// Makes a RocksDB database at `path` that is not an evstore store: another
// program's, with one key.
inline void MakeOtherRocksDb(const std::string& path) {
  rocksdb::DB* db = nullptr;
  rocksdb::Options o;
  o.create_if_missing = true;
  REQUIRE(rocksdb::DB::Open(o, path, &db).ok());
  REQUIRE(db->Put(rocksdb::WriteOptions(), "k", "v").ok());
  delete db;
}

// Rewrites the format record of the closed store at `path` (nullopt:
// deletes it), as a newer evstore or damage would leave it.
inline void SetFormatRecord(const std::string& path, const std::optional<std::string>& value) {
  WithRawDb(path, [&](rocksdb::DB* db, auto& cfs) {
    std::string key(evstore::format::kFormatKey);
    rocksdb::Status s = value ? db->Put(rocksdb::WriteOptions(), cfs["default"], key, *value)
                              : db->Delete(rocksdb::WriteOptions(), cfs["default"], key);
    REQUIRE(s.ok());
  });
}

struct ChildRun {
  std::vector<std::string> lines;
  bool killed = false;
  int exit_code = -1;
};

// Runs `child` with `args`, its stdout on a pipe; with kill_after_ms >= 0,
// kills it with SIGKILL that long after it prints "READY". Returns its
// complete output lines (a torn last line is dropped) and how it ended.
inline ChildRun RunChild(const std::string& child, const std::vector<std::string>& args,
                         int kill_after_ms) {
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    close(fds[1]);
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(child.c_str()));
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(child.c_str(), argv.data());
    _exit(127);
  }
  close(fds[1]);
  std::mutex mu;
  std::condition_variable cv;
  bool ready = false, done = false;
  std::thread killer;
  if (kill_after_ms >= 0) {
    killer = std::thread([&] {
      std::unique_lock<std::mutex> l(mu);
      cv.wait(l, [&] { return ready || done; });
      if (done) return;
      l.unlock();
      std::this_thread::sleep_for(std::chrono::milliseconds(kill_after_ms));
      kill(pid, SIGKILL);
    });
  }
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = read(fds[0], buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (!ready && out.find("READY\n") != std::string::npos) {
      std::lock_guard<std::mutex> l(mu);
      ready = true;
      cv.notify_all();
    }
  }
  {
    std::lock_guard<std::mutex> l(mu);
    done = true;
    cv.notify_all();
  }
  if (killer.joinable()) killer.join();
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  ChildRun r;
  r.killed = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    if (in.eof()) break;  // a torn last line was never fully reported
    r.lines.push_back(line);
  }
  return r;
}

}  // namespace evtest

#endif  // EVSTORE_TESTS_TEST_UTIL_HPP_
