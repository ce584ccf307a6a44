// The commit leader's scratch state for one group (commit.cpp, prepare.cpp,
// replay.cpp). Internal to lib/log.
#ifndef EVSTORE_LIB_LOG_GROUP_STATE_HPP_
#define EVSTORE_LIB_LOG_GROUP_STATE_HPP_

#include <cstring>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "format/record.hpp"
#include "log/store_impl.hpp"

namespace evstore::internal {

struct UuidHash {
  size_t operator()(const Uuid& u) const noexcept {
    uint64_t a, b;
    std::memcpy(&a, u.bytes, 8);
    std::memcpy(&b, u.bytes + 8, 8);
    return static_cast<size_t>(a ^ (b * 0x9E3779B97F4A7C15ull));
  }
};

// Per-group scratch: tentative heads and ids added earlier in the group.
struct StoreImpl::GroupState {
  struct GroupId {
    uint64_t position;
    std::string_view stream;
    uint64_t version;
    const EventData* event;
  };
  std::unordered_map<std::string_view, StreamHead> heads;
  std::unordered_map<Uuid, GroupId, UuidHash> ids;
  uint64_t next_position = 0;
  uint64_t next_stream_id = 0;
  int64_t now_ms = 0;
  format::RecordEncoder enc;
  std::string value;  // encoding scratch
  std::string key;
  std::vector<StreamHead> tentative;
  rocksdb::WriteBatch batch;
  // Decoded records of the group's events, for the event cache once the
  // group is written (only while subscriptions are open).
  std::vector<std::pair<uint64_t, RecordRef>> fresh;
};

}  // namespace evstore::internal

#endif  // EVSTORE_LIB_LOG_GROUP_STATE_HPP_
