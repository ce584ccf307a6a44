// inspect::LogFollower and `evstore-inspect tail`: reading the log of a store
// that another process has open and keeps appending to.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <poll.h>
#include <rocksdb/db.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "evstore/inspect.hpp"
#include "evstore/store.hpp"
#include "format/keys.hpp"
#include "log/cf_cursor.hpp"
#include "log/secondary.hpp"
#include "log/store_impl.hpp"
#include "test_util.hpp"

using namespace evstore;
using evtest::Evs;
using evtest::OpenOrDie;
using evtest::TempDir;
using evtest::WithRawDb;

namespace {

namespace fs = std::filesystem;

// Liveness bound for anything the tests wait for: never reached unless the
// mechanism under test is broken (or the machine stalls for a minute).
constexpr auto kPatience = std::chrono::seconds(60);

bool Contains(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

size_t Lines(const std::string& s) { return static_cast<size_t>(std::count(s.begin(), s.end(), '\n')); }

bool EmptyDir(const std::string& d) {
  std::error_code ec;
  return fs::is_directory(d, ec) && fs::is_empty(d, ec);
}

std::unique_ptr<inspect::LogFollower> Follow(const std::string& path, const std::string& scratch) {
  inspect::FollowOptions o;
  o.scratch_parent = scratch;
  auto f = inspect::LogFollower::Open(path, o);
  REQUIRE_MESSAGE(f.ok(), f.status().ToString());
  return std::move(f).value();
}

// Everything Read writes from `from`, as text.
std::string ReadText(inspect::LogFollower& f, uint64_t from, uint64_t* next = nullptr,
                     inspect::DumpSummary* sum = nullptr, uint64_t limit = kNoLimit) {
  std::string out;
  Status s = f.Read(from, limit, inspect::DumpFormat::kText, [&](std::string_view t) {
    out.append(t);
    return true;
  }, sum, next);
  REQUIRE_MESSAGE(s.ok(), s.ToString());
  return out;
}

// The positions of text lines ("#<position> ...").
std::vector<uint64_t> Positions(const std::string& text) {
  std::vector<uint64_t> out;
  size_t at = 0;
  while (at < text.size()) {
    size_t nl = text.find('\n', at);
    if (nl == std::string::npos) nl = text.size();
    if (text[at] == '#') out.push_back(std::stoull(text.substr(at + 1, text.find(' ', at) - at - 1)));
    at = nl + 1;
  }
  return out;
}

std::vector<uint64_t> Range(uint64_t from, uint64_t to) {
  std::vector<uint64_t> v;
  for (uint64_t p = from; p < to; p++) v.push_back(p);
  return v;
}

bool ToolBuilt() {
  const char* tool = std::getenv("EVSTORE_INSPECT");
  if (tool != nullptr && *tool != '\0') return true;
  MESSAGE("evstore-inspect is not built (-Dtools=false): skipped");
  return false;
}

// evstore-inspect running as a child process with its stdout on a pipe that
// the test reads, and $TMPDIR set to `tmpdir` (where --follow makes its
// private directory).
class Tool {
 public:
  Tool(const std::vector<std::string>& args, const std::string& tmpdir, const std::string& errfile) {
    std::string tool = std::getenv("EVSTORE_INSPECT");
    // Everything the child needs is built before fork: only exec after it.
    std::vector<std::string> env_strings;
    for (char** e = environ; *e != nullptr; e++)
      if (std::string_view(*e).substr(0, 7) != "TMPDIR=") env_strings.push_back(*e);
    env_strings.push_back("TMPDIR=" + tmpdir);
    std::vector<char*> envp, argv;
    for (auto& e : env_strings) envp.push_back(e.data());
    envp.push_back(nullptr);
    argv.push_back(tool.data());
    std::vector<std::string> copy = args;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    int err = open(errfile.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    REQUIRE(err >= 0);
    pid_ = fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      dup2(fds[1], 1);
      dup2(err, 2);
      close(fds[0]);
      close(fds[1]);
      close(err);
      execve(argv[0], argv.data(), envp.data());
      _exit(127);
    }
    close(fds[1]);
    close(err);
    out_ = fds[0];
  }
  ~Tool() {
    if (out_ >= 0) close(out_);
    if (pid_ > 0 && !reaped_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }

  // Reads until `done(output so far)` holds or the output ends; false when
  // kPatience passed first.
  bool ReadUntil(const std::function<bool(const std::string&)>& done) {
    auto deadline = std::chrono::steady_clock::now() + kPatience;
    while (!done(output_)) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      struct pollfd p = {out_, POLLIN, 0};
      int n = poll(&p, 1, static_cast<int>(left.count()));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      char buf[4096];
      ssize_t got = read(out_, buf, sizeof buf);
      if (got <= 0) {
        eof_ = true;
        return done(output_);
      }
      output_.append(buf, static_cast<size_t>(got));
    }
    return true;
  }
  // Reads to the end of the output; false when kPatience passed first.
  bool ReadAll() {
    return ReadUntil([&](const std::string&) { return eof_; });
  }
  const std::string& output() const { return output_; }
  void CloseOutput() {
    close(out_);
    out_ = -1;
  }
  void Signal(int sig) { kill(pid_, sig); }
  // The exit code, or -(signal) when killed; -1000 when it did not end in
  // time (it is then killed).
  int Wait() {
    auto deadline = std::chrono::steady_clock::now() + kPatience;
    for (;;) {
      int status = 0;
      pid_t r = waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        reaped_ = true;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
      }
      if (std::chrono::steady_clock::now() > deadline) return -1000;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  bool reaped_ = false;
  bool eof_ = false;
  std::string output_;
};

std::string ReadFile(const std::string& p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace

TEST_SUITE("inspect_tail") {
  TEST_CASE("a follower sees what the store's writer commits once it catches up") {
    TempDir dir;
    std::string path = dir.sub("db"), scratch = dir.sub("scratch");
    fs::create_directory(scratch);
    Store host = OpenOrDie(path);
    REQUIRE(host.append("order-1", ExpectedVersion::NoStream(), Evs(5)).ok());
    auto f = Follow(path, scratch);
    CHECK(f->end() == 5);
    CHECK(fs::path(f->scratch_dir()).parent_path() == fs::path(scratch));
    CHECK(fs::is_directory(f->scratch_dir()));
    uint64_t next = 0;
    CHECK(Positions(ReadText(*f, 0, &next)) == Range(0, 5));
    CHECK(next == 5);

    REQUIRE(host.append("order-2", ExpectedVersion::NoStream(), Evs(3)).ok());
    CHECK(f->end() == 5);  // not before it catches up
    CHECK(ReadText(*f, 5, &next).empty());
    CHECK(next == 5);
    REQUIRE(f->CatchUp().ok());
    CHECK(f->end() == 8);
    std::string text = ReadText(*f, 5, &next);
    CHECK(Positions(text) == Range(5, 8));
    CHECK(Contains(text, "#5 order-2 v0 Happened"));
    CHECK(next == 8);
    REQUIRE(f->CatchUp().ok());  // nothing new
    CHECK(f->end() == 8);

    SUBCASE("across the writer closing (memtables flushed to tables) and reopening") {
      REQUIRE(host.close().ok());
      Store again = OpenOrDie(path);
      REQUIRE(again.append("order-1", ExpectedVersion::Exact(4), Evs(2)).ok());
      REQUIRE(f->CatchUp().ok());
      CHECK(f->end() == 10);
      CHECK(Positions(ReadText(*f, 0)) == Range(0, 10));
      CHECK(again.close().ok());
    }
    SUBCASE("a limit, and a sink that stops, leave next where they stopped") {
      inspect::DumpSummary sum;
      CHECK(Positions(ReadText(*f, 2, &next, &sum, 3)) == Range(2, 5));
      CHECK(next == 5);
      CHECK(sum.events == 3);
      int calls = 0;
      CHECK(f->Read(1, kNoLimit, inspect::DumpFormat::kJson, [&](std::string_view t) {
        CHECK(Contains(std::string(t), "{\"position\":1,"));
        return ++calls < 1;
      }, &sum, &next).ok());
      CHECK(calls == 1);
      CHECK(next == 2);
      CHECK(ReadText(*f, 100, &next).empty());
      CHECK(next == 100);
    }
    std::string made = f->scratch_dir();
    f.reset();
    CHECK_FALSE(fs::exists(made));
    CHECK(EmptyDir(scratch));
    CHECK(host.close().ok());  // again, in the first subcase: a no-op
  }

  TEST_CASE("a follower sees whole commits in order while the writer appends") {
    TempDir dir;
    std::string path = dir.sub("db"), scratch = dir.sub("scratch");
    fs::create_directory(scratch);
    Store host = OpenOrDie(path);
    REQUIRE(host.append("seed-0", ExpectedVersion::NoStream(), Evs(3)).ok());
    auto f = Follow(path, scratch);
    // Every commit is three events (two streams in one transaction), so a
    // follower that saw part of one would end between multiples of 3.
    constexpr int kCommits = 300;
    std::atomic<bool> failed{false};
    std::thread writer([&] {
      for (int i = 0; i < kCommits && !failed; i++) {
        std::vector<StreamAppend> parts(2);
        parts[0].stream = "a-" + std::to_string(i);
        parts[0].events = Evs(2);
        parts[1].stream = "b-" + std::to_string(i);
        parts[1].events = Evs(1);
        if (!host.append_multi(parts).ok()) failed = true;
      }
    });
    uint64_t next = 0;
    std::vector<uint64_t> seen;
    auto deadline = std::chrono::steady_clock::now() + kPatience;
    while (next < 3 * (kCommits + 1) && std::chrono::steady_clock::now() < deadline && !failed) {
      Status s = f->CatchUp();
      REQUIRE_MESSAGE(s.ok(), s.ToString());
      CHECK(f->end() % 3 == 0);
      auto got = Positions(ReadText(*f, next, &next));
      seen.insert(seen.end(), got.begin(), got.end());
    }
    writer.join();
    CHECK_FALSE(failed);
    CHECK(seen == Range(0, 3 * (kCommits + 1)));
    CHECK(host.close().ok());
  }

  TEST_CASE("a follower writes damaged records and holes in the log as CORRUPT lines") {
    TempDir dir;
    std::string path = dir.sub("db"), scratch = dir.sub("scratch");
    fs::create_directory(scratch);
    {
      Store s = OpenOrDie(path);
      REQUIRE(s.append("order-1", ExpectedVersion::NoStream(), Evs(8)).ok());
      REQUIRE(s.close().ok());
    }
    WithRawDb(path, [](rocksdb::DB* db, auto& cfs) {
      std::string v;
      REQUIRE(db->Get(rocksdb::ReadOptions(), cfs["events"], format::EventKey(2).view(), &v).ok());
      v[4] ^= 1;
      REQUIRE(db->Put(rocksdb::WriteOptions(), cfs["events"], format::EventKey(2).view(), v).ok());
      REQUIRE(db->Delete(rocksdb::WriteOptions(), cfs["events"], format::EventKey(5).view()).ok());
      REQUIRE(db->Delete(rocksdb::WriteOptions(), cfs["events"], format::EventKey(6).view()).ok());
    });
    auto f = Follow(path, scratch);
    inspect::DumpSummary sum;
    uint64_t next = 0;
    std::string text = ReadText(*f, 0, &next, &sum);
    CHECK(Contains(text, "#2 CORRUPT event record at position 2"));
    CHECK(Contains(text, "#5 CORRUPT positions 5..6 are missing (the log has a gap)\n#7 order-1 v7"));
    CHECK(sum.corrupt == 2);
    CHECK(sum.events == 6);
    CHECK(next == 8);
  }

  TEST_CASE("a follower refuses what is not a store and leaves nothing behind") {
    TempDir dir;
    std::string scratch = dir.sub("scratch");
    fs::create_directory(scratch);
    inspect::FollowOptions o;
    o.scratch_parent = scratch;
    CHECK(inspect::LogFollower::Open(dir.sub("absent"), o).status().IsNotFound());
    fs::create_directory(dir.sub("other"));
    std::ofstream(dir.sub("other/notes.txt")) << "mine";
    CHECK(inspect::LogFollower::Open(dir.sub("other"), o).status().IsInvalidArgument());
    CHECK(inspect::LogFollower::Open("", o).status().IsInvalidArgument());
    evtest::MakeOtherRocksDb(dir.sub("rocks"));
    auto rocks = inspect::LogFollower::Open(dir.sub("rocks"), o);
    CHECK(rocks.status().IsInvalidArgument());
    CHECK(Contains(std::string(rocks.status().message()), "is not an evstore store"));
    CHECK(EmptyDir(scratch));

    std::string path = dir.sub("db");
    {
      Store s = OpenOrDie(path);
      REQUIRE(s.close().ok());
    }
    SUBCASE("a newer format") {
      evtest::SetFormatRecord(path, format::EncodeFormatRecord(format::kFormatVersion + 1, 0));
      auto r = inspect::LogFollower::Open(path, o);
      CHECK(r.status().IsNotSupported());
      CHECK(Contains(std::string(r.status().message()), "uses on-disk format " + std::to_string(format::kFormatVersion + 1)));
      o.scratch_parent = dir.sub("absent-parent");
      CHECK(inspect::LogFollower::Open(path, o).status().IsIOError());
    }
    SUBCASE("a damaged format record") {
      evtest::SetFormatRecord(path, std::string("\x01garbage"));
      auto r = inspect::LogFollower::Open(path, o);
      CHECK(r.status().IsCorruption());
      CHECK(Contains(std::string(r.status().message()), "the format record is damaged"));
    }
    SUBCASE("no format record") {
      evtest::SetFormatRecord(path, std::nullopt);
      auto r = inspect::LogFollower::Open(path, o);
      CHECK(r.status().IsInvalidArgument());
      CHECK(Contains(std::string(r.status().message()), "no format record"));
    }
    CHECK(EmptyDir(scratch));
  }

  TEST_CASE("a secondary instance's cursors read only the families it opened, without snapshots") {
    TempDir dir;
    std::string path = dir.sub("db"), scratch = dir.sub("scratch");
    fs::create_directory(scratch);
    Store host = OpenOrDie(path);
    REQUIRE(host.append("order-1", ExpectedVersion::NoStream(), Evs(2)).ok());
    {
      auto db = internal::SecondaryDb::Open(path, scratch, {internal::kCfEvents});
      REQUIRE_MESSAGE(db.ok(), db.status().ToString());
      CHECK((*db)->has(internal::kCfEvents));
      CHECK_FALSE((*db)->has(internal::kCfStreams));
      {
        internal::CfCursor events(**db, internal::kCfEvents);
        events.SeekToFirst();
        CHECK(events.Valid());
        CHECK(events.key() == format::EventKey(0).view());
      }
      internal::CfCursor streams(**db, internal::kCfStreams);
      streams.SeekToFirst();
      CHECK_FALSE(streams.Valid());
      CHECK(streams.status().IsInvalidArgument());
      CHECK(Contains(std::string(streams.status().message()), "streams is not open"));

      internal::StoreImpl* impl = internal::StoreAccess::Impl(host);
      REQUIRE(impl != nullptr);
      internal::CfSnapshot snap(*impl);
      internal::CfCursorOptions at;
      at.snapshot = &snap;
      internal::CfCursor with_snapshot(**db, internal::kCfEvents, std::move(at));
      with_snapshot.SeekToFirst();
      CHECK_FALSE(with_snapshot.Valid());
      CHECK(with_snapshot.status().IsInvalidArgument());
    }
    CHECK(host.close().ok());
  }

  TEST_CASE("evstore-inspect tail prints the last events, or those from a position") {
    if (!ToolBuilt()) return;
    TempDir dir;
    std::string path = dir.sub("db");
    {
      Store s = OpenOrDie(path);
      REQUIRE(s.append("order-1", ExpectedVersion::NoStream(), Evs(12)).ok());
      REQUIRE(s.close().ok());
    }
    std::string err = dir.sub("stderr");
    Tool last({"tail", path}, dir.path(), err);
    CHECK(last.ReadAll());
    CHECK(last.Wait() == 0);
    CHECK(Positions(last.output()) == Range(2, 12));
    Tool from({"tail", "--from", "9", "--json", "--db", path}, dir.path(), err);
    CHECK(from.ReadAll());
    CHECK(from.Wait() == 0);
    CHECK(Lines(from.output()) == 3);
    CHECK(Contains(from.output(), "{\"position\":9,"));
    Tool bad({"tail", "--to", "3", path}, dir.path(), err);
    CHECK(bad.Wait() == 2);
    CHECK(Contains(ReadFile(err), "unknown flag '--to' for tail"));
  }

  TEST_CASE("evstore-inspect tail --follow prints what another process commits, and stops cleanly") {
    if (!ToolBuilt()) return;
    TempDir dir;
    std::string path = dir.sub("db"), tmp = dir.sub("tmp"), err = dir.sub("stderr");
    fs::create_directory(tmp);
    Store host = OpenOrDie(path);  // holds the store's lock all along
    REQUIRE(host.append("order-1", ExpectedVersion::NoStream(), Evs(12)).ok());
    Tool tail({"tail", "--follow", "--from", "0", path}, tmp, err);
    // The first 12 were there when it opened; what follows can only come
    // from catching up.
    REQUIRE(tail.ReadUntil([](const std::string& out) { return Positions(out).size() >= 12; }));
    CHECK_FALSE(EmptyDir(tmp));  // its private directory
    REQUIRE(host.append("order-2", ExpectedVersion::NoStream(), Evs(3)).ok());
    REQUIRE(host.append("order-1", ExpectedVersion::Exact(11), Evs(2)).ok());
    bool seen = tail.ReadUntil([](const std::string& out) { return Positions(out).size() >= 17; });
    CHECK_MESSAGE(seen, "tail --follow did not print the new events: " << tail.output()
                                                                       << ReadFile(err));
    CHECK(Positions(tail.output()) == Range(0, 17));
    CHECK(Contains(tail.output(), "#12 order-2 v0"));
    CHECK(Contains(tail.output(), "#16 order-1 v13"));

    SUBCASE("SIGTERM") { tail.Signal(SIGTERM); }
    SUBCASE("SIGINT") { tail.Signal(SIGINT); }
    CHECK(tail.Wait() == 0);
    CHECK(ReadFile(err).empty());
    CHECK(EmptyDir(tmp));
    // The writer was not disturbed.
    CHECK(host.append("order-2", ExpectedVersion::Exact(2), Evs(1)).ok());
    CHECK(host.close().ok());
  }

  TEST_CASE("evstore-inspect tail --follow stops when its reader goes away") {
    if (!ToolBuilt()) return;
    TempDir dir;
    std::string path = dir.sub("db"), tmp = dir.sub("tmp"), err = dir.sub("stderr");
    fs::create_directory(tmp);
    Store host = OpenOrDie(path);
    std::vector<std::string> args;
    SUBCASE("while it waits for new events") {
      // Nothing more is appended: it must notice without a failed write.
      REQUIRE(host.append("order-1", ExpectedVersion::NoStream(), Evs(3)).ok());
      args = {"tail", "--follow", "--json", path};
    }
    SUBCASE("while it writes") {
      // Far more than a pipe holds: its writes fail with EPIPE.
      REQUIRE(host.append("order-1", ExpectedVersion::NoStream(), Evs(5000)).ok());
      args = {"tail", "--follow", "--from", "0", "--json", path};
    }
    Tool tail(args, tmp, err);
    REQUIRE(tail.ReadUntil([](const std::string& out) { return Lines(out) >= 3; }));
    tail.CloseOutput();  // as `| head` does when it has what it wants
    CHECK(tail.Wait() == 0);
    CHECK(ReadFile(err).empty());
    CHECK(EmptyDir(tmp));
    CHECK(host.close().ok());
  }
}
