// Helpers shared by the fault-injection tests (fault_fs_test,
// power_loss_test).
#ifndef EVSTORE_TESTS_FAULT_TEST_UTIL_HPP_
#define EVSTORE_TESTS_FAULT_TEST_UTIL_HPP_

#include <memory>

#include "log/store_impl.hpp"
#include "test_util.hpp"

namespace evtest {

// A directory for a fault test (on /dev/shm when the machine has it).
class ScratchDir : public TempDir {
 public:
  ScratchDir() : TempDir(/*in_memory=*/true) {}
};

// Seams that put a store on `fs`.
inline evstore::internal::Seams OnFs(std::shared_ptr<rocksdb::FileSystem> fs) {
  evstore::internal::Seams seams;
  seams.file_system = std::move(fs);
  return seams;
}

}  // namespace evtest

#endif  // EVSTORE_TESTS_FAULT_TEST_UTIL_HPP_
