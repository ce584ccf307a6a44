// TimerWheel: the cache policy's expiry schedule. O(1) schedule and
// unschedule, and an advance that touches each node once per level it
// cascades through (O(1) amortised).
//
// Thread safety: none; one wheel belongs to one cache shard's policy.
//
// Not API: part of the implementation of evstore::TieredCache
// (evstore/cache.hpp), installed only because the template needs it. No
// compatibility promise: anything here may change in any release. Include
// evstore/cache.hpp instead.
#ifndef EVSTORE_DETAIL_TIMER_WHEEL_HPP_
#define EVSTORE_DETAIL_TIMER_WHEEL_HPP_

#include <algorithm>
#include <cstdint>

#include "evstore/detail/policy_node.hpp"

namespace evstore::cache_internal {

// Hierarchical timer wheel (levels of 64 buckets spanning ~1.07 s, ~1.15 min,
// ~1.22 h and ~3.3 d). Nodes due within one level-0 bucket are found at most
// one bucket late (~1.07 s); lookups compare exact deadlines.
class TimerWheel {
 public:
  static constexpr int kLevels = 4;
  static constexpr int kBuckets = 64;
  explicit TimerWheel(int64_t now = 0) : now_(now) {}
  void Schedule(PolicyNode* n);    // REQUIRES: n->deadline_ns != kNever, not scheduled
  void Unschedule(PolicyNode* n);  // no-op if not scheduled
  // Moves nodes due at `now` to `due` (whose links it reuses, bucket=-2):
  // all of them with include_current, else those in buckets whose whole time
  // range has passed (found at most one bucket span late, O(1) amortised).
  void Advance(int64_t now, bool include_current, TimerList* due);
  bool empty() const { return scheduled_ == 0; }

 private:
  // Bucket span per level is 2^shift ns; a level covers 64 buckets.
  static constexpr int kShift[kLevels] = {30, 36, 42, 48};
  static constexpr int16_t kDue = -2;
  TimerList* BucketFor(int64_t deadline, int16_t* index);
  TimerList buckets_[kLevels * kBuckets];
  int64_t now_;
  uint64_t scheduled_ = 0;
};

inline TimerList* TimerWheel::BucketFor(int64_t deadline, int16_t* index) {
  int64_t delta = deadline > now_ ? deadline - now_ : 0;
  int level = 0;
  while (level < kLevels - 1 && delta >= (int64_t{1} << (kShift[level] + 6))) level++;
  int b = static_cast<int>((static_cast<uint64_t>(deadline) >> kShift[level]) & (kBuckets - 1));
  *index = static_cast<int16_t>(level * kBuckets + b);
  return &buckets_[*index];
}

inline void TimerWheel::Schedule(PolicyNode* n) {
  int16_t index;
  BucketFor(n->deadline_ns, &index)->push_front(n);
  n->bucket = index;
  scheduled_++;
}

inline void TimerWheel::Unschedule(PolicyNode* n) {
  if (n->bucket < 0) return;
  buckets_[n->bucket].remove(n);
  n->bucket = -1;
  scheduled_--;
}

inline void TimerWheel::Advance(int64_t now, bool include_current, TimerList* due) {
  if (now < now_) return;
  int64_t prev = now_;
  now_ = now;
  if (scheduled_ == 0) return;
  for (int level = 0; level < kLevels; level++) {
    // Visit the buckets whose time range ended since the previous advance;
    // with include_current also the current one, whose nodes may not be due
    // yet (rescanned, so only explicit cleanups do that).
    int64_t from = prev >> kShift[level], to = now >> kShift[level];
    int64_t count = std::min<int64_t>(to - from + (include_current ? 1 : 0), kBuckets);
    for (int64_t t = 0; t < count; t++) {
      int idx = level * kBuckets + static_cast<int>((from + t) & (kBuckets - 1));
      TimerList list = buckets_[idx];
      buckets_[idx] = TimerList();
      for (PolicyNode* n = list.head; n != nullptr;) {
        PolicyNode* next = n->tnext;
        n->tprev = n->tnext = nullptr;
        scheduled_--;
        if (n->deadline_ns <= now) {
          due->push_front(n);
          n->bucket = kDue;
        } else {
          Schedule(n);
        }
        n = next;
      }
    }
  }
}

}  // namespace evstore::cache_internal

#endif  // EVSTORE_DETAIL_TIMER_WHEEL_HPP_
