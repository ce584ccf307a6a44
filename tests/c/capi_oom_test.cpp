// The C API when memory runs out: a C++ host of the shared library that
// replaces the global operator new, so that the library's own allocations
// throw std::bad_alloc on demand, as they do when memory is exhausted. No
// exception may cross into C, and no failure may pass for success or for a
// clean end of data.
//
// A failure is injected only on the test's thread, in one of two ways:
// - into allocations of at least `t_fail_at_least` bytes: the tests here store
//   one large event so that the allocation they aim at (the buffer that event
//   is decoded into) is the only one that large, while RocksDB's background
//   threads and small bookkeeping allocations carry on;
// - into the n-th allocation of a call (capi_oom_test.hpp, FailNth), for
//   n = 1, 2, ... until the call makes no more (capi_oom_test_read_side.cpp):
//   every allocation evstore makes in the call fails once. Allocations made
//   by RocksDB (its own, or the standard library's on its behalf) are not
//   counted and never fail: RocksDB is not written to survive a throwing
//   operator new, and what is tested is evstore.
#include "capi_oom_test.hpp"

#include <dlfcn.h>
#include <doctest/doctest.h>
#include <execinfo.h>
#include <stdlib.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>


#include "capi/capi_internal.hpp"
#include "evstore/evstore.h"
#include "evstore/status.hpp"
#include "evstore/store.hpp"

namespace {

thread_local size_t t_fail_at_least = 0;  // 0: never fail
thread_local int t_injected = 0;          // failures injected on this thread
thread_local long t_fail_nth = 0;         // 0: never fail
thread_local long t_counted = 0;          // allocations counted since FailNth
thread_local bool t_deciding = false;     // in Counted: allocations there are not counted

enum class Module { kRocksDb, kStdLib, kOther };

Module ModuleOf(void* pc) {
  Dl_info info;
  if (dladdr(pc, &info) == 0 || info.dli_fname == nullptr) return Module::kOther;
  if (std::strstr(info.dli_fname, "librocksdb")) return Module::kRocksDb;
  if (std::strstr(info.dli_fname, "libstdc++")) return Module::kStdLib;
  return Module::kOther;
}

// Whether an allocation whose caller is at `caller` counts for FailNth: not
// when RocksDB makes it, directly or through the standard library.
bool Counted(void* caller) {
  Module m = ModuleOf(caller);
  if (m != Module::kStdLib) return m == Module::kOther;
  // The standard library's caller decides: the first frame past the
  // standard library's own (which follow this test's frames).
  void* frames[64];
  int n = backtrace(frames, 64);
  bool in_std = false;
  for (int i = 0; i < n; i++) {
    Module f = ModuleOf(frames[i]);
    if (f == Module::kStdLib) {
      in_std = true;
    } else if (in_std) {
      return f == Module::kOther;
    }
  }
  return true;
}

void* Allocate(size_t n, void* caller) {
  if (t_fail_at_least != 0 && n >= t_fail_at_least) {
    t_injected++;
    throw std::bad_alloc();
  }
  if (t_fail_nth != 0 && !t_deciding) {
    t_deciding = true;
    const bool counted = Counted(caller);
    t_deciding = false;
    if (counted && ++t_counted == t_fail_nth) {
      t_injected++;
      throw std::bad_alloc();
    }
  }
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}

void* AllocateNoThrow(size_t n, void* caller) noexcept {
  try {
    return Allocate(n, caller);
  } catch (const std::bad_alloc&) {
    return nullptr;
  }
}

}  // namespace

void* operator new(size_t n) { return Allocate(n, __builtin_return_address(0)); }
void* operator new[](size_t n) { return Allocate(n, __builtin_return_address(0)); }
void* operator new(size_t n, const std::nothrow_t&) noexcept {
  return AllocateNoThrow(n, __builtin_return_address(0));
}
void* operator new[](size_t n, const std::nothrow_t&) noexcept {
  return AllocateNoThrow(n, __builtin_return_address(0));
}

namespace oom {

void FailNth(long n) {
  t_injected = 0;
  t_counted = 0;
  t_fail_nth = n;
}

int Injected() { return t_injected; }

}  // namespace oom
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }

namespace {

constexpr size_t kBigEvent = 256 * 1024;
constexpr size_t kFailAtLeast = 128 * 1024;

// Makes allocations of kFailAtLeast bytes or more fail on this thread while
// it is in scope.
class FailLargeAllocations {
 public:
  FailLargeAllocations() {
    t_injected = 0;
    t_fail_at_least = kFailAtLeast;
  }
  ~FailLargeAllocations() { t_fail_at_least = 0; }
  FailLargeAllocations(const FailLargeAllocations&) = delete;
  FailLargeAllocations& operator=(const FailLargeAllocations&) = delete;
};

// A store in a fresh temporary directory holding, at positions 0, 1 and 2,
// "big-1" v0 (small), "big-1" v1 (kBigEvent bytes of data), "big-1" v2 (small).
class BigEventStore : public oom::ScratchStore {
 public:
  BigEventStore() {
    std::string big(kBigEvent, 'b');
    const char* datas[3] = {"{}", big.c_str(), "{}"};
    size_t lens[3] = {2, big.size(), 2};
    for (int i = 0; i < 3; i++) {
      evs_event_t e{};
      e.type = "Sized";
      e.type_len = 5;
      e.data = datas[i];
      e.data_len = lens[i];
      REQUIRE(evs_append(get(), "big-1", 5, EVS_EXPECT_ANY, &e, 1, nullptr, nullptr) == EVS_OK);
    }
  }
  evs_store_t* store() const { return get(); }
};

// The iterator's status, with its message checked and freed.
int StatusOf(const evs_iter_t* it, std::string* message) {
  char* msg = nullptr;
  int rc = evs_iter_status(it, &msg);
  CHECK((rc == EVS_OK) == (msg == nullptr));
  *message = msg ? msg : "";
  evs_free(msg);
  return rc;
}

// Reads the whole of big-1 through a fresh iterator: the store is intact.
void ExpectIntact(evs_store_t* s) {
  evs_iter_t* it = nullptr;
  REQUIRE(evs_read_stream(s, "big-1", 5, 0, EVS_FORWARD, EVS_NO_LIMIT, &it, nullptr) == EVS_OK);
  uint64_t n = 0;
  for (; evs_iter_valid(it); evs_iter_next(it)) {
    size_t len = 0;
    evs_iter_data(it, &len);
    CHECK(evs_iter_version(it) == n);
    CHECK(len == (n == 1 ? kBigEvent : 2));
    n++;
  }
  CHECK(n == 3);
  CHECK(evs_iter_status(it, nullptr) == EVS_OK);
  evs_iter_destroy(it);
}

using ReadFn = int (*)(evs_store_t*, evs_iter_t**);

int ReadAll(evs_store_t* s, evs_iter_t** it) {
  return evs_read_all(s, 0, EVS_FORWARD, EVS_NO_LIMIT, it, nullptr);
}
int ReadStream(evs_store_t* s, evs_iter_t** it) {
  return evs_read_stream(s, "big-1", 5, 0, EVS_FORWARD, EVS_NO_LIMIT, it, nullptr);
}
int ReadCategory(evs_store_t* s, evs_iter_t** it) {
  return evs_read_category(s, "big", 3, 0, EVS_FORWARD, EVS_NO_LIMIT, it, nullptr);
}
int ReadType(evs_store_t* s, evs_iter_t** it) {
  return evs_read_type(s, "Sized", 5, 0, EVS_FORWARD, EVS_NO_LIMIT, it, nullptr);
}

struct ReadKind {
  const char* name;
  ReadFn read;
};
const ReadKind kReads[] = {{"the global log", ReadAll},
                           {"a stream", ReadStream},
                           {"a category", ReadCategory},
                           {"an event type", ReadType}};

}  // namespace

TEST_SUITE("capi") {
  TEST_CASE("an allocation failure in evs_iter_next fails the read instead of ending it") {
    BigEventStore db;
    for (const ReadKind& k : kReads) {
      CAPTURE(k.name);
      evs_iter_t* it = nullptr;
      REQUIRE(k.read(db.store(), &it) == EVS_OK);
      REQUIRE(evs_iter_valid(it) == 1);
      CHECK(evs_iter_position(it) == 0);
      {
        FailLargeAllocations fail;
        evs_iter_next(it);  // decoding the big event needs a large buffer
        REQUIRE(t_injected >= 1);
      }
      std::string message;
      CHECK(evs_iter_valid(it) == 0);
      CHECK(evs_iter_data(it, nullptr) == nullptr);
      CHECK(StatusOf(it, &message) == EVS_NO_MEMORY);
      CHECK(message.find("out of memory") != std::string::npos);
      // The failure sticks: moving on neither revives the iterator nor
      // turns it into a clean end.
      evs_iter_next(it);
      CHECK(evs_iter_valid(it) == 0);
      CHECK(StatusOf(it, &message) == EVS_NO_MEMORY);
      evs_iter_seek(it, 0);
      CHECK(evs_iter_valid(it) == 0);
      CHECK(StatusOf(it, &message) == EVS_NO_MEMORY);
      evs_iter_destroy(it);
      ExpectIntact(db.store());
    }
  }

  TEST_CASE("an allocation failure in evs_iter_seek fails the read instead of ending it") {
    BigEventStore db;
    for (const ReadKind& k : kReads) {
      CAPTURE(k.name);
      evs_iter_t* it = nullptr;
      REQUIRE(k.read(db.store(), &it) == EVS_OK);
      {
        FailLargeAllocations fail;
        evs_iter_seek(it, 1);  // positions at the big event
        REQUIRE(t_injected >= 1);
      }
      std::string message;
      CHECK(evs_iter_valid(it) == 0);
      CHECK(StatusOf(it, &message) == EVS_NO_MEMORY);
      CHECK(message.find("out of memory") != std::string::npos);
      evs_iter_seek(it, 0);
      CHECK(evs_iter_valid(it) == 0);
      CHECK(StatusOf(it, &message) == EVS_NO_MEMORY);
      evs_iter_destroy(it);
      ExpectIntact(db.store());
    }
  }

  TEST_CASE("the same reads without an injected failure see every event") {
    // Guards the tests above: without the injection, next and seek reach
    // the big event.
    BigEventStore db;
    for (const ReadKind& k : kReads) {
      CAPTURE(k.name);
      evs_iter_t* it = nullptr;
      REQUIRE(k.read(db.store(), &it) == EVS_OK);
      evs_iter_next(it);
      size_t len = 0;
      CHECK(evs_iter_valid(it) == 1);
      evs_iter_data(it, &len);
      CHECK(len == kBigEvent);
      evs_iter_seek(it, 0);
      evs_iter_seek(it, 1);
      CHECK(evs_iter_valid(it) == 1);
      CHECK(evs_iter_position(it) == 1);
      evs_iter_destroy(it);
    }
  }

  TEST_CASE("the guard reports an exception even when its message cannot be allocated") {
    // A large message, built before allocations fail; throwing a copy of the
    // exception allocates nothing more.
    const std::runtime_error big(std::string(kBigEvent, 'e'));
    char* msg = nullptr;
    int rc;
    {
      FailLargeAllocations fail;
      rc = evstore::capi::Guard(&msg, [&]() -> int { throw big; });
    }
    CHECK(rc == EVS_ABORTED);
    REQUIRE(msg != nullptr);
    std::string text(msg);
    evs_free(msg);
    CHECK(text.rfind("internal error: eee", 0) == 0);
    CHECK(text.size() == std::strlen("internal error: ") + kBigEvent);
  }

  TEST_CASE("a status keeps its message when operator new fails") {
    const evstore::Status s = evstore::Status::NotFound(std::string(kBigEvent, 'n'));
    char* msg = nullptr;
    int rc;
    {
      FailLargeAllocations fail;
      rc = evstore::capi::FromStatus(s, &msg);
    }
    CHECK(rc == EVS_NOT_FOUND);
    REQUIRE(msg != nullptr);
    std::string text(msg);
    evs_free(msg);
    const bool whole = text == s.ToString();  // not decomposed: 256 KiB each
    CHECK(text.size() == s.ToString().size());
    CHECK(whole);
  }

  TEST_CASE("an allocation failure in evs_append is EVS_NO_MEMORY and writes nothing") {
    BigEventStore db;
    std::string big(kBigEvent, 'c');
    evs_event_t e{};
    e.type = "Sized";
    e.type_len = 5;
    e.data = big.data();
    e.data_len = big.size();
    char* msg = nullptr;
    int rc;
    {
      FailLargeAllocations fail;
      rc = evs_append(db.store(), "big-1", 5, EVS_EXPECT_ANY, &e, 1, nullptr, &msg);
      CHECK(t_injected >= 1);
    }
    CHECK(rc == EVS_NO_MEMORY);
    REQUIRE(msg != nullptr);
    CHECK(std::strstr(msg, "out of memory") != nullptr);
    evs_free(msg);
    ExpectIntact(db.store());
  }

  TEST_CASE("C++: an allocation failure in EventIterator::Next propagates and fails the read") {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/evstore-cpp-oom-XXXXXX";
    std::vector<char> buf(pattern.begin(), pattern.end());
    buf.push_back('\0');
    REQUIRE(mkdtemp(buf.data()) != nullptr);
    std::string dir = buf.data();
    {
      auto opened = evstore::Store::open(dir + "/store", evstore::Options::Fast());
      REQUIRE(opened.ok());
      evstore::Store s = std::move(opened).value();
      for (size_t size : {size_t{2}, kBigEvent, size_t{2}}) {
        evstore::EventData e;
        e.type = "Sized";
        e.data.assign(size, 'b');
        REQUIRE(s.append("big-1", evstore::ExpectedVersion::Any(), e).ok());
      }
      auto it = s.read_stream("big-1", 0);
      REQUIRE(it.ok());
      REQUIRE(it->Valid());
      bool threw = false;
      {
        FailLargeAllocations fail;
        try {
          it->Next();  // decoding the big event needs a large buffer
        } catch (const std::bad_alloc&) {
          threw = true;
        }
      }
      CHECK(threw);
      CHECK_FALSE(it->Valid());
      CHECK(it->status().IsAborted());  // not a clean end of the stream
      // A seek starts afresh.
      it->Seek(0);
      int n = 0;
      for (; it->Valid(); it->Next()) n++;
      CHECK(n == 3);
      CHECK(it->status().ok());
    }
    std::string cmd = "rm -rf '" + dir + "'";
    if (std::system(cmd.c_str()) != 0) MESSAGE("could not remove ", dir);
  }
}
