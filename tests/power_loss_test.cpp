// Pulls the plug on a store at random moments and checks what survives
// against a model of everything the store acknowledged.
//
// A run opens one store on a FaultFs (fault_fs.hpp) and plays several
// cycles. In each, appender threads append to shared and private streams
// (single-stream and multi-stream, with and without caller ids) while a saga
// engine starts and runs sagas whose steps emit events; then the power goes
// off at a random moment (after a random delay, at a random WAL sync or file
// operation, inside a clean close, or inside the open itself). Everything is
// stopped, the store destroyed, the disk made to look like a machine that
// lost power (in some runs with torn unsynced tails), and the store reopened
// on a fresh FaultFs and checked:
// - with sync=true, every acknowledged append is at its acknowledged
//   positions and versions with identical type, data, metadata, content type
//   and id; with sync=false, only a suffix of the commit order is lost
//   (acknowledged appends below the end of the log are all there, those past
//   it are all gone, and a clean close loses nothing);
// - positions are gapless from 0, versions dense per stream, stream heads
//   and reads by stream agree, no event appears that nobody appended, and no
//   event appears twice;
// - every transaction is all or nothing, contiguous, at the versions its
//   expectations demand;
// - appends that failed have an unknown outcome: each is found whole or not
//   at all, and a retry with the same ids settles it (an idempotent replay at
//   the same positions if it landed, a new write otherwise);
// - every acknowledged saga exists (sync=true) and each saga's recorded
//   progress matches the events its steps emitted (one commit per step);
//   an unknown start retried reports whether the saga existed; after the
//   last cycle every saga runs to completion;
// - inspect::Verify finds no problem.
//
// Environment:
//   EVSTORE_POWER_LOSS_CYCLES  cycles (plug pulls) to run; default 300 (100 under ASan)
//   EVSTORE_POWER_LOSS_SEED    replay the one run with this seed (printed on failure)
//   EVSTORE_POWER_LOSS_MASTER  seed of the sequence of run seeds (default: random, printed)
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <thread>
#include <unordered_map>

#include "evstore/inspect.hpp"
#include "evstore/saga.hpp"
#include "evstore/store.hpp"
#include "fault_fs.hpp"
#include "fault_test_util.hpp"
#include "log/store_impl.hpp"
#include "projection_fold.hpp"

using namespace evstore;
using namespace std::chrono_literals;
using evtest::FaultEffect;
using evtest::FaultFs;
using evtest::FaultRule;
using evtest::FileKind;
using evtest::FsOp;

namespace {

// ---- Configuration ----

uint64_t EnvNumber(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  return std::strtoull(v, nullptr, 10);
}

// CI runs the test plain and under sanitizers; the plain build runs the 300
// cycles, the (three times slower) sanitized one a third as many.
#if defined(__SANITIZE_ADDRESS__)
constexpr uint64_t kDefaultCycles = 100;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr uint64_t kDefaultCycles = 100;
#else
constexpr uint64_t kDefaultCycles = 300;
#endif
#else
constexpr uint64_t kDefaultCycles = 300;
#endif

constexpr int kSagaSteps = 3;
const char* const kSagaName = "pl";

// How the plug is pulled in a cycle.
enum class Cut : uint8_t {
  kTimer,       // after a random delay
  kWalSync,     // at a random WAL sync
  kAnyOp,       // at a random file system operation
  kInClose,     // at a random operation of a clean close
  kAfterClose,  // after a clean close
  kInOpen,      // at a random operation of the open (creation or recovery)
  kCount,
};
const char* CutName(Cut c) {
  switch (c) {
    case Cut::kTimer:
      return "timer";
    case Cut::kWalSync:
      return "wal-sync";
    case Cut::kAnyOp:
      return "any-op";
    case Cut::kInClose:
      return "in-close";
    case Cut::kAfterClose:
      return "after-close";
    case Cut::kInOpen:
      return "in-open";
    case Cut::kCount:
      break;
  }
  return "?";
}

struct Totals {
  uint64_t cycles = 0, runs = 0, torn_runs = 0, unsynced_runs = 0, created_runs = 0;
  uint64_t cuts[static_cast<size_t>(Cut::kCount)] = {};
  uint64_t opens_cut = 0;         // opens the power loss interrupted
  uint64_t txns_checked = 0;      // acknowledged transactions found where acknowledged
  uint64_t events_checked = 0;    // their events, byte for byte
  uint64_t unknown_present = 0;   // failed appends found whole after the reopen
  uint64_t unknown_absent = 0;    // failed appends found not at all
  uint64_t retries_replayed = 0;  // retries that were idempotent replays
  uint64_t retries_written = 0;   // retries that wrote the append anew
  uint64_t lost_unsynced = 0;     // sync=false acknowledged transactions lost (a clean suffix)
  uint64_t sagas_checked = 0;
  uint64_t saga_starts_retried = 0;
  uint64_t projections_checked = 0;  // reopened projections whose state equalled the fold of the log
  uint64_t projection_events = 0;    // events in those folds
  uint64_t projection_rebuilds = 0;  // workloads that started an online rebuild
  uint64_t bytes_dropped = 0, torn_bytes_kept = 0, entries_removed = 0, renames_reverted = 0,
           torn_entries_kept = 0;
  uint64_t waits_timed_out = 0;  // cuts at an operation that did not come in 2 s (pulled by hand)
  double open_s = 0, check_s = 0, work_s = 0, drop_s = 0, final_s = 0;
};

class Stopwatch {
 public:
  explicit Stopwatch(double* into) : into_(into), t0_(std::chrono::steady_clock::now()) {}
  ~Stopwatch() {
    *into_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  }

 private:
  double* into_;
  std::chrono::steady_clock::time_point t0_;
};

// ---- The model ----

enum class Fate : uint8_t {
  kAcked,     // the store acknowledged it (positions in `at`)
  kUnknown,   // the store returned an error: it may or may not have landed
  kRejected,  // refused before anything was written (wrong expected version)
  kPresent,   // seen on disk after a reopen, at `at`
  kAbsent,    // an unknown outcome, seen not to have landed
  kLost,      // acknowledged with sync=false and lost with a clean suffix
};

struct Txn {
  uint64_t tag = 0;
  int round = 0;
  bool multi = false;  // appended with append_multi
  bool ids = false;    // every event has a caller id
  std::vector<StreamAppend> parts;
  Fate fate = Fate::kUnknown;
  std::vector<AppendResult> at;
  bool retry = false;  // an unknown outcome, now settled on disk: retry it
};

std::string Token(uint64_t tag, size_t part, size_t i) {
  return "T" + std::to_string(tag) + ":" + std::to_string(part) + ":" + std::to_string(i);
}
std::string SagaToken(const std::string& id, int step) {
  return "S" + id + ":" + std::to_string(step);
}
std::string_view TokenOf(std::string_view data) {
  size_t bar = data.find('|');
  return bar == std::string_view::npos ? std::string_view() : data.substr(0, bar);
}

struct SagaModel {
  std::string id, input;
  int round = 0;
  uint64_t order = 0;  // start order within its round (one starter thread)
  Fate fate = Fate::kUnknown;
  bool retry = false;
};

uint64_t Fnv(std::string_view s) {
  uint64_t h = 1469598103934665603ull;
  for (char c : s) h = (h ^ static_cast<uint8_t>(c)) * 1099511628211ull;
  return h;
}

std::string RandomBytes(std::mt19937_64& rng, size_t n) {
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng() & 0xff);
  return s;
}

std::string Place(const AppendResult& r) {
  return "versions " + std::to_string(r.first_version) + ".." + std::to_string(r.last_version) +
         " positions " + std::to_string(r.first_position) + ".." + std::to_string(r.last_position);
}

bool SamePlace(const AppendResult& a, const AppendResult& b) {
  return a.first_version == b.first_version && a.last_version == b.last_version &&
         a.first_position == b.first_position && a.last_position == b.last_position;
}

// The saga definition: three steps, each committing one event with its
// completion; the middle step of some sagas fails its first attempt.
SagaDefinition Definition() {
  SagaDefinition d;
  d.name = kSagaName;
  for (int j = 0; j < kSagaSteps; j++) {
    StepDefinition s;
    s.name = "step" + std::to_string(j);
    s.action = [j](const StepContext& c) {
      std::string id(c.saga_id);
      if (j == 1 && c.attempt == 1 && Fnv(id) % 3 == 0) return StepResult::Retry("flaky");
      EventData e;
      e.id = c.event_id(0);
      e.type = "SagaStep";
      e.content_type = "application/json";
      e.data = SagaToken(id, j) + "|{\"saga\":\"" + id + "\",\"step\":" + std::to_string(j) + "}";
      e.metadata = "input=" + std::string(c.input);
      return StepResult::Success("o" + std::to_string(j),
                                 {StreamAppend{"saga-" + id, ExpectedVersion::Any(), {e}}});
    };
    s.retry.max_attempts = 5;
    s.retry.initial_backoff = 1ms;
    s.retry.max_backoff = 4ms;
    s.timeout = 60s;  // never under test: a timeout is not a power-loss matter
    d.steps.push_back(std::move(s));
  }
  return d;
}

// One run: one store, several cycles.
class Run {
 public:
  Run(uint64_t seed, std::string dir, const std::string& template_dir, Totals* totals)
      : seed_(seed), dir_(std::move(dir)), path_(dir_ + "/db"), totals_(totals), rng_(seed) {
    sync_ = rng_() % 4 != 0;
    torn_ = rng_() % 4 == 0;
    cycles_ = 1 + static_cast<int>(rng_() % 10);
    bool create = rng_() % 6 == 0;
    options_ = sync_ ? Options::Durable() : Options::Fast();
    std::filesystem::create_directories(dir_);
    if (!create)
      std::filesystem::copy(template_dir, path_, std::filesystem::copy_options::recursive);
    totals_->runs++;
    totals_->torn_runs += torn_;
    totals_->unsynced_runs += !sync_;
    totals_->created_runs += create;
  }

  int cycles() const { return cycles_; }
  std::string Describe() const {
    return std::string("sync=") + (sync_ ? "true" : "false") + (torn_ ? ", torn writes" : "") +
           ", " + std::to_string(cycles_) + " cycle(s)";
  }

  // Plays every cycle and the final check; the problems found (none: passed).
  std::vector<std::string> Go() {
    for (round_ = 0; round_ < cycles_ && problems_.empty(); round_++) Cycle();
    if (problems_.empty()) Final();
    return problems_;
  }

 private:
  void Problem(const std::string& what) {
    std::lock_guard<std::mutex> l(problems_mu_);
    if (problems_.size() < 40)
      problems_.push_back("cycle " + std::to_string(round_) + ": " + what);
    else if (problems_.size() == 40)
      problems_.push_back("(more problems not shown)");
  }

  Result<Store> Open(const std::shared_ptr<FaultFs>& f) {
    return internal::OpenStore(path_, options_,
                               evtest::OnFs(f));
  }

  // ---- One cycle ----

  void Cycle() {
    clean_.push_back(false);
    auto f = std::make_shared<FaultFs>();
    Cut cut = PickCut();
    totals_->cuts[static_cast<size_t>(cut)]++;
    if (cut == Cut::kInOpen)
      f->AddRule(FaultRule::On(FsOp::kAny).After(rng_() % 300).With(FaultEffect::kPowerLoss));
    std::optional<Store> store;
    {
      Stopwatch w(&totals_->open_s);
      auto opened = Open(f);
      if (opened.ok()) {
        store.emplace(std::move(opened).value());
      } else if (!f->powered_off()) {
        return Problem("open failed without a fault: " + opened.status().ToString());
      }
    }
    if (store) {
      f->ClearRules();  // an open that outran its cut goes on as a timed cycle
      {
        Stopwatch w(&totals_->check_s);
        Check(*store);
        if (!problems_.empty()) return;
        Resolve(*store);
      }
      Stopwatch w(&totals_->work_s);
      Workload(*store, f, cut == Cut::kInOpen ? Cut::kTimer : cut);
      store.reset();
    } else {
      totals_->opens_cut++;
    }
    if (f->OpenWritableFiles() != 0)
      Problem(std::to_string(f->OpenWritableFiles()) +
              " file(s) still open after the store was destroyed");
    Stopwatch w(&totals_->drop_s);
    Drop(f);
  }

  Cut PickCut() {
    uint64_t r = rng_() % 100;
    if (r < 30) return Cut::kTimer;
    // Unsynced runs sync their log rarely: cut them at any operation.
    if (r < 55) return sync_ ? Cut::kWalSync : Cut::kAnyOp;
    if (r < 77) return Cut::kAnyOp;
    // RocksDB waits a second after a failed flush, and a cut close usually
    // fails its flush: rarer, for time.
    if (r < 80) return Cut::kInClose;
    if (r < 88) return Cut::kAfterClose;
    return Cut::kInOpen;
  }

  void Drop(const std::shared_ptr<FaultFs>& f) {
    f->SetTornWrites(torn_, rng_());
    evtest::DropReport rep;
    rocksdb::IOStatus s = f->DropUnsyncedData(&rep);
    if (!s.ok()) Problem("DropUnsyncedData: " + s.ToString());
    totals_->cycles++;
    totals_->bytes_dropped += rep.bytes_dropped;
    totals_->torn_bytes_kept += rep.torn_bytes_kept;
    totals_->entries_removed += rep.entries_removed;
    totals_->renames_reverted += rep.renames_reverted;
    totals_->torn_entries_kept += rep.torn_entries_kept;
  }

  void Workload(Store& store, const std::shared_ptr<FaultFs>& f, Cut cut) {
    std::unique_ptr<SagaEngine> engine;
    {
      SagaEngineOptions eo;
      eo.threads = 2;
      std::vector<SagaDefinition> defs{Definition()};
      auto e = SagaEngine::open(store, defs, eo);
      if (e.ok()) {
        engine = std::move(e).value();
      } else if (!f->powered_off()) {
        Problem("saga engine: " + e.status().ToString());
        return;
      }
    }
    if (engine) ResolveSagaStarts(*engine);
    // A projection folds the log as it grows; now and then under a new
    // handler version, which rebuilds it online (cut at any point too).
    std::unique_ptr<Projection> projection;
    {
      ProjectionOptions po;
      po.max_batch = 1 + rng_() % 64;
      po.version = projection_version_;
      if (rng_() % 8 == 0) {
        po.version = ++projection_version_;
        totals_->projection_rebuilds++;
      }
      auto p = store.run_projection("fold", po, evtest::CountByType);
      if (p.ok())
        projection = std::move(p).value();
      else if (!f->powered_off())
        return Problem("run_projection: " + p.status().ToString());
    }
    // Half the cuts at an operation come just after it: a sync that was
    // durable although its caller saw it fail (an unknown outcome that landed).
    if (cut == Cut::kWalSync || cut == Cut::kAnyOp) {
      FaultRule r = cut == Cut::kWalSync
                        ? FaultRule::On(FsOp::kSync, FileKind::kWal).After(rng_() % 40)
                        : FaultRule::On(FsOp::kAny).After(rng_() % 400);
      r.With(FaultEffect::kPowerLoss);
      if (rng_() % 2) r.Anyway();
      f->AddRule(r);
    }

    // A cycle appends a few hundred transactions at most: every cycle checks
    // the whole log again, so a long one would cost more than it finds.
    stop_ = false;
    appends_left_ = static_cast<int64_t>(20 + rng_() % 300);
    sagas_left_ = static_cast<int64_t>(rng_() % 10);
    const int threads = 2 + static_cast<int>(rng_() % 3);
    std::vector<std::vector<Txn>> out(static_cast<size_t>(threads));
    std::vector<std::thread> workers;
    running_ = threads;
    for (int k = 0; k < threads; k++)
      workers.emplace_back(
          [&, k, s = rng_()] { Appender(store, k, s, &out[static_cast<size_t>(k)]); });
    std::vector<SagaModel> started;
    std::thread starter;
    if (engine) starter = std::thread([&] { StartSagas(*engine, &started); });

    switch (cut) {
      case Cut::kTimer:
        std::this_thread::sleep_for(std::chrono::microseconds(rng_() % 25000));
        break;
      case Cut::kWalSync:
      case Cut::kAnyOp: {
        // Until the rule pulls the plug, or the appenders have spent their
        // budget (the cut then comes now, at a quiet moment).
        auto deadline = std::chrono::steady_clock::now() + 2s;
        while (!f->WaitForPowerLoss(1ms) && running_.load() > 0) {
          if (std::chrono::steady_clock::now() > deadline) {
            totals_->waits_timed_out++;
            break;
          }
        }
        break;
      }
      default:
        std::this_thread::sleep_for(std::chrono::microseconds(rng_() % 15000));
        break;
    }
    if (cut == Cut::kTimer || cut == Cut::kWalSync || cut == Cut::kAnyOp) f->PowerLoss();
    stop_ = true;
    for (auto& w : workers) w.join();
    if (starter.joinable()) starter.join();
    if (engine) (void)engine->shutdown();
    engine.reset();
    projection.reset();
    if (cut == Cut::kInClose || cut == Cut::kAfterClose) {
      if (cut == Cut::kInClose)
        f->AddRule(FaultRule::On(FsOp::kAny).After(rng_() % 150).With(FaultEffect::kPowerLoss));
      Status cs = store.close();
      if (cut == Cut::kAfterClose && !cs.ok()) Problem("clean close failed: " + cs.ToString());
      // A close that returned OK before the power went off lost nothing.
      clean_.back() = cs.ok() && !f->powered_off();
    }
    f->PowerLoss();
    for (auto& v : out)
      for (Txn& t : v) Add(std::move(t));
    for (SagaModel& s : started) sagas_.push_back(std::move(s));
  }

  void Add(Txn t) {
    by_tag_[t.tag] = txns_.size();
    txns_.push_back(std::move(t));
  }

  // ---- Appenders ----

  void Appender(Store& store, int k, uint64_t seed, std::vector<Txn>* out) {
    std::mt19937_64 rng(seed);
    // Streams only this thread writes, so it knows their versions exactly.
    std::map<std::string, std::optional<uint64_t>> own;
    auto own_name = [&] {
      return "own" + std::to_string(round_) + "x" + std::to_string(k) + "-" +
             std::to_string(rng() % 2);
    };
    auto shared_name = [&] {
      return rng() % 2 ? "acct-" + std::to_string(rng() % 6) : "order-" + std::to_string(rng() % 4);
    };
    struct Done {
      std::atomic<int>* running;
      ~Done() { running->fetch_sub(1); }
    } done{&running_};
    while (!stop_.load(std::memory_order_relaxed) && appends_left_.fetch_sub(1) > 0) {
      Txn t;
      t.tag = next_tag_.fetch_add(1);
      t.round = round_;
      t.ids = rng() % 2 == 0;
      uint64_t kind = rng() % 100;
      std::vector<std::string> streams;
      if (kind < 55) {
        streams.push_back(shared_name());
      } else if (kind < 75) {
        streams.push_back(own_name());
      } else {
        t.multi = true;
        size_t n = 2 + rng() % 2;
        if (rng() % 2) streams.push_back(own_name());
        while (streams.size() < n) {
          std::string s = shared_name();
          if (std::find(streams.begin(), streams.end(), s) == streams.end()) streams.push_back(s);
        }
      }
      for (size_t p = 0; p < streams.size(); p++) {
        StreamAppend part;
        part.stream = streams[p];
        if (auto it = own.find(part.stream); part.stream.rfind("own", 0) == 0) {
          part.expected = it == own.end() || !it->second ? ExpectedVersion::NoStream()
                                                         : ExpectedVersion::Exact(*it->second);
        }
        size_t events = 1 + rng() % 3;
        for (size_t i = 0; i < events; i++) part.events.push_back(MakeEvent(rng, t, p, i));
        t.parts.push_back(std::move(part));
      }
      std::vector<AppendResult> results;
      Status s;
      if (t.multi) {
        auto r = store.append_multi(t.parts);
        s = r.status();
        if (r.ok()) results = std::move(r).value();
      } else {
        auto r = store.append(t.parts[0].stream, t.parts[0].expected, t.parts[0].events);
        s = r.status();
        if (r.ok()) results.push_back(*r);
      }
      if (s.ok()) {
        t.fate = Fate::kAcked;
        t.at = results;
        for (size_t p = 0; p < t.parts.size(); p++)
          if (t.parts[p].stream.rfind("own", 0) == 0)
            own[t.parts[p].stream] = results[p].last_version;
        out->push_back(std::move(t));
        continue;
      }
      if (s.IsWrongExpectedVersion()) {
        bool mine = false;
        for (const auto& p : t.parts) mine |= p.stream.rfind("own", 0) == 0;
        // Only this thread writes its own streams: their expectations hold.
        if (mine)
          Problem("append " + std::to_string(t.tag) +
                  " to an own stream was refused: " + s.ToString());
        t.fate = Fate::kRejected;
        out->push_back(std::move(t));
        continue;
      }
      if (!s.IsIOError())
        Problem("append " + std::to_string(t.tag) + ": unexpected " + s.ToString());
      // Fail-stop: every later append fails the same way.
      t.fate = Fate::kUnknown;
      out->push_back(std::move(t));
      return;
    }
  }

  EventData MakeEvent(std::mt19937_64& rng, const Txn& t, size_t part, size_t i) {
    static const char* const kTypes[] = {"Deposited", "Withdrawn", "Noted"};
    static const char* const kContent[] = {"application/json", "", "application/octet-stream"};
    EventData e;
    if (t.ids) e.id = Uuid::Random();
    e.type = kTypes[rng() % 3];
    e.content_type = kContent[rng() % 3];
    uint64_t r = rng() % 100;
    // Mostly small events; some span pages, a few span the log's 32 KiB blocks.
    size_t len = r < 85 ? rng() % 200 : r < 97 ? 200 + rng() % 3000 : 20000 + rng() % 20000;
    e.data = Token(t.tag, part, i) + "|" + RandomBytes(rng, len);
    if (rng() % 2) e.metadata = RandomBytes(rng, rng() % 64);
    return e;
  }

  // ---- Sagas ----

  void StartSagas(SagaEngine& engine, std::vector<SagaModel>* out) {
    for (uint64_t i = 0; !stop_.load(std::memory_order_relaxed); i++) {
      while (!stop_.load(std::memory_order_relaxed) && engine.stats().active >= 4)
        std::this_thread::sleep_for(100us);
      if (stop_.load(std::memory_order_relaxed)) return;
      if (sagas_left_.fetch_sub(1) <= 0) {
        std::this_thread::sleep_for(200us);
        continue;
      }
      SagaModel m;
      m.id = "g" + std::to_string(seed_ % 100000) + "-" + std::to_string(round_) + "-" +
             std::to_string(i);
      m.input = "input of " + m.id;
      m.round = round_;
      m.order = i;
      auto r = engine.start(kSagaName, m.id, m.input);
      if (r.ok()) {
        if (!*r) Problem("saga " + m.id + " is new, but start() said it existed");
        m.fate = Fate::kAcked;
        out->push_back(std::move(m));
        continue;
      }
      if (!r.status().IsIOError() && !r.status().IsClosed())
        Problem("start of saga " + m.id + ": unexpected " + r.status().ToString());
      m.fate = Fate::kUnknown;
      out->push_back(std::move(m));
      return;
    }
  }

  void ResolveSagaStarts(SagaEngine& engine) {
    for (SagaModel& m : sagas_) {
      if (!m.retry) continue;
      auto r = engine.start(kSagaName, m.id, m.input);
      m.retry = false;
      totals_->saga_starts_retried++;
      if (!r.ok()) {
        if (m.fate == Fate::kAbsent) m.fate = Fate::kUnknown;  // the retry's outcome is unknown
        continue;
      }
      bool existed = m.fate == Fate::kPresent;
      if (*r == existed)
        Problem("retried start of saga " + m.id + " said " + (*r ? "new" : "existing") +
                ", but it " + (existed ? "existed" : "did not exist"));
      if (*r) {
        m.fate = Fate::kAcked;
        m.round = round_;
        m.order = UINT64_MAX;  // not part of this cycle's start order
      }
    }
  }

  // ---- Checking a reopened store against the model ----

  void Check(Store& store) {
    std::vector<RecordedEvent> log;
    {
      auto it = store.read_all(0);
      if (!it.ok()) return Problem("read_all: " + it.status().ToString());
      for (; it->Valid(); it->Next()) log.push_back(it->value().ToRecorded());
      if (!it->status().ok()) return Problem("read_all: " + it->status().ToString());
    }
    const uint64_t end = log.size();
    for (uint64_t i = 0; i < end; i++)
      if (log[i].position != i)
        return Problem("hole: position " + std::to_string(i) + " holds position " +
                       std::to_string(log[i].position));
    auto stats = store.stats();
    if (!stats.ok() || stats->next_position != end)
      Problem("next_position is not the end of the log (" + std::to_string(end) + ")");

    // Versions dense per stream, and the stream's own view agrees.
    std::map<std::string, std::vector<uint64_t>> streams;
    for (const RecordedEvent& e : log) {
      auto& v = streams[e.stream];
      if (e.version != v.size())
        Problem("stream '" + e.stream + "': version " + std::to_string(e.version) +
                " at position " + std::to_string(e.position) + ", expected " +
                std::to_string(v.size()));
      v.push_back(e.position);
    }
    for (const auto& [name, positions] : streams) {
      auto h = store.stream_head(name);
      if (!h.ok() || h->last_version + 1 != positions.size() ||
          h->last_position != positions.back())
        Problem("stream '" + name + "': head disagrees with the log");
      auto it = store.read_stream(name, 0);
      if (!it.ok()) {
        Problem("read_stream '" + name + "': " + it.status().ToString());
        continue;
      }
      size_t i = 0;
      for (; it->Valid(); it->Next(), i++)
        if (i >= positions.size() || it->value().position != positions[i]) break;
      if (!it->status().ok() || i != positions.size() || it->Valid())
        Problem("read_stream '" + name + "' disagrees with the log");
    }

    // Every event is someone's, once.
    std::unordered_map<std::string, std::vector<uint64_t>> where;
    for (const RecordedEvent& e : log) {
      std::string tok(TokenOf(e.data));
      if (tok.empty()) {
        Problem("event at " + std::to_string(e.position) + " has no token");
        continue;
      }
      auto& w = where[tok];
      w.push_back(e.position);
      if (w.size() == 2)
        Problem("event " + tok + " appears twice (positions " + std::to_string(w[0]) + ", " +
                std::to_string(w[1]) + ")");
      if (tok[0] == 'T') {
        uint64_t tag = std::strtoull(tok.c_str() + 1, nullptr, 10);
        if (!by_tag_.count(tag)) Problem("event " + tok + " was never appended");
      }
    }

    for (Txn& t : txns_) CheckTxn(t, log, where, end);
    CheckSagas(store, where);
    CheckProjection(store, log);

    auto v = inspect::Verify(store);
    if (!v.ok()) {
      Problem("inspect::Verify: " + v.status().ToString());
    } else if (!v->ok()) {
      for (const auto& p : v->problems)
        Problem("inspect::Verify: " + p.column_family + " " + p.key + ": " + p.message);
    }
  }

  // The projection's state is the fold of the log before its checkpoint:
  // no event folded twice or skipped, whatever the cut interrupted.
  void CheckProjection(Store& store, const std::vector<RecordedEvent>& log) {
    auto info = store.projection_info("fold");
    if (info.status().IsNotFound()) return;
    if (!info.ok()) return Problem("projection_info: " + info.status().ToString());
    if (info->position > log.size())
      return Problem("projection checkpoint " + std::to_string(info->position) + " is beyond the log");
    std::map<std::string, uint64_t> want;
    for (uint64_t i = 0; i < info->position; i++) want["count/" + log[i].type]++;
    if (info->position > 0) want["total"] = info->position;
    auto state = store.projection_scan("fold", "", {}, 1u << 20);
    if (!state.ok()) return Problem("projection_scan: " + state.status().ToString());
    std::map<std::string, uint64_t> got;
    for (const auto& e : *state) got[e.key] = std::strtoull(e.value.c_str(), nullptr, 10);
    if (got != want)
      return Problem("projection state differs from the fold of the log before position " +
                     std::to_string(info->position));
    totals_->projections_checked++;
    totals_->projection_events += info->position;
  }

  void CheckTxn(Txn& t, const std::vector<RecordedEvent>& log,
                const std::unordered_map<std::string, std::vector<uint64_t>>& where, uint64_t end) {
    const std::string name =
        "transaction " + std::to_string(t.tag) + " (cycle " + std::to_string(t.round) + ")";
    size_t total = 0, present = 0;
    std::vector<AppendResult> actual(t.parts.size());
    bool intact = true;
    uint64_t expect_pos = UINT64_MAX;
    for (size_t p = 0; p < t.parts.size(); p++) {
      const StreamAppend& part = t.parts[p];
      for (size_t i = 0; i < part.events.size(); i++) {
        total++;
        auto it = where.find(Token(t.tag, p, i));
        if (it == where.end()) continue;
        present++;
        const RecordedEvent& got = log[it->second[0]];
        const EventData& want = part.events[i];
        if (got.stream != part.stream || got.type != want.type || got.data != want.data ||
            got.metadata != want.metadata || got.content_type != want.content_type ||
            (want.id.is_nil() ? got.id.is_nil() : got.id != want.id)) {
          Problem(name + ": event " + Token(t.tag, p, i) + " at " + std::to_string(got.position) +
                  " differs from what was appended");
          intact = false;
        }
        // One commit: the transaction's events are consecutive, in order.
        if (expect_pos != UINT64_MAX && got.position != expect_pos) intact = false;
        expect_pos = got.position + 1;
        AppendResult& a = actual[p];
        if (i == 0) {
          a.first_position = got.position;
          a.first_version = got.version;
        } else if (got.version != a.last_version + 1) {
          intact = false;
        }
        a.last_position = got.position;
        a.last_version = got.version;
      }
    }
    const bool all = present == total, none = present == 0;
    if (!all && !none)
      return Problem(name + ": only " + std::to_string(present) + " of " + std::to_string(total) +
                     " events are there");
    if (all && !intact) return Problem(name + ": its events are not one contiguous commit");
    if (all) {
      for (size_t p = 0; p < t.parts.size(); p++) {
        const ExpectedVersion& ev = t.parts[p].expected;
        if ((ev.kind() == ExpectedVersion::Kind::kNoStream && actual[p].first_version != 0) ||
            (ev.kind() == ExpectedVersion::Kind::kExact &&
             actual[p].first_version != ev.version() + 1))
          Problem(name + ": landed at " + Place(actual[p]) + " against its expected version");
      }
    }
    auto same = [&] {
      for (size_t p = 0; p < t.parts.size(); p++)
        if (!SamePlace(actual[p], t.at[p])) return false;
      return true;
    };
    const bool must_survive = sync_ || clean_[static_cast<size_t>(t.round)];
    switch (t.fate) {
      case Fate::kAcked:
        if (all) {
          if (!same())
            return Problem(name + ": acknowledged at " + Place(t.at[0]) + " but found at " +
                           Place(actual[0]));
          t.fate = Fate::kPresent;
          totals_->txns_checked++;
          totals_->events_checked += total;
        } else if (!must_survive && t.at[0].first_position >= end) {
          t.fate = Fate::kLost;
          totals_->lost_unsynced++;
        } else {
          Problem(name + ": acknowledged at " + Place(t.at[0]) + " and lost" +
                  (must_survive
                       ? ""
                       : " below the end of the log (" + std::to_string(end) + "): a hole"));
        }
        return;
      case Fate::kPresent:
        if (!all || !same())
          Problem(name + ": seen after an earlier reopen, now " + (all ? "moved" : "gone"));
        return;
      case Fate::kUnknown:
        t.fate = all ? Fate::kPresent : Fate::kAbsent;
        if (all) t.at = actual;
        (all ? totals_->unknown_present : totals_->unknown_absent)++;
        t.retry = t.ids;
        return;
      case Fate::kRejected:
      case Fate::kAbsent:
      case Fate::kLost:
        if (!none) Problem(name + ": known not to be stored, but it is");
        return;
    }
  }

  void CheckSagas(Store& store,
                  const std::unordered_map<std::string, std::vector<uint64_t>>& where) {
    std::map<std::string, inspect::SagaInfo> recs;
    Status s = inspect::ListSagas(store, "", [&](const inspect::SagaInfo& i) {
      recs[i.id] = i;
      return true;
    });
    if (!s.ok()) return Problem("ListSagas: " + s.ToString());
    std::map<std::string, SagaModel*> known;
    for (SagaModel& m : sagas_) known[m.id] = &m;
    for (const auto& [tok, positions] : where) {
      if (tok[0] != 'S') continue;
      std::string id = tok.substr(1, tok.rfind(':') - 1);
      if (!known.count(id)) Problem("step event " + tok + " of a saga never started");
      if (!recs.count(id)) Problem("step event " + tok + " without its saga's record");
    }
    for (const auto& [id, r] : recs) {
      auto k = known.find(id);
      if (k == known.end()) {
        Problem("saga " + id + " was never started");
        continue;
      }
      if (r.definition != kSagaName || r.input != k->second->input)
        Problem("saga " + id + ": definition or input differs");
      // One commit per step: its completion record and its event together.
      const size_t done = r.outputs.size();
      for (int j = 0; j < kSagaSteps; j++) {
        bool has = where.count(SagaToken(id, j)) > 0;
        if (has != (static_cast<size_t>(j) < done))
          Problem("saga " + id + " records " + std::to_string(done) +
                  " completed step(s), but step " + std::to_string(j) + "'s event is " +
                  (has ? "there" : "missing"));
      }
      if ((r.state == "completed") != (done == kSagaSteps))
        Problem("saga " + id + " is " + r.state + " with " + std::to_string(done) +
                " step(s) done");
      totals_->sagas_checked++;
    }
    // Unsynced: what survives of one cycle's starts is a prefix of their order.
    std::map<int, uint64_t> first_lost;
    for (SagaModel& m : sagas_) {
      bool exists = recs.count(m.id) > 0;
      const bool must_survive = sync_ || clean_[static_cast<size_t>(m.round)];
      switch (m.fate) {
        case Fate::kAcked:
          if (exists) {
            m.fate = Fate::kPresent;
          } else if (!must_survive) {
            m.fate = Fate::kLost;
            if (m.order != UINT64_MAX && !first_lost.count(m.round)) first_lost[m.round] = m.order;
          } else {
            Problem("acknowledged saga " + m.id + " is lost");
          }
          break;
        case Fate::kPresent:
          if (!exists) Problem("saga " + m.id + " was there after an earlier reopen, now gone");
          break;
        case Fate::kUnknown:
          m.fate = exists ? Fate::kPresent : Fate::kAbsent;
          m.retry = true;
          break;
        default:
          if (exists) Problem("saga " + m.id + " is known not to be stored, but it is");
          break;
      }
    }
    for (const SagaModel& m : sagas_) {
      auto fl = first_lost.find(m.round);
      if (fl != first_lost.end() && m.order != UINT64_MAX && m.order > fl->second &&
          m.fate == Fate::kPresent)
        Problem("saga " + m.id + " survived although an earlier start of its cycle was lost");
    }
  }

  // Retries every failed append that had ids: it must replay if it landed
  // and write anew (or meet a moved expectation) if it did not.
  void Resolve(Store& store) {
    for (Txn& t : txns_) {
      if (!t.retry) continue;
      t.retry = false;
      const bool landed = t.fate == Fate::kPresent;
      std::vector<AppendResult> results;
      Status s;
      if (t.multi) {
        auto r = store.append_multi(t.parts);
        s = r.status();
        if (r.ok()) results = std::move(r).value();
      } else {
        auto r = store.append(t.parts[0].stream, t.parts[0].expected, t.parts[0].events);
        s = r.status();
        if (r.ok()) results.push_back(*r);
      }
      const std::string name = "retry of transaction " + std::to_string(t.tag);
      if (!s.ok()) {
        if (s.IsWrongExpectedVersion() && !landed) continue;  // stays absent
        if (s.IsIOError() && !landed) {
          t.fate = Fate::kUnknown;  // the power is off (a cut open): settle it next cycle
          continue;
        }
        if (!s.IsIOError()) Problem(name + ": " + s.ToString());
        continue;
      }
      for (size_t p = 0; p < t.parts.size(); p++) {
        if (results[p].idempotent_replay != landed)
          Problem(name + (landed ? " wrote it again" : " claimed a replay of what never landed"));
        if (landed && !SamePlace(results[p], t.at[p]))
          Problem(name + " replayed at " + Place(results[p]) + ", not at " + Place(t.at[p]));
      }
      if (landed) {
        totals_->retries_replayed++;
      } else {
        totals_->retries_written++;
        t.fate = Fate::kAcked;
        t.at = results;
        t.round = round_;
      }
    }
  }

  // After the last cycle: every saga runs to its end, each step's event
  // exactly once, and the store verifies.
  void Final() {
    Stopwatch sw(&totals_->final_s);
    clean_.push_back(false);
    auto f = std::make_shared<FaultFs>();
    auto opened = Open(f);
    if (!opened.ok()) return Problem("final open: " + opened.status().ToString());
    Store store = std::move(opened).value();
    Check(store);
    if (!problems_.empty()) return;
    Resolve(store);
    {
      std::vector<SagaDefinition> defs{Definition()};
      auto e = SagaEngine::open(store, defs);
      if (!e.ok()) return Problem("final saga engine: " + e.status().ToString());
      ResolveSagaStarts(**e);
      Status w = (*e)->wait_idle(120s);
      if (!w.ok()) return Problem("sagas did not settle: " + w.ToString());
      (void)(*e)->shutdown();
    }
    std::set<std::string> steps;
    {
      auto it = store.read_category("saga", 0);
      if (!it.ok()) return Problem("read_category: " + it.status().ToString());
      for (; it->Valid(); it->Next())
        if (!steps.insert(std::string(TokenOf(it->value().data))).second)
          Problem("step event " + std::string(TokenOf(it->value().data)) + " twice");
    }
    size_t completed = 0;
    Status s = inspect::ListSagas(store, "", [&](const inspect::SagaInfo& i) {
      if (i.state != "completed") Problem("saga " + i.id + " ended " + i.state);
      for (int j = 0; j < kSagaSteps; j++)
        if (!steps.count(SagaToken(i.id, j)))
          Problem("saga " + i.id + " lacks step " + std::to_string(j));
      completed++;
      return true;
    });
    if (!s.ok()) Problem("ListSagas: " + s.ToString());
    if (steps.size() != completed * kSagaSteps) Problem("step events of sagas that do not exist");
    auto v = inspect::Verify(store);
    if (!v.ok() || !v->ok()) Problem("final inspect::Verify found problems");
    Status cs = store.close();
    if (!cs.ok()) Problem("final close: " + cs.ToString());
  }

  const uint64_t seed_;
  const std::string dir_, path_;
  Totals* totals_;
  std::mt19937_64 rng_;
  bool sync_ = true, torn_ = false;
  int cycles_ = 1;
  Options options_;
  int round_ = 0;
  uint32_t projection_version_ = 1;

  std::vector<Txn> txns_;
  std::unordered_map<uint64_t, size_t> by_tag_;
  std::vector<SagaModel> sagas_;
  std::vector<bool> clean_;  // per cycle: it ended with a clean close
  std::atomic<uint64_t> next_tag_{1};
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> appends_left_{0}, sagas_left_{0};
  std::atomic<int> running_{0};  // appenders still appending
  std::mutex problems_mu_;
  std::vector<std::string> problems_;
};

}  // namespace

TEST_SUITE("power_loss") {
  TEST_CASE("acknowledged appends, transactions and sagas survive power losses at random moments") {
    const uint64_t want_cycles = EnvNumber("EVSTORE_POWER_LOSS_CYCLES", kDefaultCycles);
    const uint64_t replay = EnvNumber("EVSTORE_POWER_LOSS_SEED", 0);
    uint64_t master = EnvNumber("EVSTORE_POWER_LOSS_MASTER", 0);
    if (master == 0) master = std::random_device{}() | (uint64_t{std::random_device{}()} << 32);
    evtest::ScratchDir dir;
    // Most runs start from a copy of one empty store: creating one costs more
    // than a cycle (a few runs create theirs, under the power cuts too).
    const std::string tmpl = dir.sub("template");
    {
      auto s = Store::open(tmpl);
      REQUIRE_MESSAGE(s.ok(), s.status().ToString());
      REQUIRE(s->close().ok());
    }
    Totals tot;
    std::mt19937_64 seeds(master);
    auto t0 = std::chrono::steady_clock::now();
    std::string failed;
    for (uint64_t n = 0; tot.cycles < want_cycles || (replay != 0 && n == 0); n++) {
      uint64_t seed = replay != 0 ? replay : seeds();
      Run run(seed, dir.sub("run" + std::to_string(n)), tmpl, &tot);
      std::vector<std::string> problems = run.Go();
      std::filesystem::remove_all(dir.sub("run" + std::to_string(n)));
      if (!problems.empty()) {
        std::ostringstream os;
        os << "run with seed " << seed << " (" << run.Describe() << ") failed; replay with "
           << "EVSTORE_POWER_LOSS_SEED=" << seed << "\n";
        for (const auto& p : problems) os << "  " << p << "\n";
        failed = os.str();
        break;
      }
      if (replay != 0) break;
    }
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::ostringstream cuts;
    for (size_t c = 0; c < static_cast<size_t>(Cut::kCount); c++)
      cuts << (c ? ", " : "") << CutName(static_cast<Cut>(c)) << " " << tot.cuts[c];
    std::ostringstream sum;
    sum << "master seed " << master << ": " << tot.cycles << " cycles in " << tot.runs << " runs ("
        << tot.unsynced_runs << " sync=false, " << tot.torn_runs << " torn, " << tot.created_runs
        << " creating their store) in " << secs << " s (" << tot.cycles / std::max(secs, 1e-9)
        << " cycles/s); cuts: " << cuts.str() << "; opens cut " << tot.opens_cut << "\n";
    sum << tot.txns_checked << " acknowledged transactions (" << tot.events_checked
        << " events) found intact; " << tot.lost_unsynced
        << " sync=false transactions lost as a clean suffix; failed appends: "
        << tot.unknown_present << " landed, " << tot.unknown_absent
        << " did not; retries: " << tot.retries_replayed << " replayed, " << tot.retries_written
        << " written; " << tot.sagas_checked << " saga records checked, " << tot.saga_starts_retried
        << " saga starts retried; " << tot.projections_checked << " projection states equal to their fold ("
        << tot.projection_events << " events), " << tot.projection_rebuilds << " online rebuilds begun\n";
    sum << "dropped " << tot.bytes_dropped << " unsynced bytes (" << tot.torn_bytes_kept
        << " torn bytes kept), removed " << tot.entries_removed << " entries, reverted "
        << tot.renames_reverted << " renames, kept " << tot.torn_entries_kept
        << " unsynced directory changes (torn); " << tot.waits_timed_out
        << " cuts pulled by hand\n";
    sum << "time: open " << tot.open_s << " s, check " << tot.check_s << " s, workload "
        << tot.work_s << " s, drop " << tot.drop_s << " s, final " << tot.final_s << " s";
    MESSAGE(sum.str());
    REQUIRE_MESSAGE(failed.empty(), failed);
    if (replay == 0 && want_cycles >= 100) {
      // The run did exercise what it claims to.
      CHECK(tot.txns_checked > 0);
      CHECK(tot.unknown_present + tot.unknown_absent > 0);
      CHECK(tot.retries_replayed + tot.retries_written > 0);
      CHECK(tot.sagas_checked > 0);
      CHECK(tot.projections_checked > 0);
      CHECK(tot.bytes_dropped > 0);
    }
  }
}
