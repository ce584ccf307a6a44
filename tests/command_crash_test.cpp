// Kills a process handling commands with ids (SIGKILL at random moments,
// and from inside decide, between the decision and its commit) and checks,
// after every kill, that the command log and the log agree: every command
// acknowledged before the kill is in the command log with the outcome it
// was acknowledged with, every id's events are in the log at most once and
// exactly when the command log says it was accepted, and no update is lost.
#include <doctest/doctest.h>

#include <map>
#include <random>
#include <sstream>

#include "evstore/command.hpp"
#include "evstore/store.hpp"
#include "test_util.hpp"

using namespace evstore;

namespace {

struct Ack {
  bool accepted;
  std::string position;  // "-" when no events
};

}  // namespace

TEST_SUITE("command_crash") {
  TEST_CASE("a command id is handled at most once across SIGKILLs, also between decide and commit") {
    const char* child = std::getenv("EVSTORE_COMMAND_CRASH_CHILD");
    REQUIRE_MESSAGE(child != nullptr, "EVSTORE_COMMAND_CRASH_CHILD must name the child binary");
    evtest::TempDir dir;
    std::string path = dir.sub("db");
    std::mt19937 rng(4242);
    constexpr int kRounds = 12, kPerRound = 16;
    std::map<std::string, Ack> acked;
    int self_kills = 0, acks = 0;
    for (int round = 0; round < kRounds; round++) {
      const int ids = kPerRound * (round + 1);
      // Even rounds: the child kills itself in the decide of a new id.
      std::string kill_id = "none";
      if (round % 2 == 0) kill_id = "cmd-" + std::to_string(ids - kPerRound + static_cast<int>(rng() % kPerRound));
      // (-1: no kill from here; the child dies by its own hand.)
      int ms = round % 2 == 0 ? -1 : 5 + static_cast<int>(rng() % 60);
      evtest::ChildRun run = evtest::RunChild(child, {path, kill_id, std::to_string(ids)}, ms);
      CAPTURE(round);
      CHECK_MESSAGE((run.killed || run.exit_code == 0), "child failed with code ", run.exit_code);
      for (const std::string& line : run.lines) {
        if (line.rfind("H ", 0) != 0) continue;
        std::istringstream ls(line.substr(2));
        std::string id, pos;
        int accepted = 0, from_log = 0;
        ls >> id >> accepted >> pos >> from_log;
        Ack a{accepted == 1, pos};
        auto [it, fresh] = acked.emplace(id, a);
        // A repeat is answered with the outcome first acknowledged.
        CHECK(it->second.accepted == a.accepted);
        CHECK(it->second.position == a.position);
        acks++;
      }

      Store s = evtest::OpenOrDie(path, Options());
      if (kill_id != "none") {
        CHECK_MESSAGE(run.killed, "the child did not die in the decide of ", kill_id);
        self_kills++;
        // Killed between decide and commit: nothing of it was written.
        CHECK(LookupCommand(s, kill_id).status().IsNotFound());
      }
      // Every acknowledged command is in the command log as acknowledged.
      for (const auto& entry : acked) {
        const std::string& id = entry.first;
        const Ack& a = entry.second;
        CAPTURE(id);
        auto r = LookupCommand(s, id);
        REQUIRE_MESSAGE(r.ok(), r.status().ToString());
        CHECK(r->accepted() == a.accepted);
        CHECK((r->events > 0 ? std::to_string(r->append.first_position) : std::string("-")) == a.position);
      }
      // Each id's event is in the log once, where the command log says;
      // each stream counts up by one per event (no lost update).
      std::map<std::string, uint64_t> seen;
      for (int st = 0; st < 4; st++) {
        std::string stream = "counter-" + std::to_string(st);
        auto it = s.read_stream(stream, 0);
        if (it.status().IsNotFound()) continue;
        REQUIRE(it.ok());
        for (; it->Valid(); it->Next()) {
          const EventView& e = it->value();
          std::string data(e.data);
          std::string id = data.substr(data.find(' ') + 1);
          CHECK(std::stoll(data.substr(0, data.find(' '))) == static_cast<int64_t>(e.version + 1));
          CAPTURE(id);
          CHECK_MESSAGE(seen.emplace(id, e.position).second, "two events of one command");
          auto r = LookupCommand(s, id);
          REQUIRE_MESSAGE(r.ok(), r.status().ToString());
          CHECK(r->append.first_position == e.position);
        }
        REQUIRE(it->status().ok());
      }
      for (int n = 0; n < ids; n++) {
        std::string id = "cmd-" + std::to_string(n);
        auto r = LookupCommand(s, id);
        if (r.ok() && r->accepted()) CHECK_MESSAGE(seen.count(id) == 1, id, " accepted without its event");
        if (r.ok() && !r->accepted()) CHECK(seen.count(id) == 0);
      }
      REQUIRE(s.close().ok());
    }
    MESSAGE(acks << " acknowledgements of " << acked.size() << " ids over " << kRounds << " rounds, "
                 << self_kills << " kills inside decide");
    CHECK(self_kills > 0);
    CHECK(acked.size() > kPerRound);
  }
}
