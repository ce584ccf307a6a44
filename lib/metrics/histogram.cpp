// Histogram snapshots and the thread-to-shard assignment (histogram.hpp).
#include "metrics/histogram.hpp"

#include <limits>

namespace evstore::metrics {

size_t ThreadShard() noexcept {
  static std::atomic<size_t> next{0};
  thread_local const size_t shard = next.fetch_add(1, std::memory_order_relaxed) % kShards;
  return shard;
}

LatencyHistogram Histogram::Snapshot() const {
  std::array<uint64_t, kBuckets> counts{};
  uint64_t sum_ns = 0;
  for (const Shard& s : shards_) {
    for (size_t b = 0; b < kBuckets; b++) counts[b] += s.buckets[b].load(std::memory_order_relaxed);
    sum_ns += s.sum_ns.load(std::memory_order_relaxed);
  }
  LatencyHistogram h;
  for (uint64_t c : counts) h.count += c;
  h.sum_seconds = static_cast<double>(sum_ns) * 1e-9;
  // Exposed bounds: the powers of two, 2^(kMinExp+1) .. 2^kMaxExp ns (the
  // ends of every kSubBuckets-th bucket), then +Inf.
  uint64_t cumulative = 0;
  h.buckets.reserve(kMaxExp - kMinExp + 1);
  for (size_t b = 0; b < kFinite; b++) {
    cumulative += counts[b];
    if ((b + 1) % kSubBuckets == 0)
      h.buckets.push_back({static_cast<double>(UpperBoundNs(b)) * 1e-9, cumulative});
  }
  h.buckets.push_back({std::numeric_limits<double>::infinity(), h.count});

  // Quantiles from the fine buckets, interpolated linearly inside the bucket
  // that holds the wanted rank (the overflow bucket reports its lower bound).
  auto quantile = [&](double q) -> double {
    if (h.count == 0) return 0;
    double rank = q * static_cast<double>(h.count);
    uint64_t seen = 0;
    for (size_t b = 0; b < kBuckets; b++) {
      if (counts[b] == 0) continue;
      if (static_cast<double>(seen + counts[b]) >= rank) {
        if (b == kFinite) return static_cast<double>(uint64_t{1} << kMaxExp) * 1e-9;
        double lo = b == 0 ? 0 : static_cast<double>(UpperBoundNs(b - 1));
        double hi = static_cast<double>(UpperBoundNs(b));
        double within = (rank - static_cast<double>(seen)) / static_cast<double>(counts[b]);
        if (within < 0) within = 0;
        return (lo + (hi - lo) * within) * 1e-9;
      }
      seen += counts[b];
    }
    return 0;
  };
  h.p50 = quantile(0.5);
  h.p99 = quantile(0.99);
  h.p999 = quantile(0.999);
  return h;
}

}  // namespace evstore::metrics
