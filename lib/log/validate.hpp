// Validation of events against a store's limits: the one check every path
// that commits events goes through (appends, transactions, saga steps).
#ifndef EVSTORE_LIB_LOG_VALIDATE_HPP_
#define EVSTORE_LIB_LOG_VALIDATE_HPP_

#include <cstddef>
#include <span>

#include "evstore/options.hpp"
#include "evstore/status.hpp"
#include "log/store_impl.hpp"

namespace evstore::internal {

// Checks `parts` against the limits in `o`: at least one stream, at most
// max_streams_per_transaction, each stream named once with a valid name and
// at least one event, every event with a valid type and content type and
// within max_event_bytes, no supplied event id twice in the commit, and the
// totals within max_events_per_append and max_append_bytes. On success
// *bytes is the commit's approximate size. InvalidArgument naming the first
// problem otherwise.
Status ValidateParts(std::span<const PartRef> parts, const Options& o, size_t* bytes);

}  // namespace evstore::internal

#endif  // EVSTORE_LIB_LOG_VALIDATE_HPP_
