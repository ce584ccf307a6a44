// Projection crash-test child: appends from two threads while projection
// "fold" (tests/projection_fold.hpp) folds the log, until it is killed. The
// handler version comes from the command line, so a new one starts an online
// rebuild that the kill may interrupt at any point.
#include <cstdio>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "crash_child_util.hpp"
#include "evstore/store.hpp"
#include "projection_fold.hpp"

using namespace evstore;
using evtest::Emit;

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: projection_crash_child DIR SEED VERSION\n");
    return 2;
  }
  std::string dir = argv[1];
  unsigned seed = static_cast<unsigned>(std::stoul(argv[2]));
  std::optional<Store> opened = evtest::OpenSynced(dir);
  if (!opened) return 1;
  Store& store = *opened;
  ProjectionOptions po;
  po.version = static_cast<uint32_t>(std::stoul(argv[3]));
  po.max_batch = 1 + seed % 50;
  auto p = store.run_projection("fold", po, evtest::CountByType);
  if (!p.ok()) {
    std::fprintf(stderr, "run_projection: %s\n", p.status().ToString().c_str());
    return 1;
  }
  Emit("READY\n");
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; t++) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(seed * 31 + t);
      for (;;) {
        std::vector<EventData> evs(1 + rng() % 3);
        for (auto& e : evs) e.type = "T" + std::to_string(rng() % 5);
        auto r = store.append("p-" + std::to_string(rng() % 8), ExpectedVersion::Any(), evs);
        if (!r.ok()) {
          std::fprintf(stderr, "append: %s\n", r.status().ToString().c_str());
          _exit(1);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  return 0;
}
