// Helpers shared by the tests: temporary directories and event builders.
#ifndef EVSTORE_TESTS_TEST_UTIL_HPP_
#define EVSTORE_TESTS_TEST_UTIL_HPP_

#include <doctest/doctest.h>
#include <rocksdb/db.h>
#include <stdlib.h>

#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "evstore/event.hpp"
#include "evstore/store.hpp"

namespace evtest {

// A fresh directory under $TMPDIR, removed with everything in it at scope end.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "evstore-test-XXXXXX").string();
    char* p = mkdtemp(tmpl.data());
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

}  // namespace evtest

#endif  // EVSTORE_TESTS_TEST_UTIL_HPP_
