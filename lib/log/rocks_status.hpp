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
// REQUIRES: !s.ok().
Status StatusFromRocks(const rocksdb::Status& s, std::string_view what);

// The same mapping with RocksDB's message alone; OK for OK. The log layer's
// reads for other components (cf_cursor.hpp) report their errors this way,
// and the caller adds what it was reading with InContext.
Status StatusFromRocks(const rocksdb::Status& s);

// `s` with "<what>: " before its message and its code kept, so that
// InContext(StatusFromRocks(r), what) == StatusFromRocks(r, what); OK for
// OK. REQUIRES: s has one of the codes StatusFromRocks produces.
Status InContext(const Status& s, std::string_view what);

}  // namespace evstore::internal

#endif  // EVSTORE_LIB_LOG_ROCKS_STATUS_HPP_
