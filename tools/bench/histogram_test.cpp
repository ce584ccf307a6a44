// The benchmark's latency histogram: buckets tile the range without gaps or
// overlaps, stay within 1/64 of their values, and percentiles and merges
// agree with an exact computation on the same values.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

#include "histogram.hpp"

using evbench::Histogram;

namespace {

// The exact q-quantile by the same rank rule: the ceil(q * n)-th smallest.
uint64_t ExactPercentile(std::vector<uint64_t> v, double q) {
  std::sort(v.begin(), v.end());
  double want = q * static_cast<double>(v.size());
  size_t rank = static_cast<size_t>(want);
  if (static_cast<double>(rank) < want) rank++;
  rank = std::clamp<size_t>(rank, 1, v.size());
  return v[rank - 1];
}

}  // namespace

TEST_SUITE("bench_histogram") {
  TEST_CASE("buckets tile every value without gaps and are at most 1/64 of their values wide") {
    CHECK(Histogram::Index(0) == 0);
    CHECK(Histogram::Index(Histogram::kMaxBucketed) == Histogram::kBuckets - 1);
    CHECK(Histogram::Index(UINT64_MAX) == Histogram::kBuckets - 1);
    CHECK(Histogram::BucketHigh(Histogram::kBuckets - 1) == Histogram::kMaxBucketed);
    for (size_t i = 0; i < Histogram::kBuckets; i++) {
      uint64_t lo = Histogram::BucketLow(i), hi = Histogram::BucketHigh(i);
      CAPTURE(i);
      REQUIRE(lo <= hi);
      REQUIRE(Histogram::Index(lo) == i);
      REQUIRE(Histogram::Index(hi) == i);
      if (i + 1 < Histogram::kBuckets) REQUIRE(Histogram::BucketLow(i + 1) == hi + 1);
      if (lo >= Histogram::kSub) REQUIRE((hi - lo + 1) * 64 <= lo);
    }
  }

  TEST_CASE("percentiles are within a bucket of the exact ones and never below them") {
    std::mt19937_64 rng(7);
    std::lognormal_distribution<double> dist(10.0, 2.0);  // ~20 us median, long tail
    std::vector<uint64_t> values;
    Histogram h;
    for (int i = 0; i < 100000; i++) {
      uint64_t v = static_cast<uint64_t>(dist(rng));
      values.push_back(v);
      h.Record(v);
    }
    CHECK(h.count() == values.size());
    CHECK(h.max() == *std::max_element(values.begin(), values.end()));
    CHECK(h.min() == *std::min_element(values.begin(), values.end()));
    for (double q : {0.5, 0.9, 0.99, 0.999, 1.0}) {
      uint64_t exact = ExactPercentile(values, q), got = h.Percentile(q);
      CAPTURE(q);
      CAPTURE(exact);
      CAPTURE(got);
      CHECK(got >= exact);
      CHECK(Histogram::Index(got) == Histogram::Index(exact));
    }
    CHECK(h.Percentile(1.0) == h.max());
  }

  TEST_CASE("merging per-thread histograms equals recording everything in one") {
    Histogram a, b, all;
    for (uint64_t v = 1; v < 5000000; v = v * 3 / 2 + 1) {
      ((v & 1) ? a : b).Record(v);
      all.Record(v);
    }
    a.Merge(b);
    CHECK(a.count() == all.count());
    CHECK(a.max() == all.max());
    CHECK(a.min() == all.min());
    CHECK(a.mean() == doctest::Approx(all.mean()));
    for (double q : {0.0, 0.25, 0.5, 0.99, 0.999, 1.0}) CHECK(a.Percentile(q) == all.Percentile(q));
  }

  TEST_CASE("an empty histogram reports zeros") {
    Histogram h;
    CHECK(h.count() == 0);
    CHECK(h.Percentile(0.5) == 0);
    CHECK(h.min() == 0);
    CHECK(h.max() == 0);
  }
}
