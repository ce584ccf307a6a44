// Fuzz target: the store operation sequence of fuzz_store_ops, run through
// the C API (include/evstore/evstore.h) and compared against the same model
// (store_model.hpp, which also explains how inputs share a store). Also
// checks the C conventions on the way: a status is EVS_OK exactly when
// *errmsg is NULL, and an iterator reports its end without error.
//
// The C API takes a path, not a file system, so the stores live on tmpfs:
// $EVSTORE_FUZZ_DIR, else /dev/shm, else the temporary directory (a crash
// leaves its evstore-fuzz-capi-* directory there). After each input, a read
// of its whole log must match the model. inspect::Verify checks the store
// behind the handle (capi::StoreOf) before each close + reopen and at the
// end of an input that reopened; at the end of each epoch the closed store
// is opened read-only through the C++ API and verified.
#include <cstdlib>
#include <filesystem>

#include "capi/capi_internal.hpp"
#include "evstore/evstore.h"
#include "store_model.hpp"

namespace {

namespace fs = std::filesystem;

// The only calls of evs_options_set_*, so that a change of their signature
// is a change here alone.
evs_options_t* MakeOptions() {
  evs_options_t* o = evs_options_create();
  FUZZ_CHECK(o != nullptr);
  FUZZ_CHECK(evs_options_set_sync(o, 0, nullptr) == EVS_OK);
  FUZZ_CHECK(evs_options_set_block_cache_bytes(o, 1u << 20, nullptr) == EVS_OK);
  FUZZ_CHECK(evs_options_set_max_event_bytes(o, 1024, nullptr) == EVS_OK);
  FUZZ_CHECK(evs_options_set_max_events_per_append(o, 8, nullptr) == EVS_OK);
  return o;
}

// Checks the errmsg convention and frees the message. Takes the message's
// address: it is read only after the call that fills it has run.
int Checked(int rc, char** errp) {
  char* err = *errp;
  *errp = nullptr;
  if ((rc == EVS_OK) != (err == nullptr))
    std::fprintf(stderr, "status %d (%s) with message %s\n", rc, evs_errstr(rc),
                 err ? err : "(none)");
  FUZZ_CHECK((rc == EVS_OK) == (err == nullptr));
  evs_free(err);
  return rc;
}

// The whole-store check at an epoch's end, on the closed store (each
// event was read back at the end of its input already: no dump).
void VerifyReadOnly(const std::string& path, const Totals& t) {
  Options o;
  o.read_only = true;
  o.create_if_missing = false;
  o.block_cache_bytes = 1u << 20;
  auto r = Store::open(path, o);
  FUZZ_CHECK(r.ok());
  CheckWhole(*r, t, /*dump=*/false);
  FUZZ_CHECK(r->close().ok());
}

// A directory on tmpfs for the stores.
std::string MakeRoot() {
  std::string base;
  if (const char* d = std::getenv("EVSTORE_FUZZ_DIR")) {
    base = d;
  } else {
    std::error_code ec;
    base = fs::is_directory("/dev/shm", ec) && access("/dev/shm", W_OK) == 0
               ? "/dev/shm"
               : fs::temp_directory_path().string();
  }
  std::string tmpl = base + "/evstore-fuzz-capi-XXXXXX";
  FUZZ_CHECK(mkdtemp(tmpl.data()) != nullptr);
  return tmpl;
}

// The store the inputs run on: a copy of an empty store per epoch.
class Harness {
 public:
  static Harness& Get() {
    static Harness* h = [] {
      auto* made = new Harness();
      std::atexit([] {
        Harness& h = Get();
        h.Finish();
        std::error_code ec;
        fs::remove_all(h.root_, ec);
        h.epoch_.PrintRun("fuzz_capi_ops");
      });
      return made;
    }();
    return *h;
  }

  evs_store_t* store() { return store_; }
  Epoch& epoch() { return epoch_; }

  // Ends the epoch (close, read-only whole-store check) and opens a copy
  // of the empty store: no store creation, which costs several opens.
  void Fresh() {
    Finish();
    epoch_.Clear();
    std::error_code ec;
    fs::remove_all(db_, ec);
    FUZZ_CHECK(!ec);
    fs::copy(empty_, db_, fs::copy_options::recursive, ec);
    FUZZ_CHECK(!ec);
    Open(db_);
  }

  // Close and reopen, checking the whole store before the close.
  void Reopen(const Totals& t) {
    epoch_.Reopened();
    CheckWhole(capi::StoreOf(store_), t);
    Close();
    Open(db_);
  }

 private:
  Harness() : root_(MakeRoot()), empty_(root_ + "/empty"), db_(root_ + "/db"), opts_(MakeOptions()) {
    Open(empty_);  // made once through the store's own creation path
    Close();
    Fresh();
  }

  void Open(const std::string& path) {
    char* err = nullptr;
    FUZZ_CHECK(Checked(evs_store_open(path.c_str(), opts_, &store_, &err), &err) == EVS_OK);
    FUZZ_CHECK(store_ != nullptr);
  }

  void Close() {
    char* err = nullptr;
    FUZZ_CHECK(Checked(evs_store_close(store_, &err), &err) == EVS_OK);
    evs_store_destroy(store_);
    store_ = nullptr;
  }

  void Finish() {
    if (store_ == nullptr) return;
    Close();
    VerifyReadOnly(db_, epoch_.totals());
  }

  const std::string root_, empty_, db_;
  evs_options_t* const opts_;
  evs_store_t* store_ = nullptr;
  Epoch epoch_;
};

int64_t ToC(ExpectedVersion e) {
  switch (e.kind()) {
    case ExpectedVersion::Kind::kAny: return EVS_EXPECT_ANY;
    case ExpectedVersion::Kind::kNoStream: return EVS_EXPECT_NO_STREAM;
    case ExpectedVersion::Kind::kStreamExists: return EVS_EXPECT_STREAM_EXISTS;
    case ExpectedVersion::Kind::kExact: break;
  }
  return static_cast<int64_t>(e.version());
}

std::vector<evs_event_t> ToC(const std::vector<EventData>& events) {
  std::vector<evs_event_t> out(events.size());
  for (size_t i = 0; i < events.size(); i++) {
    const EventData& e = events[i];
    evs_event_t& c = out[i];
    std::memcpy(c.id, e.id.bytes, 16);
    c.type = e.type.data();
    c.type_len = e.type.size();
    c.content_type = e.content_type.data();
    c.content_type_len = e.content_type.size();
    c.data = e.data.data();
    c.data_len = e.data.size();
    c.metadata = e.metadata.data();
    c.metadata_len = e.metadata.size();
  }
  return out;
}

int ToC(Direction d) { return d == Direction::kBackward ? EVS_BACKWARD : EVS_FORWARD; }

AppendResult FromC(const evs_append_result_t& r) {
  AppendResult a;
  a.first_version = r.first_version;
  a.last_version = r.last_version;
  a.first_position = r.first_position;
  a.last_position = r.last_position;
  a.idempotent_replay = r.idempotent_replay != 0;
  return a;
}

// Reads an iterator to its end (or until it spills into earlier inputs),
// checking it against `p`, and destroys it.
void Drain(evs_iter_t* it, const Model& m, const ReadPlan& p) {
  ReadCheck check(m, p);
  bool stopped = false;
  for (; evs_iter_valid(it) && !stopped; evs_iter_next(it)) {
    EventView v;
    std::memcpy(v.id.bytes, evs_iter_id(it), 16);
    size_t len = 0;
    const char* c = evs_iter_stream(it, &len);
    v.stream = std::string_view(c, len);
    c = evs_iter_type(it, &len);
    v.type = std::string_view(c, len);
    c = evs_iter_content_type(it, &len);
    v.content_type = std::string_view(c, len);
    c = static_cast<const char*>(evs_iter_data(it, &len));
    v.data = std::string_view(c, len);
    c = static_cast<const char*>(evs_iter_metadata(it, &len));
    v.metadata = std::string_view(c, len);
    v.version = evs_iter_version(it);
    v.position = evs_iter_position(it);
    stopped = !check.Next(v);
  }
  if (!stopped) {
    char* err = nullptr;
    FUZZ_CHECK(Checked(evs_iter_status(it, &err), &err) == EVS_OK);
  }
  check.End();
  evs_iter_destroy(it);
}

// Runs a planned read through evs_read_*.
void Read(evs_store_t* s, const Model& m, const ReadPlan& p) {
  evs_iter_t* it = nullptr;
  char* err = nullptr;
  int dir = ToC(p.dir);
  int rc = EVS_OK;
  switch (p.kind) {
    case ReadPlan::kStream:
      rc = evs_read_stream(s, p.name.data(), p.name.size(), p.from, dir, p.limit, &it, &err);
      break;
    case ReadPlan::kAll: rc = evs_read_all(s, p.from, dir, p.limit, &it, &err); break;
    case ReadPlan::kCategory:
      rc = evs_read_category(s, p.name.data(), p.name.size(), p.from, dir, p.limit, &it, &err);
      break;
    case ReadPlan::kType:
      rc = evs_read_type(s, p.name.data(), p.name.size(), p.from, dir, p.limit, &it, &err);
      break;
  }
  rc = Checked(rc, &err);
  if (!p.exists) {
    FUZZ_CHECK(rc == EVS_NOT_FOUND && it == nullptr);
    return;
  }
  FUZZ_CHECK(rc == EVS_OK && it != nullptr);
  Drain(it, m, p);
}

void Append(evs_store_t* s, Model& m, const Op& op) {
  std::string stream = m.Stream(op.stream[0]);
  ExpectedVersion exp = MakeExpected(op.expect[0], m, stream);
  std::vector<EventData> events = MakeEvents(op.events[0], m);
  AppendResult replay;
  Outcome want = Predict(m, stream, exp, events, &replay);
  std::vector<evs_event_t> ce = ToC(events);
  evs_append_result_t res{};
  char* err = nullptr;
  int rc = Checked(
      evs_append(s, stream.data(), stream.size(), ToC(exp), ce.data(), ce.size(), &res, &err), &err);
  switch (want) {
    case Outcome::kInvalid: FUZZ_CHECK(rc == EVS_INVALID_ARGUMENT); break;
    case Outcome::kDuplicate: FUZZ_CHECK(rc == EVS_DUPLICATE_EVENT); break;
    case Outcome::kWrongVersion:
      FUZZ_CHECK(rc == EVS_WRONG_EXPECTED_VERSION);
      FUZZ_CHECK(res.actual_version == ActualVersion(m, stream));
      break;
    case Outcome::kReplay:
      FUZZ_CHECK(rc == EVS_OK);
      FUZZ_CHECK(FromC(res) == replay);
      FUZZ_CHECK(res.actual_version == EVS_NO_STREAM);
      break;
    case Outcome::kAppend:
      FUZZ_CHECK(rc == EVS_OK);
      FUZZ_CHECK(FromC(res) == Apply(m, stream, events));
      break;
  }
}

// A transaction over two distinct streams.
void Transaction(evs_store_t* s, Model& m, const Op& op) {
  std::string names[2];
  ExpectedVersion exps[2] = {ExpectedVersion::Any(), ExpectedVersion::Any()};
  std::vector<EventData> events[2];
  evs_tx_t* tx = evs_tx_create();
  FUZZ_CHECK(tx != nullptr);
  for (int p = 0; p < 2; p++) {
    names[p] = m.Stream(op.stream[p]);
    exps[p] = MakeExpected(op.expect[p], m, names[p]);
    events[p] = MakeEvents(op.events[p], m);
    std::vector<evs_event_t> ce = ToC(events[p]);
    char* err = nullptr;
    FUZZ_CHECK(Checked(evs_tx_add(tx, names[p].data(), names[p].size(), ToC(exps[p]), ce.data(),
                                  ce.size(), &err),
                       &err) == EVS_OK);
  }
  FUZZ_CHECK(evs_tx_size(tx) == 2);
  AppendResult r0, r1;
  Outcome o0 = Predict(m, names[0], exps[0], events[0], &r0);
  Outcome o1 = Predict(m, names[1], exps[1], events[1], &r1);
  evs_append_result_t res[2]{};
  char* err = nullptr;
  size_t conflict = 0;
  int rc = Checked(evs_tx_commit(s, tx, res, 2, &conflict, &err), &err);
  evs_tx_destroy(tx);
  if (SharedId(events[0], events[1])) {
    FUZZ_CHECK(rc == EVS_INVALID_ARGUMENT);
  } else if (o0 == Outcome::kAppend && o1 == Outcome::kAppend) {
    FUZZ_CHECK(rc == EVS_OK);
    FUZZ_CHECK(FromC(res[0]) == Apply(m, names[0], events[0]));
    FUZZ_CHECK(FromC(res[1]) == Apply(m, names[1], events[1]));
  } else if (o0 == Outcome::kReplay && o1 == Outcome::kReplay) {
    FUZZ_CHECK(rc == EVS_OK);
    FUZZ_CHECK(FromC(res[0]) == r0 && FromC(res[1]) == r1);
  } else {
    FUZZ_CHECK(rc != EVS_OK);  // all or nothing
    FUZZ_CHECK(rc != EVS_IO_ERROR && rc != EVS_CORRUPTION);
  }
  if (rc == EVS_WRONG_EXPECTED_VERSION) {
    // The first stale part, with its stream's actual version.
    FUZZ_CHECK(conflict < 2);
    if (conflict >= 2) return;
    FUZZ_CHECK((conflict == 0 ? o0 : o1) == Outcome::kWrongVersion);
    FUZZ_CHECK(conflict == 0 || o0 != Outcome::kWrongVersion);
    auto it = m.streams.find(names[conflict]);
    int64_t actual = it == m.streams.end() ? EVS_NO_STREAM
                                           : static_cast<int64_t>(it->second.size() - 1);
    FUZZ_CHECK(res[conflict].actual_version == actual);
    FUZZ_CHECK(res[1 - conflict].actual_version == EVS_NO_STREAM);
  } else {
    FUZZ_CHECK(conflict == EVS_NO_PART);
  }
}

void CheckHead(evs_store_t* s, const Model& m, uint8_t which) {
  std::string stream = m.Stream(which);
  uint64_t v = 0, p = 0;
  char* err = nullptr;
  int rc = Checked(evs_stream_head(s, stream.data(), stream.size(), &v, &p, &err), &err);
  auto it = m.streams.find(stream);
  if (it == m.streams.end()) {
    FUZZ_CHECK(rc == EVS_NOT_FOUND);
  } else {
    FUZZ_CHECK(rc == EVS_OK && v == it->second.size() - 1 && p == it->second.back());
  }
}

uint64_t NextPosition(evs_store_t* s) {
  evs_store_stats_t st{};
  char* err = nullptr;
  FUZZ_CHECK(Checked(evs_store_stats(s, &st, &err), &err) == EVS_OK);
  return st.next_position;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  DefaultFlags(argc, argv);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Harness& h = Harness::Get();
  std::vector<Op> ops = ParseOps(data, size);
  // An input that reopens runs on a fresh store (store_model.hpp).
  bool reopens = Reopens(ops);
  if (h.epoch().inputs() > 0 && (reopens || h.epoch().full())) h.Fresh();
  Model m(h.epoch().totals().events, h.epoch().inputs());
  h.epoch().Begin(data, size);
  FUZZ_CHECK(NextPosition(h.store()) == m.base);
  for (const Op& op : ops) {
    evs_store_t* s = h.store();
    switch (op.kind) {
      case Op::kAppend: Append(s, m, op); break;
      case Op::kMulti: Transaction(s, m, op); break;
      case Op::kReadStream:
      case Op::kReadAll:
      case Op::kReadIndex: Read(s, m, PlanRead(op, m)); break;
      case Op::kReadEvent: {
        uint64_t p = m.base + op.mode % 32;
        evs_iter_t* it = nullptr;
        char* err = nullptr;
        int rc = evs_read_event(s, p, &it, &err);
        if (p >= m.end()) {
          FUZZ_CHECK(Checked(rc, &err) == EVS_NOT_FOUND && it == nullptr);
        } else {
          FUZZ_CHECK(Checked(rc, &err) == EVS_OK && it != nullptr);
          ReadPlan one;  // an iterator over the one event
          one.want = {p};
          Drain(it, m, one);
        }
        break;
      }
      case Op::kHead:
        CheckHead(s, m, op.stream[0]);
        FUZZ_CHECK(NextPosition(s) == m.end());
        break;
      case Op::kCheck:
        Read(s, m, WholeRead(m));
        for (uint8_t i = 0; i < 4; i++) CheckHead(s, m, i);
        break;
      // Not in the C API (evstore.h) yet: fuzz_store_ops covers them.
      case Op::kSubscribe:
      case Op::kPull:
      case Op::kCheckpoint: break;
      case Op::kReopen: {
        Totals t = h.epoch().totals();
        t.Add(m);
        h.Reopen(t);
        break;
      }
    }
  }
  // What the input leaves behind: its whole log reads back as the model
  // has it, and the next position follows it.
  Read(h.store(), m, WholeRead(m));
  FUZZ_CHECK(NextPosition(h.store()) == m.end());
  if (reopens) {
    Totals t = h.epoch().totals();
    t.Add(m);
    CheckWhole(capi::StoreOf(h.store()), t);
  }
  h.epoch().End(m);
  return 0;
}
