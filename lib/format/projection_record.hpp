// The `projections` column family (docs/format.md). Keys:
//   'M' name                  -> meta record: which instance of the
//                                projection serves queries, which one is
//                                being rebuilt
//   'I' u64 BE instance id    -> instance record: its checkpoint and counts
//   'S' u64 BE instance id key-> a value of the instance's state (raw bytes
//                                of the user's choosing)
// A projection's name maps to instances, not to keys directly, so an online
// rebuild writes a new instance while the old one keeps serving, and the
// swap is one small write.
//
// Records end in a u64 LE XXH3-64 of the bytes before it, seeded with the
// XXH3-64 of the record's key, so a value copied under another key fails.
//   meta:     u8 format (1) | u64 BE active id | u32 BE active version |
//             u64 BE building id (0: none) | u32 BE building version | sum
//   instance: u8 format (1) | u64 BE position | u64 BE events handled |
//             i64 BE updated_ms | u32 BE version | name bytes | sum
#ifndef EVSTORE_LIB_FORMAT_PROJECTION_RECORD_HPP_
#define EVSTORE_LIB_FORMAT_PROJECTION_RECORD_HPP_

#include <cstdint>
#include <string>
#include <string_view>

#include "evstore/status.hpp"

namespace evstore::format {

inline constexpr uint8_t kProjectionRecordFormat = 1;
inline constexpr char kProjMetaTag = 'M';
inline constexpr char kProjInstanceTag = 'I';
inline constexpr char kProjStateTag = 'S';

struct ProjectionMeta {
  uint64_t active_id = 0;
  uint32_t active_version = 0;
  uint64_t building_id = 0;  // 0: no rebuild under way
  uint32_t building_version = 0;
};

struct ProjectionInstance {
  uint64_t position = 0;  // every selected event before it is folded in
  uint64_t handled = 0;   // events handled since the instance began
  int64_t updated_ms = 0;
  uint32_t version = 0;
  std::string name;
};

std::string ProjMetaKey(std::string_view name);
std::string ProjInstanceKey(uint64_t id);
// The state key of `key` in instance `id`; with an empty key, the prefix of
// every state key of the instance.
std::string ProjStateKey(uint64_t id, std::string_view key);

std::string EncodeProjectionMeta(std::string_view key, const ProjectionMeta& m);
std::string EncodeProjectionInstance(std::string_view key, const ProjectionInstance& r);
// Corruption (naming what) when the value is not a sound record for `key`;
// NotSupported for a newer format.
Status DecodeProjectionMeta(std::string_view key, std::string_view value, ProjectionMeta* out);
Status DecodeProjectionInstance(std::string_view key, std::string_view value, ProjectionInstance* out);

}  // namespace evstore::format

#endif  // EVSTORE_LIB_FORMAT_PROJECTION_RECORD_HPP_
