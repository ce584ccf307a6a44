// Fuzz target: a sequence of store operations compared against an in-memory
// model, across close and reopen (RocksDB's db_map_fuzzer idea). Runs
// through the C++ API (include/evstore/store.hpp) on an in-memory RocksDB
// file system (mem_fs.hpp, through the internal file-system seam), with
// sync=false and small limits.
//
// Input (store_model.hpp): a sequence of operations, each an opcode byte and
// its arguments: append (stream, expectation, 1-3 events with optional ids
// from a small pool), append_multi over two streams, read_stream / read_all /
// read_category / read_type (from, direction, limit), read_event,
// stream_head, close + reopen, pull subscriptions (a filter, a start or a
// checkpoint, batch and fell-behind sizes) and their next() and stop(),
// checkpoints (a subscription's, set, delete, get, list), projections and
// their queries and snapshots (projection_model.hpp).
//
// Checks: the model predicts every result and every read, and every
// delivery: its kind, its events (the next selected ones after the
// subscription's cursor, in order, at most a batch), and its position; when a
// subscription catches up it has delivered each selected event from its
// start exactly once. Checkpoints read back as the model stored them, also
// across reopens. A projection's state is the fold of the model's log up to
// its checkpoint. After each input its whole log reads back as the model has
// it and stats agree. The whole
// store goes through inspect::Verify (counts included) at each reopen (with
// a dump), at the end of an input that reopened, and whenever an epoch of
// inputs sharing the store ends (store_model.hpp explains the sharing and
// how a failure is reproduced).
#include "log/store_impl.hpp"
#include "mem_fs.hpp"
#include "projection_model.hpp"
#include "store_model.hpp"

namespace {

constexpr const char* kPath = "/evstore-fuzz/db";

// The store the inputs run on, on a fresh in-memory file system per epoch.
class Harness {
 public:
  static Harness& Get() {
    static Harness* h = [] {
      auto* made = new Harness();
      std::atexit([] {
        Harness& h = Get();
        h.Finish();
        h.epoch_.PrintRun("fuzz_store_ops");
      });
      return made;
    }();
    return *h;
  }

  Store& store() { return *store_; }
  Epoch& epoch() { return epoch_; }

  // Ends the epoch (whole-store check, close) and opens a copy of the empty
  // store: no store creation, which costs several opens.
  void Fresh() {
    Finish();
    epoch_.Clear();
    fs_ = std::make_shared<MemFs>();
    fs_->WriteFiles(kPath, empty_);
    Open();
  }

  // Close and reopen, checking the whole store before the close.
  void Reopen(const Totals& t) {
    epoch_.Reopened();
    CheckWhole(*store_, t);
    FUZZ_CHECK(store_->close().ok());
    store_.reset();
    Open();
  }

 private:
  Harness() {
    // The empty store every epoch starts from, made once through the
    // store's own creation path.
    fs_ = std::make_shared<MemFs>();
    Open();
    FUZZ_CHECK(store_->close().ok());
    store_.reset();
    empty_ = fs_->ReadFiles(kPath);
    fs_.reset();
    Fresh();
  }

  void Open() {
    internal::Seams seams;
    seams.file_system = fs_;
    auto r = internal::OpenStore(kPath, StoreOptions(), seams);
    if (!r.ok()) std::fprintf(stderr, "open: %s\n", r.status().ToString().c_str());
    FUZZ_CHECK(r.ok());
    store_.emplace(std::move(r).value());
  }

  void Finish() {
    if (!store_) return;
    CheckWhole(*store_, epoch_.totals(), /*dump=*/false);
    FUZZ_CHECK(store_->close().ok());
    store_.reset();
    fs_.reset();
  }

  std::map<std::string, std::string> empty_;  // the files of a new store
  std::shared_ptr<MemFs> fs_;
  std::optional<Store> store_;
  Epoch epoch_;
};

void Read(Store& s, const Model& m, const ReadPlan& p) {
  Result<EventIterator> r = [&] {
    switch (p.kind) {
      case ReadPlan::kStream: return s.read_stream(p.name, p.from, p.dir, p.limit);
      case ReadPlan::kAll: return s.read_all(p.from, p.dir, p.limit);
      case ReadPlan::kCategory: return s.read_category(p.name, p.from, p.dir, p.limit);
      case ReadPlan::kType: break;
    }
    return s.read_type(p.name, p.from, p.dir, p.limit);
  }();
  if (!p.exists) {
    FUZZ_CHECK(r.status().IsNotFound());
    return;
  }
  FUZZ_CHECK(r.ok());
  ReadCheck check(m, p);
  bool stopped = false;
  for (; r->Valid() && !stopped; r->Next()) stopped = !check.Next(r->value());
  if (!stopped) FUZZ_CHECK(r->status().ok());
  check.End();
}

void Append(Store& s, Model& m, const Op& op) {
  std::string stream = m.Stream(op.stream[0]);
  ExpectedVersion exp = MakeExpected(op.expect[0], m, stream);
  std::vector<EventData> events = MakeEvents(op.events[0], m);
  AppendResult replay;
  Outcome want = Predict(m, stream, exp, events, &replay);
  auto r = s.append(stream, exp, events);
  switch (want) {
    case Outcome::kInvalid: FUZZ_CHECK(r.status().IsInvalidArgument()); break;
    case Outcome::kDuplicate: FUZZ_CHECK(r.status().IsDuplicateEvent()); break;
    case Outcome::kWrongVersion:
      FUZZ_CHECK(r.status().IsWrongExpectedVersion());
      FUZZ_CHECK(r.status().actual_version() == ActualVersion(m, stream));
      break;
    case Outcome::kReplay:
      FUZZ_CHECK(r.ok());
      FUZZ_CHECK(*r == replay);
      break;
    case Outcome::kAppend:
      FUZZ_CHECK(r.ok());
      FUZZ_CHECK(*r == Apply(m, stream, events));
      break;
  }
}

void AppendMulti(Store& s, Model& m, const Op& op) {
  std::vector<StreamAppend> parts(2);
  for (int p = 0; p < 2; p++) {
    parts[p].stream = m.Stream(op.stream[p]);
    parts[p].expected = MakeExpected(op.expect[p], m, parts[p].stream);
    parts[p].events = MakeEvents(op.events[p], m);
  }
  AppendResult r0, r1;
  Outcome o0 = Predict(m, parts[0].stream, parts[0].expected, parts[0].events, &r0);
  Outcome o1 = Predict(m, parts[1].stream, parts[1].expected, parts[1].events, &r1);
  auto r = s.append_multi(parts);
  if (SharedId(parts[0].events, parts[1].events)) {
    FUZZ_CHECK(r.status().IsInvalidArgument());
  } else if (o0 == Outcome::kAppend && o1 == Outcome::kAppend) {
    FUZZ_CHECK(r.ok());
    AppendResult w0 = Apply(m, parts[0].stream, parts[0].events);
    AppendResult w1 = Apply(m, parts[1].stream, parts[1].events);
    FUZZ_CHECK(r->size() == 2 && (*r)[0] == w0 && (*r)[1] == w1);
  } else if (o0 == Outcome::kReplay && o1 == Outcome::kReplay) {
    FUZZ_CHECK(r.ok());
    FUZZ_CHECK(r->size() == 2 && (*r)[0] == r0 && (*r)[1] == r1);
  } else {
    FUZZ_CHECK(!r.ok());  // all or nothing
    FUZZ_CHECK(!r.status().IsIOError() && !r.status().IsCorruption());
  }
}

void CheckHead(Store& s, const Model& m, uint8_t which) {
  std::string stream = m.Stream(which);
  auto r = s.stream_head(stream);
  auto it = m.streams.find(stream);
  if (it == m.streams.end()) {
    FUZZ_CHECK(r.status().IsNotFound());
  } else {
    FUZZ_CHECK(r.ok());
    FUZZ_CHECK(r->last_version == it->second.size() - 1);
    FUZZ_CHECK(r->last_position == it->second.back());
  }
}

// ---- subscriptions and checkpoints ----

struct Slot {
  std::optional<Subscription> sub;
  std::optional<ModelSub> model;
  void Clear() {
    sub.reset();
    model.reset();
  }
};

void Subscribe(Store& s, const Model& m, const Op& op, Slot& slot) {
  slot.Clear();
  SubSpec spec = MakeSub(op, m);
  auto r = s.subscribe(spec.options);
  if (!spec.valid) {
    FUZZ_CHECK(r.status().IsInvalidArgument());
    return;
  }
  FUZZ_CHECK(r.ok());
  slot.sub.emplace(std::move(r).value());
  slot.model.emplace(spec.options, m);
  FUZZ_CHECK(slot.sub->position() == slot.model->cursor);
}

void Pull(const Model& m, const Op& op, Slot& slot) {
  if (!slot.sub) return;
  if (op.mode & 0x80) {
    slot.sub->stop();
    FUZZ_CHECK(slot.sub->next(std::chrono::milliseconds(0)).status().IsClosed());
    slot.Clear();
    return;
  }
  for (int i = 0; i < op.limit; i++) {
    auto d = slot.sub->next(std::chrono::milliseconds(0));
    FUZZ_CHECK(d.ok());
    WantDelivery want = slot.model->Next(m);
    FUZZ_CHECK(d->kind == want.kind);
    FUZZ_CHECK(d->position == want.position);
    FUZZ_CHECK(d->events.size() == want.positions.size());
    for (size_t k = 0; k < d->events.size(); k++) {
      const RecordedEvent& e = d->events[k];
      FUZZ_CHECK(e.position == want.positions[k]);
      CheckEvent(m, EventView{e.id, e.stream, e.type, e.content_type, e.data, e.metadata,
                              e.version, e.position, e.timestamp_ms});
    }
    FUZZ_CHECK(slot.sub->position() == slot.model->cursor);
  }
}

void CheckCheckpoint(Store& s, const Model& m, const std::string& name) {
  auto r = s.get_checkpoint(name);
  auto it = m.checkpoints.find(name);
  if (it == m.checkpoints.end()) {
    FUZZ_CHECK(r.status().IsNotFound());
    return;
  }
  FUZZ_CHECK(r.ok());
  FUZZ_CHECK(r->name == name && r->position == it->second && r->updated_ms > 0);
}

void Checkpoint(Store& s, Model& m, const Op& op, Slot& slot) {
  const std::string name = m.Checkpoint(op.arg[1]);
  switch (static_cast<CheckpointOp>(op.arg[0] % 7)) {
    case CheckpointOp::kSubCheckpoint:
    case CheckpointOp::kSubCheckpointAt: {
      if (!slot.sub) return;
      const ModelSub& ms = *slot.model;
      uint64_t p = ms.delivered;
      bool at = op.arg[0] % 7 == 1, beyond = at && (op.arg[1] & 1);
      if (beyond) p = ms.delivered + 1 + (op.arg[1] >> 1) % 4;
      if (at && !beyond) p -= std::min<uint64_t>((op.arg[1] >> 1) % 4, ms.delivered - m.base);
      Status st = at ? slot.sub->checkpoint(p) : slot.sub->checkpoint();
      if (ms.o.checkpoint.empty() || beyond) {
        FUZZ_CHECK(st.IsInvalidArgument());
      } else {
        FUZZ_CHECK(st.ok());
        m.checkpoints[ms.o.checkpoint] = p;
      }
      break;
    }
    case CheckpointOp::kSet: {
      uint64_t p = m.base + op.arg[1] % (m.log.size() + 1);
      FUZZ_CHECK(s.set_checkpoint(name, p).ok());
      m.checkpoints[name] = p;
      break;
    }
    case CheckpointOp::kDelete:
      FUZZ_CHECK(s.delete_checkpoint(name).ok());
      m.checkpoints.erase(name);
      break;
    case CheckpointOp::kGet: CheckCheckpoint(s, m, name); break;
    case CheckpointOp::kList: {
      auto r = s.list_checkpoints();
      FUZZ_CHECK(r.ok());
      std::map<std::string, uint64_t> mine;
      const std::string prefix = "cp" + m.ns + "-";
      for (const CheckpointInfo& c : *r) {
        if (c.name.starts_with(prefix)) FUZZ_CHECK(mine.emplace(c.name, c.position).second);
      }
      FUZZ_CHECK(mine == m.checkpoints);
      break;
    }
    case CheckpointOp::kInvalid: {
      const std::string bad[] = {"", std::string("cp\0x", 4), std::string(257, 'c')};
      FUZZ_CHECK(s.set_checkpoint(bad[op.arg[1] % 3], 0).IsInvalidArgument());
      FUZZ_CHECK(s.delete_checkpoint(bad[op.arg[1] % 3]).IsInvalidArgument());
      break;
    }
  }
}

// ---- projections (projection_model.hpp) ----

// The model's FoldEvent, as a projection handler.
Status FoldHandler(const RecordedEvent& e, ProjectionState& st) {
  auto count = [&](const std::string& key) {
    auto cur = st.get(key);
    if (!cur.ok() && !cur.status().IsNotFound()) return cur.status();
    return st.put(key, Increment(cur.ok() ? &*cur : nullptr));
  };
  Status s = count(TypeKey(e.type));
  if (!s.ok()) return s;
  if (e.data.empty()) return st.erase(StreamKey(e.stream));
  return count(StreamKey(e.stream));
}

// Projections through the C++ API.
class StoreProjections : public ProjectionApi {
 public:
  explicit StoreProjections(Harness& h) : h_(h) {}

  Result<ProjectionInfo> Info(const std::string& name) override { return s().projection_info(name); }
  Result<std::vector<ProjectionInfo>> List() override { return s().list_projections(); }
  Result<std::string> Get(const std::string& name, const std::string& key) override {
    return s().projection_get(name, key);
  }
  Result<std::vector<ProjectionEntry>> Scan(const std::string& name, const ScanSpec& spec) override {
    return s().projection_scan(name, spec.prefix, spec.start_after, spec.limit);
  }
  Status Delete(const std::string& name) override { return s().delete_projection(name); }
  Status Run(int slot, const std::string& name, const ProjectionOptions& o) override {
    auto r = s().run_projection(name, o, FoldHandler);
    if (!r.ok()) return r.status();
    handles_[slot] = std::move(r).value();
    return Status::OK();
  }
  Status WaitFor(int slot, uint64_t position) override {
    return handles_[slot]->wait_for(position, std::chrono::seconds(60));
  }
  Status Rebuild(int slot) override { return handles_[slot]->rebuild(); }
  ProjectionStatus StatusOf(int slot) override { return handles_[slot]->status(); }
  Status End(int slot, bool closed) override {
    if (!closed) handles_[slot]->stop();
    Status why = handles_[slot]->wait();
    FUZZ_CHECK(handles_[slot]->status().phase == ProjectionStatus::Phase::kStopped);
    handles_[slot].reset();
    return why;
  }
  SnapshotRead Snapshot(const Model& m, const std::string& name, const std::string& key,
                        const ScanSpec& spec, bool log) override {
    auto snap = s().snapshot();
    FUZZ_CHECK(snap.ok());
    SnapshotRead r;
    r.position = snap->position();
    if (log) {
      auto it = snap->read_all(m.base);
      FUZZ_CHECK(it.ok());
      ReadPlan whole = WholeRead(m);
      ReadCheck check(m, whole);
      for (; it->Valid(); it->Next()) FUZZ_CHECK(check.Next(it->value()));
      FUZZ_CHECK(it->status().ok());
      check.End();
    }
    r.info = snap->projection_info(name);
    r.got = snap->projection_get(name, key);
    r.page = snap->projection_scan(name, spec.prefix, spec.start_after, spec.limit);
    r.all = snap->projection_scan(name, "", "", 1000);
    return r;
  }

 private:
  Store& s() { return h_.store(); }
  Harness& h_;
  std::unique_ptr<Projection> handles_[kProjSlots];
};

// What an input must leave behind: its whole log reads back as the model
// has it, the next position follows it, and its checkpoints are stored.
void CheckInput(Store& s, const Model& m) {
  Read(s, m, WholeRead(m));
  FUZZ_CHECK(s.stats()->next_position == m.end());
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
  bool reopens = Reopens(ops);
  // An input that reopens runs on a fresh store, so that it runs exactly as
  // when replayed alone and its whole-store checks cost little.
  if (h.epoch().inputs() > 0 && (reopens || h.epoch().full())) h.Fresh();
  Model m(h.epoch().totals().events, h.epoch().inputs());
  h.epoch().Begin(data, size);
  FUZZ_CHECK(h.store().stats()->next_position == m.base);
  Slot slots[kSlots];
  StoreProjections api(h);
  Projections projections(m, &api);
  for (const Op& op : ops) {
    Store& s = h.store();
    switch (op.kind) {
      case Op::kAppend: Append(s, m, op); break;
      case Op::kMulti: AppendMulti(s, m, op); break;
      case Op::kReadStream:
      case Op::kReadAll:
      case Op::kReadIndex: Read(s, m, PlanRead(op, m)); break;
      case Op::kReadEvent: {
        uint64_t p = m.base + op.mode % 32;
        auto r = s.read_event(p);
        if (p >= m.end()) {
          FUZZ_CHECK(r.status().IsNotFound());
        } else {
          FUZZ_CHECK(r.ok());
          const RecordedEvent& e = *r;
          EventView v{e.id, e.stream, e.type, e.content_type, e.data, e.metadata,
                      e.version, e.position, e.timestamp_ms};
          CheckEvent(m, v);
        }
        break;
      }
      case Op::kHead:
        CheckHead(s, m, op.stream[0]);
        FUZZ_CHECK(s.stats()->next_position == m.end());
        break;
      case Op::kCheck:
        Read(s, m, WholeRead(m));
        for (uint8_t i = 0; i < 4; i++) CheckHead(s, m, i);
        break;
      case Op::kReopen: {
        Totals t = h.epoch().totals();
        t.Add(m);
        h.Reopen(t);
        // The store they read was closed.
        for (Slot& slot : slots) {
          if (slot.sub) FUZZ_CHECK(slot.sub->next(std::chrono::milliseconds(0)).status().IsClosed());
          slot.Clear();
        }
        for (uint8_t i = 0; i < kCheckpoints; i++) CheckCheckpoint(h.store(), m, m.Checkpoint(i));
        projections.Reopened();
        break;
      }
      case Op::kSubscribe: Subscribe(s, m, op, slots[op.slot]); break;
      case Op::kPull: Pull(m, op, slots[op.slot]); break;
      case Op::kCheckpoint: Checkpoint(s, m, op, slots[op.slot]); break;
      case Op::kProject: projections.Project(op); break;
      case Op::kProjectQuery: projections.Query(op); break;
    }
  }
  projections.End();
  CheckInput(h.store(), m);
  if (reopens) {
    Totals t = h.epoch().totals();
    t.Add(m);
    CheckWhole(h.store(), t);
  }
  h.epoch().End(m);
  return 0;
}
