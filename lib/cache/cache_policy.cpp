// Adaptive W-TinyLFU over both tiers of one shard. A new entry enters the
// window (plain LRU). When the window is over its share, its LRU entry becomes
// a candidate for the main space (segmented LRU: probation + protected) and
// is admitted only if the frequency sketch rates it above the main space's
// victim, so one-off scans pass through the window without flushing the hot
// set. A hill climber moves the window share in steps after each sample
// period, towards whichever direction raised the hit rate: recency-heavy
// workloads grow the window (LRU-like), loops and scans shrink it (LFU-like).
// Tier placement is orthogonal: L1 holds the most recently used entries in
// decoded form, the rest live in L2 in encoded form.
#include <algorithm>
#include <cmath>

#include "evstore/cache_policy.hpp"

namespace evstore::cache_internal {
namespace {

constexpr uint64_t kInitialSketchEntries = 1024;

int64_t SaturatingAdd(int64_t a, int64_t b) {
  return a > kNever - b ? kNever : a + b;
}

}  // namespace

CachePolicy::CachePolicy(uint64_t l1_capacity, uint64_t l2_capacity, int64_t l1_ttl_ns,
                         int64_t l2_ttl_ns, int64_t now_ns, PolicyParams params)
    : params_(params),
      l1_cap_(l1_capacity),
      l2_cap_(l2_capacity),
      capacity_(l1_capacity + l2_capacity),
      l1_ttl_(l1_ttl_ns),
      l2_ttl_(l2_ttl_ns),
      wheel_(now_ns) {
  window_target_ = std::floor(params_.initial_window * static_cast<double>(capacity_));
  // The first move shrinks the window: frequency admission is the safer
  // default, and a recency-heavy workload reverses the climb quickly.
  step_ = -params_.step * static_cast<double>(capacity_);
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
  if (n->bucket == -2) {
    due_.remove(n);
    n->bucket = -1;
  }
  wheel_.Unschedule(n);
  int64_t ttl = n->tier == Tier::kL1 ? l1_ttl_ : l2_ttl_;
  if (n->ttl_ns > 0 && (ttl == 0 || n->ttl_ns < ttl)) ttl = n->ttl_ns;
  n->deadline_ns = ttl > 0 ? SaturatingAdd(n->write_ns, ttl) : kNever;
  if (n->deadline_ns != kNever) wheel_.Schedule(n);
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
  if (entries_ > sketch_.sized_for() && sketch_.sized_for() < capacity_) {
    sketch_.Resize(std::min(capacity_, 2 * entries_));
  }
}

void CachePolicy::Insert(PolicyNode* n, Tier tier, uint64_t charge, int64_t now) {
  n->charge = charge;
  n->write_ns = now;
  n->tier = tier;
  CacheTierStats& s = stats(tier);
  s.entries++;
  s.bytes += charge;
  if (tier == Tier::kL1) l1_list_.push_front(n);
  Enqueue(n, Queue::kWindow);
  entries_++;
  EnsureSketch();
  sketch_.Increment(n->hash);
  Schedule(n);
}

void CachePolicy::Rewrite(PolicyNode* n, Tier tier, uint64_t charge, int64_t now) {
  Queue q = n->queue;
  Dequeue(n);
  CacheTierStats& old_s = stats(n->tier);
  old_s.entries--;
  old_s.bytes -= n->charge;
  if (n->tier == Tier::kL1) l1_list_.remove(n);
  n->charge = charge;
  n->tier = tier;
  n->write_ns = now;
  CacheTierStats& s = stats(tier);
  s.entries++;
  s.bytes += charge;
  if (tier == Tier::kL1) l1_list_.push_front(n);
  Enqueue(n, q == Queue::kNone ? Queue::kWindow : q);
  sketch_.Increment(n->hash);
  Schedule(n);
}

void CachePolicy::MoveToTier(PolicyNode* n, Tier tier, uint64_t charge) {
  CacheTierStats& from = stats(n->tier);
  from.entries--;
  from.bytes -= n->charge;
  if (n->tier == Tier::kL1) l1_list_.remove(n);
  Queue q = n->queue;
  Dequeue(n);
  if (tier == Tier::kL1) {
    tier_[0].promotions++;
    tier_[1].promotions++;
  } else {
    tier_[0].demotions++;
    tier_[1].demotions++;
  }
  n->charge = charge;
  n->tier = tier;
  CacheTierStats& to = stats(tier);
  to.entries++;
  to.bytes += charge;
  if (tier == Tier::kL1) l1_list_.push_front(n);
  // Keep the queue position: re-enqueueing at the front is what a hit did
  // just before a promotion, and a demotion does not change recency.
  if (q != Queue::kNone) {
    QueueOf(q).push_front(n);
    n->queue = q;
    ChargeOf(q) += charge;
  }
  Schedule(n);
}

void CachePolicy::Remove(PolicyNode* n) {
  Dequeue(n);
  if (n->tier != Tier::kNone) {
    CacheTierStats& s = stats(n->tier);
    s.entries--;
    s.bytes -= n->charge;
    if (n->tier == Tier::kL1) l1_list_.remove(n);
    n->tier = Tier::kNone;
  }
  if (n->bucket == -2) {
    due_.remove(n);
    n->bucket = -1;
  }
  wheel_.Unschedule(n);
  entries_--;
}

void CachePolicy::RecordHit(PolicyNode* n) {
  if (n->tier == Tier::kL1) {
    tier_[0].hits++;
    l1_list_.move_to_front(n);
  } else {
    tier_[1].hits++;
    if (l1_cap_ > 0) tier_[0].misses++;
  }
  sketch_.Increment(n->hash);
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
  sample_hits_++;
  Climb();
}

void CachePolicy::RecordMiss() {
  if (l1_cap_ > 0) tier_[0].misses++;
  if (l2_cap_ > 0) tier_[1].misses++;
  sample_misses_++;
  Climb();
}

void CachePolicy::Climb() {
  uint64_t requests = sample_hits_ + sample_misses_;
  if (requests < sketch_.sample_size()) return;
  double rate = static_cast<double>(sample_hits_) / static_cast<double>(requests);
  double change = rate - prev_hit_rate_;
  prev_hit_rate_ = rate;
  sample_hits_ = sample_misses_ = 0;
  // A change within sampling noise carries no direction; drifting on it
  // (e.g. towards a huge window while every lookup hits) would leave the
  // cache exposed to the next scan.
  if (std::fabs(change) < params_.dead_band) return;
  double amount = change >= 0 ? step_ : -step_;
  double cap = static_cast<double>(capacity_);
  step_ = std::fabs(change) >= params_.restart_threshold
              ? params_.step * cap * (amount >= 0 ? 1 : -1)
              : params_.step_decay * amount;
  window_target_ = std::clamp(window_target_ + amount, 0.0, cap);
  SetLimits();
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
