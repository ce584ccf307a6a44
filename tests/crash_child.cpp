// Crash-test writer: appends with sync=true from several threads and prints
// one line per acknowledged append ("A <stream> <first_pos> <last_pos>
// <first_ver> <last_ver> <token>") until it is killed.
#include <unistd.h>

#include <cstdio>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "crash_child_util.hpp"
#include "evstore/store.hpp"

using namespace evstore;
using evtest::Emit;

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: crash_child DIR SEED\n");
    return 2;
  }
  std::string dir = argv[1];
  unsigned seed = static_cast<unsigned>(std::stoul(argv[2]));
  std::optional<Store> opened = evtest::OpenSynced(dir);
  if (!opened) return 1;
  Store& store = *opened;
  Emit("READY\n");
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; t++) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(seed * 31 + t);
      for (uint64_t i = 0;; i++) {
        std::string stream = "crash-" + std::to_string(rng() % 16);
        size_t n = 1 + rng() % 4;
        std::string token = std::to_string(seed) + "." + std::to_string(t) + "." + std::to_string(i);
        std::vector<EventData> evs;
        for (size_t k = 0; k < n; k++) {
          EventData e;
          e.type = "Crashed";
          e.data = token + "#" + std::to_string(k);
          evs.push_back(std::move(e));
        }
        auto r = store.append(stream, ExpectedVersion::Any(), evs);
        if (!r.ok()) {
          std::fprintf(stderr, "append: %s\n", r.status().ToString().c_str());
          _exit(1);
        }
        Emit("A " + stream + " " + std::to_string(r->first_position) + " " +
             std::to_string(r->last_position) + " " + std::to_string(r->first_version) + " " +
             std::to_string(r->last_version) + " " + token + "\n");
      }
    });
  }
  for (auto& th : threads) th.join();
  return 0;
}
