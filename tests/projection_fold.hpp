// A projection handler the tests can check against the log: it counts events
// by type and in total, so its state at checkpoint P must equal the counts of
// the log's events before P, exactly.
#ifndef EVSTORE_TESTS_PROJECTION_FOLD_HPP_
#define EVSTORE_TESTS_PROJECTION_FOLD_HPP_

#include <map>
#include <string>

#include "evstore/projection.hpp"
#include "evstore/store.hpp"

namespace evtest {

inline evstore::Status Increment(evstore::ProjectionState& st, const std::string& key) {
  auto cur = st.get(key);
  if (!cur.ok() && !cur.status().IsNotFound()) return cur.status();
  uint64_t n = cur.ok() ? std::stoull(*cur) : 0;
  return st.put(key, std::to_string(n + 1));
}

inline evstore::Status CountByType(const evstore::RecordedEvent& e, evstore::ProjectionState& st) {
  evstore::Status s = Increment(st, "count/" + e.type);
  if (!s.ok()) return s;
  return Increment(st, "total");
}

#ifdef DOCTEST_LIBRARY_INCLUDED
// The stored state of CountByType projection `name` equals the fold of the
// log before its checkpoint: each event counted exactly once.
inline void CheckFoldMatchesLog(evstore::Store& s, const std::string& name) {
  auto info = s.projection_info(name);
  REQUIRE_MESSAGE(info.ok(), info.status().ToString());
  std::map<std::string, uint64_t> want;
  uint64_t total = 0;
  auto it = s.read_all(0, evstore::Direction::kForward, info->position);
  REQUIRE(it.ok());
  for (; it->Valid(); it->Next()) {
    want["count/" + std::string(it->value().type)]++;
    total++;
  }
  REQUIRE(it->status().ok());
  REQUIRE(total == info->position);
  auto state = s.projection_scan(name, "", {}, 1u << 20);
  REQUIRE_MESSAGE(state.ok(), state.status().ToString());
  std::map<std::string, uint64_t> got;
  for (const auto& e : *state) got[e.key] = std::stoull(e.value);
  if (total > 0) want["total"] = total;
  CHECK(got == want);
}

#endif  // DOCTEST_LIBRARY_INCLUDED

}  // namespace evtest

#endif  // EVSTORE_TESTS_PROJECTION_FOLD_HPP_
