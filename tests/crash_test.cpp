// Kills a writer with SIGKILL at random moments and checks that every
// acknowledged append survives, positions stay gapless, and the stream index
// agrees with the log.
#include <doctest/doctest.h>

#include <cstdlib>
#include <map>
#include <random>
#include <sstream>

#include "evstore/store.hpp"
#include "projection_fold.hpp"
#include "test_util.hpp"

using namespace evstore;

namespace {

struct Ack {
  std::string stream;
  uint64_t first_pos, last_pos, first_ver, last_ver;
  std::string token;
};

// Runs the child until `ms` milliseconds after it is ready, kills it, and
// returns every acknowledged append it reported.
std::vector<Ack> RunAndKill(const std::string& child, const std::string& dir, unsigned seed,
                            int ms) {
  evtest::ChildRun run = evtest::RunChild(child, {dir, std::to_string(seed)}, ms);
  CHECK_MESSAGE(run.killed, "child exited on its own with code ", run.exit_code);
  std::vector<Ack> acks;
  for (const std::string& line : run.lines) {
    if (line.rfind("A ", 0) != 0) continue;
    std::istringstream ls(line.substr(2));
    Ack a;
    ls >> a.stream >> a.first_pos >> a.last_pos >> a.first_ver >> a.last_ver >> a.token;
    acks.push_back(a);
  }
  return acks;
}

}  // namespace

TEST_SUITE("crash") {
  TEST_CASE("every acknowledged append survives SIGKILL and the log stays consistent") {
    const char* child = std::getenv("EVSTORE_CRASH_CHILD");
    REQUIRE_MESSAGE(child != nullptr, "EVSTORE_CRASH_CHILD must name the crash_child binary");
    evtest::TempDir dir;
    std::string path = dir.sub("db");
    std::mt19937 rng(12345);
    std::vector<Ack> all_acks;
    constexpr int kRounds = 24;
    for (int round = 0; round < kRounds; round++) {
      int ms = 60 + static_cast<int>(rng() % 240);
      auto acks = RunAndKill(child, path, static_cast<unsigned>(round + 1), ms);
      all_acks.insert(all_acks.end(), acks.begin(), acks.end());

      auto opened = Store::open(path);
      REQUIRE_MESSAGE(opened.ok(), opened.status().ToString());
      Store s = std::move(opened).value();
      // Gapless global log; collect per-stream versions.
      std::map<std::string, std::vector<std::pair<uint64_t, std::string>>> streams;
      std::vector<std::string> data_at;
      {
        auto it = s.read_all(0);
        REQUIRE(it.ok());
        uint64_t expect = 0;
        for (; it->Valid(); it->Next()) {
          const EventView& v = it->value();
          REQUIRE(v.position == expect);
          expect++;
          auto& sv = streams[std::string(v.stream)];
          REQUIRE(v.version == sv.size());
          sv.emplace_back(v.position, std::string(v.data));
          data_at.emplace_back(v.data);
        }
        REQUIRE_MESSAGE(it->status().ok(), it->status().ToString());
        CHECK(s.stats()->next_position == expect);
      }
      // Every acknowledged event is where the writer was told it is.
      for (const Ack& a : all_acks) {
        REQUIRE_MESSAGE(a.last_pos < data_at.size(), "acknowledged position lost: ", a.last_pos);
        for (uint64_t p = a.first_pos; p <= a.last_pos; p++)
          CHECK(data_at[p] == a.token + "#" + std::to_string(p - a.first_pos));
      }
      // The stream index matches the events, version by version.
      for (auto& [name, evs] : streams) {
        auto it = s.read_stream(name, 0);
        REQUIRE(it.ok());
        size_t i = 0;
        for (; it->Valid(); it->Next(), i++) {
          REQUIRE(i < evs.size());
          CHECK(it->value().position == evs[i].first);
        }
        CHECK(it->status().ok());
        CHECK(i == evs.size());
        auto h = s.stream_head(name);
        REQUIRE(h.ok());
        CHECK(h->last_version == evs.size() - 1);
      }
      REQUIRE(s.close().ok());
    }
    MESSAGE(all_acks.size() << " acknowledged appends checked over " << kRounds << " kills");
    CHECK(all_acks.size() > 0);
  }

  TEST_CASE("a projection's state equals the fold of the log up to its checkpoint across SIGKILLs") {
    const char* child = std::getenv("EVSTORE_PROJECTION_CRASH_CHILD");
    REQUIRE_MESSAGE(child != nullptr, "EVSTORE_PROJECTION_CRASH_CHILD must name the child binary");
    evtest::TempDir dir;
    std::string path = dir.sub("db");
    std::mt19937 rng(777);
    constexpr int kRounds = 30;
    uint32_t version = 1;
    int rebuilds = 0;
    uint64_t folded = 0;
    for (int round = 0; round < kRounds; round++) {
      if (rng() % 4 == 0) {  // a new handler version: the kill may land inside its rebuild
        version++;
        rebuilds++;
      }
      int ms = 40 + static_cast<int>(rng() % 200);
      evtest::ChildRun run = evtest::RunChild(
          child, {path, std::to_string(round + 1), std::to_string(version)}, ms);
      CHECK_MESSAGE(run.killed, "child exited on its own with code ", run.exit_code);
      auto opened = Store::open(path);
      REQUIRE_MESSAGE(opened.ok(), opened.status().ToString());
      Store s = std::move(opened).value();
      if (s.projection_info("fold").ok()) {
        evtest::CheckFoldMatchesLog(s, "fold");
        folded += s.projection_info("fold")->position;
      }
      REQUIRE(s.close().ok());
    }
    MESSAGE(kRounds << " kills, " << rebuilds << " new handler versions, " << folded
                    << " events in the folds checked");
    CHECK(folded > 0);
  }
}
