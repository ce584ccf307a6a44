// Allocation failures injected into the library from a test's thread
// (capi_oom_test.cpp replaces the global operator new).
#ifndef EVSTORE_TESTS_C_CAPI_OOM_TEST_HPP_
#define EVSTORE_TESTS_C_CAPI_OOM_TEST_HPP_

namespace oom {

// From now on, the n-th allocation this thread makes for evstore (counted
// from 1; RocksDB's own are neither counted nor failed) throws
// std::bad_alloc, once. 0 turns it off. Resets Injected().
void FailNth(long n);
// Failures injected on this thread since the last FailNth.
int Injected();

}  // namespace oom

#endif  // EVSTORE_TESTS_C_CAPI_OOM_TEST_HPP_
