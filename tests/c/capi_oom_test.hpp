// Allocation failures injected into the library from a test's thread
// (capi_oom_test.cpp replaces the global operator new).
#ifndef EVSTORE_TESTS_C_CAPI_OOM_TEST_HPP_
#define EVSTORE_TESTS_C_CAPI_OOM_TEST_HPP_

#include <doctest/doctest.h>
#include <stdlib.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "evstore/evstore.h"

namespace oom {

// A store in a fresh temporary directory (sync off), destroyed and removed
// with it. Allocations here are not failed: no test has armed FailNth yet.
class ScratchStore {
 public:
  ScratchStore() {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/evstore-capi-oom-XXXXXX";
    std::vector<char> buf(pattern.begin(), pattern.end());
    buf.push_back('\0');
    REQUIRE(mkdtemp(buf.data()) != nullptr);
    dir_ = buf.data();
    evs_options_t* o = evs_options_create();
    REQUIRE(o != nullptr);
    REQUIRE(evs_options_set_sync(o, 0, nullptr) == EVS_OK);
    const int rc = evs_store_open((dir_ + "/store").c_str(), o, &store_, nullptr);
    evs_options_destroy(o);
    REQUIRE(rc == EVS_OK);
  }
  ~ScratchStore() {
    evs_store_destroy(store_);
    std::string cmd = "rm -rf '" + dir_ + "'";
    if (std::system(cmd.c_str()) != 0) MESSAGE("could not remove ", dir_);
  }
  ScratchStore(const ScratchStore&) = delete;
  ScratchStore& operator=(const ScratchStore&) = delete;

  evs_store_t* get() const { return store_; }

 private:
  std::string dir_;
  evs_store_t* store_ = nullptr;
};

// From now on, the n-th allocation this thread makes for evstore (counted
// from 1; RocksDB's own are neither counted nor failed) throws
// std::bad_alloc, once. 0 turns it off. Resets Injected().
void FailNth(long n);
// Failures injected on this thread since the last FailNth.
int Injected();

}  // namespace oom

#endif  // EVSTORE_TESTS_C_CAPI_OOM_TEST_HPP_
