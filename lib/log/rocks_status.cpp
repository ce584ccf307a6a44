#include "log/rocks_status.hpp"

#include <string>

namespace evstore::internal {

namespace {

// RocksDB's code mapped to ours, with `msg`.
Status WithCodeOf(const rocksdb::Status& s, std::string_view msg) {
  if (s.IsCorruption()) return Status::Corruption(msg);
  if (s.IsNotFound()) return Status::NotFound(msg);
  if (s.IsNotSupported()) return Status::NotSupported(msg);
  if (s.IsInvalidArgument()) return Status::InvalidArgument(msg);
  if (s.IsBusy() || s.IsTryAgain()) return Status::Busy(msg);
  return Status::IOError(msg);
}

}  // namespace

Status StatusFromRocks(const rocksdb::Status& s, std::string_view what) {
  return WithCodeOf(s, std::string(what) + ": " + s.ToString());
}

Status StatusFromRocks(const rocksdb::Status& s) {
  if (s.ok()) return Status::OK();
  return WithCodeOf(s, s.ToString());
}

Status InContext(const Status& s, std::string_view what) {
  if (s.ok()) return s;
  std::string msg = std::string(what) + ": " + std::string(s.message());
  switch (s.code()) {
    case Status::Code::kCorruption: return Status::Corruption(msg);
    case Status::Code::kNotFound: return Status::NotFound(msg);
    case Status::Code::kNotSupported: return Status::NotSupported(msg);
    case Status::Code::kInvalidArgument: return Status::InvalidArgument(msg);
    case Status::Code::kBusy: return Status::Busy(msg);
    default: return Status::IOError(msg);
  }
}

}  // namespace evstore::internal
