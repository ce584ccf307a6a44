// Member definitions of evstore::cache_internal::TieredCacheCore (see
// tiered_cache_core.hpp, which includes this at its end).
//
// Not API: part of the implementation of evstore::TieredCache
// (evstore/cache.hpp), installed only because the template needs it. No
// compatibility promise: anything here may change in any release. Include
// evstore/cache.hpp instead.
#ifndef EVSTORE_DETAIL_TIERED_CACHE_CORE_IMPL_HPP_
#define EVSTORE_DETAIL_TIERED_CACHE_CORE_IMPL_HPP_

#include <algorithm>
#include <bit>

namespace evstore::cache_internal {

template <typename K, typename V, typename H, typename E>
TieredCacheCore<K, V, H, E>::TieredCacheCore(CacheOptions options, Codec codec, Weighers weighers)
    : options_(std::move(options)),
      codec_(std::move(codec)),
      weighers_(std::move(weighers)),
      l2_enabled_(options_.l2.capacity > 0 && codec_.valid()) {
  uint64_t l2 = l2_enabled_ ? options_.l2.capacity : 0;
  uint64_t total = options_.l1.capacity + l2;
  uint64_t n = options_.shards ? std::min<uint64_t>(options_.shards, 256)
                               : std::clamp<uint64_t>(total / 4096, 1, 64);
  nshards_ = static_cast<uint32_t>(std::bit_floor(std::max<uint64_t>(n, 1)));
  // One reader stripe per hardware thread (2..16), so concurrent readers of
  // a shard usually write different cache lines.
  nstripes_ = std::clamp<uint32_t>(std::bit_ceil(std::max(1u, std::thread::hardware_concurrency())),
                                   2, 16);
  shards_ = std::make_unique<Shard[]>(nshards_);
  int64_t now = Now();
  for (uint32_t i = 0; i < nshards_; i++) {
    Shard& s = shards_[i];
    s.stripes = std::make_unique<Stripe[]>(nstripes_);
    // Spread the remainder so the shards' capacities sum to the total.
    s.l1_cap = options_.l1.capacity / nshards_ + (i < options_.l1.capacity % nshards_ ? 1 : 0);
    s.l2_cap = l2 / nshards_ + (i < l2 % nshards_ ? 1 : 0);
    s.l1_base = s.l1_cap;
    s.l2_base = s.l2_goal = s.l2_cap;
    // The adaptive split can give L1 at most both tiers' capacity (and none
    // to a shard without any); without it L1 keeps its own.
    uint64_t l1_most = options_.adaptive_split ? s.l1_base + s.l2_base : s.l1_base;
    s.encode_from = !l2_enabled_ || l1_most == UINT64_MAX ? UINT64_MAX
                    : s.l1_base == 0                      ? 0
                                                          : l1_most + 1;
    s.policy = std::make_unique<CachePolicy>(
        s.l1_cap, s.l2_cap, options_.l1.ttl.count(), l2_enabled_ ? options_.l2.ttl.count() : 0,
        now);
  }
  if (options_.l1.ttl.count() > 0 || options_.l2.ttl.count() > 0) ttl_used_ = true;
}

template <typename K, typename V, typename H, typename E>
TieredCacheCore<K, V, H, E>::~TieredCacheCore() {
  for (uint32_t i = 0; i < nshards_; i++) {
    Shard& s = shards_[i];
    s.index.ForEach([&](Node* n) { s.nodes.Delete(n); });
  }
}

template <typename K, typename V, typename H, typename E>
int64_t TieredCacheCore<K, V, H, E>::Now() const {
  if (options_.clock) return options_.clock();
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

template <typename K, typename V, typename H, typename E>
void TieredCacheCore<K, V, H, E>::NoteTtl(std::chrono::nanoseconds ttl) {
  // Lookups read the clock only once some entry can expire.
  if (ttl.count() > 0 && !ttl_used()) ttl_used_.store(true, std::memory_order_relaxed);
}

template <typename K, typename V, typename H, typename E>
uint64_t TieredCacheCore<K, V, H, E>::WeighDecoded(const K& key, const V& v) const {
  return weighers_.decoded ? std::max<uint64_t>(1, weighers_.decoded(key, v)) : 1;
}

template <typename K, typename V, typename H, typename E>
uint64_t TieredCacheCore<K, V, H, E>::WeighEncoded(const K& key, std::string_view b) const {
  return weighers_.encoded ? std::max<uint64_t>(1, weighers_.encoded(key, b)) : 1;
}

template <typename K, typename V, typename H, typename E>
void TieredCacheCore<K, V, H, E>::Encode(const K& key, const V& value, Encoded* out) const {
  std::string bytes = codec_.encode(value);
  out->charge = WeighEncoded(key, bytes);
  out->bytes = CompactBytes(bytes);
  out->ready = true;
}

template <typename K, typename V, typename H, typename E>
void TieredCacheCore<K, V, H, E>::Drop(Shard& s, Node* n, Graveyard* g) noexcept {
  s.policy->Remove(n);
  g->BuryDecoded(n);
  s.index.Erase(n);
  s.nodes.Delete(n);
}

template <typename K, typename V, typename H, typename E>
void TieredCacheCore<K, V, H, E>::Evict(Shard& s, PolicyNode* n,
                                    Graveyard* g) noexcept {
  s.policy->stats(n->tier).evictions++;
  s.policy->OnEvict(n);
  Drop(s, static_cast<Node*>(n), g);
}

template <typename K, typename V, typename H, typename E>
void TieredCacheCore<K, V, H, E>::Expire(Shard& s, PolicyNode* n,
                                     Graveyard* g) noexcept {
  s.policy->stats(n->tier).expirations++;
  Drop(s, static_cast<Node*>(n), g);
}

template <typename K, typename V, typename H, typename E>
void TieredCacheCore<K, V, H, E>::Demote(Shard& s, Node* n, Graveyard* g) noexcept {
  uint64_t w2;
  CompactBytes compact;
  try {
    std::string bytes = codec_.encode(L1Value(s, n));
    w2 = WeighEncoded(n->key, bytes);
    if (w2 <= s.l2_cap) compact = CompactBytes(bytes);
  } catch (...) {
    // The write or drain that makes room must not fail for this entry, nor
    // keep it in L1 past capacity: it leaves the cache, as if too heavy.
    Evict(s, n, g);
    return;
  }
  if (w2 > s.l2_cap) {
    Evict(s, n, g);
    return;
  }
  g->BuryDecoded(n);
  n->value.template emplace<2>(std::move(compact));
  s.index.Sync(n);
  MoveToTier(s, n, Tier::kL2, w2);
}

template <typename K, typename V, typename H, typename E>
void TieredCacheCore<K, V, H, E>::MoveToTier(Shard& s, Node* n, Tier tier,
                                         uint64_t charge) {
  uint64_t old = n->charge;
  s.policy->MoveToTier(n, tier, charge);
  if (tier == Tier::kL1) {
    SplitAfterMove(s, charge, old);
  } else {
    SplitAfterMove(s, old, charge);
  }
}

template <typename K, typename V, typename H, typename E>
void TieredCacheCore<K, V, H, E>::SplitAfterMove(Shard& s, uint64_t w1, uint64_t w2) {
  if (!options_.adaptive_split || s.l1_base == 0 || s.l2_base == 0) return;
  s.moved_l1 += w1;
  s.moved_l2 += w2;
  if (++s.moves < 64) return;
  // Hysteresis between the two splits; halving keeps a decaying history.
  bool heavy = s.l1_heavy ? s.moved_l2 * 4 >= s.moved_l1 * 3 : s.moved_l2 * 8 >= s.moved_l1 * 7;
  s.moves = 0;
  s.moved_l1 /= 2;
  s.moved_l2 /= 2;
  if (heavy == s.l1_heavy) return;
  s.l1_heavy = heavy;
  uint64_t total = s.l1_base + s.l2_base;
  if (heavy) {
    // L2 gives its capacity up as promotions and evictions empty it
    // (Maintain), rather than evicting at once what it holds.
    s.l2_goal = std::max<uint64_t>(1, total / 16);
    s.l1_cap = total - s.l2_goal;
  } else {
    // Maintain demotes L1's overflow into L2's regained capacity.
    s.l1_cap = s.l1_base;
    s.l2_cap = s.l2_goal = s.l2_base;
  }
}

template <typename K, typename V, typename H, typename E>
void TieredCacheCore<K, V, H, E>::Maintain(Shard& s, int64_t now, Graveyard* g) noexcept {
  CachePolicy& p = *s.policy;
  if (p.has_timers()) {
    while (PolicyNode* e = p.NextExpired(now, false)) Expire(s, e, g);
  }
  // Order matters: evict to the total budget first, so that a rejected
  // newcomer leaves without pushing anything down; then demote L1's overflow;
  // then evict again if encoded weights overflow L2.
  while (p.total_charge() > p.capacity()) {
    PolicyNode* v = p.SelectVictim();
    if (!v) break;
    Evict(s, v, g);
  }
  if (l2_enabled_) {
    while (p.l1_charge() > s.l1_cap) Demote(s, static_cast<Node*>(p.L1Victim()), g);
  }
  if (s.l2_cap > s.l2_goal) s.l2_cap = std::max(s.l2_goal, std::min(s.l2_cap, p.l2_charge()));
  while (p.l2_charge() > s.l2_cap) {
    PolicyNode* v = p.SelectVictim();
    if (!v) break;
    Evict(s, v, g);
  }
}

template <typename K, typename V, typename H, typename E>
bool TieredCacheCore<K, V, H, E>::Lookup(Shard& s, const K& key, uint64_t h, int64_t now,
                                     std::optional<V>* out, Graveyard* g) {
  CachePolicy& p = *s.policy;
  Node* n = s.index.Find(h, key, eq_);
  if (!n) {
    p.RecordMiss();
    s.misses++;
    return false;
  }
  if (n->deadline_ns != kNever && p.Expired(n, now)) {
    Expire(s, n, g);
    p.RecordMiss();
    s.misses++;
    return false;
  }
  // A copy or decode that throws leaves the lookup uncounted.
  if (n->value.index() == 1) {
    out->emplace(L1Value(s, n));
    p.RecordHit(n);
    return true;
  }
  std::optional<Result<V>> decoded;
  try {
    decoded.emplace(codec_.decode(std::get<2>(n->value).view()));
  } catch (...) {
    Evict(s, n, g);  // as for bytes it cannot decode
    throw;
  }
  if (!decoded->ok()) {
    Evict(s, n, g);
    p.RecordMiss();
    s.misses++;
    return false;
  }
  out->emplace(decoded->value());
  p.RecordHit(n);
  if (s.l1_cap > 0 && Promote(s, n, std::move(*decoded).value(), g)) Maintain(s, now, g);
  return true;
}

template <typename K, typename V, typename H, typename E>
bool TieredCacheCore<K, V, H, E>::Promote(Shard& s, Node* n, V&& value, Graveyard* g) noexcept {
  uint64_t w1;
  try {
    w1 = WeighDecoded(n->key, value);
    if (w1 > s.l1_cap) return false;
    s.policy->Reserve(Tier::kL1);
    // If V's move throws, the variant is left empty: n goes below.
    n->value.template emplace<1>(std::move(value));
  } catch (...) {
    Evict(s, n, g);
    return false;
  }
  s.index.Sync(n);
  MoveToTier(s, n, Tier::kL1, w1);
  return true;
}

template <typename K, typename V, typename H, typename E>
std::optional<V> TieredCacheCore<K, V, H, E>::DecodeForMove(std::string_view b) const noexcept {
  try {
    Result<V> r = codec_.decode(b);
    if (r.ok()) return std::optional<V>(std::move(r).value());
  } catch (...) {
  }
  return std::nullopt;
}

template <typename K, typename V, typename H, typename E>
Status TieredCacheCore<K, V, H, E>::Store(Shard& s, const K& key, uint64_t h, V&& value, uint64_t w1,
                                      Encoded* enc, std::chrono::nanoseconds ttl, int64_t now,
                                      Graveyard* g) {
  Node* found = s.index.Find(h, key, eq_);
  Tier tier = s.l1_cap > 0 && w1 <= s.l1_cap ? Tier::kL1 : Tier::kL2;
  uint64_t charge = w1;
  Node* n = nullptr;  // stays null if the value is too heavy
  // Whatever can throw comes before the first change to the shard: the
  // codec, memory for the index, the policy and the node, the node's key and
  // value. Only a value that fails to move into an existing node has
  // changed it (its variant is then empty), and goes with the rest below.
  try {
    if (tier == Tier::kL2 && l2_enabled_) {
      if (!enc->ready) Encode(key, value, enc);
      charge = enc->charge;
    }
    if (tier == Tier::kL1 || (l2_enabled_ && charge <= s.l2_cap)) {
      if (!found) s.index.Reserve();
      s.policy->Reserve(tier);
      n = found ? found : s.nodes.New(key);
      if (found) g->BuryDecoded(found);
      if (tier == Tier::kL1) {
        try {
          n->value.template emplace<1>(std::move(value));
        } catch (...) {
          if (!found) s.nodes.Delete(n);
          throw;
        }
      } else {
        g->Bury(std::move(value));
        n->value.template emplace<2>(std::move(enc->bytes));
      }
    }
  } catch (...) {
    // A write that fails leaves no older value behind, as a rejected one.
    if (found) Drop(s, found, g);
    throw;
  }
  if (n == nullptr) {
    if (found) Drop(s, found, g);
    s.rejections++;
    if (s.l1_cap == 0 && s.l2_cap == 0) return Status::OK();  // caching is disabled
    return Status::InvalidArgument("value is heavier than the cache's tiers");
  }
  n->ttl_ns = ttl.count() > 0 ? ttl.count() : 0;
  if (!found) {
    n->hash = h;
    s.index.Insert(n);
    s.policy->Insert(n, tier, charge, now);
  } else {
    s.index.Sync(n);
    s.policy->Rewrite(n, tier, charge, now);
  }
  Maintain(s, now, g);
  return Status::OK();
}

template <typename K, typename V, typename H, typename E>
void TieredCacheCore<K, V, H, E>::Invalidate(Shard& s, const K& key) {
  if (s.flights.empty()) return;
  auto it = s.flights.find(key);
  if (it == s.flights.end()) return;
  // Its callers still get its result, but later callers must not wait for a
  // value read before this write: they start a new load.
  it->second->invalidated = true;
  s.flights.erase(it);
}

template <typename K, typename V, typename H, typename E>
void TieredCacheCore<K, V, H, E>::Enter(Shard& s) noexcept {
  // The writer bit and a reader's entry are read-modify-writes of the same
  // word, so one of them sees the other: either the reader finds the bit and
  // backs off, or the bit is set with the reader counted, and we wait.
  for (uint32_t i = 0; i < nstripes_; i++) {
    Stripe& st = s.stripes[i];
    uint64_t w = st.word.fetch_or(kWriterBit, std::memory_order_acq_rel);
    // The slots claimed before the bit was set are those to drain, written
    // by readers inside now or earlier; a claim made from now on sees the
    // bit and is void (no record, no count; see EnterShared and PutInPlace).
    st.drain_claims = w >> 32;
    for (int spins = 0; (w & kReaderMask) != 0; spins++) {
      CpuRelax(spins);
      w = st.word.load(std::memory_order_acquire);
    }
  }
}

template <typename K, typename V, typename H, typename E>
void TieredCacheCore<K, V, H, E>::Leave(Shard& s) noexcept {
  // One AND clears the writer bit and the claims, so the next claims start
  // at 0 again: those this hold drained and the void ones made meanwhile
  // (readers still backing off keep their count in the low bits and take
  // it out themselves).
  for (uint32_t i = 0; i < nstripes_; i++) {
    Stripe& st = s.stripes[i];
    st.word.fetch_and(kReaderMask, std::memory_order_release);
    st.drain_claims = 0;
  }
}

template <typename K, typename V, typename H, typename E>
bool TieredCacheCore<K, V, H, E>::DrainBuffers(Shard& s, bool exclusive, uint64_t min_claims) noexcept {
  CachePolicy& p = *s.policy;
  bool took = false;
  for (uint32_t i = 0; i < nstripes_; i++) {
    Stripe& st = s.stripes[i];
    uint64_t claims;
    if (exclusive) {
      claims = st.drain_claims;  // cleared by Leave
    } else {
      // A stripe nobody claimed from since the last drain has no records (a
      // counter bumped late waits for a later drain; stats() drains
      // exclusively): a plain load spares its line a read-modify-write,
      // which on a many-core host with few threads using the cache is most
      // of the stripes.
      if ((st.word.load(std::memory_order_relaxed) >> 32) < min_claims) continue;
      took = true;
      // Take the claims and restart the buffer at once: readers claiming from
      // now on write slots from 0 again, perhaps while this loop reads them.
      claims = st.word.fetch_and(kWriterBit | kReaderMask, std::memory_order_acquire) >> 32;
    }
    // Held exclusively, every slot that may hold a record is read and
    // cleared, also past the claims: a record written late, after a drain
    // that let readers on had passed its slot, must not outlive this hold,
    // which may free nodes. Such slots are all below st.dirty; slots above
    // it and the claims were not claimed since the last exclusive drain.
    uint64_t n = std::min<uint64_t>(claims, kReadBuffer);
    if (exclusive) {
      n = std::max(n, st.dirty);
      st.dirty = 0;
    } else {
      st.dirty = std::max(st.dirty, n);
    }
    // Three passes over the records, so that their cache misses overlap:
    // take them and start loading their nodes' policy fields; start loading
    // what each hit's Touch needs; replay them.
    uintptr_t recs[kReadBuffer];
    uint32_t m = 0;
    for (uint64_t j = 0; j < n; j++) {
      uintptr_t e = st.buf[j].load(std::memory_order_relaxed);
      if (e == 0) continue;
      st.buf[j].store(0, std::memory_order_relaxed);
      // Statistics were counted by the lookup itself (the stripe counters
      // below); a record only feeds the policy.
      if ((e & ~uintptr_t{3}) == 0) continue;  // a plain miss
      // No node recorded here can have been freed: nodes are freed only while
      // the shard is held exclusively, and each exclusive hold drains and
      // clears the buffers and the pending queue before anything else.
      recs[m++] = e;
      const Node* node = reinterpret_cast<const Node*>(e & ~uintptr_t{3});
      __builtin_prefetch(&node->hash);
      __builtin_prefetch(&node->qprev, 1);
    }
    for (uint32_t j = 0; j < m; j++) {
      if ((recs[j] & 3) <= kHitL2) p.PrefetchTouch(reinterpret_cast<Node*>(recs[j] & ~uintptr_t{3}));
    }
    for (uint32_t j = 0; j < m; j++) {
      uintptr_t tag = recs[j] & 3;
      Node* node = reinterpret_cast<Node*>(recs[j] & ~uintptr_t{3});
      if (tag == kHitL1 || tag == kHitL2) {
        p.Touch(node);
        if (node->tier != Tier::kL2 || s.l1_cap == 0) continue;
      }
      if (!node->pending) {
        // Without memory to queue it, the record is lost like one that
        // finds its buffer full: the entry is promoted or removed later.
        try {
          s.pending.push_back(node);
          node->pending = true;
        } catch (const std::bad_alloc&) {
        }
      }
    }
    // With the shard held exclusively no lookup is inside to count, so a
    // load and a store take a counter; otherwise an exchange does (a plain
    // load first spares it on idle counters).
    auto take = [exclusive](std::atomic<uint64_t>& c) -> uint64_t {
      uint64_t v = c.load(std::memory_order_relaxed);
      if (v == 0) return 0;
      if (!exclusive) return c.exchange(0, std::memory_order_relaxed);
      c.store(0, std::memory_order_relaxed);
      return v;
    };
    // Every claim not counted as another outcome was an L1 hit. Unsigned
    // arithmetic wraps, so a count that arrived before its claim (taken by
    // a later drain) nets out; see Stripe.
    uint64_t l1_hits = claims - take(st.uncounted_claims);
    if (uint64_t l2_hits = take(st.l2_hit_claims)) {
      l1_hits -= l2_hits;
      p.stats(Tier::kL2).hits += l2_hits;
      if (s.l1_cap > 0) p.stats(Tier::kL1).misses += l2_hits;
    }
    if (uint64_t misses = take(st.miss_claims)) {
      l1_hits -= misses;
      if (s.l1_cap > 0) p.stats(Tier::kL1).misses += misses;
      if (s.l2_cap > 0) p.stats(Tier::kL2).misses += misses;
      s.misses += misses;
    }
    p.stats(Tier::kL1).hits += l1_hits;
  }
  // Epochs are counted at replays only: a drain that took nothing leaves the
  // epoch to the replay that follows it.
  if (!exclusive && !took) return false;
  AdvanceEpoch(s);
  return took;
}

template <typename K, typename V, typename H, typename E>
void TieredCacheCore<K, V, H, E>::AdvanceEpoch(Shard& s) {
  const CachePolicy& p = *s.policy;
  // The entries' worth of policy updates (replayed hits and writes), so an
  // entry's recency is kept to within the cache's worth of updates (a
  // shorter epoch replays more hits for almost no gain in hit ratio;
  // docs/cache.md, "Correlated references"). With both tiers on,
  // also at most half of L1's entries passed by its second-chance hand: an
  // entry whose bit the hand cleared comes round again only after about all
  // of L1 has been passed, so a hot entry is recorded again, its bit set,
  // in the next epoch before the hand is back.
  uint64_t l1 = p.stats(Tier::kL1).entries;
  uint64_t len = std::max<uint64_t>(l1 + p.stats(Tier::kL2).entries, 1);
  uint64_t hand_len = std::max<uint64_t>(l1 / 2, 1);
  bool due = p.touches() - s.epoch_start >= len ||
             (s.l1_cap > 0 && s.l2_cap > 0 && p.hand_steps() - s.epoch_hand >= hand_len);
  if (!due) return;
  s.epoch_start = p.touches();
  s.epoch_hand = p.hand_steps();
  s.epoch.store(s.epoch.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

template <typename K, typename V, typename H, typename E>
void TieredCacheCore<K, V, H, E>::Drain(Shard& s, Graveyard* g) noexcept {
  CachePolicy& p = *s.policy;
  DrainBuffers(s, true);
  if (s.pending.empty()) return;
  // Promotions and removals come last and each node once, so nothing freed
  // here is still referenced by the loop above.
  int64_t now = 0;
  if (ttl_used()) {
    try {
      now = Now();
    } catch (...) {
      // Without the time no expiry can be judged: queued entries that have a
      // deadline (a lookup may have found them expired) are evicted, the
      // others' promotions dropped, as if their records were lost.
      for (Node* n : s.pending) {
        n->pending = false;
        if (n->deadline_ns != kNever) Evict(s, n, g);
      }
      s.pending.clear();
      return;
    }
  }
  bool moved = false;
  for (Node* n : s.pending) {
    n->pending = false;
    if (n->deadline_ns != kNever && p.Expired(n, now)) {
      Expire(s, n, g);
      continue;
    }
    if (n->value.index() != 2) continue;
    std::optional<V> decoded = DecodeForMove(std::get<2>(n->value).view());
    if (!decoded) {
      Evict(s, n, g);
      continue;
    }
    if (s.l1_cap > 0 && Promote(s, n, std::move(*decoded), g)) moved = true;
  }
  s.pending.clear();
  if (moved) Maintain(s, now, g);
}

template <typename K, typename V, typename H, typename E>
void TieredCacheCore<K, V, H, E>::TryDrain(Shard& s) noexcept {
  Graveyard g;  // destroyed after the mutex is released
  if (!s.mu.try_lock()) return;  // the holder drains, or a later reader will
  DrainBuffers(s, false);
  if (s.pending.size() >= kPendingBatch) {
    Enter(s);
    Drain(s, &g);
    Leave(s);
  }
  s.mu.unlock();
}

template <typename K, typename V, typename H, typename E>
inline uint32_t TieredCacheCore<K, V, H, E>::EnterShared(Stripe& st, uint64_t inc) noexcept {
  uint64_t old = st.word.fetch_add(inc, std::memory_order_acq_rel);
  if ((old & kWriterBit) == 0) [[likely]] return static_cast<uint32_t>(old >> 32);
  return EnterSharedSlow(st, inc);
}

template <typename K, typename V, typename H, typename E>
uint32_t TieredCacheCore<K, V, H, E>::EnterSharedSlow(Stripe& st, uint64_t inc) noexcept {
  for (int spins = 0;;) {
    // A writer is in or entering: leave and wait for it to finish. The
    // claim made is void: it came after the writer took the claims to
    // drain, and its Leave clears it (no drain takes claims meanwhile).
    st.word.fetch_sub(1, std::memory_order_release);
    while (st.word.load(std::memory_order_acquire) & kWriterBit) CpuRelax(spins++);
    uint64_t old = st.word.fetch_add(inc, std::memory_order_acq_rel);
    if ((old & kWriterBit) == 0) return static_cast<uint32_t>(old >> 32);
  }
}

template <typename K, typename V, typename H, typename E>
inline void TieredCacheCore<K, V, H, E>::LeaveShared(Shard& s, Stripe& st, uint32_t claim) noexcept {
  st.word.fetch_sub(1, std::memory_order_release);
  // The reader that fills the buffer drains it.
  if (claim + 1 >= kReadBuffer) [[unlikely]] TryDrain(s);
}

template <typename K, typename V, typename H, typename E>
void TieredCacheCore<K, V, H, E>::LeaveThrowing(Shard& s, Stripe& st, uint32_t claim) noexcept {
  // The claim is counted as another outcome, so that no drain takes it for
  // an L1 hit. Without leaving, the reader would stay counted inside and the
  // shard's next writer (and then every reader) would wait for it forever.
  st.uncounted_claims.fetch_add(1, std::memory_order_relaxed);
  LeaveShared(s, st, claim);
}

template <typename K, typename V, typename H, typename E>
[[gnu::always_inline]] inline bool TieredCacheCore<K, V, H, E>::ReadLookup(Shard& s, const K& key,
                                                                       uint64_t h, bool count_miss,
                                                                       std::optional<V>* out) {
  Stripe& st = StripeOf(s);
  int64_t now = ttl_used() ? Now() : 0;
  uint32_t claim = EnterShared(st, kEnterClaim);  // the slot claimed for this lookup's record
  // User code inside (K's equality, V's copy) may throw: LeaveThrowing.
  // The try blocks cost no instruction unless something throws.
  typename Index::Slot* slot;
  try {
    slot = s.index.FindSlot(h, key, eq_);
  } catch (...) {
    LeaveThrowing(s, st, claim);
    throw;
  }
  // Statistics do not depend on the buffer: every lookup counts its outcome
  // on its stripe (an L1 hit by its claim alone, see Stripe). With the
  // buffer full the access is not replayed into the policy (lossy, as in
  // Caffeine).
  if (slot == nullptr) {
    if (claim < kReadBuffer) {
      st.buf[claim].store(count_miss ? kMissTag : 0, std::memory_order_relaxed);
    }
    (count_miss ? st.miss_claims : st.uncounted_claims).fetch_add(1, std::memory_order_relaxed);
    LeaveShared(s, st, claim);
    return false;
  }
  Node* n = slot->node;
  if constexpr (kInlineSlot) {
    // The slot alone answers an L1 hit; the node is read only with TTLs in
    // use (now is 0 otherwise, as no entry has a deadline then).
    bool expired = now != 0 && n->deadline_ns != kNever && now >= n->deadline_ns;
    if ((slot->hash & Index::kInL1) == 0 || expired) [[unlikely]] {
      return ReadLookupRare(s, st, n, now, claim, count_miss, out);
    }
    out->emplace(WordValue(std::atomic_ref<uint64_t>(slot->word).load(std::memory_order_relaxed)));
  } else {
    if (n->value.index() != 1 ||
        (n->deadline_ns != kNever && now >= n->deadline_ns)) [[unlikely]] {
      return ReadLookupRare(s, st, n, now, claim, count_miss, out);
    }
    try {
      out->emplace(DecodedValue(n));
    } catch (...) {
      LeaveThrowing(s, st, claim);
      throw;
    }
  }
  if (claim < kReadBuffer && FirstInEpoch(s, slot)) {
    st.buf[claim].store(reinterpret_cast<uintptr_t>(n) | kHitL1, std::memory_order_relaxed);
  }
  LeaveShared(s, st, claim);
  return true;
}

template <typename K, typename V, typename H, typename E>
bool TieredCacheCore<K, V, H, E>::ReadLookupRare(Shard& s, Stripe& st, Node* n, int64_t now,
                                             uint32_t claim, bool count_miss,
                                             std::optional<V>* out) {
  uintptr_t rec = reinterpret_cast<uintptr_t>(n) | (count_miss ? kBadMiss : kMissTag);
  bool hit = false;
  if (n->deadline_ns == kNever || now < n->deadline_ns) {
    try {
      Result<V> decoded = codec_.decode(std::get<2>(n->value).view());
      if (decoded.ok()) {
        out->emplace(std::move(decoded).value());
        rec = reinterpret_cast<uintptr_t>(n) | kHitL2;
        hit = true;
      }
    } catch (...) {
      // Recorded like undecodable bytes: the drain decodes them again and
      // evicts the entry if that fails (or throws) too.
      if (claim < kReadBuffer) st.buf[claim].store(rec | kMissTag, std::memory_order_relaxed);
      LeaveThrowing(s, st, claim);
      throw;
    }
  }
  // Expired or undecodable entries are dropped by the drain or the next write.
  if (claim < kReadBuffer) st.buf[claim].store(rec, std::memory_order_relaxed);
  (hit ? st.l2_hit_claims : count_miss ? st.miss_claims : st.uncounted_claims)
      .fetch_add(1, std::memory_order_relaxed);
  LeaveShared(s, st, claim);
  return hit;
}

template <typename K, typename V, typename H, typename E>
std::optional<V> TieredCacheCore<K, V, H, E>::get(const K& key) {
  uint64_t h = Mix(hasher_(key));
  std::optional<V> out;
  ReadLookup(ShardFor(h), key, h, true, &out);
  return out;
}

template <typename K, typename V, typename H, typename E>
Status TieredCacheCore<K, V, H, E>::put(const K& key, V&& value, std::chrono::nanoseconds ttl) {
  NoteTtl(ttl);
  uint64_t h = Mix(hasher_(key));
  Shard& s = ShardFor(h);
  uint64_t w1 = 0;
  Encoded enc;
  int64_t now = 0;
  // User code runs here, before the exclusive hold where it can: the
  // weighers, and the codec for a value that can only go to L2.
  try {
    w1 = options_.l1.capacity > 0 ? WeighDecoded(key, value) : 0;
    if constexpr (kInPlace) {
      // Without TTLs no deadline changes, so the value is all a lookup sees.
      if (!ttl_used() && w1 > 0 && PutInPlace(s, key, h, value, w1)) return Status::OK();
    }
    PreEncode(s, key, value, w1, &enc);
    now = ttl_used() ? Now() : 0;
  } catch (...) {
    (void)DropKey(s, key, h);  // a put that fails leaves no older value behind
    throw;
  }
  Graveyard g;
  Exclusive lock(*this, s, &g, &h);
  Invalidate(s, key);
  return Store(s, key, h, std::move(value), w1, &enc, ttl, now, &g);
}

template <typename K, typename V, typename H, typename E>
bool TieredCacheCore<K, V, H, E>::PutInPlace(Shard& s, const K& key, uint64_t h, const V& value,
                                         uint64_t w1) {
  // Instantiated only when kInPlace (put calls it under if constexpr).
  // Entered like a lookup: the index, the nodes' tiers and weights and the
  // flights change only under an exclusive hold, which waits for this
  // thread to leave, so they hold still here.
  Stripe& st = StripeOf(s);
  EnterShared(st, kEnterOnly);
  uint32_t claim = 0;  // a buffer slot, claimed only to record the write
  typename Index::Slot* slot;
  try {
    slot = s.index.FindSlot(h, key, eq_);  // K's equality may throw
  } catch (...) {
    LeaveShared(s, st, claim);
    throw;
  }
  Node* n = slot ? slot->node : nullptr;
  // No load of the key can be in flight: a load is registered only while
  // the key is not indexed, and whatever indexes it (a put's Store, or the
  // load's own) first takes that flight out of `flights`.
  // An entry given a deadline by another thread's put with a TTL, which this
  // thread's check of ttl_used() (before entering) may have missed, takes the
  // exclusive path too: this put must clear that deadline.
  bool done;
  if constexpr (kInlineSlot) {
    // The slot tells the tier. Without a weigher every L1 entry weighs 1, as
    // does this value; and with no TTL used yet no entry has a deadline.
    // ttl_used() is read again inside: a put that set a deadline set the
    // flag before its exclusive hold, which this thread's entry follows.
    done = slot != nullptr && (slot->hash & Index::kInL1) != 0 &&
           ((!weighers_.decoded && w1 == 1 && !ttl_used()) ||
            (n->charge == w1 && n->deadline_ns == kNever));
  } else {
    done = n != nullptr && n->value.index() == 1 && n->charge == w1 &&
           n->deadline_ns == kNever;
  }
  if (done) {
    // Atomic against lookups and other writes. With kInlineSlot the value
    // lives in the slot's word (one atomic store, the node is not written).
    if constexpr (kInlineSlot) {
      std::atomic_ref<uint64_t>(slot->word).store(ValueWord(value), std::memory_order_relaxed);
    } else {
      std::get<1>(n->value).Write(value);
    }
    // Recorded like a hit (and filtered like one): its replay touches only
    // policy fields, which lookups do not read. The claim is not a lookup's,
    // so it is counted as another outcome, before leaving (see Stripe);
    // unless a writer has set its bit meanwhile (and waits for this thread):
    // then the claim is void, as in EnterShared, and the record is dropped.
    if (FirstInEpoch(s, slot)) {
      uint64_t w = st.word.fetch_add(kClaim, std::memory_order_relaxed);
      if ((w & kWriterBit) == 0) {
        claim = static_cast<uint32_t>(w >> 32);
        st.uncounted_claims.fetch_add(1, std::memory_order_relaxed);
        if (claim < kReadBuffer) {
          st.buf[claim].store(reinterpret_cast<uintptr_t>(n) | kHitL1, std::memory_order_relaxed);
        }
      }
    }
  }
  LeaveShared(s, st, claim);
  return done;
}

template <typename K, typename V, typename H, typename E>
bool TieredCacheCore<K, V, H, E>::erase(const K& key) {
  uint64_t h = Mix(hasher_(key));
  return DropKey(ShardFor(h), key, h);
}

template <typename K, typename V, typename H, typename E>
bool TieredCacheCore<K, V, H, E>::DropKey(Shard& s, const K& key, uint64_t h) {
  Graveyard g;
  Exclusive lock(*this, s, &g);
  Invalidate(s, key);
  Node* n = s.index.Find(h, key, eq_);
  if (!n) return false;
  Drop(s, n, &g);
  return true;
}

template <typename K, typename V, typename H, typename E>
template <typename F>
void TieredCacheCore<K, V, H, E>::ForEachShardHeld(F f) {
  for (uint32_t i = 0; i < nshards_; i++) {
    Graveyard g;  // destroyed after the hold ends
    Exclusive lock(*this, shards_[i], &g);
    f(shards_[i], &g);
  }
}

template <typename K, typename V, typename H, typename E>
void TieredCacheCore<K, V, H, E>::clear() {
  ForEachShardHeld([&](Shard& s, Graveyard* g) {
    for (auto& f : s.flights) f.second->invalidated = true;
    s.flights.clear();
    s.index.ForEach([&](Node* n) {
      s.policy->Remove(n);
      g->BuryDecoded(n);
      s.nodes.Delete(n);
    });
    s.index.Clear();
    s.nodes.Reset();  // the memory goes back too
  });
}

template <typename K, typename V, typename H, typename E>
void TieredCacheCore<K, V, H, E>::cleanup() {
  ForEachShardHeld([&](Shard& s, Graveyard* g) {
    int64_t now = Now();
    while (PolicyNode* e = s.policy->NextExpired(now, true)) Expire(s, e, g);
  });
}

template <typename K, typename V, typename H, typename E>
template <typename Loader>
Result<V> TieredCacheCore<K, V, H, E>::get_or_load(const K& key, Loader&& loader,
                                               std::chrono::nanoseconds ttl) {
  uint64_t h = Mix(hasher_(key));
  Shard& s = ShardFor(h);
  std::shared_ptr<Flight> flight;
  bool owner = false;
  {
    std::optional<V> out;
    if (ReadLookup(s, key, h, false, &out)) return Result<V>(std::move(*out));
  }
  {
    int64_t now = ttl_used() ? Now() : 0;
    Graveyard g;
    std::optional<V> out;
    Exclusive lock(*this, s, &g);
    if (Lookup(s, key, h, now, &out, &g)) return Result<V>(std::move(*out));
    auto it = s.flights.find(key);
    if (it != s.flights.end() && !it->second->finished.load(std::memory_order_acquire)) {
      flight = it->second;
      if (flight->owner == std::this_thread::get_id()) {
        return Status::Busy("get_or_load called from the loader of the same key");
      }
    } else {
      // Registered before anything else changes: if registering throws, the
      // caller gets the exception and no waiter can depend on this flight.
      auto fresh = std::make_shared<Flight>();
      fresh->owner = std::this_thread::get_id();
      if (it != s.flights.end()) {
        it->second = fresh;  // replaces one its owner left behind (see Flight)
      } else {
        s.flights.emplace(key, fresh);
      }
      s.loads++;
      flight = std::move(fresh);
      owner = true;
    }
  }
  if (!owner) return flight->Wait();

  // Every path from here publishes to the waiters: whatever the loader or
  // caching its result throws, they wake and get it.
  std::optional<Result<V>> result;
  std::exception_ptr error;
  try {
    result.emplace(std::forward<Loader>(loader)());
  } catch (...) {
    error = std::current_exception();
  }
  bool loaded = !error && result->ok();
  try {
    FinishLoad(s, key, h, *flight, loaded ? &result->value() : nullptr, ttl);
  } catch (...) {
    if (!error) error = std::current_exception();  // the loader's own exception wins
  }
  flight->Publish(error ? nullptr : &*result, error);
  if (error) std::rethrow_exception(error);
  return std::move(*result);
}

template <typename K, typename V, typename H, typename E>
void TieredCacheCore<K, V, H, E>::FinishLoad(Shard& s, const K& key, uint64_t h, Flight& flight,
                                         const V* value, std::chrono::nanoseconds ttl) {
  NoteTtl(ttl);
  // User code and allocations come before the exclusive hold: the
  // weighers, the codec for a value that can only go to L2, and the copy
  // the cache keeps. If one throws, the hold still takes the flight out
  // before the exception goes on, so the next call loads again.
  uint64_t w1 = 0;
  Encoded enc;
  std::optional<V> copy;
  std::exception_ptr failed;
  if (value) {
    try {
      w1 = options_.l1.capacity > 0 ? WeighDecoded(key, *value) : 0;
      PreEncode(s, key, *value, w1, &enc);
      copy.emplace(*value);
    } catch (...) {
      failed = std::current_exception();
    }
  }
  int64_t now = ttl_used() ? Now() : 0;
  Graveyard g;
  Exclusive lock(*this, s, &g);
  auto it = s.flights.find(key);
  if (it != s.flights.end() && it->second.get() == &flight) s.flights.erase(it);
  if (!value) s.load_errors++;
  if (failed) std::rethrow_exception(failed);
  if (copy && !flight.invalidated) {
    Status st = Store(s, key, h, std::move(*copy), w1, &enc, ttl, now, &g);
    (void)st;  // a rejected value is still returned, just not cached
  }
}

template <typename K, typename V, typename H, typename E>
Result<V> TieredCacheCore<K, V, H, E>::Flight::Wait() {
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [this] { return done; });
  lock.unlock();  // result and error no longer change: V's copy runs unlocked
  if (error) std::rethrow_exception(error);
  return *result;
}

template <typename K, typename V, typename H, typename E>
void TieredCacheCore<K, V, H, E>::Flight::Publish(const Result<V>* r, std::exception_ptr e) {
  if (r) {
    try {
      result.emplace(*r);  // waiters read it only once they see done
    } catch (...) {
      e = std::current_exception();  // the waiters get the copy's exception
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    error = std::move(e);
    done = true;
  }
  finished.store(true, std::memory_order_release);
  cv.notify_all();
}

template <typename K, typename V, typename H, typename E>
CacheStats TieredCacheCore<K, V, H, E>::stats() const {
  CacheStats out;
  auto add = [](CacheTierStats& a, const CacheTierStats& b) {
    a.hits += b.hits;
    a.misses += b.misses;
    a.evictions += b.evictions;
    a.expirations += b.expirations;
    a.promotions += b.promotions;
    a.demotions += b.demotions;
    a.entries += b.entries;
    a.bytes += b.bytes;
  };
  // Each hold replays the shard's buffered reads first, so counts are exact.
  const_cast<TieredCacheCore*>(this)->ForEachShardHeld([&](Shard& s, Graveyard*) {
    add(out.l1, s.policy->stats(Tier::kL1));
    add(out.l2, s.policy->stats(Tier::kL2));
    out.misses += s.misses;
    out.loads += s.loads;
    out.load_errors += s.load_errors;
    out.rejections += s.rejections;
    out.l1.capacity += s.l1_cap;
    out.l2.capacity += s.l2_cap;
  });
  return out;
}

template <typename K, typename V, typename H, typename E>
void TieredCacheCore<K, V, H, E>::reset_stats() {
  ForEachShardHeld([](Shard& s, Graveyard*) {
    for (auto t : {Tier::kL1, Tier::kL2}) {
      CacheTierStats& st = s.policy->stats(t);
      uint64_t entries = st.entries, bytes = st.bytes;
      st = CacheTierStats();
      st.entries = entries;
      st.bytes = bytes;
    }
    s.misses = s.loads = s.load_errors = s.rejections = 0;
  });
}

}  // namespace evstore::cache_internal

#endif  // EVSTORE_DETAIL_TIERED_CACHE_CORE_IMPL_HPP_
