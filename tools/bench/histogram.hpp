// evbench::Histogram: a log-linear (HDR-style) latency histogram.
//
// Values (nanoseconds in evstore-bench, but any unsigned count works) below
// 128 have a bucket each; above, every power of two is split into 64 equal
// buckets, so a bucket is at most 1/64 (1.6%) of its values wide and a
// percentile is reported within that relative error. Values of 2^41 and more
// (36 minutes in nanoseconds) land in the last bucket; the exact maximum is
// kept apart. The counts live in a fixed array: Record() never allocates,
// takes no lock and costs a few instructions, so each thread records into its
// own histogram and the run merges them afterwards.
//
// Thread safety: none. One writer at a time; merge after the writers stop.
#ifndef EVSTORE_TOOLS_BENCH_HISTOGRAM_HPP_
#define EVSTORE_TOOLS_BENCH_HISTOGRAM_HPP_

#include <array>
#include <bit>
#include <cstdint>

namespace evbench {

class Histogram {
 public:
  static constexpr int kSubBits = 7;                     // 128 linear buckets at the bottom
  static constexpr uint64_t kSub = uint64_t{1} << kSubBits;
  static constexpr uint64_t kHalf = kSub / 2;            // buckets per power of two above
  static constexpr int kMaxExponent = 40;                // highest bit of a bucketed value
  static constexpr uint64_t kMaxBucketed = (uint64_t{1} << (kMaxExponent + 1)) - 1;
  static constexpr size_t kBuckets = (kMaxExponent - kSubBits + 3) * kHalf;

  void Record(uint64_t v) {
    counts_[Index(v)]++;
    count_++;
    sum_ += v;
    if (v > max_) max_ = v;
    if (v < min_) min_ = v;
  }

  // Adds every value `o` holds, as if each had been recorded here.
  void Merge(const Histogram& o) {
    for (size_t i = 0; i < kBuckets; i++) counts_[i] += o.counts_[i];
    count_ += o.count_;
    sum_ += o.sum_;
    if (o.max_ > max_) max_ = o.max_;
    if (o.min_ < min_) min_ = o.min_;
  }

  uint64_t count() const { return count_; }
  uint64_t max() const { return max_; }
  uint64_t min() const { return count_ ? min_ : 0; }
  double mean() const { return count_ ? static_cast<double>(sum_) / static_cast<double>(count_) : 0; }

  // The smallest bucket bound at or below which at least fraction `q` of the
  // values lie (q in [0, 1]; 0 when empty). Reports the bucket's highest
  // value, capped at the exact maximum, so it never understates a latency.
  uint64_t Percentile(double q) const {
    if (count_ == 0) return 0;
    if (q <= 0) return min();
    // The rank of the value sought, 1-based: ceil(q * count), at least 1.
    double want = q * static_cast<double>(count_);
    uint64_t rank = static_cast<uint64_t>(want);
    if (static_cast<double>(rank) < want) rank++;
    if (rank == 0) rank = 1;
    if (rank > count_) rank = count_;
    uint64_t seen = 0;
    for (size_t i = 0; i < kBuckets; i++) {
      seen += counts_[i];
      if (seen >= rank) {
        uint64_t hi = BucketHigh(i);
        return hi < max_ ? hi : max_;
      }
    }
    return max_;
  }

  // Bucket arithmetic, public for the tests.
  static size_t Index(uint64_t v) {
    if (v > kMaxBucketed) v = kMaxBucketed;
    if (v < kSub) return static_cast<size_t>(v);
    int e = 63 - std::countl_zero(v);  // kSubBits <= e <= kMaxExponent
    int shift = e - kSubBits + 1;
    return static_cast<size_t>(static_cast<uint64_t>(shift) * kHalf + (v >> shift));
  }
  static uint64_t BucketLow(size_t i) {
    if (i < kSub) return i;
    int shift = static_cast<int>(i / kHalf) - 1;
    return (static_cast<uint64_t>(i) - static_cast<uint64_t>(shift) * kHalf) << shift;
  }
  static uint64_t BucketHigh(size_t i) {
    if (i < kSub) return i;
    int shift = static_cast<int>(i / kHalf) - 1;
    return BucketLow(i) + (uint64_t{1} << shift) - 1;
  }

 private:
  std::array<uint64_t, kBuckets> counts_{};
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
  uint64_t max_ = 0;
  uint64_t min_ = UINT64_MAX;
};

}  // namespace evbench

#endif  // EVSTORE_TOOLS_BENCH_HISTOGRAM_HPP_
