// Histogram and Counter: the recording side of the store's metrics
// (include/evstore/metrics.hpp). Internal to the library.
//
// Both sit on hot paths (every append, every read), so recording is a few
// relaxed atomic additions: no lock, no allocation, no floating point. Each
// is split into shards on separate cache lines; a thread always uses the same
// shard, so concurrent readers and appenders do not bounce one line between
// cores. A snapshot sums the shards; it is not atomic across buckets (a
// record in flight may show in the sum and not yet in its bucket), which is
// what a scrape can live with.
//
// Buckets are log-linear over nanoseconds: every power of two from 1.024 us
// (2^10 ns) to about 137 s (2^37 ns) is split into kSubBuckets equal parts,
// so any value is placed within 1/kSubBuckets (25%) of its size. Values
// below 2^10 ns fall into the first bucket, values past the last bound into
// an overflow bucket.
//
// Thread safety: Record/Add from any number of threads; Snapshot from any.
#ifndef EVSTORE_LIB_METRICS_HISTOGRAM_HPP_
#define EVSTORE_LIB_METRICS_HISTOGRAM_HPP_

#include <array>
#include <atomic>
#include <bit>
#include <chrono>
#include <cstddef>
#include <cstdint>

#include "evstore/metrics.hpp"

namespace evstore::metrics {

inline constexpr size_t kShards = 4;

// The shard of the calling thread (threads are dealt out round robin).
size_t ThreadShard() noexcept;

class Counter {
 public:
  void Add(uint64_t n = 1) noexcept {
    shards_[ThreadShard()].v.fetch_add(n, std::memory_order_relaxed);
  }
  uint64_t Get() const noexcept {
    uint64_t sum = 0;
    for (const Shard& s : shards_) sum += s.v.load(std::memory_order_relaxed);
    return sum;
  }

 private:
  struct alignas(64) Shard {
    std::atomic<uint64_t> v{0};
  };
  std::array<Shard, kShards> shards_{};
};

class Histogram {
 public:
  static constexpr int kMinExp = 10;  // 2^10 ns = 1.024 us
  static constexpr int kMaxExp = 37;  // 2^37 ns = 137 s
  static constexpr int kSubBits = 2;
  static constexpr size_t kSubBuckets = size_t{1} << kSubBits;
  // Finite buckets, then the overflow bucket.
  static constexpr size_t kFinite = (kMaxExp - kMinExp) * kSubBuckets;
  static constexpr size_t kBuckets = kFinite + 1;

  // The bucket of a value in nanoseconds.
  static constexpr size_t BucketOf(uint64_t ns) noexcept {
    if (ns < (uint64_t{1} << kMinExp)) return 0;
    int e = std::bit_width(ns) - 1;  // 2^e <= ns < 2^(e+1)
    if (e >= kMaxExp) return kFinite;
    size_t sub = static_cast<size_t>((ns >> (e - kSubBits)) & (kSubBuckets - 1));
    return static_cast<size_t>(e - kMinExp) * kSubBuckets + sub;
  }
  // The upper bound, in nanoseconds, of finite bucket b (exclusive: values
  // equal to it land in the next bucket).
  static constexpr uint64_t UpperBoundNs(size_t b) noexcept {
    int e = kMinExp + static_cast<int>(b / kSubBuckets);
    uint64_t sub = b % kSubBuckets + 1;
    return (uint64_t{1} << e) + (sub << (e - kSubBits));
  }

  void RecordNs(uint64_t ns) noexcept {
    Shard& s = shards_[ThreadShard()];
    s.buckets[BucketOf(ns)].fetch_add(1, std::memory_order_relaxed);
    s.sum_ns.fetch_add(ns, std::memory_order_relaxed);
  }
  void Record(std::chrono::steady_clock::duration d) noexcept {
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
    RecordNs(ns > 0 ? static_cast<uint64_t>(ns) : 0);
  }

  // The distribution so far, with Prometheus buckets at every power of two
  // (the bounds where the counts are exact).
  LatencyHistogram Snapshot() const;

 private:
  struct alignas(64) Shard {
    std::array<std::atomic<uint64_t>, kBuckets> buckets{};
    std::atomic<uint64_t> sum_ns{0};
  };
  std::array<Shard, kShards> shards_{};
};

// Times a scope into a histogram.
class ScopedTimer {
 public:
  explicit ScopedTimer(Histogram* h) noexcept : h_(h), t0_(std::chrono::steady_clock::now()) {}
  ~ScopedTimer() { h_->Record(std::chrono::steady_clock::now() - t0_); }
  ScopedTimer(const ScopedTimer&) = delete;
  ScopedTimer& operator=(const ScopedTimer&) = delete;

 private:
  Histogram* h_;
  std::chrono::steady_clock::time_point t0_;
};

}  // namespace evstore::metrics

#endif  // EVSTORE_LIB_METRICS_HISTOGRAM_HPP_
