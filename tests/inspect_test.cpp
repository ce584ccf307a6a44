#include <doctest/doctest.h>
#include <rocksdb/db.h>
#include <sys/wait.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include "evstore/evstore.h"
#include "evstore/inspect.hpp"
#include "evstore/saga.hpp"
#include "evstore/store.hpp"
#include "format/checkpoint_record.hpp"
#include "format/keys.hpp"
#include "format/projection_record.hpp"
#include "format/saga_record.hpp"
#include "projection_fold.hpp"
#include "test_util.hpp"

using namespace evstore;
using evtest::Ev;
using evtest::Evs;
using evtest::OpenOrDie;
using evtest::TempDir;
using evtest::WithRawDb;

namespace {

Store OpenReadOnly(const std::string& path) {
  Options o;
  o.read_only = true;
  o.create_if_missing = false;
  return OpenOrDie(path, o);
}

Uuid IdOf(uint8_t b) {
  Uuid u;
  for (auto& x : u.bytes) x = b;
  u.bytes[6] = 0x40;
  u.bytes[8] = 0x80;
  return u;
}

// A store of 12 events: order-1 (5), order-2 (3), cart-9 (4, the last two
// with caller ids), in that interleaving of positions.
void Populate(const std::string& path) {
  Store s = OpenOrDie(path);
  REQUIRE(s.append("order-1", ExpectedVersion::NoStream(), Evs(3, "Placed")).ok());
  REQUIRE(s.append("order-2", ExpectedVersion::NoStream(), Evs(3, "Placed")).ok());
  REQUIRE(s.append("cart-9", ExpectedVersion::Any(), Evs(2, "Added")).ok());
  REQUIRE(s.append("order-1", ExpectedVersion::Exact(2), Evs(2, "Shipped")).ok());
  REQUIRE(s.append("cart-9", ExpectedVersion::Exact(1),
                   {Ev("Removed", "{\"x\":1}", IdOf(0x11)), Ev("Added", "\x01\xff", IdOf(0x22))})
              .ok());
  REQUIRE(s.close().ok());
}

std::string DumpText(const Store& s, inspect::DumpOptions o, inspect::DumpSummary* sum = nullptr) {
  std::string out;
  Status st = inspect::Dump(s, o, [&](std::string_view t) { out.append(t); }, sum);
  REQUIRE_MESSAGE(st.ok(), st.ToString());
  return out;
}

size_t Lines(const std::string& s) { return static_cast<size_t>(std::count(s.begin(), s.end(), '\n')); }

bool Contains(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

// Whether the report has a problem in `cf` about `position`.
bool HasProblem(const inspect::VerifyReport& r, const std::string& cf, uint64_t position,
                const std::string& words = "") {
  for (const auto& p : r.problems)
    if (p.column_family == cf && p.position == position && Contains(p.message, words)) return true;
  return false;
}

std::string Describe(const inspect::VerifyReport& r) {
  std::string s;
  for (const auto& p : r.problems)
    s += p.column_family + " [" + p.key + "] @" + std::to_string(p.position) + ": " + p.message + "\n";
  return s;
}

// The tool is built unless -Dtools=false; without it its tests pass vacuously.
bool ToolBuilt() {
  const char* tool = std::getenv("EVSTORE_INSPECT");
  if (tool != nullptr && *tool != '\0') return true;
  MESSAGE("evstore-inspect is not built (-Dtools=false): skipped");
  return false;
}

struct ToolRun {
  int code = -1;
  std::string out, err;
};

// Runs the built evstore-inspect with `args` (shell words).
ToolRun RunTool(const std::string& args) {
  const char* tool = std::getenv("EVSTORE_INSPECT");
  REQUIRE_MESSAGE(tool != nullptr, "EVSTORE_INSPECT must name the evstore-inspect binary");
  TempDir tmp;
  std::string errf = tmp.sub("stderr");
  std::string cmd = std::string(tool) + " " + args + " 2>" + errf;
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  ToolRun r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream in(errf);
  r.err.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return r;
}

// Stores saga records as the saga engine writes them: "pay-1" (completed,
// with a history) and "pay-2" (stuck).
void PutSagas(const std::string& path) {
  WithRawDb(path, [](rocksdb::DB* db, auto& cfs) {
    format::SagaRecordData a;
    a.id = "pay-1";
    a.definition = "payment";
    a.version = 2;
    a.state = static_cast<uint8_t>(SagaState::kCompleted);
    a.step = 1;
    a.input = "{\"amount\":5}";
    a.outputs = {"charged", "mailed"};
    a.created_ms = 1000;
    a.updated_ms = 2000;
    a.revision = 4;
    a.history = {{1000, static_cast<uint8_t>(SagaEvent::kStarted),
                  static_cast<uint8_t>(SagaState::kPending), -1, 0, ""},
                 {1500, static_cast<uint8_t>(SagaEvent::kStepFailed),
                  static_cast<uint8_t>(SagaState::kRunning), 0, 1, "card declined"},
                 {2000, static_cast<uint8_t>(SagaEvent::kCompleted),
                  static_cast<uint8_t>(SagaState::kCompleted), -1, 0, ""}};
    format::SagaRecordData b = a;
    b.id = "pay-2";
    b.state = static_cast<uint8_t>(SagaState::kStuck);
    b.error = "refund failed";
    b.history.resize(1);
    for (const auto* r : {&a, &b}) {
      std::string v;
      format::EncodeSagaRecord(*r, &v);
      REQUIRE(db->Put(rocksdb::WriteOptions(), cfs["sagas"], r->id, v).ok());
    }
  });
}

// A saga handler that runs until the test opens the gate, ignoring
// cancellation, so that shutdown gives it up. Shared: the handler outlives
// the engine that gave it up.
struct Gate {
  std::mutex mu;
  std::condition_variable cv;
  bool open = false;
  int entered = 0;
  void Pass() {
    std::unique_lock<std::mutex> l(mu);
    entered++;
    cv.notify_all();
    cv.wait(l, [&] { return open; });
  }
  void Open() {
    std::lock_guard<std::mutex> l(mu);
    open = true;
    cv.notify_all();
  }
  void AwaitEntered(int n) {
    std::unique_lock<std::mutex> l(mu);
    REQUIRE(cv.wait_for(l, std::chrono::seconds(60), [&] { return entered >= n; }));
  }
};

// Checkpoints as subscriptions leave them on the 12 events of Populate:
// "projector" set by hand at 7, "reader" where a subscription that read the
// whole log checkpointed (12).
void PutCheckpoints(const std::string& path) {
  Store s = OpenOrDie(path);
  REQUIRE(s.set_checkpoint("projector", 7).ok());
  SubscribeOptions o;
  o.checkpoint = "reader";
  auto sub = s.subscribe(o);
  REQUIRE(sub.ok());
  for (;;) {
    auto d = sub->next(std::chrono::milliseconds(0));
    REQUIRE(d.ok());
    if (d->kind == Delivery::Kind::kCaughtUp) break;
  }
  REQUIRE(sub->checkpoint().ok());
  REQUIRE(s.close().ok());
}

// Projections as run_projection leaves them on the 12 events of Populate,
// each run to the end of the log and stopped: "a", "b", "c" and "gone"
// (CountByType), "gone" then deleted but for its instance (as a deletion
// interrupted after its first commit leaves it).
void PutProjections(const std::string& path) {
  {
    Store s = OpenOrDie(path);
    for (const char* name : {"a", "b", "c", "gone"}) {
      auto p = s.run_projection(name, {}, evtest::CountByType);
      REQUIRE(p.ok());
      REQUIRE((*p)->wait_for(12, std::chrono::seconds(60)).ok());
    }
    REQUIRE(s.close().ok());
  }
  WithRawDb(path, [](rocksdb::DB* db, auto& cfs) {
    REQUIRE(db->Delete(rocksdb::WriteOptions(), cfs["projections"], format::ProjMetaKey("gone")).ok());
  });
}

// The instance records of `projections`: projection name -> instance id.
std::map<std::string, uint64_t> InstancesByName(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf) {
  std::map<std::string, uint64_t> out;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), cf));
  for (it->Seek("I"); it->Valid() && it->key()[0] == 'I'; it->Next()) {
    format::ProjectionInstance rec;
    std::string_view key(it->key().data(), it->key().size());
    REQUIRE(format::DecodeProjectionInstance(key, std::string_view(it->value().data(), it->value().size()),
                                             &rec)
                .ok());
    out[rec.name] = format::GetBE64(key.data() + 1);
  }
  REQUIRE(it->status().ok());
  return out;
}

std::vector<inspect::CheckpointStatus> Checkpoints(const Store& s, uint64_t* end = nullptr) {
  std::vector<inspect::CheckpointStatus> out;
  Status st = inspect::ListCheckpoints(s, [&](const inspect::CheckpointStatus& c) {
    out.push_back(c);
    return true;
  }, end);
  REQUIRE_MESSAGE(st.ok(), st.ToString());
  return out;
}

}  // namespace

TEST_SUITE("inspect") {
  TEST_CASE("info, streams and stats describe a real store") {
    TempDir dir;
    std::string path = dir.sub("db");
    Populate(path);
    Store s = OpenReadOnly(path);
    auto info = inspect::GetInfo(s);
    REQUIRE_MESSAGE(info.ok(), info.status().ToString());
    CHECK(info->format_version == format::kFormatVersion);
    CHECK(info->event_count == 12);
    CHECK(info->next_position == 12);
    CHECK(info->stream_count == 3);
    CHECK(info->next_stream_id == 4);
    CHECK(info->id_tag.size() == 16);
    REQUIRE(info->column_families.size() == 12);
    CHECK(info->column_families[1].name == "events");
    CHECK(info->column_families[1].sst_bytes > 0);

    std::vector<inspect::StreamSummary> streams;
    REQUIRE(inspect::ListStreams(s, "", [&](const inspect::StreamSummary& x) {
              streams.push_back(x);
              return true;
            }).ok());
    REQUIRE(streams.size() == 3);
    CHECK(streams[0].name == "cart-9");  // name order
    CHECK(streams[0].event_count == 4);
    CHECK(streams[0].head_position == 11);
    CHECK(streams[1].name == "order-1");
    CHECK(streams[1].head_version == 4);
    CHECK(streams[1].head_position == 9);
    CHECK(streams[2].event_count == 3);

    SUBCASE("listing starts at a name and stops when asked") {
      std::vector<std::string> names;
      REQUIRE(inspect::ListStreams(s, "order", [&](const inspect::StreamSummary& x) {
                names.push_back(x.name);
                return false;
              }).ok());
      CHECK(names == std::vector<std::string>{"order-1"});
    }

    auto st = inspect::GetStats(s, 2);
    REQUIRE(st.ok());
    CHECK(st->events == 12);
    CHECK(st->streams == 3);
    CHECK(st->caller_ids == 2);
    CHECK(st->distinct_types == 4);
    REQUIRE(st->types.size() == 2);
    CHECK(st->types[0].name == "Placed");
    CHECK(st->types[0].events == 6);
    CHECK(st->distinct_categories == 2);
    CHECK(st->longest_stream == "order-1");
    CHECK(st->longest_stream_events == 5);
  }

  TEST_CASE("dump renders the global log, a position range and one stream") {
    TempDir dir;
    std::string path = dir.sub("db");
    Populate(path);
    Store s = OpenReadOnly(path);
    inspect::DumpOptions o;
    inspect::DumpSummary sum;
    std::string all = DumpText(s, o, &sum);
    CHECK(Lines(all) == 12);
    CHECK(sum.events == 12);
    CHECK(sum.corrupt == 0);
    CHECK(all.rfind("#0 order-1 v0 Placed ", 0) == 0);
    CHECK(Contains(all, "#11 cart-9 v3 Added "));
    CHECK(Contains(all, "data=\\x01\\xff"));  // bytes escaped

    SUBCASE("a position range with a limit") {
      o.from = 3;
      o.to = 10;
      o.limit = 2;
      std::string r = DumpText(s, o);
      CHECK(Lines(r) == 2);
      CHECK(r.rfind("#3 order-2", 0) == 0);
      CHECK(Contains(r, "#4 order-2"));
    }
    SUBCASE("one stream by version") {
      o.stream = "order-1";
      o.from = 1;
      o.to = 3;
      std::string r = DumpText(s, o);
      CHECK(Lines(r) == 3);
      CHECK(r.rfind("#1 order-1 v1", 0) == 0);
      CHECK(Contains(r, "#8 order-1 v3 Shipped"));
    }
    SUBCASE("JSON Lines, with bytes that are not UTF-8 in hex") {
      o.format = inspect::DumpFormat::kJson;
      o.from = 11;
      std::string r = DumpText(s, o);
      CHECK(Lines(r) == 1);
      CHECK(Contains(r, "\"position\":11,\"stream\":\"cart-9\",\"version\":3,\"type\":\"Added\""));
      CHECK(Contains(r, "\"data_hex\":\"01ff\""));
      CHECK(Contains(r, "\"id\":\"" + IdOf(0x22).ToString() + "\""));
    }
    SUBCASE("hex shows the key and the record bytes") {
      o.format = inspect::DumpFormat::kHex;
      o.from = 2;
      o.to = 2;
      std::string r = DumpText(s, o);
      CHECK(r.rfind("position 2  stream \"order-1\" version 2", 0) == 0);
      CHECK(Contains(r, "key   00000000  00 00 00 00 00 00 00 02"));
      CHECK(Contains(r, "value 00000000"));
    }
    SUBCASE("a missing stream is NotFound and a reversed range is refused") {
      o.stream = "nope";
      CHECK(inspect::Dump(s, o, [](std::string_view) {}).IsNotFound());
      o.stream.clear();
      o.from = 5;
      o.to = 4;
      CHECK(inspect::Dump(s, o, [](std::string_view) {}).IsInvalidArgument());
    }
  }

  TEST_CASE("verify passes a sound store and reports progress") {
    TempDir dir;
    std::string path = dir.sub("db");
    Populate(path);
    Store s = OpenReadOnly(path);
    std::set<std::string> phases;
    inspect::VerifyOptions o;
    o.progress = [&](const inspect::Progress& p) { phases.insert(std::string(p.phase)); };
    auto r = inspect::Verify(s, o);
    REQUIRE_MESSAGE(r.ok(), r.status().ToString());
    CHECK_MESSAGE(r->ok(), Describe(*r));
    CHECK(r->events == 12);
    CHECK(r->streams == 3);
    CHECK(r->stream_index_entries == 12);
    CHECK(r->category_index_entries == 12);
    CHECK(r->type_index_entries == 12);
    CHECK(r->event_id_entries == 2);
    CHECK(phases == std::set<std::string>{"streams", "events", "stream_index", "category_index",
                                          "type_index", "event_ids", "sagas", "checkpoints",
                                          "projections"});
  }

  TEST_CASE("verify finds a corrupted event record and names its position") {
    TempDir dir;
    std::string path = dir.sub("db");
    Populate(path);
    WithRawDb(path, [](rocksdb::DB* db, auto& cfs) {
      std::string v;
      REQUIRE(db->Get(rocksdb::ReadOptions(), cfs["events"], format::EventKey(5).view(), &v).ok());
      v[v.size() / 2] ^= 0x20;
      REQUIRE(db->Put(rocksdb::WriteOptions(), cfs["events"], format::EventKey(5).view(), v).ok());
    });
    Store s = OpenReadOnly(path);
    auto r = inspect::Verify(s);
    REQUIRE(r.ok());
    CHECK_FALSE(r->ok());
    CHECK_MESSAGE(HasProblem(*r, "events", 5, "checksum mismatch"), Describe(*r));
    // Reported once: the indexes pointing at it are not blamed again.
    CHECK_MESSAGE(r->problem_count == 1, Describe(*r));
    CHECK(r->problems[0].key == "position 5");

    inspect::DumpSummary sum;
    std::string d = DumpText(s, inspect::DumpOptions(), &sum);
    CHECK(sum.corrupt == 1);
    CHECK(sum.events == 12);
    CHECK(Contains(d, "#5 CORRUPT event record at position 5: checksum mismatch"));
    CHECK(Contains(d, "#6 cart-9"));  // the dump goes on
  }

  TEST_CASE("verify finds broken index entries both ways") {
    TempDir dir;
    std::string path = dir.sub("db");
    Populate(path);
    SUBCASE("a missing stream_index entry") {
      WithRawDb(path, [](rocksdb::DB* db, auto& cfs) {
        // order-2 is stream id 2; its version 1 is position 4.
        REQUIRE(db->Delete(rocksdb::WriteOptions(), cfs["stream_index"],
                           format::StreamIndexKey(2, 1).view())
                    .ok());
      });
      Store s = OpenReadOnly(path);
      auto r = inspect::Verify(s);
      REQUIRE(r.ok());
      CHECK_MESSAGE(HasProblem(*r, "stream_index", 4, "missing"), Describe(*r));
      CHECK(r->problem_count == 1);
    }
    SUBCASE("an index entry pointing at the wrong event") {
      WithRawDb(path, [](rocksdb::DB* db, auto& cfs) {
        REQUIRE(db->Put(rocksdb::WriteOptions(), cfs["type_index"],
                        format::NameIndexKey("Shipped", 0), "")
                    .ok());
        REQUIRE(db->Put(rocksdb::WriteOptions(), cfs["category_index"],
                        format::NameIndexKey("order", 99), "")
                    .ok());
      });
      Store s = OpenReadOnly(path);
      auto r = inspect::Verify(s);
      REQUIRE(r.ok());
      CHECK_MESSAGE(HasProblem(*r, "type_index", 0, "whose type is \"Placed\""), Describe(*r));
      CHECK_MESSAGE(HasProblem(*r, "category_index", 99, "holds no event"), Describe(*r));
      CHECK(r->problem_count == 2);
    }
    SUBCASE("an event_ids entry at the wrong position and one that is missing") {
      WithRawDb(path, [](rocksdb::DB* db, auto& cfs) {
        Uuid a = IdOf(0x11), b = IdOf(0x22);
        std::string_view ka(reinterpret_cast<const char*>(a.bytes), 16);
        std::string_view kb(reinterpret_cast<const char*>(b.bytes), 16);
        REQUIRE(db->Put(rocksdb::WriteOptions(), cfs["event_ids"], ka, format::Be64(3).view()).ok());
        REQUIRE(db->Delete(rocksdb::WriteOptions(), cfs["event_ids"], kb).ok());
      });
      Store s = OpenReadOnly(path);
      auto r = inspect::Verify(s);
      REQUIRE(r.ok());
      CHECK_MESSAGE(HasProblem(*r, "event_ids", 10, "has value"), Describe(*r));  // from the event
      CHECK_MESSAGE(HasProblem(*r, "event_ids", 3, "whose event id is"), Describe(*r));
      CHECK_MESSAGE(HasProblem(*r, "event_ids", 11, "missing"), Describe(*r));
      CHECK(r->problem_count == 3);
    }
    SUBCASE("a lost event: a gap in the log and index entries pointing at nothing") {
      WithRawDb(path, [](rocksdb::DB* db, auto& cfs) {
        REQUIRE(db->Delete(rocksdb::WriteOptions(), cfs["events"], format::EventKey(7).view()).ok());
      });
      Store s = OpenReadOnly(path);
      inspect::VerifyOptions o;
      o.max_problems = 2;
      auto r = inspect::Verify(s, o);
      REQUIRE(r.ok());
      CHECK_MESSAGE(HasProblem(*r, "events", 8, "positions 7..7 are missing"), Describe(*r));
      CHECK_MESSAGE(HasProblem(*r, "stream_index", 7, "holds no event"), Describe(*r));
      // Three index entries point at position 7; the list is capped, the
      // count is complete.
      CHECK(r->problems.size() == 2);
      CHECK(r->problem_count == 4);
    }
    SUBCASE("a version removed with all its entries leaves versions that are not dense") {
      WithRawDb(path, [](rocksdb::DB* db, auto& cfs) {
        rocksdb::WriteOptions w;
        // cart-9 is stream id 3; its version 1 is position 7.
        REQUIRE(db->Delete(w, cfs["events"], format::EventKey(7).view()).ok());
        REQUIRE(db->Delete(w, cfs["stream_index"], format::StreamIndexKey(3, 1).view()).ok());
        REQUIRE(db->Delete(w, cfs["category_index"], format::NameIndexKey("cart", 7)).ok());
        REQUIRE(db->Delete(w, cfs["type_index"], format::NameIndexKey("Added", 7)).ok());
      });
      Store s = OpenReadOnly(path);
      auto r = inspect::Verify(s);
      REQUIRE(r.ok());
      CHECK_MESSAGE(HasProblem(*r, "events", 8, "positions 7..7 are missing"), Describe(*r));
      CHECK_MESSAGE(HasProblem(*r, "streams", inspect::Problem::kNoPosition, "not dense"),
                    Describe(*r));
      CHECK(r->problem_count == 2);
    }
  }

  TEST_CASE("sagas are listed and shown with their history, and damaged ones reported") {
    TempDir dir;
    std::string path = dir.sub("db");
    Populate(path);
    PutSagas(path);
    {
      Store s = OpenReadOnly(path);
      std::vector<std::string> ids;
      REQUIRE(inspect::ListSagas(s, "", [&](const inspect::SagaInfo& g) {
                ids.push_back(g.id + ":" + g.state);
                return true;
              }).ok());
      CHECK(ids == std::vector<std::string>{"pay-1:completed", "pay-2:stuck"});
      auto g = inspect::GetSaga(s, "pay-1");
      REQUIRE_MESSAGE(g.ok(), g.status().ToString());
      CHECK(g->definition == "payment");
      CHECK(g->version == 2);
      CHECK(g->outputs == std::vector<std::string>{"charged", "mailed"});
      REQUIRE(g->history.size() == 3);
      CHECK(g->history[1].event == SagaEventName(SagaEvent::kStepFailed));
      CHECK(g->history[1].text == "card declined");
      CHECK(g->history[1].attempt == 1);
      CHECK(inspect::GetSaga(s, "nope").status().IsNotFound());
      auto r = inspect::Verify(s);
      REQUIRE(r.ok());
      CHECK_MESSAGE(r->ok(), Describe(*r));
      CHECK(r->saga_records == 2);
    }
    if (ToolBuilt()) {
      ToolRun t = RunTool("sagas --db " + path);
      CHECK(t.code == 0);
      CHECK(Lines(t.out) == 3);
      CHECK(Contains(t.out, "pay-2\tpayment@2\tstuck\t"));
      t = RunTool("sagas --id pay-1 --db " + path);
      CHECK(t.code == 0);
      CHECK(Contains(t.out, "step failed -> running  step 0 attempt 1  card declined"));
      t = RunTool("sagas --json --id pay-2 --db " + path);
      CHECK(t.code == 0);
      CHECK(Contains(t.out, "\"state\":\"stuck\""));
      CHECK(Contains(t.out, "\"error\":\"refund failed\""));
      t = RunTool("sagas --id nope --db " + path);
      CHECK(t.code == 2);
    }
    WithRawDb(path, [](rocksdb::DB* db, auto& cfs) {
      std::string v;
      REQUIRE(db->Get(rocksdb::ReadOptions(), cfs["sagas"], "pay-2", &v).ok());
      v[v.size() / 3] ^= 0x08;
      REQUIRE(db->Put(rocksdb::WriteOptions(), cfs["sagas"], "pay-2", v).ok());
    });
    Store s = OpenReadOnly(path);
    auto r = inspect::Verify(s);
    REQUIRE(r.ok());
    REQUIRE(r->problem_count == 1);
    CHECK(r->problems[0].column_family == "sagas");
    CHECK(r->problems[0].key == "\"pay-2\"");
    CHECK(inspect::ListSagas(s, "", [](const inspect::SagaInfo&) { return true; }).IsCorruption());
    if (ToolBuilt()) {
      ToolRun t = RunTool("verify --db " + path);
      CHECK(t.code == 1);
      CHECK(Contains(t.out, "PROBLEM sagas [\"pay-2\"]"));
    }
  }

  TEST_CASE("a saga whose attempt shutdown gave up shows it begun, then interrupted, by name") {
    using namespace std::chrono_literals;
    TempDir dir;
    std::string path = dir.sub("db");
    auto gate = std::make_shared<Gate>();
    auto def = [&](bool hang) {
      SagaDefinition d;
      d.name = "payment";
      StepDefinition st;
      st.name = "charge";
      if (hang) {
        st.action = [gate](const StepContext&) {
          gate->Pass();
          return StepResult::Success("late");
        };
      } else {
        st.action = [](const StepContext& c) {
          return StepResult::Success("attempt " + std::to_string(c.attempt));
        };
      }
      d.steps.push_back(std::move(st));
      return d;
    };
    {
      Store store = OpenOrDie(path);
      SagaEngineOptions o;
      o.shutdown_timeout = 0ms;
      auto eng = SagaEngine::open(store, std::vector{def(true)}, o);
      REQUIRE_MESSAGE(eng.ok(), eng.status().ToString());
      REQUIRE((*eng)->start("payment", "pay-9", "{}").ok());
      gate->AwaitEntered(1);
      REQUIRE((*eng)->shutdown().IsTimedOut());
      eng->reset();
      // The handler returns into the engine that gave it up, which is then
      // freed (with the definition holding the gate); its result is dropped.
      gate->Open();
      for (auto until = std::chrono::steady_clock::now() + 60s;
           gate.use_count() > 1 && std::chrono::steady_clock::now() < until;)
        std::this_thread::sleep_for(1ms);
      REQUIRE(gate.use_count() == 1);
      // As the given-up attempt left the record: begun, not ended.
      auto g = inspect::GetSaga(store, "pay-9");
      REQUIRE_MESSAGE(g.ok(), g.status().ToString());
      CHECK(g->state == "pending");
      CHECK(g->attempt == 0);
      CHECK(g->started == 1);
      CHECK(g->outputs.empty());
      REQUIRE(store.close().ok());
    }
    if (ToolBuilt()) {
      ToolRun t = RunTool("sagas --db " + path);
      CHECK(t.code == 0);
      CHECK(Contains(t.out, "saga\tdefinition\tstate\tstep\tattempt\tstarted\tupdated\n"));
      CHECK(Contains(t.out, "pay-9\tpayment@1\tpending\t0\t0\t1\t"));
      t = RunTool("sagas --id pay-9 --db " + path);
      CHECK(Contains(t.out, "step        0 (attempt 0, started 1: running or interrupted)"));
      t = RunTool("sagas --json --id pay-9 --db " + path);
      CHECK(Contains(t.out, "\"attempt\":0,\"started\":1,"));
    }
    {
      Store store = OpenOrDie(path);
      auto eng = SagaEngine::open(store, std::vector{def(false)});
      REQUIRE_MESSAGE(eng.ok(), eng.status().ToString());
      auto done = (*eng)->wait("pay-9", 60s);
      REQUIRE_MESSAGE(done.ok(), done.status().ToString());
      CHECK(done->state == SagaState::kCompleted);
      REQUIRE((*eng)->shutdown().ok());
      auto g = inspect::GetSaga(store, "pay-9");
      REQUIRE(g.ok());
      CHECK(g->state == "completed");
      CHECK(g->outputs == std::vector<std::string>{"attempt 2"});
      bool interrupted = false;
      for (const auto& h : g->history)
        if (h.event == "step interrupted" && h.step == 0 && h.attempt == 1) interrupted = true;
      CHECK(interrupted);
      // The engine's index keys (0x00 'v', 0x00 'f' ...) sit beside the
      // record: neither a saga to list nor a record for verify to decode.
      std::vector<std::string> ids;
      REQUIRE(inspect::ListSagas(store, "", [&](const inspect::SagaInfo& s) {
                ids.push_back(s.id);
                return true;
              }).ok());
      CHECK(ids == std::vector<std::string>{"pay-9"});
      CHECK(inspect::GetSaga(store, format::SagaFinishedKey(g->updated_ms, "pay-9"))
                .status()
                .IsNotFound());
      auto v = inspect::Verify(store);
      REQUIRE(v.ok());
      CHECK_MESSAGE(v->ok(), Describe(*v));
      CHECK(v->saga_records == 1);
      REQUIRE(store.close().ok());
    }
    if (ToolBuilt()) {
      ToolRun t = RunTool("sagas --id pay-9 --db " + path);
      CHECK(t.code == 0);
      CHECK(Contains(t.out, "step interrupted -> "));
      CHECK(Contains(t.out, "  step 0 attempt 1"));
      t = RunTool("sagas --json --id pay-9 --db " + path);
      CHECK(Contains(t.out, "\"event\":\"step interrupted\""));
    }
    // A malformed index key is a problem for verify, and still no saga.
    WithRawDb(path, [](rocksdb::DB* db, auto& cfs) {
      REQUIRE(db->Put(rocksdb::WriteOptions(), cfs["sagas"], std::string("\0?junk", 6), "").ok());
    });
    Store ro = OpenReadOnly(path);
    auto v = inspect::Verify(ro);
    REQUIRE(v.ok());
    REQUIRE(v->problem_count == 1);
    CHECK(v->problems[0].column_family == "sagas");
    CHECK(Contains(v->problems[0].message, "malformed saga index key"));
    CHECK(v->saga_records == 1);
    std::vector<std::string> ids;
    REQUIRE(inspect::ListSagas(ro, "", [&](const inspect::SagaInfo& s) {
              ids.push_back(s.id);
              return true;
            }).ok());
    CHECK(ids == std::vector<std::string>{"pay-9"});
  }

  TEST_CASE("every saga event and state a record may hold has one name in the engine, the C API and the inspector") {
    for (int v = -1; v <= 256; v++) {
      const std::string c = evs_saga_event_name(v);
      const bool known = v >= 0 && v < format::kSagaEventCount;
      CHECK_MESSAGE((c != "unknown") == known, v);
      if (v >= 0 && v <= 255) CHECK(c == SagaEventName(static_cast<SagaEvent>(v)));
      const std::string cs = evs_saga_state_name(v);
      CHECK_MESSAGE((cs != "unknown") == (v >= 0 && v < format::kSagaStateCount), v);
      if (v >= 0 && v <= 255) CHECK(cs == SagaStateName(static_cast<SagaState>(v)));
    }
    TempDir dir;
    std::string path = dir.sub("db");
    Populate(path);
    WithRawDb(path, [](rocksdb::DB* db, auto& cfs) {
      format::SagaRecordData r;
      r.id = "all-events";
      r.definition = "d";
      r.version = 1;
      for (uint8_t k = 0; k < format::kSagaEventCount; k++)
        r.history.push_back({1000 + k, k, static_cast<uint8_t>(k % format::kSagaStateCount), 0,
                             1, ""});
      std::string v;
      format::EncodeSagaRecord(r, &v);
      REQUIRE(db->Put(rocksdb::WriteOptions(), cfs["sagas"], r.id, v).ok());
    });
    Store s = OpenReadOnly(path);
    auto g = inspect::GetSaga(s, "all-events");
    REQUIRE_MESSAGE(g.ok(), g.status().ToString());
    REQUIRE(g->history.size() == format::kSagaEventCount);
    for (int k = 0; k < format::kSagaEventCount; k++) {
      CHECK(g->history[k].event == evs_saga_event_name(k));
      CHECK(g->history[k].event != "unknown");
      CHECK(g->history[k].state == evs_saga_state_name(k % format::kSagaStateCount));
    }
    CHECK(g->history[EVS_SAGA_EVENT_STEP_INTERRUPTED].event == "step interrupted");
    CHECK(g->history[EVS_SAGA_EVENT_COMPENSATION_INTERRUPTED].event == "compensation interrupted");
    if (ToolBuilt()) {
      ToolRun t = RunTool("sagas --id all-events --db " + path);
      CHECK(t.code == 0);
      CHECK(Contains(t.out, "  step interrupted -> "));
      CHECK(Contains(t.out, "  compensation interrupted -> "));
      CHECK_FALSE(Contains(t.out, "unknown"));
    }
  }

  TEST_CASE("checkpoints are listed with their lag behind the log") {
    TempDir dir;
    std::string path = dir.sub("db");
    Populate(path);
    PutCheckpoints(path);
    Store s = OpenReadOnly(path);
    uint64_t end = 0;
    auto cps = Checkpoints(s, &end);
    CHECK(end == 12);
    REQUIRE(cps.size() == 2);
    CHECK(cps[0].name == "projector");
    CHECK(cps[0].state == inspect::CheckpointStatus::State::kOk);
    CHECK(cps[0].position == 7);
    CHECK(cps[0].lag == 5);
    CHECK(cps[0].updated_ms > 0);
    CHECK(cps[0].problem.empty());
    CHECK(cps[1].name == "reader");
    CHECK(cps[1].position == 12);
    CHECK(cps[1].lag == 0);
    auto v = inspect::Verify(s);
    REQUIRE(v.ok());
    CHECK_MESSAGE(v->ok(), Describe(*v));
    CHECK(v->checkpoint_records == 2);

    SUBCASE("listing stops when asked") {
      int seen = 0;
      CHECK(inspect::ListCheckpoints(s, [&](const inspect::CheckpointStatus&) {
        seen++;
        return false;
      }).ok());
      CHECK(seen == 1);
    }
    SUBCASE("the lag follows appends of a host that has the store open") {
      CHECK(s.close().ok());
      Store host = OpenOrDie(path);
      REQUIRE(host.append("order-9", ExpectedVersion::NoStream(), Evs(3)).ok());
      cps = Checkpoints(host, &end);
      CHECK(end == 15);
      REQUIRE(cps.size() == 2);
      CHECK(cps[0].lag == 8);
      CHECK(cps[1].lag == 3);
      CHECK(host.close().ok());
    }
    SUBCASE("a closed store is refused") {
      CHECK(s.close().ok());
      CHECK(inspect::ListCheckpoints(s, [](const inspect::CheckpointStatus&) { return true; })
                .IsClosed());
    }
  }

  // Verify holds at most 65,536 index entries at once (lib/inspect/verify.cpp):
  // the first batch is checked during the scan of the log, later ones by
  // walking it again. 22,000 events give 66,000 stream, category and type
  // entries, so the last type entries (type "Zeta", which sorts last) and
  // every event_ids entry are in the second batch.
  TEST_CASE("verify checks index entries beyond its first batch both ways") {
    TempDir dir;
    std::string path = dir.sub("db");
    {
      Store s = OpenOrDie(path, Options::Fast());
      for (int i = 0; i < 110; i++) {
        std::vector<EventData> evs = Evs(200, "A");
        for (int k = 0; k < 4; k++) evs[static_cast<size_t>(k * 50)].type = "Zeta";
        if (i % 10 == 0) evs[7].id = IdOf(static_cast<uint8_t>(1 + i / 10));
        REQUIRE(s.append("s-" + std::to_string(i % 10), ExpectedVersion::Any(), evs).ok());
      }
      REQUIRE(s.close().ok());
    }
    SUBCASE("a sound store passes") {
      Store s = OpenReadOnly(path);
      auto r = inspect::Verify(s);
      REQUIRE(r.ok());
      CHECK_MESSAGE(r->ok(), Describe(*r));
      CHECK(r->events == 22000);
      CHECK(r->type_index_entries == 22000);
      CHECK(r->event_id_entries == 11);
    }
    SUBCASE("wrong, dangling and missing entries in the second batch") {
      // Position 200 * i + 7 holds the caller id of the ith tenth; 50 * k
      // of each append is a Zeta; every other event is an A.
      WithRawDb(path, [](rocksdb::DB* db, auto& cfs) {
        rocksdb::WriteOptions w;
        REQUIRE(db->Put(w, cfs["type_index"], format::NameIndexKey("Zeta", 21001), "").ok());
        REQUIRE(db->Delete(w, cfs["type_index"], format::NameIndexKey("Zeta", 21850)).ok());
        Uuid a = IdOf(3), b = IdOf(5);
        std::string_view ka(reinterpret_cast<const char*>(a.bytes), 16);
        std::string_view kb(reinterpret_cast<const char*>(b.bytes), 16);
        REQUIRE(db->Put(w, cfs["event_ids"], ka, format::Be64(4001).view()).ok());
        REQUIRE(db->Put(w, cfs["event_ids"], kb, format::Be64(99999).view()).ok());
      });
      Store s = OpenReadOnly(path);
      auto r = inspect::Verify(s);
      REQUIRE(r.ok());
      CHECK_MESSAGE(HasProblem(*r, "type_index", 21001, "whose type is \"A\""), Describe(*r));
      CHECK_MESSAGE(HasProblem(*r, "type_index", 21850, "missing"), Describe(*r));
      CHECK_MESSAGE(HasProblem(*r, "event_ids", 4001, "whose event id is"), Describe(*r));
      CHECK_MESSAGE(HasProblem(*r, "event_ids", 4007, "has value"), Describe(*r));
      CHECK_MESSAGE(HasProblem(*r, "event_ids", 99999, "holds no event"), Describe(*r));
      CHECK_MESSAGE(HasProblem(*r, "event_ids", 8007, "has value"), Describe(*r));
      CHECK_MESSAGE(r->problem_count == 6, Describe(*r));
    }
  }

  TEST_CASE("damaged checkpoints and checkpoints beyond the log are reported, not fatal") {
    TempDir dir;
    std::string path = dir.sub("db");
    Populate(path);
    PutCheckpoints(path);
    WithRawDb(path, [](rocksdb::DB* db, auto& cfs) {
      auto put = [&](const std::string& k, const std::string& v) {
        REQUIRE(db->Put(rocksdb::WriteOptions(), cfs["checkpoints"], k, v).ok());
      };
      std::string projector;
      REQUIRE(db->Get(rocksdb::ReadOptions(), cfs["checkpoints"], "projector", &projector).ok());
      put("ahead", format::EncodeCheckpoint("ahead", {20, 1000}));  // sound, but past position 12
      put("copied", projector);                                     // seeded with another name
      put("short", projector.substr(0, 10));
      put("zz-newer", std::string(1, '\x02') + projector.substr(1));
      std::string flipped = projector;
      flipped[5] ^= 1;
      put("projector", flipped);
    });
    Store s = OpenReadOnly(path);
    using State = inspect::CheckpointStatus::State;
    auto cps = Checkpoints(s);
    REQUIRE(cps.size() == 6);
    CHECK(cps[0].name == "ahead");
    CHECK(cps[0].state == State::kBeyondEnd);
    CHECK(cps[0].position == 20);
    CHECK(cps[0].lag == 0);
    CHECK(Contains(cps[0].problem, "position 20 is beyond the end of the log"));
    CHECK(cps[1].name == "copied");
    CHECK(cps[1].state == State::kDamaged);
    CHECK(Contains(cps[1].problem, "checksum mismatch"));
    CHECK(cps[2].name == "projector");
    CHECK(cps[2].state == State::kDamaged);
    CHECK(cps[2].position == 0);
    CHECK(cps[3].name == "reader");
    CHECK(cps[3].state == State::kOk);
    CHECK(cps[4].name == "short");
    CHECK(Contains(cps[4].problem, "wrong length"));
    CHECK(cps[5].state == State::kDamaged);
    CHECK(Contains(cps[5].problem, "newer than this evstore reads"));

    auto v = inspect::Verify(s);
    REQUIRE(v.ok());
    CHECK(v->checkpoint_records == 6);
    CHECK_MESSAGE(v->problem_count == 5, Describe(*v));
    CHECK(HasProblem(*v, "checkpoints", 20, "beyond the end of the log (the next event gets 12)"));
    CHECK(HasProblem(*v, "checkpoints", inspect::Problem::kNoPosition, "'copied': checksum mismatch"));
    CHECK(HasProblem(*v, "checkpoints", inspect::Problem::kNoPosition, "'projector': checksum"));
    CHECK(HasProblem(*v, "checkpoints", inspect::Problem::kNoPosition, "'short': record has the wrong length"));
    CHECK(HasProblem(*v, "checkpoints", inspect::Problem::kNoPosition, "record format 2"));
  }

  TEST_CASE("verify checks projection records, names their instances and finds orphan state") {
    TempDir dir;
    std::string path = dir.sub("db");
    Populate(path);
    PutProjections(path);
    SUBCASE("sound projections and an instance no meta names pass") {
      Store s = OpenReadOnly(path);
      auto v = inspect::Verify(s);
      REQUIRE(v.ok());
      CHECK_MESSAGE(v->ok(), Describe(*v));
      evtest::CheckFoldMatchesLog(s, "a");
    }
    SUBCASE("each damaged record is reported under its key") {
      uint64_t c = 0, gone = 0;
      WithRawDb(path, [&](rocksdb::DB* db, auto& cfs) {
        rocksdb::ColumnFamilyHandle* cf = cfs["projections"];
        auto ids = InstancesByName(db, cf);
        c = ids.at("c");
        gone = ids.at("gone");
        rocksdb::WriteOptions w;
        // "a": its meta record damaged.
        std::string meta;
        REQUIRE(db->Get(rocksdb::ReadOptions(), cf, format::ProjMetaKey("a"), &meta).ok());
        meta[3] ^= 1;
        REQUIRE(db->Put(w, cf, format::ProjMetaKey("a"), meta).ok());
        // "b": its instance checkpointed past the end of the log (sound
        // otherwise).
        const std::string bkey = format::ProjInstanceKey(ids.at("b"));
        format::ProjectionInstance rec;
        rec.position = 40;
        rec.handled = 12;
        rec.version = 1;
        rec.name = "b";
        REQUIRE(db->Put(w, cf, bkey, format::EncodeProjectionInstance(bkey, rec)).ok());
        // "c": its instance record lost, its state left.
        REQUIRE(db->Delete(w, cf, format::ProjInstanceKey(c)).ok());
        // "ghost": a meta naming an instance that was never written, and
        // rebuilding into "gone"'s (which another meta names then too).
        format::ProjectionMeta m{77, 1, gone, 1};
        REQUIRE(db->Put(w, cf, format::ProjMetaKey("ghost"), format::EncodeProjectionMeta(format::ProjMetaKey("ghost"), m)).ok());
        // A key of no kind.
        REQUIRE(db->Put(w, cf, "Zjunk", "x").ok());
      });
      Store s = OpenReadOnly(path);
      auto v = inspect::Verify(s);
      REQUIRE(v.ok());
      CHECK(HasProblem(*v, "projections", inspect::Problem::kNoPosition,
                       "projection meta record 'Ma': checksum mismatch"));
      CHECK(HasProblem(*v, "projections", 40, "checkpoint at position 40, beyond the end of the log"));
      CHECK_MESSAGE(HasProblem(*v, "projections", inspect::Problem::kNoPosition,
                               "its serving instance " + std::to_string(c) + " has no record"),
                    Describe(*v));
      CHECK(HasProblem(*v, "projections", inspect::Problem::kNoPosition,
                       "state key(s) of instance " + std::to_string(c) + ", which has no instance record"));
      CHECK(HasProblem(*v, "projections", inspect::Problem::kNoPosition, "its serving instance 77 has no record"));
      CHECK(HasProblem(*v, "projections", inspect::Problem::kNoPosition,
                       "its rebuilt instance " + std::to_string(gone) + " is a record of projection \"gone\""));
      CHECK(HasProblem(*v, "projections", inspect::Problem::kNoPosition, "malformed key"));
      CHECK_MESSAGE(v->problem_count == 7, Describe(*v));
      bool keyed = false;
      for (const auto& p : v->problems) keyed |= p.key == "\"a\"" || p.key == "\"ghost\"";
      CHECK(keyed);
    }
  }

  TEST_CASE("verify reports a checkpoint key that is no checkpoint name") {
    TempDir dir;
    std::string path = dir.sub("db");
    Populate(path);
    WithRawDb(path, [](rocksdb::DB* db, auto& cfs) {
      std::string bad("a\0b", 3);
      REQUIRE(db->Put(rocksdb::WriteOptions(), cfs["checkpoints"], bad,
                      format::EncodeCheckpoint(bad, {1, 1}))
                  .ok());
    });
    Store s = OpenReadOnly(path);
    auto v = inspect::Verify(s);
    REQUIRE(v.ok());
    CHECK(v->problem_count == 1);
    CHECK(HasProblem(*v, "checkpoints", inspect::Problem::kNoPosition, "not UTF-8 or holds NUL"));
  }

  TEST_CASE("verify sees one consistent snapshot while appends run") {
    TempDir dir;
    Store s = OpenOrDie(dir.sub("db"));
    std::atomic<bool> stop{false};
    std::thread writer([&] {
      for (int i = 0; !stop; i++)
        REQUIRE(s.append("w-" + std::to_string(i % 7), ExpectedVersion::Any(), Evs(3)).ok());
    });
    for (int round = 0; round < 5; round++) {
      auto r = inspect::Verify(s);
      REQUIRE(r.ok());
      CHECK_MESSAGE(r->ok(), Describe(*r));
    }
    stop = true;
    writer.join();
    REQUIRE(s.close().ok());
    CHECK(inspect::Verify(s).status().IsClosed());
  }

  TEST_CASE("opening a non-store directory read-only fails clearly") {
    TempDir dir;
    std::ofstream(dir.sub("notes.txt")) << "mine";
    Options o;
    o.read_only = true;
    auto r = Store::open(dir.path(), o);
    CHECK(r.status().IsInvalidArgument());
    CHECK(Contains(std::string(r.status().message()), "not an evstore store"));
  }

  TEST_CASE("evstore-inspect inspects a store and exits with documented codes") {
    if (!ToolBuilt()) return;
    TempDir dir;
    std::string path = dir.sub("db");
    Populate(path);
    auto db = " --db " + path;

    ToolRun r = RunTool("info" + db);
    CHECK(r.code == 0);
    CHECK(Contains(r.out, "events          12"));
    r = RunTool("info --json" + db);
    CHECK(r.code == 0);
    CHECK(Contains(r.out, "\"events\":12,\"streams\":3,\"next_position\":12"));
    r = RunTool("streams" + db);
    CHECK(r.code == 0);
    CHECK(Lines(r.out) == 4);
    CHECK(Contains(r.out, "order-1\t1\t4\t9\t5\n"));
    r = RunTool("dump --stream cart-9 --json" + db);
    CHECK(r.code == 0);
    CHECK(Lines(r.out) == 4);
    r = RunTool("dump --from=2 --to=3 --hex" + db);
    CHECK(r.code == 0);
    CHECK(Contains(r.out, "position 3  stream \"order-2\""));
    CHECK(r.err.empty());  // piped: no progress line
    r = RunTool("verify" + db);
    CHECK(r.code == 0);
    CHECK(Contains(r.out, "OK: no problems found"));
    r = RunTool("stats --top 1" + db);
    CHECK(r.code == 0);
    CHECK(Contains(r.out, "6\tPlaced"));

    SUBCASE("help and misuse") {
      r = RunTool("--help");
      CHECK(r.code == 0);
      CHECK(Contains(r.out, "commands:"));
      r = RunTool("dump --help");
      CHECK(r.code == 0);
      CHECK(Contains(r.out, "--stream NAME"));
      r = RunTool("");
      CHECK(r.code == 2);
      CHECK(Contains(r.err, "usage: evstore-inspect"));
      r = RunTool("frobnicate" + db);
      CHECK(r.code == 2);
      CHECK(Contains(r.err, "unknown command"));
      CHECK(Contains(r.err, "--help"));
      r = RunTool("verify --hex" + db);
      CHECK(r.code == 2);
      CHECK(Contains(r.err, "use 'evstore-inspect verify --help'"));
      r = RunTool("dump --limit many" + db);
      CHECK(r.code == 2);
      r = RunTool("dump --stream nope" + db);
      CHECK(r.code == 2);
      CHECK(Contains(r.err, "no stream \"nope\""));
    }
    SUBCASE("stores that cannot be opened") {
      r = RunTool("info --db " + dir.sub("absent"));
      CHECK(r.code == 3);
      CHECK(Contains(r.err, "no such directory"));
      std::filesystem::create_directory(dir.sub("other"));
      std::ofstream(dir.sub("other/notes.txt")) << "mine";
      r = RunTool("verify --db " + dir.sub("other"));
      CHECK(r.code == 3);
      CHECK(Contains(r.err, "not an evstore store"));
      CHECK_FALSE(std::filesystem::exists(dir.sub("other/CURRENT")));
      WithRawDb(path, [](rocksdb::DB* db, auto& cfs) {
        REQUIRE(db->Put(rocksdb::WriteOptions(), cfs["default"], std::string(format::kFormatKey),
                        format::EncodeFormatRecord(format::kFormatVersion + 1, 0))
                    .ok());
      });
      r = RunTool("info" + db);
      CHECK(r.code == 3);
      CHECK(Contains(r.err, "uses on-disk format " + std::to_string(format::kFormatVersion + 1)));
    }
    SUBCASE("a corrupted record fails verify and dump with exit 1") {
      WithRawDb(path, [](rocksdb::DB* db, auto& cfs) {
        std::string v;
        REQUIRE(db->Get(rocksdb::ReadOptions(), cfs["events"], format::EventKey(9).view(), &v).ok());
        v[3] ^= 1;
        REQUIRE(db->Put(rocksdb::WriteOptions(), cfs["events"], format::EventKey(9).view(), v).ok());
      });
      r = RunTool("verify" + db);
      CHECK(r.code == 1);
      CHECK(Contains(r.out, "PROBLEM events [position 9]: event record at position 9"));
      CHECK(Contains(r.out, "FAILED: 1 problem(s) found"));
      r = RunTool("verify --json" + db);
      CHECK(r.code == 1);
      CHECK(Contains(r.out, "\"ok\":false"));
      CHECK(Contains(r.out, "\"position\":9"));
      r = RunTool("dump" + db);
      CHECK(r.code == 1);
      CHECK(Lines(r.out) == 12);
      CHECK(Contains(r.err, "1 damaged record(s)"));
    }
  }

  TEST_CASE("evstore-inspect checkpoints lists them, and reports damage with exit 1") {
    if (!ToolBuilt()) return;
    TempDir dir;
    std::string path = dir.sub("db");
    Populate(path);
    PutCheckpoints(path);
    ToolRun r = RunTool("checkpoints " + path);  // the directory as the argument
    CHECK(r.code == 0);
    CHECK(r.err.empty());
    CHECK(Lines(r.out) == 3);
    CHECK(Contains(r.out, "checkpoint\tposition\tlag\tupdated\n"));
    CHECK(Contains(r.out, "projector\t7\t5\t20"));  // then the ISO time
    CHECK(Contains(r.out, "reader\t12\t0\t20"));
    r = RunTool("checkpoints --json --db " + path);
    CHECK(r.code == 0);
    CHECK(Lines(r.out) == 2);
    CHECK(Contains(r.out, "{\"name\":\"projector\",\"position\":7,\"lag\":5,\"updated_ms\":"));
    CHECK_FALSE(Contains(r.out, "problem"));
    r = RunTool("verify " + path);
    CHECK(r.code == 0);
    CHECK(Contains(r.out, "0 sagas, 2 checkpoints\n"));
    r = RunTool("checkpoints --db " + path + " " + path);
    CHECK(r.code == 2);
    CHECK(Contains(r.err, "given twice"));
    r = RunTool("checkpoints --from x " + path);
    CHECK(r.code == 2);
    CHECK(Contains(r.err, "unknown flag '--from' for checkpoints"));

    WithRawDb(path, [](rocksdb::DB* db, auto& cfs) {
      REQUIRE(db->Put(rocksdb::WriteOptions(), cfs["checkpoints"], "ahead",
                      format::EncodeCheckpoint("ahead", {40, 1000}))
                  .ok());
      REQUIRE(db->Put(rocksdb::WriteOptions(), cfs["checkpoints"], "broken", "\x01garbage").ok());
    });
    r = RunTool("checkpoints " + path);
    CHECK(r.code == 1);
    CHECK(Lines(r.out) == 5);
    CHECK(Contains(r.out, "ahead\t40\t-\t"));
    CHECK(Contains(r.out, "PROBLEM: position 40 is beyond the end of the log"));
    CHECK(Contains(r.out, "broken\t-\t-\t-\tPROBLEM: checkpoint 'broken': "));
    CHECK(Contains(r.out, "projector\t7\t5\t"));
    CHECK(Contains(r.err, "2 checkpoint(s) with problems"));
    r = RunTool("checkpoints --json " + path);
    CHECK(r.code == 1);
    CHECK(Contains(r.out, "{\"name\":\"ahead\",\"position\":40,\"lag\":null,"));
    CHECK(Contains(r.out, "{\"name\":\"broken\",\"position\":null,\"lag\":null,\"updated_ms\":null,"
                          "\"updated\":null,\"problem\":"));
    r = RunTool("verify " + path);
    CHECK(r.code == 1);
    CHECK(Contains(r.out, "PROBLEM checkpoints [\"ahead\"]: checkpoint 'ahead' is at position 40, "
                          "beyond the end of the log"));
    CHECK(Contains(r.out, "PROBLEM checkpoints [\"broken\"]: checkpoint 'broken': "));
  }

  TEST_CASE("evstore-inspect verify exits 1 on a damaged projection record") {
    if (!ToolBuilt()) return;
    TempDir dir;
    std::string path = dir.sub("db");
    Populate(path);
    PutProjections(path);
    ToolRun r = RunTool("verify " + path);
    CHECK(r.code == 0);
    WithRawDb(path, [](rocksdb::DB* db, auto& cfs) {
      REQUIRE(db->Put(rocksdb::WriteOptions(), cfs["projections"], format::ProjMetaKey("b"), "\x01short").ok());
    });
    r = RunTool("verify " + path);
    CHECK(r.code == 1);
    CHECK_MESSAGE(Contains(r.out, "PROBLEM projections [\"b\"]: projection meta record 'Mb': record is too short"),
                  r.out);
  }

  TEST_CASE("evstore-inspect reads a store that another handle has open") {
    if (!ToolBuilt()) return;
    TempDir dir;
    std::string path = dir.sub("db");
    Populate(path);
    Store host = OpenOrDie(path);
    REQUIRE(host.append("order-3", ExpectedVersion::NoStream(), Evs(4)).ok());
    ToolRun r = RunTool("verify --db " + path);
    CHECK(r.code == 0);
    CHECK(Contains(r.out, "checked: 16 events, 4 streams"));
    r = RunTool("dump --stream order-3 --db " + path);
    CHECK(r.code == 0);
    CHECK(Lines(r.out) == 4);
    // The host is unaffected and keeps writing.
    CHECK(host.append("order-3", ExpectedVersion::Exact(3), Evs(1)).ok());
    CHECK(host.close().ok());
  }

  TEST_CASE("evstore-inspect projections lists projections and prints state by key and prefix") {
    if (!ToolBuilt()) return;
    TempDir dir;
    std::string path = dir.sub("db");
    Populate(path);
    {
      Store s = OpenOrDie(path);
      auto p = s.run_projection("by-type", {}, [](const RecordedEvent& e, ProjectionState& st) -> Status {
        auto cur = st.get("count/" + e.type);
        return st.put("count/" + e.type, std::to_string((cur.ok() ? std::stoull(*cur) : 0) + 1));
      });
      REQUIRE(p.ok());
      REQUIRE((*p)->wait_for(s.stats()->next_position, std::chrono::seconds(60)).ok());
      p->reset();
      REQUIRE(s.close().ok());
    }
    ToolRun r = RunTool("projections " + path);
    CHECK(r.code == 0);
    CHECK(Lines(r.out) == 2);
    CHECK(Contains(r.out, "projection\tversion\tposition\tlag\thandled\tupdated\trebuild\n"));
    CHECK(Contains(r.out, "by-type\t1\t12\t0\t12\t"));
    r = RunTool("projections --json " + path);
    CHECK(r.code == 0);
    CHECK(Contains(r.out, "{\"name\":\"by-type\",\"version\":1,\"position\":12,\"lag\":0,\"events_handled\":12,"));
    r = RunTool("projections --name by-type --key count/Placed " + path);
    CHECK(r.code == 0);
    CHECK(r.out == "count/Placed\t6\n");
    r = RunTool("projections --name by-type --prefix count/ --limit 1 --json " + path);
    CHECK(r.code == 0);
    CHECK(Lines(r.out) == 1);
    CHECK(Contains(r.out, "{\"key\":\"count/"));
    r = RunTool("projections --name by-type " + path);
    CHECK(r.code == 0);
    CHECK(Lines(r.out) >= 2);
    r = RunTool("projections --name by-type --key nope " + path);
    CHECK(r.code == 1);
    r = RunTool("projections --name nope " + path);
    CHECK(r.code == 1);
    r = RunTool("projections --key k " + path);
    CHECK(r.code == 2);
    CHECK(Contains(r.err, "--key and --prefix need --name"));
  }
}
