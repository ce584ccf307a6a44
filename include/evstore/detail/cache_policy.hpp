// CachePolicy: the replacement, tiering and expiry policy of one shard of
// evstore::TieredCache, every method O(1) amortised.
//
// Adaptive W-TinyLFU over both tiers. A new entry enters the window (plain
// LRU). When the window is over its share, its LRU entry becomes a candidate
// for the main space (segmented LRU: probation + protected) and is admitted
// only if the frequency sketch rates it above the main space's victim, so
// one-off scans pass through the window without flushing the hot set. Ghost
// entries of recent evictions from each side steer the window share (see
// Adapt): recency-heavy workloads grow the window (LRU-like), loops and
// scans shrink it (LFU-like). Tier placement is orthogonal: L1 holds the
// most recently used entries in decoded form (its demotion order is an
// L1Clock), the rest live in L2 in encoded form. A timer wheel schedules
// expiry, and the policy keeps the shard's statistics.
//
// Thread safety: none. A CachePolicy belongs to one shard and is used only
// under that shard's mutex (readers record their hits in buffers that the
// mutex holder replays through Touch, which writes only policy fields).
//
// Not API: part of the implementation of evstore::TieredCache
// (evstore/cache.hpp), installed only because the template needs it. No
// compatibility promise: anything here may change in any release. Include
// evstore/cache.hpp instead.
#ifndef EVSTORE_DETAIL_CACHE_POLICY_HPP_
#define EVSTORE_DETAIL_CACHE_POLICY_HPP_

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <new>

#include "evstore/cache_stats.hpp"
#include "evstore/detail/frequency_sketch.hpp"
#include "evstore/detail/ghost_list.hpp"
#include "evstore/detail/l1_clock.hpp"
#include "evstore/detail/policy_node.hpp"
#include "evstore/detail/timer_wheel.hpp"

namespace evstore::cache_internal {

// Tuning constants of the default policy; fixed (no per-workload tuning).
struct PolicyParams {
  double initial_window = 0.01;  // window share of the capacity at start
  double protected_share = 0.80; // protected share of the main space
  double ghost_share = 0.05;     // each ghost list's size, share of the entries
};

// The replacement, tiering and expiry policy of one shard. See the header
// comment. Capacities are in weigher units; a tier of capacity 0 is disabled.
class CachePolicy {
 public:
  CachePolicy(uint64_t l1_capacity, uint64_t l2_capacity, int64_t l1_ttl_ns, int64_t l2_ttl_ns,
              int64_t now_ns, PolicyParams params = PolicyParams());
  CachePolicy(const CachePolicy&) = delete;
  CachePolicy& operator=(const CachePolicy&) = delete;

  uint64_t l1_capacity() const { return l1_cap_; }
  uint64_t l2_capacity() const { return l2_cap_; }

  // Exceptions: Reserve, Insert, Rewrite and MoveToTier may throw
  // std::bad_alloc, with nothing changed (the policy's other allocations,
  // growing the sketch and the ghosts, are skipped when memory runs out);
  // every other method allocates nothing and does not throw.
  //
  // Makes room so that the next Insert, Rewrite or MoveToTier into `tier`
  // cannot throw.
  void Reserve(Tier tier) {
    if (tier == Tier::kL1) l1_clock_.Reserve();
  }
  // Adds a new entry in `tier` with weight `charge`, written at `now`; its
  // ttl_ns (0 = none) is set before the call, as for Rewrite.
  void Insert(PolicyNode* n, Tier tier, uint64_t charge, int64_t now);
  // Records an overwrite of an existing entry: new weight, new write time.
  void Rewrite(PolicyNode* n, Tier tier, uint64_t charge, int64_t now);
  // Moves an entry between tiers (promotion or demotion) with its new weight.
  void MoveToTier(PolicyNode* n, Tier tier, uint64_t charge);
  // Forgets the entry (erase, eviction, expiry).
  void Remove(PolicyNode* n);
  // Records a hit on `n`: statistics and Touch.
  void RecordHit(PolicyNode* n);
  // Counts a hit in `tier` without touching the policy order.
  void CountHit(Tier tier);
  // The policy side of a hit: frequency and recency updates, no statistics.
  // Writes only policy fields (links, queue, flags), never the deadline or
  // tier, so lookups may run while it does.
  void Touch(PolicyNode* n);
  // Starts loading what Touch(n) will use beyond n itself (the sketch's
  // counters, the queue neighbours), so that a drain replaying many hits
  // waits for their cache misses together rather than one after another.
  void PrefetchTouch(const PolicyNode* n) const;
  // Loads what inserting an entry with `hash` and making room for it will
  // read: the key's sketch counters and ghost slots, the queue tails that
  // compete for eviction with their counters, and L1's next demotion
  // candidates. For a writer to call before it stops the shard's readers,
  // so that they do not wait through these cache misses.
  void WarmForInsert(uint64_t hash) const;
  // Records a lookup that found nothing.
  void RecordMiss();

  bool Expired(const PolicyNode* n, int64_t now) const { return now >= n->deadline_ns; }
  // Advances the timer wheel and returns one entry due at `now`, or nullptr.
  // The caller removes it (Remove) before asking for the next one. `exact`
  // also finds entries in the current wheel bucket (used by cleanup()).
  PolicyNode* NextExpired(int64_t now, bool exact);
  bool has_timers() const { return !wheel_.empty() || !due_.empty(); }

  // The entry to evict next to make room, or nullptr if the shard is empty.
  // May move entries between queues (admission contest).
  PolicyNode* SelectVictim();
  // Records that `n`, chosen by SelectVictim, is being evicted.
  void OnEvict(PolicyNode* n);
  // The next L1 entry to demote: second chance over L1's insertion order
  // (see L1Clock). REQUIRES: L1 is not empty.
  PolicyNode* L1Victim() { return l1_clock_.Victim(&hand_steps_); }

  // Policy updates so far (Insert, Rewrite, Touch); never reset.
  uint64_t touches() const { return touches_; }
  // Entries L1Victim has passed (bits cleared and victims chosen); never
  // reset. An entry passed at one count comes round again only after about
  // L1's entries more.
  uint64_t hand_steps() const { return hand_steps_; }
  uint64_t capacity() const { return capacity_; }
  uint64_t total_charge() const { return window_charge_ + probation_charge_ + protected_charge_; }
  uint64_t l1_charge() const { return tier_[0].bytes; }
  uint64_t l2_charge() const { return tier_[1].bytes; }
  uint64_t window_max() const { return window_max_; }

  CacheTierStats& stats(Tier t) { return tier_[t == Tier::kL1 ? 0 : 1]; }
  const CacheTierStats& stats(Tier t) const { return tier_[t == Tier::kL1 ? 0 : 1]; }

 private:
  static constexpr uint64_t kInitialSketchEntries = 1024;
  // Counts n (weight n->charge) in n->tier and, in L1, adds it to the clock
  // (the clock's allocation: REQUIRES Reserve(n->tier) first).
  void EnterTier(PolicyNode* n) {
    CacheTierStats& s = stats(n->tier);
    s.entries++;
    s.bytes += n->charge;
    if (n->tier == Tier::kL1) l1_clock_.Push(n);
  }
  // The reverse of EnterTier; allocates nothing.
  void LeaveTier(PolicyNode* n) {
    CacheTierStats& s = stats(n->tier);
    s.entries--;
    s.bytes -= n->charge;
    if (n->tier == Tier::kL1) l1_clock_.Remove(n);
  }
  static int64_t SaturatingAdd(int64_t a, int64_t b) { return a > kNever - b ? kNever : a + b; }
  void Enqueue(PolicyNode* n, Queue q);
  void CountAccess(const PolicyNode* n);  // the sketch's increment and touches_
  void Dequeue(PolicyNode* n);
  QueueList& QueueOf(Queue q);
  uint64_t& ChargeOf(Queue q);
  void Schedule(PolicyNode* n);
  void SetLimits();
  void Adapt(PolicyNode* inserted);
  bool Admit(uint64_t candidate, uint64_t victim);
  void EnsureSketch();
  [[gnu::noinline]] void GrowSketch() {  // rare: kept out of Insert
    // A larger sketch only sharpens admission: without memory for it the
    // smaller one goes on, and the next insertion tries again.
    try {
      sketch_.Resize(std::min(capacity_, 2 * entries_));
    } catch (const std::bad_alloc&) {
    }
  }

  PolicyParams params_;
  uint64_t l1_cap_, l2_cap_, capacity_;
  int64_t l1_ttl_, l2_ttl_;
  bool any_ttl_;  // a tier TTL, or some entry was given one

  QueueList window_, probation_, protected_;
  uint64_t window_charge_ = 0, probation_charge_ = 0, protected_charge_ = 0;
  uint64_t window_max_ = 0, protected_max_ = 0;
  L1Clock l1_clock_;
  uint64_t entries_ = 0;

  FrequencySketch sketch_;
  uint64_t touches_ = 0;
  uint64_t hand_steps_ = 0;
  uint64_t rng_ = 0x9E3779B97F4A7C15ull;

  double window_target_ = 0;  // adapted window size, weigher units
  // Recent ghost hits of each side, halved as they add up (see Adapt).
  double window_evidence_ = 0, main_evidence_ = 0;

  TimerWheel wheel_;
  TimerList due_;

  GhostList window_ghost_, main_ghost_;
  uint64_t ghost_sized_for_ = 0;

  CacheTierStats tier_[2];
};

inline CachePolicy::CachePolicy(uint64_t l1_capacity, uint64_t l2_capacity, int64_t l1_ttl_ns,
                         int64_t l2_ttl_ns, int64_t now_ns, PolicyParams params)
    : params_(params),
      l1_cap_(l1_capacity),
      l2_cap_(l2_capacity),
      capacity_(l1_capacity + l2_capacity),
      l1_ttl_(l1_ttl_ns),
      l2_ttl_(l2_ttl_ns),
      any_ttl_(l1_ttl_ns > 0 || l2_ttl_ns > 0),
      wheel_(now_ns) {
  window_target_ = std::floor(params_.initial_window * static_cast<double>(capacity_));
  SetLimits();
  sketch_.Resize(std::min<uint64_t>(std::max<uint64_t>(capacity_, 1), kInitialSketchEntries));
}

inline QueueList& CachePolicy::QueueOf(Queue q) {
  return q == Queue::kWindow ? window_ : q == Queue::kProbation ? probation_ : protected_;
}

inline uint64_t& CachePolicy::ChargeOf(Queue q) {
  return q == Queue::kWindow      ? window_charge_
         : q == Queue::kProbation ? probation_charge_
                                  : protected_charge_;
}

inline void CachePolicy::Enqueue(PolicyNode* n, Queue q) {
  n->queue = q;
  QueueOf(q).push_front(n);
  ChargeOf(q) += n->charge;
}

inline void CachePolicy::Dequeue(PolicyNode* n) {
  if (n->queue == Queue::kNone) return;
  QueueOf(n->queue).remove(n);
  ChargeOf(n->queue) -= n->charge;
  n->queue = Queue::kNone;
}

inline void CachePolicy::Schedule(PolicyNode* n) {
  // Until some entry or tier has a TTL every deadline is kNever and nothing
  // is scheduled: skip the node's TTL fields (often a cache miss).
  if (!any_ttl_) return;
  if (n->bucket == -2) {
    due_.remove(n);
    n->bucket = -1;
  }
  wheel_.Unschedule(n);
  int64_t ttl = n->tier == Tier::kL1 ? l1_ttl_ : l2_ttl_;
  if (n->ttl_ns > 0 && (ttl == 0 || n->ttl_ns < ttl)) ttl = n->ttl_ns;
  int64_t deadline = ttl > 0 ? SaturatingAdd(n->write_ns, ttl) : kNever;
  // Written only when it changes: lookups read it from the node's first line.
  if (n->deadline_ns != deadline) n->deadline_ns = deadline;
  if (deadline != kNever) wheel_.Schedule(n);
}

inline void CachePolicy::SetLimits() {
  window_max_ = static_cast<uint64_t>(window_target_);
  protected_max_ =
      static_cast<uint64_t>(params_.protected_share * static_cast<double>(capacity_ - window_max_));
  while (protected_charge_ > protected_max_ && protected_.tail) {
    PolicyNode* n = protected_.tail;
    Dequeue(n);
    Enqueue(n, Queue::kProbation);
  }
}

inline void CachePolicy::EnsureSketch() {
  if (entries_ > sketch_.sized_for() && sketch_.sized_for() < capacity_) GrowSketch();
}

inline void CachePolicy::Insert(PolicyNode* n, Tier tier, uint64_t charge, int64_t now) {
  Reserve(tier);  // Push's allocation, before anything changes
  if (n->ttl_ns > 0) any_ttl_ = true;
  n->charge = charge;
  n->write_ns = now;
  n->tier = tier;
  EnterTier(n);
  Enqueue(n, Queue::kWindow);
  entries_++;
  EnsureSketch();
  CountAccess(n);
  Schedule(n);
  Adapt(n);
}

inline void CachePolicy::Adapt(PolicyNode* n) {
  // The ghosts hold the last few evictions of each side: a new key found
  // there would have been a hit had that side been slightly larger. Both
  // ghosts cover the same short horizon (a small share of the entries), so
  // they compare the marginal value of the window and of the main space
  // measured on the same requests, unlike a hill climber comparing hit rates
  // of successive periods, which phase changes in the workload mislead. The
  // short horizon also keeps loops longer than the cache from reading as a
  // need for recency.
  if (ghost_sized_for_ != sketch_.sized_for()) {
    auto size = static_cast<uint64_t>(
        params_.ghost_share * static_cast<double>(std::min(capacity_, sketch_.sized_for())));
    // Without memory for them the ghosts keep their size (or stay off) and
    // the next insertion tries again: they only steer the window.
    try {
      window_ghost_.Resize(size);
      main_ghost_.Resize(size);
      ghost_sized_for_ = sketch_.sized_for();
    } catch (const std::bad_alloc&) {
    }
  }
  //
  // Each ghost hit moves the window by the entry's weight, and while the
  // window's ghost has recently been hit k times as often as the main
  // space's, a window-ghost hit moves it k times as far (at most
  // kMaxGrowStep), as ARC scales its step by the ratio of its ghost lists:
  // a workload that wants most of the cache as window (LRU is close to
  // ideal) gets there in a fraction of the hits. Shrinking keeps the unit
  // step (docs/cache.md: scaling it too did not pay).
  constexpr double kMaxGrowStep = 4;
  constexpr double kEvidenceSpan = 256;  // ghost hits remembered, about
  double unit = static_cast<double>(n->charge);
  if (window_ghost_.Take(n->hash)) {
    window_evidence_ += 1;
    double step = std::clamp(std::floor(window_evidence_ / (main_evidence_ + 1)), 1.0, kMaxGrowStep);
    window_target_ = std::min(window_target_ + unit * step, static_cast<double>(capacity_));
  } else if (main_ghost_.Take(n->hash)) {
    main_evidence_ += 1;
    window_target_ = std::max(window_target_ - unit, 0.0);
  } else {
    return;
  }
  if (window_evidence_ + main_evidence_ >= kEvidenceSpan) {
    window_evidence_ /= 2;
    main_evidence_ /= 2;
  }
  SetLimits();
}

inline void CachePolicy::OnEvict(PolicyNode* n) {
  if (ghost_sized_for_ == 0) return;
  if (n->queue == Queue::kWindow) window_ghost_.Add(n->hash); else main_ghost_.Add(n->hash);
}

inline void CachePolicy::Rewrite(PolicyNode* n, Tier tier, uint64_t charge, int64_t now) {
  Reserve(tier);  // Push's allocation, before anything changes
  if (n->ttl_ns > 0) any_ttl_ = true;
  Queue q = n->queue;
  Dequeue(n);
  LeaveTier(n);
  n->charge = charge;
  n->tier = tier;
  n->write_ns = now;
  EnterTier(n);
  Enqueue(n, q == Queue::kNone ? Queue::kWindow : q);
  CountAccess(n);
  Schedule(n);
}

inline void CachePolicy::MoveToTier(PolicyNode* n, Tier tier, uint64_t charge) {
  Reserve(tier);  // Push's allocation, before anything changes
  LeaveTier(n);
  if (tier == Tier::kL1) {
    tier_[0].promotions++;
    tier_[1].promotions++;
  } else {
    tier_[0].demotions++;
    tier_[1].demotions++;
  }
  // The queue position stays: a promotion follows a hit, which already moved
  // the entry, and a demotion does not change recency.
  if (n->queue != Queue::kNone) ChargeOf(n->queue) += charge - n->charge;
  n->charge = charge;
  n->tier = tier;
  EnterTier(n);
  Schedule(n);
}

inline void CachePolicy::Remove(PolicyNode* n) {
  Dequeue(n);
  if (n->tier != Tier::kNone) {
    LeaveTier(n);
    n->tier = Tier::kNone;
  }
  if (n->bucket == -2) {
    due_.remove(n);
    n->bucket = -1;
  }
  wheel_.Unschedule(n);
  entries_--;
}

inline void CachePolicy::CountHit(Tier tier) {
  if (tier == Tier::kL1) {
    tier_[0].hits++;
  } else {
    tier_[1].hits++;
    if (l1_cap_ > 0) tier_[0].misses++;
  }
}

inline void CachePolicy::RecordHit(PolicyNode* n) {
  CountHit(n->tier);
  Touch(n);
}

inline void CachePolicy::Touch(PolicyNode* n) {
  if (n->tier == Tier::kL1) l1_clock_.Hit(n);
  CountAccess(n);
  switch (n->queue) {
    case Queue::kWindow:
      window_.move_to_front(n);
      break;
    case Queue::kProbation:
      Dequeue(n);
      Enqueue(n, Queue::kProtected);
      while (protected_charge_ > protected_max_ && protected_.tail != n) {
        PolicyNode* d = protected_.tail;
        Dequeue(d);
        Enqueue(d, Queue::kProbation);
      }
      break;
    case Queue::kProtected:
      protected_.move_to_front(n);
      break;
    case Queue::kNone:
      break;
  }
}

inline void CachePolicy::CountAccess(const PolicyNode* n) {
  sketch_.Increment(n->hash);
  touches_++;
}

inline void CachePolicy::PrefetchTouch(const PolicyNode* n) const {
  sketch_.Prefetch(n->hash);
  if (n->queue == Queue::kNone) return;
  if (n->qprev) __builtin_prefetch(&n->qprev->qprev, 1);
  if (n->qnext) __builtin_prefetch(&n->qnext->qprev, 1);
}

inline void CachePolicy::WarmForInsert(uint64_t hash) const {
  sketch_.Prefetch(hash);
  window_ghost_.Prefetch(hash);
  main_ghost_.Prefetch(hash);
  for (const PolicyNode* t : {window_.tail, probation_.tail}) {
    if (t == nullptr) continue;
    sketch_.Prefetch(t->hash);  // reads t: the caller lets readers go on
    if (t->qprev) __builtin_prefetch(&t->qprev->qprev, 1);
  }
  l1_clock_.Prefetch();
}

inline void CachePolicy::RecordMiss() {
  if (l1_cap_ > 0) tier_[0].misses++;
  if (l2_cap_ > 0) tier_[1].misses++;
}

inline bool CachePolicy::Admit(uint64_t candidate, uint64_t victim) {
  int cf = sketch_.Frequency(candidate);
  int vf = sketch_.Frequency(victim);
  if (cf > vf) return true;
  // A frequent candidate that only ties or loses sometimes gets in anyway, so
  // an adversary cannot pin a victim by colliding in the sketch.
  if (cf >= 6) {
    rng_ ^= rng_ << 13;
    rng_ ^= rng_ >> 7;
    rng_ ^= rng_ << 17;
    return (rng_ & 127) == 0;
  }
  return false;
}

inline PolicyNode* CachePolicy::SelectVictim() {
  while (window_charge_ > window_max_ && window_.tail) {
    PolicyNode* cand = window_.tail;
    uint64_t main = probation_charge_ + protected_charge_;
    if (main + cand->charge <= capacity_ - window_max_ || (probation_.empty() && protected_.empty())) {
      Dequeue(cand);
      Enqueue(cand, Queue::kProbation);
      continue;
    }
    PolicyNode* victim = probation_.tail ? probation_.tail : protected_.tail;
    if (!Admit(cand->hash, victim->hash)) return cand;
    Dequeue(cand);
    Enqueue(cand, Queue::kProbation);
    return victim;
  }
  if (probation_.tail) return probation_.tail;
  if (protected_.tail) return protected_.tail;
  return window_.tail;
}

inline PolicyNode* CachePolicy::NextExpired(int64_t now, bool exact) {
  if (due_.empty()) {
    if (wheel_.empty()) return nullptr;
    wheel_.Advance(now, exact, &due_);
  }
  PolicyNode* n = due_.tail;
  if (n) {
    due_.remove(n);
    n->bucket = -1;
  }
  return n;
}

}  // namespace evstore::cache_internal

#endif  // EVSTORE_DETAIL_CACHE_POLICY_HPP_
