// Shared plumbing of the C API (include/evstore/evstore.h): the structs
// behind its opaque handles, status and message conversion, and the guard
// that keeps C++ exceptions from crossing into C.
#ifndef EVSTORE_LIB_CAPI_CAPI_INTERNAL_HPP_
#define EVSTORE_LIB_CAPI_CAPI_INTERNAL_HPP_

#include <chrono>
#include <cstdint>
#include <exception>
#include <initializer_list>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "evstore/cache_stats.hpp"
#include "evstore/command.h"
#include "evstore/evstore.h"
#include "evstore/event.hpp"
#include "evstore/options.hpp"
#include "evstore/status.hpp"
#include "evstore/subscription.hpp"
#include "evstore/upcast.hpp"

namespace evstore {
class Store;
}  // namespace evstore

namespace evstore::capi {

// Writes a message for `code` to *errmsg (if errmsg is not NULL) and returns
// `code`. Never throws: without memory for the message, *errmsg is NULL.
int Fail(char** errmsg, int code, std::string_view msg) noexcept;
// The same with the message in parts, joined with malloc alone, so that the
// paths that report failures (out of memory among them) allocate nothing
// that could throw.
int Fail(char** errmsg, int code, std::initializer_list<std::string_view> parts) noexcept;

// EVS_OK (clearing *errmsg) or the status's code with its message.
int FromStatus(const Status& s, char** errmsg) noexcept;

// A Status for a C status code (unknown codes become Aborted).
Status ToStatus(int code, std::string_view msg);

// Runs `f` (returning an EVS_* code), clearing *errmsg first and turning any
// exception into EVS_NO_MEMORY or EVS_ABORTED.
template <typename F>
int Guard(char** errmsg, F&& f) noexcept {
  if (errmsg) *errmsg = nullptr;
  try {
    return f();
  } catch (const std::bad_alloc&) {
    return Fail(errmsg, EVS_NO_MEMORY, "out of memory");
  } catch (const std::exception& e) {
    return Fail(errmsg, EVS_ABORTED, {"internal error: ", e.what()});
  } catch (...) {
    return Fail(errmsg, EVS_ABORTED, "internal error");
  }
}

// Checks a pointer + length buffer; false (with a message naming `what`)
// when the pointer is NULL and the length is not 0.
bool CheckBuffer(const void* p, size_t len, const char* what, char** errmsg, int* rc) noexcept;

// An EVS_EXPECT_* constant or exact version; nullopt for other values.
std::optional<ExpectedVersion> ToExpected(int64_t expected);

// Appends copies of events[0..count-1] to *out; EVS_OK or EVS_INVALID_ARGUMENT.
// REQUIRES: events is not NULL when count > 0.
int CopyEvents(const evs_event_t* events, size_t count, std::vector<EventData>* out, char** errmsg);

// The C++ store behind a handle. REQUIRES: store is not NULL.
Store& StoreOf(evs_store_t* store);

// Copies C++ cache statistics into their C form.
void ToC(const CacheStats& in, evs_cache_stats_t* out) noexcept;

inline std::string_view View(const void* p, size_t len) {
  return len ? std::string_view(static_cast<const char*>(p), len) : std::string_view();
}

// The output side of a byte accessor: v's bytes with *len (when wanted) its
// length, never NULL for a valid object ("" for an empty view) ...
inline const char* Bytes(std::string_view v, size_t* len) noexcept {
  if (len) *len = v.size();
  return v.data() ? v.data() : "";
}
// ... and NULL with *len = 0 for a NULL handle or an index out of range.
inline const char* NoBytes(size_t* len) noexcept {
  if (len) *len = 0;
  return nullptr;
}

// A duration in ms from C. Longer ones (about 35 years) are clamped, so that
// adding them to a clock reading cannot overflow.
inline constexpr uint64_t kMaxMs = uint64_t{1} << 40;
inline std::chrono::milliseconds Ms(uint64_t ms) noexcept {
  return std::chrono::milliseconds(static_cast<int64_t>(ms > kMaxMs ? kMaxMs : ms));
}

// Fails with EVS_INVALID_ARGUMENT naming `what` when p is NULL.
#define EVS_CHECK_ARG(p, what)                                                  \
  do {                                                                          \
    if ((p) == nullptr)                                                         \
      return ::evstore::capi::Fail(errmsg, EVS_INVALID_ARGUMENT, what " is NULL"); \
  } while (0)

#define EVS_CHECK_BUF(p, len, what)                                       \
  do {                                                                    \
    int evs_rc_;                                                          \
    if (!::evstore::capi::CheckBuffer((p), (len), what, errmsg, &evs_rc_)) \
      return evs_rc_;                                                     \
  } while (0)

}  // namespace evstore::capi

// Iterator handles for reads outside capi_store.cpp (snapshots); evs_iter_t
// is defined there.
namespace evstore {
class EventIterator;
}  // namespace evstore
namespace evstore::capi {
evs_iter_t* NewIter(EventIterator it);

// The filter of a set_filter_types setter: `count` types as pointer and
// length pairs (convention 2), copied.
inline int TypesFilter(const char* const* types, const size_t* type_lens, size_t count, char** errmsg,
                       SubscriptionFilter* out) {
  EVS_CHECK_BUF(types, count, "types");
  EVS_CHECK_BUF(type_lens, count, "type_lens");
  std::vector<std::string> copy;
  copy.reserve(count);
  for (size_t i = 0; i < count; i++) {
    if (types[i] == nullptr && type_lens[i] != 0)
      return Fail(errmsg, EVS_INVALID_ARGUMENT,
                  {"types[", std::to_string(i), "] is NULL with a non-zero length"});
    copy.emplace_back(View(types[i], type_lens[i]));
  }
  *out = SubscriptionFilter::Types(std::move(copy));
  return EVS_OK;
}
}  // namespace evstore::capi

// Store options (evs_options_*): set in capi_store.cpp, and the log hook in
// capi_metrics.cpp.
struct evs_options_t {
  evstore::Options options;
};

// Upcaster registries (include/evstore/command.h), shared by aggregates and
// projections from C.
struct evs_upcasters_t {
  evstore::Upcasters up;
};
namespace evstore::capi {
// A copy of the registry for an aggregate or a projection; null when there
// is none or it is empty.
std::shared_ptr<const Upcasters> CopyUpcasters(const evs_upcasters_t* upcasters);
}  // namespace evstore::capi

#endif  // EVSTORE_LIB_CAPI_CAPI_INTERNAL_HPP_
