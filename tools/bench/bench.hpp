// evstore-bench: scenarios register themselves here; main() dispatches by name.
#ifndef EVSTORE_TOOLS_BENCH_BENCH_HPP_
#define EVSTORE_TOOLS_BENCH_BENCH_HPP_

#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

namespace evbench {

using ScenarioFn = int (*)(const std::vector<std::string>& args);

struct Scenario {
  const char* name;
  const char* help;
  ScenarioFn run;
};

// Registers a scenario at static-initialisation time.
struct Registrar {
  Registrar(const char* name, const char* help, ScenarioFn fn);
};

std::vector<Scenario>& Scenarios();

inline double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

inline double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// A temporary directory for a scenario's stores, removed at scope end.
class ScratchDir {
 public:
  ScratchDir() {
    std::string tmpl =
        (std::filesystem::temp_directory_path() / "evstore-bench-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) std::abort();
    root_ = tmpl;
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  // A path under the directory, emptied.
  std::string Fresh(const std::string& name) {
    std::string p = root_ + "/" + name;
    std::error_code ec;
    std::filesystem::remove_all(p, ec);
    return p;
  }

 private:
  std::string root_;
};

// Runs `threads` workers until `seconds` pass; each calls op(thread, i),
// which returns false on failure (the benchmark then exits with an error).
// Returns operations per second.
template <typename Op>
double RunTimed(int threads, double seconds, Op op) {
  std::atomic<uint64_t> total{0};
  std::atomic<bool> stop{false}, failed{false};
  std::vector<std::thread> ts;
  double t0 = Now();
  for (int t = 0; t < threads; t++) {
    ts.emplace_back([&, t] {
      uint64_t n = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        if (!op(t, n)) {
          failed = true;
          break;
        }
        n++;
      }
      total += n;
    });
  }
  while (Now() - t0 < seconds && !failed) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  stop = true;
  for (auto& th : ts) th.join();
  if (failed) {
    std::fprintf(stderr, "evstore-bench: an operation failed\n");
    std::exit(1);
  }
  return static_cast<double>(total.load()) / (Now() - t0);
}

// evstore appends per second: `threads` appenders, one `bytes`-byte event per
// append, on a fresh store at `path` (bench_log.cpp).
double EvstoreAppendRate(const std::string& path, bool sync, int threads, double seconds,
                         size_t bytes);

// "--name=value" or "--name value" lookup; returns def when absent.
std::string Flag(const std::vector<std::string>& args, const std::string& name,
                 const std::string& def);
bool HasFlag(const std::vector<std::string>& args, const std::string& name);

}  // namespace evbench

#endif  // EVSTORE_TOOLS_BENCH_BENCH_HPP_
