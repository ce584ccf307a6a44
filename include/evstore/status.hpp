// evstore::Status and evstore::Result<T>: how every fallible call reports.
//
// A Status is either OK or carries a code from a small, stable set plus a
// human-readable message. An OK status allocates nothing. Codes are part of the
// stable API (the C API mirrors them) and are never renumbered.
//
// Result<T> holds either a value of T or a non-OK Status.
//
// Thread safety: Status and Result are values; distinct objects may be used
// from different threads freely, one object needs external synchronisation
// only if it is mutated.
#ifndef EVSTORE_STATUS_HPP_
#define EVSTORE_STATUS_HPP_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "evstore/export.hpp"

namespace evstore {

class [[nodiscard]] EVSTORE_EXPORT Status {
 public:
  // Stable numeric codes. Never renumber; append only. Mirrored by EVS_* in
  // the C API.
  enum class Code : int {
    kOk = 0,
    kNotFound = 1,
    kCorruption = 2,
    kNotSupported = 3,
    kInvalidArgument = 4,
    kIOError = 5,
    kWrongExpectedVersion = 6,  // optimistic concurrency check failed
    kDuplicateEvent = 7,        // an event id is stored with other content or elsewhere
    kBusy = 8,                  // the operation cannot run now (e.g. close with open iterators)
    kTimedOut = 9,
    kAborted = 10,
    kClosed = 11,               // the object was closed
  };

  // Sentinel for "no stream" in actual_version().
  static constexpr int64_t kNoStream = -1;
  // Sentinel for "not about one part" in part().
  static constexpr int64_t kNoPart = -1;

  Status() noexcept = default;
  Status(const Status& other);
  Status& operator=(const Status& other);
  Status(Status&&) noexcept = default;
  Status& operator=(Status&&) noexcept = default;
  ~Status() = default;

  static Status OK() { return Status(); }
  static Status NotFound(std::string_view msg) { return Status(Code::kNotFound, msg); }
  static Status Corruption(std::string_view msg) { return Status(Code::kCorruption, msg); }
  static Status NotSupported(std::string_view msg) { return Status(Code::kNotSupported, msg); }
  static Status InvalidArgument(std::string_view msg) {
    return Status(Code::kInvalidArgument, msg);
  }
  static Status IOError(std::string_view msg) { return Status(Code::kIOError, msg); }
  // `actual_version` is the stream's current version, or kNoStream;
  // `part` the index of the transaction part whose expectation failed.
  static Status WrongExpectedVersion(std::string_view msg, int64_t actual_version,
                                     int64_t part = kNoPart) {
    return Status(Code::kWrongExpectedVersion, msg, actual_version, part);
  }
  static Status DuplicateEvent(std::string_view msg) { return Status(Code::kDuplicateEvent, msg); }
  static Status Busy(std::string_view msg) { return Status(Code::kBusy, msg); }
  static Status TimedOut(std::string_view msg) { return Status(Code::kTimedOut, msg); }
  static Status Aborted(std::string_view msg) { return Status(Code::kAborted, msg); }
  static Status Closed(std::string_view msg) { return Status(Code::kClosed, msg); }

  bool ok() const noexcept { return rep_ == nullptr; }
  Code code() const noexcept { return rep_ ? rep_->code : Code::kOk; }
  bool IsNotFound() const noexcept { return code() == Code::kNotFound; }
  bool IsCorruption() const noexcept { return code() == Code::kCorruption; }
  bool IsNotSupported() const noexcept { return code() == Code::kNotSupported; }
  bool IsInvalidArgument() const noexcept { return code() == Code::kInvalidArgument; }
  bool IsIOError() const noexcept { return code() == Code::kIOError; }
  bool IsWrongExpectedVersion() const noexcept { return code() == Code::kWrongExpectedVersion; }
  bool IsDuplicateEvent() const noexcept { return code() == Code::kDuplicateEvent; }
  bool IsBusy() const noexcept { return code() == Code::kBusy; }
  bool IsTimedOut() const noexcept { return code() == Code::kTimedOut; }
  bool IsAborted() const noexcept { return code() == Code::kAborted; }
  bool IsClosed() const noexcept { return code() == Code::kClosed; }

  // The message without the code name; empty when OK.
  std::string_view message() const noexcept {
    return rep_ ? std::string_view(rep_->msg) : std::string_view();
  }
  // For kWrongExpectedVersion: the stream's actual version (kNoStream if the
  // stream does not exist). kNoStream for every other code.
  int64_t actual_version() const noexcept { return rep_ ? rep_->actual_version : kNoStream; }
  // For kWrongExpectedVersion: the index, in the request, of the stream
  // whose expectation failed (0 for a single-stream append). kNoPart for
  // every other code.
  int64_t part() const noexcept { return rep_ ? rep_->part : kNoPart; }

  // "OK" or "<CodeName>: <message>".
  std::string ToString() const;
  // Static name of a code ("OK", "NotFound", ...).
  static const char* CodeName(Code code) noexcept;

 private:
  struct Rep {
    Code code;
    int64_t actual_version;
    int64_t part;
    std::string msg;
  };
  Status(Code code, std::string_view msg, int64_t actual = kNoStream, int64_t part = kNoPart);
  std::unique_ptr<Rep> rep_;
};

// A value of T or a non-OK Status. Accessing value() of an error Result is a
// programming error (checked with an assertion in debug builds).
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::in_place_index<1>, std::move(status)) {}  // NOLINT
  bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  // OK when a value is held.
  Status status() const { return ok() ? Status::OK() : std::get<1>(v_); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &std::get<0>(v_); }
  const T* operator->() const { return &std::get<0>(v_); }
  T& operator*() & { return std::get<0>(v_); }
  const T& operator*() const& { return std::get<0>(v_); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace evstore

#endif  // EVSTORE_STATUS_HPP_
