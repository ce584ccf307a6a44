// evstore::Status from a RocksDB status: one mapping for every component
// that talks to RocksDB through the log layer.
#ifndef EVSTORE_LIB_LOG_ROCKS_STATUS_HPP_
#define EVSTORE_LIB_LOG_ROCKS_STATUS_HPP_

#include <rocksdb/status.h>

#include <string_view>

#include "evstore/status.hpp"

namespace evstore::internal {

// "<what>: <RocksDB's message>", with RocksDB's code mapped to ours
// (Corruption, NotFound, NotSupported, InvalidArgument, Busy for Busy and
// TryAgain, IOError for everything else).
Status StatusFromRocks(const rocksdb::Status& s, std::string_view what);

}  // namespace evstore::internal

#endif  // EVSTORE_LIB_LOG_ROCKS_STATUS_HPP_
