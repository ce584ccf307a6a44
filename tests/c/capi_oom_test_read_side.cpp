// The C API's read side when memory runs out: subscriptions (pull and push),
// checkpoints, projections (their handler's state included) and
// point-in-time snapshots. Each call is made with its first allocation
// failing, then its second, and so on, until it makes no more
// (oom::FailNth, capi_oom_test.cpp). Every failure must come back as
// EVS_NO_MEMORY with a message, NULL out-handles, and the handle or store as
// it was; nothing may be left behind: LeakSanitizer checks the sanitizer
// build at exit, and an iterator or snapshot left open would make the final
// evs_store_close EVS_BUSY.
#include <doctest/doctest.h>
#include <stdlib.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "capi_oom_test.hpp"
#include "evstore/evstore.h"

namespace {

// Runs call(&errmsg) with its n-th allocation failing, for n = 1, 2, ...,
// until a call that made no failing allocation (which must succeed; then
// `passed` checks what it did). After each failed call: EVS_NO_MEMORY, a
// message saying so, and `failed` checks that nothing changed. Returns the
// number of failed calls.
int FailEach(const std::function<int(char**)>& call, const std::function<void()>& failed,
             const std::function<void()>& passed) {
  for (long n = 1; n < 100000; n++) {
    char* msg = nullptr;
    oom::FailNth(n);
    const int rc = call(&msg);
    const int injected = oom::Injected();
    oom::FailNth(0);
    const std::string text = msg ? msg : "";
    evs_free(msg);
    if (injected == 0) {
      CHECK_MESSAGE(rc == EVS_OK, "with no allocation failing: ", evs_errstr(rc), ": ", text);
      CHECK(msg == nullptr);
      if (rc == EVS_OK) passed();
      return static_cast<int>(n - 1);
    }
    CAPTURE(n);
    CHECK_MESSAGE(rc == EVS_NO_MEMORY, evs_errstr(rc), ": ", text);
    CHECK_MESSAGE(text.find("out of memory") != std::string::npos, text);
    failed();
  }
  FAIL("the call kept allocating");
  return -1;
}

void Nothing() {}

// A store of four events: order-1 Placed, Shipped, Placed; cart-1 Added.
class SmallStore : public oom::ScratchStore {
 public:
  SmallStore() {
    Append("order-1", "Placed");
    Append("order-1", "Shipped");
    Append("order-1", "Placed");
    Append("cart-1", "Added");
  }
  ~SmallStore() {
    // Nothing a failed call made is still open.
    CHECK(evs_store_close(get(), nullptr) == EVS_OK);
  }

 private:
  void Append(const std::string& stream, const std::string& type) {
    evs_event_t e{};
    e.type = type.c_str();
    e.type_len = type.size();
    e.data = "{}";
    e.data_len = 2;
    REQUIRE(evs_append(get(), stream.data(), stream.size(), EVS_EXPECT_ANY, &e, 1, nullptr, nullptr) ==
            EVS_OK);
  }
};

const char* const kTypes[] = {"Placed", "Shipped"};
const size_t kTypeLens[] = {6, 7};

// The checkpoint `name`: its position, or UINT64_MAX when there is none.
uint64_t CheckpointOf(evs_store_t* s, const char* name) {
  uint64_t p = 0;
  int rc = evs_checkpoint_get(s, name, std::strlen(name), &p, nullptr, nullptr);
  REQUIRE((rc == EVS_OK || rc == EVS_NOT_FOUND));
  return rc == EVS_OK ? p : UINT64_MAX;
}

// Counts events by type into "t/" + type.
int CountTypes(void*, const evs_projection_event_t* e, evs_projection_state_t* st) {
  size_t len = 0;
  const char* type = evs_projection_event_type(e, &len);
  const std::string key = "t/" + std::string(type, len);
  void* v = nullptr;
  size_t vl = 0;
  int rc = evs_projection_state_get(st, key.data(), key.size(), &v, &vl, nullptr);
  if (rc != EVS_OK && rc != EVS_NOT_FOUND) return rc;
  const int n = rc == EVS_OK ? std::atoi(std::string(static_cast<char*>(v), vl).c_str()) : 0;
  evs_free(v);
  const std::string next = std::to_string(n + 1);
  return evs_projection_state_put(st, key.data(), key.size(), next.data(), next.size(), nullptr);
}

// The value under `key` of projection `name`, or "-" when there is none.
std::string ValueOf(evs_store_t* s, const char* name, const char* key) {
  void* v = nullptr;
  size_t vl = 0;
  int rc = evs_projection_get(s, name, std::strlen(name), key, std::strlen(key), &v, &vl, nullptr);
  REQUIRE((rc == EVS_OK || rc == EVS_NOT_FOUND));
  std::string out = rc == EVS_OK ? std::string(static_cast<char*>(v), vl) : "-";
  evs_free(v);
  return out;
}

// A projection "totals" of Placed and Shipped (CountTypes), run until it
// has folded the whole log.
evs_projection_t* RunTotals(evs_store_t* s) {
  evs_projection_options_t* o = evs_projection_options_create();
  REQUIRE(o != nullptr);
  REQUIRE(evs_projection_options_set_filter_types(o, kTypes, kTypeLens, 2, nullptr) == EVS_OK);
  evs_projection_t* p = nullptr;
  REQUIRE(evs_projection_run(s, "totals", 6, o, CountTypes, nullptr, &p, nullptr) == EVS_OK);
  evs_projection_options_destroy(o);
  REQUIRE(evs_projection_wait_for(p, 4, 60000, nullptr) == EVS_OK);
  return p;
}

// What a handler saw of its state functions failing (checked on the test's
// thread: the handler runs on the projection's).
struct HandlerRun {
  std::atomic<bool> started{false};
  std::atomic<bool> done{false};
  int failures = 0;
  std::vector<std::string> problems;
};

// The value of `key` in the handler's state, or "-" when there is none.
std::string StateValue(evs_projection_state_t* st, const char* key) {
  void* v = nullptr;
  size_t vl = 0;
  int rc = evs_projection_state_get(st, key, std::strlen(key), &v, &vl, nullptr);
  std::string out = rc == EVS_OK ? std::string(static_cast<char*>(v), vl) : rc == EVS_NOT_FOUND ? "-" : "?";
  evs_free(v);
  return out;
}

// FailEach's loop, on the projection's thread: problems are noted, not
// asserted.
void FailEachInHandler(HandlerRun* run, const char* what, const std::function<int(char**)>& call,
                       const std::function<bool()>& unchanged) {
  for (long n = 1; n < 100000; n++) {
    char* msg = nullptr;
    oom::FailNth(n);
    const int rc = call(&msg);
    const int injected = oom::Injected();
    oom::FailNth(0);
    const std::string text = msg ? msg : "";
    evs_free(msg);
    if (injected == 0) {
      if (rc != EVS_OK) run->problems.push_back(std::string(what) + " failed with no allocation failing");
      return;
    }
    run->failures++;
    if (rc != EVS_NO_MEMORY || text.find("out of memory") == std::string::npos)
      run->problems.push_back(std::string(what) + ": " + evs_errstr(rc) + " '" + text + "'");
    if (!unchanged()) run->problems.push_back(std::string(what) + ": the state changed");
  }
  run->problems.push_back(std::string(what) + " kept allocating");
}

// On its first event, calls each state function with each of its
// allocations failing in turn; then folds like CountTypes.
int StateUnderFailures(void* user, const evs_projection_event_t* e, evs_projection_state_t* st) {
  auto* run = static_cast<HandlerRun*>(user);
  if (!run->started.exchange(true)) {
    FailEachInHandler(
        run, "put", [&](char** m) { return evs_projection_state_put(st, "k", 1, "v1", 2, m); },
        [&] { return StateValue(st, "k") == "-"; });
    void* v = nullptr;
    size_t vl = 0;
    FailEachInHandler(
        run, "get",
        [&](char** m) {
          evs_free(v);
          v = nullptr;
          return evs_projection_state_get(st, "k", 1, &v, &vl, m);
        },
        [&] { return v == nullptr; });
    if (v == nullptr || std::string(static_cast<char*>(v), vl) != "v1") run->problems.push_back("get: not v1");
    evs_free(v);
    FailEachInHandler(
        run, "put over", [&](char** m) { return evs_projection_state_put(st, "k", 1, "v2", 2, m); },
        [&] { return StateValue(st, "k") == "v1"; });
    FailEachInHandler(
        run, "erase", [&](char** m) { return evs_projection_state_erase(st, "k", 1, m); },
        [&] { return StateValue(st, "k") == "v2"; });
    if (StateValue(st, "k") != "-") run->problems.push_back("erase: k is still there");
    FailEachInHandler(
        run, "set_error", [&](char** m) { return evs_projection_state_set_error(st, "why", 3, m); },
        [] { return true; });
    run->done = true;
  }
  return CountTypes(nullptr, e, st);
}

// `create` returns NULL, and nothing else, when its first allocation fails.
template <typename Create>
void CheckCreateFails(Create create) {
  oom::FailNth(1);
  auto* none = create();
  const int injected = oom::Injected();
  oom::FailNth(0);
  CHECK(injected == 1);
  CHECK(none == nullptr);
}

}  // namespace

TEST_SUITE("capi") {
  TEST_CASE("subscription options, evs_subscribe and evs_subscription_next fail cleanly at each allocation") {
    SmallStore db;
    CheckCreateFails(evs_subscribe_options_create);

    evs_subscribe_options_t* o = evs_subscribe_options_create();
    REQUIRE(o != nullptr);
    FailEach([&](char** m) { return evs_subscribe_options_set_filter_stream(o, "order-1", 7, m); }, Nothing,
             Nothing);
    FailEach([&](char** m) { return evs_subscribe_options_set_filter_category(o, "order", 5, m); }, Nothing,
             Nothing);
    CHECK(FailEach([&](char** m) { return evs_subscribe_options_set_filter_types(o, kTypes, kTypeLens, 2, m); },
                   Nothing, Nothing) > 0);
    FailEach([&](char** m) { return evs_subscribe_options_set_checkpoint(o, "reader", 6, m); }, Nothing,
             Nothing);

    evs_subscription_t* sub = nullptr;
    CHECK(FailEach([&](char** m) { return evs_subscribe(db.get(), o, &sub, m); },
                   [&] { CHECK(sub == nullptr); }, [&] { CHECK(sub != nullptr); }) > 0);
    evs_subscribe_options_destroy(o);
    REQUIRE(sub != nullptr);

    // A failed next leaves the subscription where it was: the next call
    // delivers what the first would have.
    const evs_delivery_t* d = nullptr;
    CHECK(FailEach([&](char** m) { return evs_subscription_next(sub, 0, &d, m); },
                   [&] {
                     CHECK(d == nullptr);
                     CHECK(evs_subscription_position(sub) == 0);
                   },
                   [&] {
                     REQUIRE(d != nullptr);
                     CHECK(evs_delivery_kind(d) == EVS_DELIVERY_EVENTS);
                     REQUIRE(evs_delivery_event_count(d) == 3);
                     for (size_t i = 0; i < 3; i++) CHECK(evs_delivery_event_position(d, i) == i);
                     CHECK(evs_delivery_position(d) == 4);
                   }) > 0);
    FailEach([&](char** m) { return evs_subscription_next(sub, 0, &d, m); },
             [&] { CHECK(evs_subscription_position(sub) == 4); },
             [&] { CHECK(evs_delivery_kind(d) == EVS_DELIVERY_CAUGHT_UP); });
    FailEach([&](char** m) { return evs_subscription_stop(sub, m); }, Nothing, Nothing);
    CHECK(evs_subscription_next(sub, 0, &d, nullptr) == EVS_CLOSED);
    evs_subscription_destroy(sub);
  }

  TEST_CASE("checkpoints fail cleanly at each allocation and write nothing when they fail") {
    SmallStore db;
    evs_subscribe_options_t* o = evs_subscribe_options_create();
    REQUIRE(o != nullptr);
    REQUIRE(evs_subscribe_options_set_checkpoint(o, "reader", 6, nullptr) == EVS_OK);
    evs_subscription_t* sub = nullptr;
    REQUIRE(evs_subscribe(db.get(), o, &sub, nullptr) == EVS_OK);
    evs_subscribe_options_destroy(o);
    const evs_delivery_t* d = nullptr;
    REQUIRE(evs_subscription_next(sub, 0, &d, nullptr) == EVS_OK);
    REQUIRE(evs_delivery_position(d) == 4);

    CHECK(FailEach([&](char** m) { return evs_subscription_checkpoint(sub, m); },
                   [&] { CHECK(CheckpointOf(db.get(), "reader") == UINT64_MAX); },
                   [&] { CHECK(CheckpointOf(db.get(), "reader") == 4); }) > 0);
    CHECK(FailEach([&](char** m) { return evs_subscription_checkpoint_at(sub, 1, m); },
                   [&] { CHECK(CheckpointOf(db.get(), "reader") == 4); },
                   [&] { CHECK(CheckpointOf(db.get(), "reader") == 1); }) > 0);
    evs_subscription_destroy(sub);

    CHECK(FailEach([&](char** m) { return evs_checkpoint_set(db.get(), "manual", 6, 2, m); },
                   [&] { CHECK(CheckpointOf(db.get(), "manual") == UINT64_MAX); },
                   [&] { CHECK(CheckpointOf(db.get(), "manual") == 2); }) > 0);
    uint64_t position = 99;
    FailEach([&](char** m) { return evs_checkpoint_get(db.get(), "manual", 6, &position, nullptr, m); },
             [&] { CHECK(position == 99); }, [&] { CHECK(position == 2); });
    evs_checkpoint_list_t* list = nullptr;
    CHECK(FailEach([&](char** m) { return evs_checkpoint_list(db.get(), &list, m); },
                   [&] { CHECK(list == nullptr); },
                   [&] {
                     REQUIRE(list != nullptr);
                     CHECK(evs_checkpoint_list_size(list) == 2);
                   }) > 0);
    const char* name = nullptr;
    size_t name_len = 0;
    FailEach([&](char** m) { return evs_checkpoint_list_get(list, 0, &name, &name_len, nullptr, nullptr, m); },
             Nothing, [&] { CHECK(std::string(name, name_len) == "manual"); });
    evs_checkpoint_list_destroy(list);
    FailEach([&](char** m) { return evs_checkpoint_delete(db.get(), "manual", 6, m); },
             [&] { CHECK(CheckpointOf(db.get(), "manual") == 2); },
             [&] { CHECK(CheckpointOf(db.get(), "manual") == UINT64_MAX); });
  }

  TEST_CASE("push subscriptions start, stop and end cleanly at each allocation") {
    SmallStore db;
    std::atomic<int> deliveries{0};
    auto count = [](void* user, const evs_delivery_t*, evs_push_subscription_t*) {
      static_cast<std::atomic<int>*>(user)->fetch_add(1);
      return EVS_OK;
    };
    evs_push_subscription_t* push = nullptr;
    CHECK(FailEach([&](char** m) { return evs_subscribe_push(db.get(), nullptr, count, &deliveries, &push, m); },
                   [&] { CHECK(push == nullptr); }, [&] { CHECK(push != nullptr); }) > 0);
    REQUIRE(push != nullptr);
    FailEach([&](char** m) { return evs_push_subscription_stop(push, m); }, Nothing, Nothing);
    FailEach([&](char** m) { return evs_push_subscription_wait(push, m); }, Nothing,
             [&] { CHECK(evs_push_subscription_done(push) == 1); });
    evs_push_subscription_destroy(push);
    // Only the subscription that started delivered (a failed start ran no
    // callback that is still around to count).
    CHECK(deliveries.load() <= 2);
  }

  TEST_CASE("projections start, answer queries, stop and go cleanly at each allocation") {
    SmallStore db;
    CheckCreateFails(evs_projection_options_create);

    evs_projection_options_t* o = evs_projection_options_create();
    REQUIRE(o != nullptr);
    FailEach([&](char** m) { return evs_projection_options_set_filter_stream(o, "order-1", 7, m); }, Nothing,
             Nothing);
    FailEach([&](char** m) { return evs_projection_options_set_filter_category(o, "order", 5, m); }, Nothing,
             Nothing);
    FailEach([&](char** m) { return evs_projection_options_set_filter_types(o, kTypes, kTypeLens, 2, m); },
             Nothing, Nothing);
    evs_projection_options_destroy(o);
    // evs_projection_run: the next test case.
    evs_projection_t* p = RunTotals(db.get());
    FailEach([&](char** m) { return evs_projection_wait_for(p, 4, 60000, m); }, Nothing, Nothing);

    evs_projection_status_t* st = nullptr;
    CHECK(FailEach([&](char** m) { return evs_projection_status(p, &st, m); }, [&] { CHECK(st == nullptr); },
                   [&] {
                     REQUIRE(st != nullptr);
                     CHECK(evs_projection_status_position(st) == 4);
                     evs_projection_status_destroy(st);
                   }) > 0);
    void* v = nullptr;
    size_t vl = 0;
    CHECK(FailEach([&](char** m) { return evs_projection_get(db.get(), "totals", 6, "t/Placed", 8, &v, &vl, m); },
                   [&] { CHECK(v == nullptr); },
                   [&] {
                     CHECK(std::string(static_cast<char*>(v), vl) == "2");
                     evs_free(v);
                   }) > 0);
    evs_projection_entries_t* entries = nullptr;
    CHECK(FailEach(
              [&](char** m) {
                return evs_projection_scan(db.get(), "totals", 6, "t/", 2, nullptr, 0, EVS_NO_LIMIT, &entries, m);
              },
              [&] { CHECK(entries == nullptr); },
              [&] {
                CHECK(evs_projection_entries_count(entries) == 2);
                evs_projection_entries_destroy(entries);
              }) > 0);
    evs_projection_info_t* info = nullptr;
    CHECK(FailEach([&](char** m) { return evs_projection_info(db.get(), "totals", 6, &info, m); },
                   [&] { CHECK(info == nullptr); },
                   [&] {
                     CHECK(evs_projection_info_position(info) == 4);
                     evs_projection_info_destroy(info);
                   }) > 0);
    evs_projection_list_t* list = nullptr;
    CHECK(FailEach([&](char** m) { return evs_projection_list(db.get(), &list, m); },
                   [&] { CHECK(list == nullptr); },
                   [&] {
                     CHECK(evs_projection_list_size(list) == 1);
                     evs_projection_list_destroy(list);
                   }) > 0);
    FailEach([&](char** m) { return evs_projection_rebuild(p, m); }, Nothing, Nothing);
    FailEach([&](char** m) { return evs_projection_stop(p, m); }, Nothing, Nothing);
    FailEach([&](char** m) { return evs_projection_wait(p, m); }, Nothing, Nothing);
    evs_projection_destroy(p);

    // A failed delete leaves the projection as it was, or (failing after
    // its first commit, which removes the name) gone as a whole: the state
    // left behind is no projection's, and its next start deletes it (as
    // here, for the next attempt).
    CHECK(FailEach([&](char** m) { return evs_projection_delete(db.get(), "totals", 6, m); },
                   [&] {
                     const std::string v = ValueOf(db.get(), "totals", "t/Placed");
                     evs_projection_info_t* i = nullptr;
                     const int rc = evs_projection_info(db.get(), "totals", 6, &i, nullptr);
                     evs_projection_info_destroy(i);
                     CHECK(((v == "2" && rc == EVS_OK) || (v == "-" && rc == EVS_NOT_FOUND)));
                     if (rc == EVS_OK) return;
                     evs_projection_t* again = RunTotals(db.get());
                     REQUIRE(evs_projection_stop(again, nullptr) == EVS_OK);
                     REQUIRE(evs_projection_wait(again, nullptr) == EVS_OK);
                     evs_projection_destroy(again);
                     CHECK(ValueOf(db.get(), "totals", "t/Placed") == "2");
                   },
                   [&] { CHECK(ValueOf(db.get(), "totals", "t/Placed") == "-"); }) > 0);
  }

  // When an allocation fails after evs_projection_run (the C++
  // run_projection, lib/projection/runner.cpp) has claimed the name, the
  // claim is released: a later run of that name is not EVS_BUSY. Each name
  // here is tried once with its n-th allocation failing, then run again.
  TEST_CASE("a failed evs_projection_run leaves no projection and its name free") {
    SmallStore db;
    evs_projection_options_t* o = evs_projection_options_create();
    REQUIRE(o != nullptr);
    REQUIRE(evs_projection_options_set_filter_types(o, kTypes, kTypeLens, 2, nullptr) == EVS_OK);
    std::string name;
    long attempt = 0;
    evs_projection_t* p = nullptr;
    CHECK(FailEach(
              [&](char** m) {
                name = "totals-" + std::to_string(++attempt);
                return evs_projection_run(db.get(), name.data(), name.size(), o, CountTypes, nullptr, &p, m);
              },
              [&] {
                CHECK(p == nullptr);
                evs_projection_t* again = nullptr;
                char* msg = nullptr;
                const int rc = evs_projection_run(db.get(), name.data(), name.size(), o, CountTypes, nullptr,
                                                  &again, &msg);
                const std::string text = msg ? msg : "";
                evs_free(msg);
                evs_projection_destroy(again);
                REQUIRE_MESSAGE(rc == EVS_OK, text);
              },
              [&] { CHECK(p != nullptr); }) > 0);
    evs_projection_destroy(p);
    evs_projection_options_destroy(o);
  }

  TEST_CASE("a projection handler's state functions fail cleanly at each allocation") {
    SmallStore db;
    evs_projection_options_t* o = evs_projection_options_create();
    REQUIRE(o != nullptr);
    REQUIRE(evs_projection_options_set_max_retries(o, 1, nullptr) == EVS_OK);
    HandlerRun run;
    evs_projection_t* p = nullptr;
    REQUIRE(evs_projection_run(db.get(), "states", 6, o, StateUnderFailures, &run, &p, nullptr) == EVS_OK);
    evs_projection_options_destroy(o);
    char* msg = nullptr;
    const int rc = evs_projection_wait_for(p, 4, 60000, &msg);
    const std::string text = msg ? msg : "";
    evs_free(msg);
    CHECK_MESSAGE(rc == EVS_OK, text);
    evs_projection_destroy(p);
    CHECK(run.done.load());
    CHECK(run.failures > 0);
    for (const std::string& problem : run.problems) CHECK_MESSAGE(false, problem);
    // The batch whose handler met the failures committed as a whole.
    CHECK(ValueOf(db.get(), "states", "t/Placed") == "2");
    CHECK(ValueOf(db.get(), "states", "k") == "-");
  }

  TEST_CASE("snapshots and their reads fail cleanly at each allocation and leave nothing open") {
    SmallStore db;
    evs_projection_t* p = RunTotals(db.get());
    REQUIRE(evs_projection_stop(p, nullptr) == EVS_OK);
    REQUIRE(evs_projection_wait(p, nullptr) == EVS_OK);
    evs_projection_destroy(p);

    evs_snapshot_t* snap = nullptr;
    CHECK(FailEach([&](char** m) { return evs_snapshot_create(db.get(), &snap, m); },
                   [&] { CHECK(snap == nullptr); }, [&] { CHECK(evs_snapshot_position(snap) == 4); }) > 0);
    REQUIRE(snap != nullptr);

    using Read = std::function<int(evs_iter_t**, char**)>;
    const Read reads[] = {
        [&](evs_iter_t** it, char** m) { return evs_snapshot_read_all(snap, 0, EVS_FORWARD, EVS_NO_LIMIT, it, m); },
        [&](evs_iter_t** it, char** m) {
          return evs_snapshot_read_stream(snap, "order-1", 7, 0, EVS_FORWARD, EVS_NO_LIMIT, it, m);
        },
        [&](evs_iter_t** it, char** m) {
          return evs_snapshot_read_category(snap, "order", 5, 0, EVS_BACKWARD, EVS_NO_LIMIT, it, m);
        },
        [&](evs_iter_t** it, char** m) {
          return evs_snapshot_read_type(snap, "Placed", 6, 0, EVS_FORWARD, EVS_NO_LIMIT, it, m);
        },
    };
    const uint64_t counts[] = {4, 3, 1, 2};  // the category read goes backward from position 0
    for (size_t i = 0; i < 4; i++) {
      CAPTURE(i);
      evs_iter_t* it = nullptr;
      CHECK(FailEach([&](char** m) { return reads[i](&it, m); }, [&] { CHECK(it == nullptr); },
                     [&] {
                       uint64_t n = 0;
                       for (; evs_iter_valid(it); evs_iter_next(it)) n++;
                       CHECK(n == counts[i]);
                       CHECK(evs_iter_status(it, nullptr) == EVS_OK);
                       evs_iter_destroy(it);
                     }) > 0);
    }
    uint64_t version = 99, position = 99;
    FailEach([&](char** m) { return evs_snapshot_stream_head(snap, "order-1", 7, &version, &position, m); },
             [&] { CHECK((version == 99 && position == 99)); },
             [&] { CHECK((version == 2 && position == 2)); });
    void* v = nullptr;
    size_t vl = 0;
    CHECK(FailEach(
              [&](char** m) { return evs_snapshot_projection_get(snap, "totals", 6, "t/Shipped", 9, &v, &vl, m); },
              [&] { CHECK(v == nullptr); },
              [&] {
                CHECK(std::string(static_cast<char*>(v), vl) == "1");
                evs_free(v);
              }) > 0);
    evs_projection_entries_t* entries = nullptr;
    CHECK(FailEach(
              [&](char** m) {
                return evs_snapshot_projection_scan(snap, "totals", 6, nullptr, 0, "t/Placed", 8, 10, &entries, m);
              },
              [&] { CHECK(entries == nullptr); },
              [&] {
                CHECK(evs_projection_entries_count(entries) == 1);
                evs_projection_entries_destroy(entries);
              }) > 0);
    evs_projection_info_t* info = nullptr;
    CHECK(FailEach([&](char** m) { return evs_snapshot_projection_info(snap, "totals", 6, &info, m); },
                   [&] { CHECK(info == nullptr); },
                   [&] {
                     CHECK(evs_projection_info_position(info) == 4);
                     evs_projection_info_destroy(info);
                   }) > 0);
    evs_snapshot_destroy(snap);
  }
}
