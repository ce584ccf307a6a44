// Command crash-test child: handles commands with ids on a few counter
// streams from two threads (each id is sent by both), printing one line per
// handled command ("H <id> <accepted 0|1> <first position or -> <from_log 0|1>")
// until it is killed, or until it kills itself with SIGKILL inside the
// decide of the command id it is told to (between decide and commit).
// usage: command_crash_child DIR KILL_ID IDS
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "crash_child_util.hpp"
#include "evstore/aggregate.hpp"
#include "evstore/command.hpp"
#include "evstore/store.hpp"

using namespace evstore;
using evtest::Emit;

namespace {
struct Counter {
  int64_t value = 0;
};
}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: command_crash_child DIR KILL_ID IDS\n");
    return 2;
  }
  const std::string kill_id = argv[2];
  const int ids = std::stoi(argv[3]);
  std::optional<Store> opened = evtest::OpenSynced(argv[1]);
  if (!opened) return 1;
  AggregateOptions o;
  o.name = "counter";
  o.snapshots.every_events = 5;  // the snapshot writer runs while the kill lands
  AggregateType<Counter> t;
  // An event's data is "<new value> <command id>".
  t.evolve = [](Counter c, const EventView& e) {
    c.value = std::stoll(std::string(e.data.substr(0, e.data.find(' '))));
    return c;
  };
  t.codec.encode = [](const Counter& c) { return std::to_string(c.value); };
  t.codec.decode = [](std::string_view b) -> Result<Counter> { return Counter{std::stoll(std::string(b))}; };
  auto agg = Aggregate<Counter>::open(*opened, o, t);
  if (!agg.ok()) {
    std::fprintf(stderr, "aggregate: %s\n", agg.status().ToString().c_str());
    return 1;
  }
  Decide<Counter> decide = [&kill_id](const Counter& c, const Command& cmd) {
    if (cmd.id == kill_id) raise(SIGKILL);
    if (cmd.payload == "reject") return Decision::Reject("refused", cmd.id);
    EventData e;
    e.type = "Set";
    e.data = std::to_string(c.value + 1) + " " + cmd.id;
    return Decision::Accept({e});
  };
  Emit("READY\n");
  CommandOptions co;
  co.max_tries = 1000;
  std::vector<std::thread> threads;
  for (int th = 0; th < 2; th++) {
    threads.emplace_back([&, th] {
      for (int k = 0; k < ids; k++) {
        int n = th == 0 ? k : ids - 1 - k;
        Command cmd;
        cmd.type = "Add";
        cmd.id = "cmd-" + std::to_string(n);
        cmd.stream = "counter-" + std::to_string(n % 4);
        cmd.payload = n % 5 == 4 ? "reject" : "add";
        auto r = HandleCommand(*agg, cmd, decide, co);
        if (!r.ok()) {
          std::fprintf(stderr, "handle %s: %s\n", cmd.id.c_str(), r.status().ToString().c_str());
          _exit(1);
        }
        Emit("H " + cmd.id + " " + (r->accepted() ? "1 " : "0 ") +
             (r->events > 0 ? std::to_string(r->append.first_position) : std::string("-")) +
             (r->from_log ? " 1\n" : " 0\n"));
      }
    });
  }
  for (auto& th : threads) th.join();
  Emit("DONE\n");
  return 0;
}
