// evstore-bench saga: 3-step sagas with trivial handlers against the durable
// single-event append, both sync=true, at the same concurrency, in the same
// run. A saga commits 4 records (start + one per step, the last one also
// marking it completed), each riding the group commit; the target is saga
// throughput >= 1/5 of the append throughput.
#include <atomic>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "bench.hpp"
#include "evstore/saga.hpp"
#include "evstore/store.hpp"

namespace evbench {
namespace {

using namespace evstore;

Store OpenDurable(const std::string& path) {
  Options o;
  o.sync = true;
  auto s = Store::open(path, o);
  if (!s.ok()) {
    std::fprintf(stderr, "open: %s\n", s.status().ToString().c_str());
    std::exit(1);
  }
  return std::move(s).value();
}

double Appends(ScratchDir& dir, int threads, double seconds) {
  return EvstoreAppendRate(dir.Fresh("append"), /*sync=*/true, threads, seconds, 100);
}

double Sagas(ScratchDir& dir, int threads, double seconds, SagaStats* stats) {
  Store s = OpenDurable(dir.Fresh("saga"));
  SagaDefinition d;
  d.name = "bench";
  for (const char* name : {"reserve", "charge", "ship"}) {
    StepDefinition st;
    st.name = name;
    st.action = [](const StepContext&) { return StepResult::Success(); };
    st.compensation = [](const StepContext&) { return StepResult::Success(); };
    d.steps.push_back(std::move(st));
  }
  SagaEngineOptions o;
  o.threads = static_cast<size_t>(threads);
  auto eng = SagaEngine::open(s, std::vector{d}, o);
  if (!eng.ok()) {
    std::fprintf(stderr, "engine: %s\n", eng.status().ToString().c_str());
    std::exit(1);
  }
  double r = RunTimed(threads, seconds, [&](int t, uint64_t i) {
    std::string id = "s-" + std::to_string(t) + "-" + std::to_string(i);
    if (!(*eng)->start("bench", id, "").ok()) return false;
    auto w = (*eng)->wait(id, std::chrono::seconds(60));
    return w.ok() && w->state == SagaState::kCompleted;
  });
  *stats = (*eng)->stats();
  (void)(*eng)->shutdown();
  (void)s.close();
  return r;
}

int Run(const std::vector<std::string>& args) {
  double seconds = std::stod(Flag(args, "seconds", "2"));
  int repeat = std::stoi(Flag(args, "repeat", "3"));
  std::vector<int> conc = {1, 8};
  ScratchDir dir;
  std::vector<std::vector<double>> app(conc.size()), sag(conc.size());
  SagaStats last{};
  for (int r = 0; r < repeat; r++) {
    for (size_t c = 0; c < conc.size(); c++) {
      app[c].push_back(Appends(dir, conc[c], seconds));
      sag[c].push_back(Sagas(dir, conc[c], seconds, &last));
    }
  }
  std::printf("saga: 3-step sagas (trivial handlers) vs single-event appends, sync=true, "
              "median of %d x %.1fs\n",
              repeat, seconds);
  std::printf("%-12s %14s %12s %14s %8s\n", "concurrency", "appends/s", "sagas/s",
              "saga steps/s", "ratio");
  std::string json = "{\"scenario\":\"saga\",\"steps\":3,\"sync\":true";
  for (size_t c = 0; c < conc.size(); c++) {
    double a = Median(app[c]), s = Median(sag[c]);
    std::printf("%-12d %14.0f %12.0f %14.0f %7.3f%s\n", conc[c], a, s, 3 * s, s / a,
                s / a >= 0.2 ? "" : "  (below the 0.2 target)");
    char buf[160];
    std::snprintf(buf, sizeof buf, ",\"append_%d\":%.0f,\"saga_%d\":%.0f,\"ratio_%d\":%.3f", conc[c],
                  a, conc[c], s, conc[c], s / a);
    json += buf;
  }
  std::printf("last run, %d concurrent: step handler p50 %.0f us, p99 %.0f us\n", conc.back(),
              last.step_p50_us, last.step_p99_us);
  json += "}";
  std::printf("%s\n", json.c_str());
  return 0;
}

static Registrar reg("saga", "3-step sagas vs durable appends at 1 and 8 concurrent (sync=true)",
                     &Run);

}  // namespace
}  // namespace evbench
