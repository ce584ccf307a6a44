// `evstore-bench all` / `compare`: the shared workload (Zipf-chosen streams,
// random payloads), timed loops that record each operation's latency, and the
// two comparison sections (appends; a filled log's bytes, reads and open).
#ifndef EVSTORE_TOOLS_BENCH_COMPARE_HPP_
#define EVSTORE_TOOLS_BENCH_COMPARE_HPP_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "bench.hpp"
#include "histogram.hpp"
#include "json.hpp"

namespace evbench {

struct CompareConfig {
  double seconds = 1;          // per append measurement
  int repeat = 3;              // repeats; ratios are medians of per-repeat ratios
  std::vector<int> appenders = {1, 8};
  std::vector<int> batch = {1, 100};  // events per append
  uint64_t streams = 10000;    // Zipf-chosen streams of the append runs
  double theta = 0.99;         // their Zipf exponent
  size_t bytes = 100;          // payload bytes per event (random)
  uint64_t events = 1000000;   // events in the filled log (bytes, reads, open)
  int stream_reads = 500;      // streams read per stream-read pass
  bool baselines = true;       // raw RocksDB and SQLite too (false: evstore only)
};

// The events every engine appends: names, types, ids and payloads drawn in
// advance, so the timed loops only index arrays.
struct Workload {
  explicit Workload(const CompareConfig& c);
  std::vector<std::string> streams;    // "<category>-<n>"
  std::vector<std::string> categories;
  std::vector<std::string> types;
  std::vector<uint32_t> zipf;          // stream indices, Zipf(theta), 2^20 of them
  std::vector<std::string> payloads;   // 4096 random payloads
  std::vector<std::string> ids;        // 4096 random 16-byte ids
  const std::string& ZipfStream(int thread, uint64_t i) const {
    return streams[zipf[(static_cast<uint64_t>(thread) * 131071 + i) & (zipf.size() - 1)]];
  }
};

// Runs `threads` workers for `seconds`; each calls op(thread, i) until the
// time is up, and the time each call took goes into that thread's histogram
// (nanoseconds), merged into *latency at the end. op returns false on
// failure, which ends the benchmark with a message. Returns calls per second.
template <typename Op>
double RunTimedLatency(int threads, double seconds, Histogram* latency, Op op) {
  std::vector<Histogram> per_thread(static_cast<size_t>(threads));
  std::atomic<uint64_t> total{0};
  std::atomic<bool> stop{false}, failed{false};
  std::vector<std::thread> ts;
  double t0 = Now();
  for (int t = 0; t < threads; t++) {
    ts.emplace_back([&, t] {
      Histogram& h = per_thread[static_cast<size_t>(t)];
      uint64_t n = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        auto start = std::chrono::steady_clock::now();
        if (!op(t, n)) {
          failed = true;
          break;
        }
        h.Record(static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                           std::chrono::steady_clock::now() - start)
                                           .count()));
        n++;
      }
      total += n;
    });
  }
  while (Now() - t0 < seconds && !failed) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  stop = true;
  for (auto& th : ts) th.join();
  double elapsed = Now() - t0;
  if (failed) {
    std::fprintf(stderr, "evstore-bench: an operation failed\n");
    std::exit(1);
  }
  for (const Histogram& h : per_thread) latency->Merge(h);
  return static_cast<double>(total.load()) / elapsed;
}

// p50, p99, p99.9 and max of a histogram of nanoseconds, in microseconds.
Json LatencyJson(const Histogram& h);

// fdatasync()s per second of the disk under `dir`: `threads` loops, each of
// a small append to a file of its own and its fdatasync, for `seconds` (the
// way a write-ahead log syncs: each sync also makes the new length durable).
// Returns the syncs of all loops together per second.
double FdatasyncRate(const std::string& dir, double seconds, int threads = 1);

// Bytes of the files under `dir` (recursively), leaving out RocksDB's text
// info log (LOG, LOG.old.*): diagnostics, not data.
uint64_t DirBytes(const std::string& dir);

// Asks the kernel to drop the cached pages of every file under `dir`
// (posix_fadvise DONTNEED): the next reads come from the disk.
void DropPageCache(const std::string& dir);

// SQLite's files (database, WAL, shared memory) go in directory `dir`,
// created here; returns the database's path.
std::string SqlitePath(const std::string& dir);

// Median of per-repeat ratios a[r] / b[r].
double MedianRatio(const std::vector<double>& a, const std::vector<double>& b);

// The comparison sections. Each adds its target ratios to *ratios.
Json RunAppendComparison(const CompareConfig& c, const Workload& w, ScratchDir& dir, Json* ratios,
                         double* fsync_rate, double* fsync8_rate);
Json RunLogComparison(const CompareConfig& c, const Workload& w, ScratchDir& dir, Json* ratios);

}  // namespace evbench

#endif  // EVSTORE_TOOLS_BENCH_COMPARE_HPP_
