// Hierarchical timer wheel: O(1) schedule and unschedule, and an advance that
// touches each node once per level it cascades through (O(1) amortised).
#include <algorithm>

#include "evstore/cache_policy.hpp"

namespace evstore::cache_internal {
namespace {

// Bucket span per level is 2^shift ns; a level covers 64 buckets.
constexpr int kShift[TimerWheel::kLevels] = {30, 36, 42, 48};
constexpr int16_t kDue = -2;

}  // namespace

TimerList* TimerWheel::BucketFor(int64_t deadline, int16_t* index) {
  int64_t delta = deadline > now_ ? deadline - now_ : 0;
  int level = 0;
  while (level < kLevels - 1 && delta >= (int64_t{1} << (kShift[level] + 6))) level++;
  int b = static_cast<int>((static_cast<uint64_t>(deadline) >> kShift[level]) & (kBuckets - 1));
  *index = static_cast<int16_t>(level * kBuckets + b);
  return &buckets_[*index];
}

void TimerWheel::Schedule(PolicyNode* n) {
  int16_t index;
  BucketFor(n->deadline_ns, &index)->push_front(n);
  n->bucket = index;
  scheduled_++;
}

void TimerWheel::Unschedule(PolicyNode* n) {
  if (n->bucket < 0) return;
  buckets_[n->bucket].remove(n);
  n->bucket = -1;
  scheduled_--;
}

void TimerWheel::Advance(int64_t now, bool include_current, TimerList* due) {
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
