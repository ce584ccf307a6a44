// Helpers shared by the fault-injection tests (fault_fs_test,
// power_loss_test).
#ifndef EVSTORE_TESTS_FAULT_TEST_UTIL_HPP_
#define EVSTORE_TESTS_FAULT_TEST_UTIL_HPP_

#include <stdlib.h>

#include <filesystem>
#include <string>
#include <system_error>

namespace evtest {

// A fresh directory, removed with everything in it at scope end. On
// /dev/shm when the machine has it: FaultFs decides what survives a power
// loss, so the real fsyncs underneath buy nothing and cost most of a cycle.
class ScratchDir {
 public:
  ScratchDir() {
    std::error_code ec;
    std::filesystem::path root = "/dev/shm";
    if (!std::filesystem::is_directory(root, ec)) root = std::filesystem::temp_directory_path();
    std::string tmpl = (root / "evstore-fault-XXXXXX").string();
    char* p = mkdtemp(tmpl.data());
    if (p == nullptr) {
      tmpl = (std::filesystem::temp_directory_path() / "evstore-fault-XXXXXX").string();
      p = mkdtemp(tmpl.data());
    }
    if (p == nullptr) abort();
    path_ = p;
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::string& path() const { return path_; }
  // A path inside the directory that does not exist yet.
  std::string sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace evtest

#endif  // EVSTORE_TESTS_FAULT_TEST_UTIL_HPP_
