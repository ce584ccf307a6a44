// Adaptive W-TinyLFU over both tiers of one shard. A new entry enters the
// window (plain LRU). When the window is over its share, its LRU entry becomes
// a candidate for the main space (segmented LRU: probation + protected) and
// is admitted only if the frequency sketch rates it above the main space's
// victim, so one-off scans pass through the window without flushing the hot
// set. Ghost entries of recent evictions from each side steer the window
// share (see Adapt): recency-heavy workloads grow the window (LRU-like), loops
// and scans shrink it (LFU-like).
// Tier placement is orthogonal: L1 holds the most recently used entries in
// decoded form, the rest live in L2 in encoded form.
#include <algorithm>
#include <bit>
#include <cmath>
#include <new>

#include "evstore/cache_policy.hpp"

namespace evstore::cache_internal {
namespace {

constexpr uint64_t kInitialSketchEntries = 1024;

int64_t SaturatingAdd(int64_t a, int64_t b) {
  return a > kNever - b ? kNever : a + b;
}

}  // namespace

// The ring keeps the order of the last `size` additions; an open-addressing
// table (linear probing, backward-shift deletion, at most half full) maps
// each hash still in it to the sequence number of its latest addition, so
// that Add and Take cost O(1) and allocate nothing.
void GhostList::Resize(uint64_t size) {
  // Both allocations first: if either throws, the list is as it was.
  std::vector<uint64_t> ring(std::max<uint64_t>(size, 1), 0);
  std::vector<Slot> slots(std::bit_ceil(2 * ring.size()), Slot());
  ring_.swap(ring);
  slots_.swap(slots);
  next_ = 0;
}

size_t GhostList::Find(uint64_t hash) const {
  size_t mask = slots_.size() - 1;
  for (size_t i = hash & mask;; i = (i + 1) & mask) {
    if (slots_[i].seq == 0 || slots_[i].hash == hash) return i;
  }
}

void GhostList::EraseAt(size_t i) {
  BackwardShiftErase(slots_, i, [](const Slot& s) { return s.seq == 0; });
}

void GhostList::Add(uint64_t hash) {
  if (slots_.empty()) return;
  uint64_t slot = next_ % ring_.size();
  if (next_ >= ring_.size()) {
    // The oldest addition leaves, unless its hash was added again since.
    size_t i = Find(ring_[slot]);
    if (slots_[i].seq == next_ - ring_.size() + 1) EraseAt(i);
  }
  ring_[slot] = hash;
  size_t i = Find(hash);
  slots_[i] = Slot{hash, ++next_};  // seq is the addition's number + 1; 0 = empty
}

bool GhostList::Take(uint64_t hash) {
  if (slots_.empty()) return false;
  size_t i = Find(hash);
  if (slots_[i].seq == 0) return false;
  EraseAt(i);
  return true;
}

CachePolicy::CachePolicy(uint64_t l1_capacity, uint64_t l2_capacity, int64_t l1_ttl_ns,
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

QueueList& CachePolicy::QueueOf(Queue q) {
  return q == Queue::kWindow ? window_ : q == Queue::kProbation ? probation_ : protected_;
}

uint64_t& CachePolicy::ChargeOf(Queue q) {
  return q == Queue::kWindow      ? window_charge_
         : q == Queue::kProbation ? probation_charge_
                                  : protected_charge_;
}

void CachePolicy::Enqueue(PolicyNode* n, Queue q) {
  n->queue = q;
  QueueOf(q).push_front(n);
  ChargeOf(q) += n->charge;
}

void CachePolicy::Dequeue(PolicyNode* n) {
  if (n->queue == Queue::kNone) return;
  QueueOf(n->queue).remove(n);
  ChargeOf(n->queue) -= n->charge;
  n->queue = Queue::kNone;
}

void CachePolicy::Schedule(PolicyNode* n) {
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

void CachePolicy::SetLimits() {
  window_max_ = static_cast<uint64_t>(window_target_);
  protected_max_ =
      static_cast<uint64_t>(params_.protected_share * static_cast<double>(capacity_ - window_max_));
  while (protected_charge_ > protected_max_ && protected_.tail) {
    PolicyNode* n = protected_.tail;
    Dequeue(n);
    Enqueue(n, Queue::kProbation);
  }
}

void CachePolicy::EnsureSketch() {
  if (entries_ > sketch_.sized_for() && sketch_.sized_for() < capacity_) GrowSketch();
}

void CachePolicy::GrowSketch() {
  // A larger sketch only sharpens admission: without memory for it the
  // smaller one goes on, and the next insertion tries again.
  try {
    sketch_.Resize(std::min(capacity_, 2 * entries_));
  } catch (const std::bad_alloc&) {
  }
}

void CachePolicy::Insert(PolicyNode* n, Tier tier, uint64_t charge, int64_t now) {
  Reserve(tier);  // Push's allocation, before anything changes
  if (n->ttl_ns > 0) any_ttl_ = true;
  n->charge = charge;
  n->write_ns = now;
  n->tier = tier;
  CacheTierStats& s = stats(tier);
  s.entries++;
  s.bytes += charge;
  if (tier == Tier::kL1) l1_clock_.Push(n);
  Enqueue(n, Queue::kWindow);
  entries_++;
  EnsureSketch();
  CountAccess(n);
  Schedule(n);
  Adapt(n);
}

void CachePolicy::Adapt(PolicyNode* n) {
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
  // step; scaling it too gained nothing and cost a loop-like point 0.7.
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

void CachePolicy::OnEvict(PolicyNode* n) {
  if (ghost_sized_for_ == 0) return;
  if (n->queue == Queue::kWindow) window_ghost_.Add(n->hash); else main_ghost_.Add(n->hash);
}

void CachePolicy::Rewrite(PolicyNode* n, Tier tier, uint64_t charge, int64_t now) {
  Reserve(tier);  // Push's allocation, before anything changes
  if (n->ttl_ns > 0) any_ttl_ = true;
  Queue q = n->queue;
  Dequeue(n);
  CacheTierStats& old_s = stats(n->tier);
  old_s.entries--;
  old_s.bytes -= n->charge;
  if (n->tier == Tier::kL1) l1_clock_.Remove(n);
  n->charge = charge;
  n->tier = tier;
  n->write_ns = now;
  CacheTierStats& s = stats(tier);
  s.entries++;
  s.bytes += charge;
  if (tier == Tier::kL1) l1_clock_.Push(n);
  Enqueue(n, q == Queue::kNone ? Queue::kWindow : q);
  CountAccess(n);
  Schedule(n);
}

void CachePolicy::MoveToTier(PolicyNode* n, Tier tier, uint64_t charge) {
  Reserve(tier);  // Push's allocation, before anything changes
  CacheTierStats& from = stats(n->tier);
  from.entries--;
  from.bytes -= n->charge;
  if (n->tier == Tier::kL1) l1_clock_.Remove(n);
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
  CacheTierStats& to = stats(tier);
  to.entries++;
  to.bytes += charge;
  if (tier == Tier::kL1) l1_clock_.Push(n);
  Schedule(n);
}

void CachePolicy::Remove(PolicyNode* n) {
  Dequeue(n);
  if (n->tier != Tier::kNone) {
    CacheTierStats& s = stats(n->tier);
    s.entries--;
    s.bytes -= n->charge;
    if (n->tier == Tier::kL1) l1_clock_.Remove(n);
    n->tier = Tier::kNone;
  }
  if (n->bucket == -2) {
    due_.remove(n);
    n->bucket = -1;
  }
  wheel_.Unschedule(n);
  entries_--;
}

void CachePolicy::CountHit(Tier tier) {
  if (tier == Tier::kL1) {
    tier_[0].hits++;
  } else {
    tier_[1].hits++;
    if (l1_cap_ > 0) tier_[0].misses++;
  }
}

void CachePolicy::RecordHit(PolicyNode* n) {
  CountHit(n->tier);
  Touch(n);
}

void CachePolicy::Touch(PolicyNode* n) {
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

void CachePolicy::CountAccess(const PolicyNode* n) {
  sketch_.Increment(n->hash);
  touches_++;
}

void CachePolicy::PrefetchTouch(const PolicyNode* n) const {
  sketch_.Prefetch(n->hash);
  if (n->queue == Queue::kNone) return;
  if (n->qprev) __builtin_prefetch(&n->qprev->qprev, 1);
  if (n->qnext) __builtin_prefetch(&n->qnext->qprev, 1);
}

void CachePolicy::WarmForInsert(uint64_t hash) const {
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

void L1Clock::GrowRing() {
  // The ring's capacity grows last, so that its check in Reserve also
  // covers the other two: free_ can list every ring slot (so that Remove
  // never allocates), and bits_ has a bit for each.
  size_t n = std::max<size_t>(16, 2 * ring_.capacity());
  free_.reserve(n);
  bits_.reserve((n + 63) / 64);
  ring_.reserve(n);
}

void L1Clock::Push(PolicyNode* n) {
  Reserve();  // the only allocation: before anything changes
  live_++;
  // Just behind the hand, so that it is examined last. Demotions leave
  // their hole there (the hole last listed, as a rule); otherwise the entry
  // there (the one the hand passed last) moves to another hole, or to a new
  // slot.
  if (!ring_.empty()) {
    uint32_t b = Behind();
    if (ring_[b] == nullptr) {
      // Unlist the hole, searching from the latest.
      auto it = std::find(free_.rbegin(), free_.rend(), b);
      *it = free_.back();
      free_.pop_back();
      Place(n, b, false);
      return;
    }
  }
  uint32_t hole = TakeHole();
  uint32_t b = Behind();  // a new slot at the end may itself be behind the hand
  if (hole != b) Place(ring_[b], hole, Bit(b));
  Place(n, b, false);
}

uint32_t L1Clock::TakeHole() {
  if (!free_.empty()) {
    uint32_t i = free_.back();
    free_.pop_back();
    return i;
  }
  ring_.push_back(nullptr);
  if (bits_.size() * 64 < ring_.size()) bits_.push_back(0);
  return static_cast<uint32_t>(ring_.size() - 1);
}

void L1Clock::Remove(PolicyNode* n) {
  ring_[n->l1_pos] = nullptr;
  SetBit(n->l1_pos, false);
  free_.push_back(n->l1_pos);  // within the capacity GrowRing kept
  live_--;
  // Holes cost the hand a step each: once they are the majority, close them
  // (without memory for the new ring they stay, and a later Remove retries).
  uint64_t holes = ring_.size() - live_;
  if (holes > 64 && holes > live_) {
    try {
      Compact();
    } catch (const std::bad_alloc&) {
    }
  }
}

void L1Clock::Compact() {
  // Keeps the order as the hand will see it, starting from the hand. Both
  // allocations come before any change, so a failed one changes nothing.
  std::vector<PolicyNode*> ring;
  std::vector<uint64_t> bits((live_ + 63) / 64 + 1, 0);
  ring.reserve(live_);
  uint32_t size = static_cast<uint32_t>(ring_.size());
  for (uint32_t k = 0; k < size; k++) {
    uint32_t i = (hand_ + k) % size;
    PolicyNode* n = ring_[i];
    if (n == nullptr) continue;
    uint32_t j = static_cast<uint32_t>(ring.size());
    ring.push_back(n);
    n->l1_pos = j;
    if (Bit(i)) bits[j / 64] |= uint64_t{1} << (j % 64);
  }
  ring_.swap(ring);
  bits_.swap(bits);
  free_.clear();
  hand_ = 0;
}

void L1Clock::Prefetch() const {
  uint32_t size = static_cast<uint32_t>(ring_.size());
  if (size == 0) return;
  // Most entries the hand passes have their bit clear: the victim is among
  // the first few.
  for (uint32_t k = 0, i = hand_; k < 4; k++, i = i + 1 == size ? 0 : i + 1) {
    const PolicyNode* n = ring_[i];
    if (n == nullptr) continue;
    // The node's line with the value (before PolicyNode) and its policy line.
    auto a = reinterpret_cast<uintptr_t>(n) & ~uintptr_t{63};
    __builtin_prefetch(reinterpret_cast<const void*>(a));
    __builtin_prefetch(reinterpret_cast<const void*>(a + 64), 1);
  }
}

PolicyNode* L1Clock::Victim(uint64_t* steps) {
  // Each pass over a set bit clears it, so this is O(1) amortised over the
  // hits that set the bits.
  uint32_t size = static_cast<uint32_t>(ring_.size());
  for (;;) {
    uint32_t i = hand_;
    hand_ = hand_ + 1 == size ? 0 : hand_ + 1;
    PolicyNode* n = ring_[i];
    if (n == nullptr) continue;
    ++*steps;
    if (!Bit(i)) return n;
    SetBit(i, false);
  }
}

void CachePolicy::RecordMiss() {
  if (l1_cap_ > 0) tier_[0].misses++;
  if (l2_cap_ > 0) tier_[1].misses++;
}

bool CachePolicy::Admit(uint64_t candidate, uint64_t victim) {
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

PolicyNode* CachePolicy::SelectVictim() {
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

PolicyNode* CachePolicy::NextExpired(int64_t now, bool exact) {
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
