// Damage on disk: bits flipped in a table file's blocks and in the
// write-ahead log. Reads report Corruption naming the position and never
// return garbage; open recovers the intact prefix of a damaged log tail or
// refuses with a clear error; verify reports every damaged record.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "evstore/inspect.hpp"
#include "evstore/store.hpp"
#include "test_util.hpp"

using namespace evstore;
using evtest::TempDir;
namespace fs = std::filesystem;

namespace {

// Flips one bit of the byte at `offset` (from the end when negative).
void FlipByte(const std::string& file, int64_t offset) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  REQUIRE(f.good());
  f.seekg(0, std::ios::end);
  int64_t size = f.tellg();
  int64_t at = offset >= 0 ? offset : size + offset;
  REQUIRE(at >= 0);
  REQUIRE(at < size);
  f.seekg(at);
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x10);
  f.seekp(at);
  f.write(&c, 1);
  REQUIRE(f.good());
}

// The table files of column family `cf`, smallest key first.
std::vector<std::string> TablesOf(const std::string& path, const std::string& cf) {
  std::vector<std::pair<std::string, std::string>> found;  // smallest key, file
  evtest::WithRawDb(path, [&](rocksdb::DB* db, auto&) {
    std::vector<rocksdb::LiveFileMetaData> files;
    db->GetLiveFilesMetaData(&files);
    for (const auto& f : files)
      if (f.column_family_name == cf) found.emplace_back(f.smallestkey, path + f.name);
  });
  std::sort(found.begin(), found.end());
  std::vector<std::string> out;
  for (auto& [k, f] : found) out.push_back(f);
  return out;
}

std::vector<std::string> Wals(const std::string& path) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(path))
    if (e.path().extension() == ".log") out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

// Copies a live store's directory: what a crash at this instant would
// leave (with sync on, everything acknowledged is in the copied log).
void CrashImage(const std::string& from, const std::string& to) {
  fs::create_directories(to);
  for (const auto& e : fs::directory_iterator(from))
    fs::copy_file(e.path(), fs::path(to) / e.path().filename());
}

std::string Payload(int i) { return "{\"n\":" + std::to_string(i) + ",\"pad\":\"" + std::string(150, 'p') + "\"}"; }

}  // namespace

TEST_SUITE("corruption") {
  TEST_CASE("a flipped bit in a table block: reads name the position, verify reports each record") {
    TempDir dir;
    const std::string path = dir.sub("db");
    constexpr int kEvents = 3000;
    {
      Store s = evtest::OpenOrDie(path);
      for (int i = 0; i < kEvents; i += 10) {
        std::vector<EventData> batch;
        for (int j = 0; j < 10; j++) batch.push_back(evtest::Ev("Happened", Payload(i + j)));
        REQUIRE(s.append("s-" + std::to_string(i % 7), ExpectedVersion::Any(), batch).ok());
      }
      REQUIRE(s.close().ok());  // flushes: the events are in a table file now
    }
    auto tables = TablesOf(path, "events");
    REQUIRE(!tables.empty());
    // Early in the first file: a data block near the log's start.
    FlipByte(tables.front(), 200);

    Store s = evtest::OpenOrDie(path);
    std::set<uint64_t> unreadable;
    for (uint64_t p = 0; p < kEvents; p++) {
      auto e = s.read_event(p);
      if (e.ok()) {
        CHECK(e->position == p);
        CHECK(e->data == Payload(static_cast<int>(p)));  // never garbage
        continue;
      }
      CHECK(e.status().IsCorruption());
      CHECK_MESSAGE(e.status().ToString().find("position " + std::to_string(p)) != std::string::npos,
                    e.status().ToString());
      unreadable.insert(p);
    }
    REQUIRE(!unreadable.empty());
    CHECK(unreadable.size() < kEvents);
    // A scan stops at the damage, naming where.
    {
      auto it = s.read_all(0);
      REQUIRE(it.ok());
      uint64_t seen = 0;
      for (; it->Valid(); it->Next()) seen++;
      CHECK(it->status().IsCorruption());
      CHECK(it->status().ToString().find("position " + std::to_string(seen)) != std::string::npos);
      CHECK(unreadable.count(seen) == 1);
    }
    // Verify reports every damaged record, each by its position, and carries
    // on past the damage to the records after it.
    auto report = inspect::Verify(s);
    REQUIRE_MESSAGE(report.ok(), report.status().ToString());
    std::set<uint64_t> reported;
    for (const auto& pr : report->problems)
      if (pr.column_family == "events" && pr.message.find("unreadable") != std::string::npos)
        reported.insert(pr.position);
    CHECK(reported == unreadable);
    CHECK(report->events == static_cast<uint64_t>(kEvents));
    MESSAGE(unreadable.size() << " records in the damaged block, " << report->problem_count
                              << " problems reported");
    // Writes still work: the damage is in old data.
    CHECK(s.append("after", ExpectedVersion::Any(), evtest::Ev("After")).ok());
  }

  TEST_CASE("a damaged log: the tail is recovered to its intact prefix or refused, never a hole") {
    TempDir dir;
    const std::string path = dir.sub("db");
    Store s = evtest::OpenOrDie(path, Options::Durable());
    std::vector<AppendResult> acked;
    for (int i = 0; i < 200; i++) {
      auto r = s.append("w-" + std::to_string(i % 3), ExpectedVersion::Any(),
                        evtest::Ev("Happened", Payload(i)));
      REQUIRE(r.ok());
      acked.push_back(*r);
    }

    auto check = [&](const std::string& image, const std::string& what) {
      CAPTURE(what);
      auto opened = Store::open(image, Options::Durable());
      if (!opened.ok()) {
        // Refused: clearly, as corruption.
        CHECK(opened.status().IsCorruption());
        CHECK_MESSAGE(opened.status().ToString().find("damaged") != std::string::npos,
                      opened.status().ToString());
        MESSAGE(what << ": refused: " << opened.status().ToString());
        return false;
      }
      Store t = std::move(opened).value();
      // Recovered: a prefix of what was acknowledged, intact, without a hole.
      auto all = evtest::Collect(t.read_all(0));
      CHECK(all.size() <= acked.size());
      for (size_t i = 0; i < all.size(); i++) {
        CHECK(all[i].position == i);
        CHECK(all[i].data == Payload(static_cast<int>(i)));
      }
      auto report = inspect::Verify(t);
      REQUIRE(report.ok());
      CHECK(report->problem_count == 0);
      MESSAGE(what << ": recovered " << all.size() << " of " << acked.size() << " events");
      return true;
    };

    SUBCASE("a flipped bit in the last record") {
      std::string image = dir.sub("tail");
      CrashImage(path, image);
      auto wals = Wals(image);
      REQUIRE(!wals.empty());
      FlipByte(wals.back(), -20);
      check(image, "last record");
    }
    SUBCASE("a log cut short in its last record (a torn write)") {
      std::string image = dir.sub("torn");
      CrashImage(path, image);
      auto wals = Wals(image);
      REQUIRE(!wals.empty());
      fs::resize_file(wals.back(), fs::file_size(wals.back()) - 30);
      CHECK(check(image, "torn tail"));  // a torn tail is what a crash leaves: always recovered
    }
    SUBCASE("a flipped bit in the middle of the log is refused, not skipped") {
      std::string image = dir.sub("middle");
      CrashImage(path, image);
      auto wals = Wals(image);
      REQUIRE(!wals.empty());
      FlipByte(wals.back(), static_cast<int64_t>(fs::file_size(wals.back()) / 2));
      CHECK_FALSE(check(image, "middle"));
    }
    REQUIRE(s.close().ok());
  }
}
