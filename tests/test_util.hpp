// Helpers shared by the tests: temporary directories and event builders.
#ifndef EVSTORE_TESTS_TEST_UTIL_HPP_
#define EVSTORE_TESTS_TEST_UTIL_HPP_

#include <stdlib.h>

#include <filesystem>
#include <string>
#include <vector>

#include "evstore/event.hpp"

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

}  // namespace evtest

#endif  // EVSTORE_TESTS_TEST_UTIL_HPP_
