// C API: status codes, messages, versions and event ids.
#include <cstdlib>
#include <cstring>

#include "capi/capi_internal.hpp"
#include "evstore/event.hpp"
#include "evstore/version.hpp"

namespace evstore::capi {

using Code = Status::Code;
static_assert(EVS_OK == static_cast<int>(Code::kOk));
static_assert(EVS_NOT_FOUND == static_cast<int>(Code::kNotFound));
static_assert(EVS_CORRUPTION == static_cast<int>(Code::kCorruption));
static_assert(EVS_NOT_SUPPORTED == static_cast<int>(Code::kNotSupported));
static_assert(EVS_INVALID_ARGUMENT == static_cast<int>(Code::kInvalidArgument));
static_assert(EVS_IO_ERROR == static_cast<int>(Code::kIOError));
static_assert(EVS_WRONG_EXPECTED_VERSION == static_cast<int>(Code::kWrongExpectedVersion));
static_assert(EVS_DUPLICATE_EVENT == static_cast<int>(Code::kDuplicateEvent));
static_assert(EVS_BUSY == static_cast<int>(Code::kBusy));
static_assert(EVS_TIMED_OUT == static_cast<int>(Code::kTimedOut));
static_assert(EVS_ABORTED == static_cast<int>(Code::kAborted));
static_assert(EVS_CLOSED == static_cast<int>(Code::kClosed));
static_assert(EVS_NO_MEMORY > EVS_CLOSED);

int Fail(char** errmsg, int code, std::string_view msg) noexcept {
  return Fail(errmsg, code, {msg});
}

int Fail(char** errmsg, int code, std::initializer_list<std::string_view> parts) noexcept {
  if (!errmsg) return code;
  size_t n = 0;
  for (std::string_view p : parts) n += p.size();
  char* m = static_cast<char*>(std::malloc(n + 1));
  if (m) {
    char* out = m;
    for (std::string_view p : parts) {
      if (!p.empty()) std::memcpy(out, p.data(), p.size());
      out += p.size();
    }
    *out = '\0';
  }
  *errmsg = m;
  return code;
}

int FromStatus(const Status& s, char** errmsg) noexcept {
  if (s.ok()) {
    if (errmsg) *errmsg = nullptr;
    return EVS_OK;
  }
  int code = static_cast<int>(s.code());
  // As Status::ToString, which would need a std::string.
  std::string_view name = Status::CodeName(s.code()), msg = s.message();
  if (msg.empty()) return Fail(errmsg, code, {name});
  return Fail(errmsg, code, {name, ": ", msg});
}

Status ToStatus(int code, std::string_view msg) {
  switch (code) {
    case EVS_NOT_FOUND: return Status::NotFound(msg);
    case EVS_CORRUPTION: return Status::Corruption(msg);
    case EVS_NOT_SUPPORTED: return Status::NotSupported(msg);
    case EVS_INVALID_ARGUMENT: return Status::InvalidArgument(msg);
    case EVS_IO_ERROR: return Status::IOError(msg);
    case EVS_WRONG_EXPECTED_VERSION: return Status::WrongExpectedVersion(msg, Status::kNoStream);
    case EVS_DUPLICATE_EVENT: return Status::DuplicateEvent(msg);
    case EVS_BUSY: return Status::Busy(msg);
    case EVS_TIMED_OUT: return Status::TimedOut(msg);
    case EVS_CLOSED: return Status::Closed(msg);
    default: return Status::Aborted(msg);
  }
}

bool CheckBuffer(const void* p, size_t len, const char* what, char** errmsg, int* rc) noexcept {
  if (p != nullptr || len == 0) return true;
  *rc = Fail(errmsg, EVS_INVALID_ARGUMENT, {what, " is NULL with a non-zero length"});
  return false;
}

void ToC(const CacheStats& in, evs_cache_stats_t* out) noexcept {
  auto tier = [](const CacheTierStats& t) {
    return evs_cache_tier_stats_t{t.hits,       t.misses,    t.evictions, t.expirations,
                                  t.promotions, t.demotions, t.entries,   t.bytes};
  };
  out->l1 = tier(in.l1);
  out->l2 = tier(in.l2);
  out->misses = in.misses;
  out->loads = in.loads;
  out->load_errors = in.load_errors;
  out->rejections = in.rejections;
}

}  // namespace evstore::capi

using evstore::Uuid;
using evstore::capi::Fail;
using evstore::capi::Guard;

extern "C" {

const char* evs_errstr(int code) {
  switch (code) {
    case EVS_OK: return "ok";
    case EVS_NOT_FOUND: return "not found";
    case EVS_CORRUPTION: return "corruption";
    case EVS_NOT_SUPPORTED: return "not supported";
    case EVS_INVALID_ARGUMENT: return "invalid argument";
    case EVS_IO_ERROR: return "I/O error";
    case EVS_WRONG_EXPECTED_VERSION: return "wrong expected version";
    case EVS_DUPLICATE_EVENT: return "duplicate event";
    case EVS_BUSY: return "busy";
    case EVS_TIMED_OUT: return "timed out";
    case EVS_ABORTED: return "aborted";
    case EVS_CLOSED: return "closed";
    case EVS_NO_MEMORY: return "out of memory";
    default: return "unknown status code";
  }
}

void evs_free(void* ptr) { std::free(ptr); }

// One source for both APIs: the C++ calls compiled into the library.
int evs_version(void) { return evstore::version().number(); }

const char* evs_version_string(void) { return evstore::version_string(); }

int evs_uuid_generate(uint8_t* out, char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(out, "out");
    Uuid u = Uuid::Random();
    std::memcpy(out, u.bytes, sizeof u.bytes);
    return EVS_OK;
  });
}

int evs_uuid_parse(const char* text, size_t len, uint8_t* out, char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_BUF(text, len, "text");
    EVS_CHECK_ARG(out, "out");
    auto u = Uuid::Parse(evstore::capi::View(text, len));
    if (!u) return Fail(errmsg, EVS_INVALID_ARGUMENT, "not a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)");
    std::memcpy(out, u->bytes, sizeof u->bytes);
    return EVS_OK;
  });
}

int evs_uuid_format(const uint8_t* id, char* out, char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(id, "id");
    EVS_CHECK_ARG(out, "out");
    Uuid u;
    std::memcpy(u.bytes, id, sizeof u.bytes);
    std::string s = u.ToString();
    std::memcpy(out, s.c_str(), s.size() + 1);
    return EVS_OK;
  });
}

}  // extern "C"
