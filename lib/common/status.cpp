#include "evstore/status.hpp"

namespace evstore {

Status::Status(Code code, std::string_view msg, int64_t actual, int64_t part)
    : rep_(std::make_unique<Rep>(Rep{code, actual, part, std::string(msg)})) {}

Status::Status(const Status& other)
    : rep_(other.rep_ ? std::make_unique<Rep>(*other.rep_) : nullptr) {}

Status& Status::operator=(const Status& other) {
  if (this != &other) rep_ = other.rep_ ? std::make_unique<Rep>(*other.rep_) : nullptr;
  return *this;
}

const char* Status::CodeName(Code code) noexcept {
  switch (code) {
    case Code::kOk: return "OK";
    case Code::kNotFound: return "NotFound";
    case Code::kCorruption: return "Corruption";
    case Code::kNotSupported: return "NotSupported";
    case Code::kInvalidArgument: return "InvalidArgument";
    case Code::kIOError: return "IOError";
    case Code::kWrongExpectedVersion: return "WrongExpectedVersion";
    case Code::kDuplicateEvent: return "DuplicateEvent";
    case Code::kBusy: return "Busy";
    case Code::kTimedOut: return "TimedOut";
    case Code::kAborted: return "Aborted";
    case Code::kClosed: return "Closed";
  }
  return "Unknown";
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string s = CodeName(rep_->code);
  if (!rep_->msg.empty()) {
    s += ": ";
    s += rep_->msg;
  }
  return s;
}

}  // namespace evstore
