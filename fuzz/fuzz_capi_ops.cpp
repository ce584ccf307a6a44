// Fuzz target: the store operation sequence of fuzz_store_ops, run through
// the C API (include/evstore/evstore.h) and compared against the same model
// (store_model.hpp, which also explains how inputs share a store). Also
// checks the C conventions on the way: a status is EVS_OK exactly when
// *errmsg is NULL, out-handles are NULL on failure, and an iterator reports
// its end without error. Subscriptions, checkpoints, projections (with a C
// handler) and snapshots go through their evs_* functions too.
//
// The C API takes a path, not a file system, so the stores live on tmpfs:
// $EVSTORE_FUZZ_DIR, else /dev/shm, else the temporary directory (a crash
// leaves its evstore-fuzz-capi-* directory there). After each input, a read
// of its whole log must match the model. inspect::Verify checks the store
// behind the handle (capi::StoreOf) before each close + reopen and at the
// end of an input that reopened, and at the end of each epoch (Harness::
// Finish: in one epoch in four, the closed store opened read-only through
// the C++ API).
#include <cstdlib>
#include <filesystem>

#include "capi/capi_internal.hpp"
#include "evstore/evstore.h"
#include "projection_model.hpp"
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

  // The whole-store check of the epoch: one epoch in four on the closed
  // store opened read-only (the read-only open is a store open more, 30-60
  // ms under ASan), the others through the handle before the close.
  void Finish() {
    if (store_ == nullptr) return;
    if (finished_++ % 4 == 0) {
      Close();
      VerifyReadOnly(db_, epoch_.totals());
    } else {
      CheckWhole(capi::StoreOf(store_), epoch_.totals(), /*dump=*/false);
      Close();
    }
  }

  const std::string root_, empty_, db_;
  evs_options_t* const opts_;
  evs_store_t* store_ = nullptr;
  uint64_t finished_ = 0;  // epochs ended
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

// ---- subscriptions and checkpoints ----

// Sets filter `f` on C options `c` through the four filter setters of
// their kind (subscriptions' and projections' have the same shape).
template <typename C, typename All, typename Named, typename Types>
int SetFilterC(C* c, const SubscriptionFilter& f, All all, Named stream, Named category, Types types,
               char** err) {
  switch (f.kind) {
    case SubscriptionFilter::Kind::kAll: return all(c, err);
    case SubscriptionFilter::Kind::kStream: return stream(c, f.name.data(), f.name.size(), err);
    case SubscriptionFilter::Kind::kCategory: return category(c, f.name.data(), f.name.size(), err);
    case SubscriptionFilter::Kind::kTypes: {
      std::vector<const char*> names;
      std::vector<size_t> lens;
      for (const std::string& t : f.types) {
        names.push_back(t.data());
        lens.push_back(t.size());
      }
      return types(c, names.data(), lens.data(), names.size(), err);
    }
  }
  return EVS_OK;
}

// The C options of `o`.
evs_subscribe_options_t* ToC(const SubscribeOptions& o) {
  evs_subscribe_options_t* c = evs_subscribe_options_create();
  FUZZ_CHECK(c != nullptr);
  char* err = nullptr;
  int rc = SetFilterC(c, o.filter, evs_subscribe_options_set_filter_all, evs_subscribe_options_set_filter_stream,
                      evs_subscribe_options_set_filter_category, evs_subscribe_options_set_filter_types, &err);
  FUZZ_CHECK(Checked(rc, &err) == EVS_OK);
  FUZZ_CHECK(Checked(evs_subscribe_options_set_from(c, o.from, &err), &err) == EVS_OK);
  if (!o.checkpoint.empty())
    FUZZ_CHECK(Checked(evs_subscribe_options_set_checkpoint(c, o.checkpoint.data(), o.checkpoint.size(),
                                                            &err),
                       &err) == EVS_OK);
  FUZZ_CHECK(Checked(evs_subscribe_options_set_max_batch(c, o.max_batch, &err), &err) == EVS_OK);
  FUZZ_CHECK(Checked(evs_subscribe_options_set_behind_after(c, o.behind_after, &err), &err) == EVS_OK);
  return c;
}

int ToC(Delivery::Kind k) {
  switch (k) {
    case Delivery::Kind::kEvents: return EVS_DELIVERY_EVENTS;
    case Delivery::Kind::kCaughtUp: return EVS_DELIVERY_CAUGHT_UP;
    case Delivery::Kind::kFellBehind: return EVS_DELIVERY_FELL_BEHIND;
    case Delivery::Kind::kTimedOut: break;
  }
  return EVS_DELIVERY_TIMED_OUT;
}

struct Slot {
  evs_subscription_t* sub = nullptr;
  std::optional<ModelSub> model;
  void Clear() {
    evs_subscription_destroy(sub);
    sub = nullptr;
    model.reset();
  }
  ~Slot() { Clear(); }
};

void Subscribe(evs_store_t* s, const Model& m, const Op& op, Slot& slot) {
  slot.Clear();
  SubSpec spec = MakeSub(op, m);
  evs_subscribe_options_t* o = ToC(spec.options);
  char* err = nullptr;
  int rc = Checked(evs_subscribe(s, o, &slot.sub, &err), &err);
  evs_subscribe_options_destroy(o);
  if (!spec.valid) {
    FUZZ_CHECK(rc == EVS_INVALID_ARGUMENT && slot.sub == nullptr);
    return;
  }
  FUZZ_CHECK(rc == EVS_OK && slot.sub != nullptr);
  slot.model.emplace(spec.options, m);
  FUZZ_CHECK(evs_subscription_position(slot.sub) == slot.model->cursor);
}

void Pull(const Model& m, const Op& op, Slot& slot) {
  if (!slot.sub) return;
  char* err = nullptr;
  const evs_delivery_t* d = nullptr;
  if (op.mode & 0x80) {
    FUZZ_CHECK(Checked(evs_subscription_stop(slot.sub, &err), &err) == EVS_OK);
    FUZZ_CHECK(Checked(evs_subscription_next(slot.sub, 0, &d, &err), &err) == EVS_CLOSED && d == nullptr);
    slot.Clear();
    return;
  }
  for (int i = 0; i < op.limit; i++) {
    FUZZ_CHECK(Checked(evs_subscription_next(slot.sub, 0, &d, &err), &err) == EVS_OK && d != nullptr);
    WantDelivery want = slot.model->Next(m);
    FUZZ_CHECK(evs_delivery_kind(d) == ToC(want.kind));
    FUZZ_CHECK(evs_delivery_position(d) == want.position);
    FUZZ_CHECK(evs_delivery_event_count(d) == want.positions.size());
    for (size_t k = 0; k < want.positions.size(); k++) {
      EventView v;
      std::memcpy(v.id.bytes, evs_delivery_event_id(d, k), 16);
      size_t len = 0;
      const char* c = evs_delivery_event_stream(d, k, &len);
      v.stream = std::string_view(c, len);
      c = evs_delivery_event_type(d, k, &len);
      v.type = std::string_view(c, len);
      c = evs_delivery_event_content_type(d, k, &len);
      v.content_type = std::string_view(c, len);
      c = static_cast<const char*>(evs_delivery_event_data(d, k, &len));
      v.data = std::string_view(c, len);
      c = static_cast<const char*>(evs_delivery_event_metadata(d, k, &len));
      v.metadata = std::string_view(c, len);
      v.version = evs_delivery_event_version(d, k);
      v.position = evs_delivery_event_position(d, k);
      FUZZ_CHECK(v.position == want.positions[k]);
      CheckEvent(m, v);
    }
    FUZZ_CHECK(evs_subscription_position(slot.sub) == slot.model->cursor);
  }
}

void CheckCheckpoint(evs_store_t* s, const Model& m, const std::string& name) {
  uint64_t position = 0;
  int64_t updated = 0;
  char* err = nullptr;
  int rc = Checked(evs_checkpoint_get(s, name.data(), name.size(), &position, &updated, &err), &err);
  auto it = m.checkpoints.find(name);
  if (it == m.checkpoints.end()) {
    FUZZ_CHECK(rc == EVS_NOT_FOUND);
    return;
  }
  FUZZ_CHECK(rc == EVS_OK && position == it->second && updated > 0);
}

void Checkpoint(evs_store_t* s, Model& m, const Op& op, Slot& slot) {
  const std::string name = m.Checkpoint(op.arg[1]);
  char* err = nullptr;
  switch (static_cast<CheckpointOp>(op.arg[0] % 7)) {
    case CheckpointOp::kSubCheckpoint:
    case CheckpointOp::kSubCheckpointAt: {
      if (!slot.sub) return;
      const ModelSub& ms = *slot.model;
      uint64_t p = ms.delivered;
      bool at = op.arg[0] % 7 == 1, beyond = at && (op.arg[1] & 1);
      if (beyond) p = ms.delivered + 1 + (op.arg[1] >> 1) % 4;
      if (at && !beyond) p -= std::min<uint64_t>((op.arg[1] >> 1) % 4, ms.delivered - m.base);
      int rc = Checked(at ? evs_subscription_checkpoint_at(slot.sub, p, &err)
                          : evs_subscription_checkpoint(slot.sub, &err),
                       &err);
      if (ms.o.checkpoint.empty() || beyond) {
        FUZZ_CHECK(rc == EVS_INVALID_ARGUMENT);
      } else {
        FUZZ_CHECK(rc == EVS_OK);
        m.checkpoints[ms.o.checkpoint] = p;
      }
      break;
    }
    case CheckpointOp::kSet: {
      uint64_t p = m.base + op.arg[1] % (m.log.size() + 1);
      FUZZ_CHECK(Checked(evs_checkpoint_set(s, name.data(), name.size(), p, &err), &err) == EVS_OK);
      m.checkpoints[name] = p;
      break;
    }
    case CheckpointOp::kDelete:
      FUZZ_CHECK(Checked(evs_checkpoint_delete(s, name.data(), name.size(), &err), &err) == EVS_OK);
      m.checkpoints.erase(name);
      break;
    case CheckpointOp::kGet: CheckCheckpoint(s, m, name); break;
    case CheckpointOp::kList: {
      evs_checkpoint_list_t* list = nullptr;
      FUZZ_CHECK(Checked(evs_checkpoint_list(s, &list, &err), &err) == EVS_OK && list != nullptr);
      std::map<std::string, uint64_t> mine;
      const std::string prefix = "cp" + m.ns + "-";
      for (size_t i = 0; i < evs_checkpoint_list_size(list); i++) {
        const char* n = nullptr;
        size_t len = 0;
        uint64_t position = 0;
        FUZZ_CHECK(Checked(evs_checkpoint_list_get(list, i, &n, &len, &position, nullptr, &err), &err) ==
                   EVS_OK);
        std::string cp(n, len);
        if (cp.starts_with(prefix)) FUZZ_CHECK(mine.emplace(cp, position).second);
      }
      FUZZ_CHECK(Checked(evs_checkpoint_list_get(list, evs_checkpoint_list_size(list), nullptr, nullptr,
                                                 nullptr, nullptr, &err),
                         &err) == EVS_INVALID_ARGUMENT);
      evs_checkpoint_list_destroy(list);
      FUZZ_CHECK(mine == m.checkpoints);
      break;
    }
    case CheckpointOp::kInvalid: {
      const std::string bad[] = {"", std::string("cp\0x", 4), std::string(257, 'c')};
      const std::string& b = bad[op.arg[1] % 3];
      FUZZ_CHECK(Checked(evs_checkpoint_set(s, b.data(), b.size(), 0, &err), &err) == EVS_INVALID_ARGUMENT);
      FUZZ_CHECK(Checked(evs_checkpoint_delete(s, b.data(), b.size(), &err), &err) == EVS_INVALID_ARGUMENT);
      break;
    }
  }
}

// ---- projections (projection_model.hpp) ----

// The model's FoldEvent, as a C handler.
int FoldHandler(void*, const evs_projection_event_t* e, evs_projection_state_t* st) {
  size_t len = 0;
  const char* c = evs_projection_event_type(e, &len);
  const std::string type(c, len);
  c = evs_projection_event_stream(e, &len);
  const std::string stream(c, len);
  evs_projection_event_data(e, &len);
  const bool no_data = len == 0;
  char* err = nullptr;
  auto count = [&](const std::string& key) {
    void* value = nullptr;
    size_t value_len = 0;
    int rc = Checked(evs_projection_state_get(st, key.data(), key.size(), &value, &value_len, &err), &err);
    if (rc != EVS_OK && rc != EVS_NOT_FOUND) return rc;
    FUZZ_CHECK((rc == EVS_OK) == (value != nullptr));
    std::string cur(static_cast<const char*>(value), value ? value_len : 0);
    evs_free(value);
    std::string next = Increment(rc == EVS_OK ? &cur : nullptr);
    return Checked(evs_projection_state_put(st, key.data(), key.size(), next.data(), next.size(), &err), &err);
  };
  int rc = count(TypeKey(type));
  if (rc != EVS_OK) return rc;
  if (no_data) return Checked(evs_projection_state_erase(st, StreamKey(stream).data(), StreamKey(stream).size(), &err), &err);
  return count(StreamKey(stream));
}

// A C status as a Status, checking the message convention on the way.
Status ToStatus(int rc, char** errp) {
  std::string msg = *errp ? *errp : "";
  rc = Checked(rc, errp);
  return rc == EVS_OK ? Status::OK() : capi::ToStatus(rc, msg);
}

ProjectionInfo FromC(const evs_projection_info_t* i) {
  ProjectionInfo out;
  size_t len = 0;
  const char* n = evs_projection_info_name(i, &len);
  out.name.assign(n, len);
  out.version = evs_projection_info_version(i);
  out.position = evs_projection_info_position(i);
  out.events_handled = evs_projection_info_events_handled(i);
  out.updated_ms = evs_projection_info_updated_ms(i);
  out.rebuilding = evs_projection_info_rebuilding(i) != 0;
  out.rebuild_position = evs_projection_info_rebuild_position(i);
  return out;
}

Result<std::vector<ProjectionEntry>> FromC(int rc, char** err, evs_projection_entries_t* entries) {
  Status st = ToStatus(rc, err);
  if (!st.ok()) {
    FUZZ_CHECK(entries == nullptr);
    return st;
  }
  std::vector<ProjectionEntry> out;
  for (size_t i = 0; i < evs_projection_entries_count(entries); i++) {
    size_t kl = 0, vl = 0;
    const char* k = static_cast<const char*>(evs_projection_entries_key(entries, i, &kl));
    const char* v = static_cast<const char*>(evs_projection_entries_value(entries, i, &vl));
    out.push_back(ProjectionEntry{std::string(k, kl), std::string(v, vl)});
  }
  evs_projection_entries_destroy(entries);
  return out;
}

Result<std::string> FromC(int rc, char** err, void* value, size_t len) {
  Status st = ToStatus(rc, err);
  FUZZ_CHECK(st.ok() == (value != nullptr));
  if (!st.ok()) return st;
  std::string out(static_cast<const char*>(value), len);
  evs_free(value);
  return out;
}

// The options of `o`, as C options.
evs_projection_options_t* ToC(const ProjectionOptions& o) {
  evs_projection_options_t* c = evs_projection_options_create();
  FUZZ_CHECK(c != nullptr);
  char* err = nullptr;
  int rc = SetFilterC(c, o.filter, evs_projection_options_set_filter_all, evs_projection_options_set_filter_stream,
                      evs_projection_options_set_filter_category, evs_projection_options_set_filter_types, &err);
  FUZZ_CHECK(Checked(rc, &err) == EVS_OK);
  FUZZ_CHECK(Checked(evs_projection_options_set_version(c, o.version, &err), &err) == EVS_OK);
  FUZZ_CHECK(Checked(evs_projection_options_set_max_batch(c, o.max_batch, &err), &err) == EVS_OK);
  FUZZ_CHECK(Checked(evs_projection_options_set_max_retries(c, o.max_retries, &err), &err) == EVS_OK);
  return c;
}

// Projections through the C API.
class CProjections : public ProjectionApi {
 public:
  explicit CProjections(Harness& h) : h_(h) {}
  ~CProjections() override {
    for (evs_projection_t* p : handles_) evs_projection_destroy(p);
  }

  Result<ProjectionInfo> Info(const std::string& name) override {
    evs_projection_info_t* info = nullptr;
    char* err = nullptr;
    Status st = ToStatus(evs_projection_info(h_.store(), name.data(), name.size(), &info, &err), &err);
    FUZZ_CHECK(st.ok() == (info != nullptr));
    if (!st.ok()) return st;
    ProjectionInfo out = FromC(info);
    evs_projection_info_destroy(info);
    return out;
  }
  Result<std::vector<ProjectionInfo>> List() override {
    evs_projection_list_t* list = nullptr;
    char* err = nullptr;
    Status st = ToStatus(evs_projection_list(h_.store(), &list, &err), &err);
    if (!st.ok()) return st;
    std::vector<ProjectionInfo> out;
    for (size_t i = 0; i < evs_projection_list_size(list); i++) out.push_back(FromC(evs_projection_list_get(list, i)));
    FUZZ_CHECK(evs_projection_list_get(list, evs_projection_list_size(list)) == nullptr);
    evs_projection_list_destroy(list);
    return out;
  }
  Result<std::string> Get(const std::string& name, const std::string& key) override {
    void* value = nullptr;
    size_t len = 0;
    char* err = nullptr;
    int rc = evs_projection_get(h_.store(), name.data(), name.size(), key.data(), key.size(), &value, &len, &err);
    return FromC(rc, &err, value, len);
  }
  Result<std::vector<ProjectionEntry>> Scan(const std::string& name, const ScanSpec& spec) override {
    evs_projection_entries_t* entries = nullptr;
    char* err = nullptr;
    int rc = evs_projection_scan(h_.store(), name.data(), name.size(), spec.prefix.data(), spec.prefix.size(),
                                 spec.start_after.data(), spec.start_after.size(), spec.limit, &entries, &err);
    return FromC(rc, &err, entries);
  }
  Status Delete(const std::string& name) override {
    char* err = nullptr;
    return ToStatus(evs_projection_delete(h_.store(), name.data(), name.size(), &err), &err);
  }
  Status Run(int slot, const std::string& name, const ProjectionOptions& o) override {
    evs_projection_options_t* c = ToC(o);
    evs_projection_t* p = nullptr;
    char* err = nullptr;
    Status st = ToStatus(evs_projection_run(h_.store(), name.data(), name.size(), c, FoldHandler, nullptr, &p, &err),
                         &err);
    evs_projection_options_destroy(c);
    FUZZ_CHECK(st.ok() == (p != nullptr));
    if (st.ok()) handles_[slot] = p;
    return st;
  }
  Status WaitFor(int slot, uint64_t position) override {
    char* err = nullptr;
    return ToStatus(evs_projection_wait_for(handles_[slot], position, 60000, &err), &err);
  }
  Status Rebuild(int slot) override {
    char* err = nullptr;
    return ToStatus(evs_projection_rebuild(handles_[slot], &err), &err);
  }
  ProjectionStatus StatusOf(int slot) override {
    evs_projection_status_t* c = nullptr;
    char* err = nullptr;
    FUZZ_CHECK(ToStatus(evs_projection_status(handles_[slot], &c, &err), &err).ok());
    ProjectionStatus st;
    size_t len = 0;
    const char* t = evs_projection_status_name(c, &len);
    st.name.assign(t, len);
    st.phase = static_cast<ProjectionStatus::Phase>(evs_projection_status_phase(c));
    st.version = evs_projection_status_version(c);
    st.position = evs_projection_status_position(c);
    st.retries = evs_projection_status_retries(c);
    t = evs_projection_status_last_error(c, &len);
    st.last_error.assign(t, len);
    st.rebuilding = evs_projection_status_rebuilding(c) != 0;
    evs_projection_status_destroy(c);
    return st;
  }
  Status End(int slot, bool closed) override {
    char* err = nullptr;
    if (!closed) FUZZ_CHECK(ToStatus(evs_projection_stop(handles_[slot], &err), &err).ok());
    Status why = ToStatus(evs_projection_wait(handles_[slot], &err), &err);
    FUZZ_CHECK(StatusOf(slot).phase == ProjectionStatus::Phase::kStopped);
    evs_projection_destroy(handles_[slot]);
    handles_[slot] = nullptr;
    return why;
  }
  SnapshotRead Snapshot(const Model& m, const std::string& name, const std::string& key,
                        const ScanSpec& spec, bool log) override {
    evs_snapshot_t* snap = nullptr;
    char* err = nullptr;
    FUZZ_CHECK(ToStatus(evs_snapshot_create(h_.store(), &snap, &err), &err).ok() && snap != nullptr);
    SnapshotRead r;
    r.position = evs_snapshot_position(snap);
    if (log) {
      evs_iter_t* it = nullptr;
      FUZZ_CHECK(ToStatus(evs_snapshot_read_all(snap, m.base, EVS_FORWARD, EVS_NO_LIMIT, &it, &err), &err).ok());
      Drain(it, m, WholeRead(m));
    }
    evs_projection_info_t* info = nullptr;
    Status st = ToStatus(evs_snapshot_projection_info(snap, name.data(), name.size(), &info, &err), &err);
    if (st.ok()) {
      r.info = FromC(info);
      evs_projection_info_destroy(info);
    } else {
      r.info = st;
    }
    void* value = nullptr;
    size_t len = 0;
    int rc = evs_snapshot_projection_get(snap, name.data(), name.size(), key.data(), key.size(), &value, &len, &err);
    r.got = FromC(rc, &err, value, len);
    evs_projection_entries_t* entries = nullptr;
    rc = evs_snapshot_projection_scan(snap, name.data(), name.size(), spec.prefix.data(), spec.prefix.size(),
                                      spec.start_after.data(), spec.start_after.size(), spec.limit, &entries, &err);
    r.page = FromC(rc, &err, entries);
    entries = nullptr;
    rc = evs_snapshot_projection_scan(snap, name.data(), name.size(), nullptr, 0, nullptr, 0, EVS_NO_LIMIT,
                                      &entries, &err);
    r.all = FromC(rc, &err, entries);
    evs_snapshot_destroy(snap);
    return r;
  }

 private:
  Harness& h_;
  evs_projection_t* handles_[kProjSlots] = {};
};

// What the input leaves behind: its whole log reads back as the model has
// it, the next position follows it, and its checkpoints are stored.
void CheckInput(evs_store_t* s, const Model& m) {
  Read(s, m, WholeRead(m));
  FUZZ_CHECK(NextPosition(s) == m.end());
  for (uint8_t i = 0; i < kCheckpoints; i++) CheckCheckpoint(s, m, m.Checkpoint(i));
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
  Slot slots[kSlots];
  CProjections api(h);
  Projections projections(m, &api);
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
      case Op::kSubscribe: Subscribe(s, m, op, slots[op.slot]); break;
      case Op::kPull: Pull(m, op, slots[op.slot]); break;
      case Op::kCheckpoint: Checkpoint(s, m, op, slots[op.slot]); break;
      case Op::kProject: projections.Project(op); break;
      case Op::kProjectQuery: projections.Query(op); break;
      case Op::kReopen: {
        Totals t = h.epoch().totals();
        t.Add(m);
        h.Reopen(t);
        // The store they read was closed.
        for (Slot& slot : slots) {
          if (!slot.sub) continue;
          const evs_delivery_t* d = nullptr;
          char* err = nullptr;
          FUZZ_CHECK(Checked(evs_subscription_next(slot.sub, 0, &d, &err), &err) == EVS_CLOSED);
          slot.Clear();
        }
        for (uint8_t i = 0; i < kCheckpoints; i++) CheckCheckpoint(h.store(), m, m.Checkpoint(i));
        projections.Reopened();
        break;
      }
    }
  }
  projections.End();
  CheckInput(h.store(), m);
  if (reopens) {
    Totals t = h.epoch().totals();
    t.Add(m);
    CheckWhole(capi::StoreOf(h.store()), t);
  }
  h.epoch().End(m);
  return 0;
}
