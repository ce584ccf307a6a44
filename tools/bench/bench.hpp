// evstore-bench: scenarios register themselves here; main() dispatches by name.
#ifndef EVSTORE_TOOLS_BENCH_BENCH_HPP_
#define EVSTORE_TOOLS_BENCH_BENCH_HPP_

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>
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

// "--name=value" or "--name value" lookup; returns def when absent.
std::string Flag(const std::vector<std::string>& args, const std::string& name,
                 const std::string& def);
bool HasFlag(const std::vector<std::string>& args, const std::string& name);

}  // namespace evbench

#endif  // EVSTORE_TOOLS_BENCH_BENCH_HPP_
