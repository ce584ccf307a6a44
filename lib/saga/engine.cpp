// The saga engine: opening and recovery, starting sagas, queries, and the
// by-hand operations on stuck sagas. Execution is in executor.cpp.
#include <algorithm>
#include <chrono>
#include <cmath>

#include "evstore/store.hpp"
#include "log/store_impl.hpp"
#include "saga/engine_impl.hpp"

namespace evstore {

namespace internal {
Status StatusFromRocks(const rocksdb::Status& s, std::string_view what);
}

using saga::Def;
using saga::InstPtr;
using saga::Instance;
using saga::Record;

namespace saga {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

SagaInfo ToInfo(const Record& r, bool in_flight) {
  SagaInfo i;
  i.id = r.id;
  i.definition = r.definition;
  i.version = r.version;
  i.fingerprint = r.fingerprint;
  i.state = static_cast<SagaState>(r.state);
  i.stuck_in = static_cast<SagaState>(r.stuck_phase);
  i.step = r.step;
  i.attempt = r.attempt;
  i.next_attempt_ms = r.next_attempt_ms;
  i.input = r.input;
  i.outputs = r.outputs;
  i.error = r.error;
  i.created_ms = r.created_ms;
  i.updated_ms = r.updated_ms;
  i.resolved_by_hand = r.resolved;
  i.in_flight = in_flight;
  i.history.reserve(r.history.size());
  for (const auto& h : r.history)
    i.history.push_back(SagaHistoryEntry{h.time_ms, static_cast<SagaEvent>(h.kind),
                                         static_cast<SagaState>(h.state), h.step, h.attempt,
                                         h.text});
  i.history_dropped = r.history_dropped;
  return i;
}

}  // namespace saga

// ---- SagaEngine: the public handle ----

SagaEngine::SagaEngine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

SagaEngine::~SagaEngine() {
  if (impl_) (void)impl_->Shutdown();
}

Result<std::unique_ptr<SagaEngine>> SagaEngine::open(Store& store,
                                                     std::span<const SagaDefinition> definitions,
                                                     const SagaEngineOptions& options) {
  internal::StoreImpl* si = store.impl();
  if (si == nullptr) return Status::Closed("store handle was moved from");
  if (si->options().read_only)
    return Status::NotSupported("sagas need a store opened for writing");
  if (options.threads == 0) return Status::InvalidArgument("saga engine: threads must be >= 1");
  if (options.max_history == 0)
    return Status::InvalidArgument("saga engine: max_history must be >= 1");
  {
    internal::StoreImpl::OpGuard g(si);
    if (g.closed()) return Status::Closed("store is closed");
  }
  // Two engines would both resume the same sagas: their effects would run
  // twice and each would overwrite the other's record updates.
  if (!si->AttachSagaEngine())
    return Status::Busy(
        "a saga engine is already open on this store; shut it down (or destroy it) before "
        "opening another");
  auto impl = std::make_unique<Impl>(si->shared_from_this(), options);
  Status s = impl->Register(definitions);
  if (!s.ok()) {
    (void)impl->Shutdown();  // detaches from the store
    return s;
  }
  std::vector<SagaInfo> stuck;
  s = impl->Recover(&stuck);
  if (!s.ok()) {
    (void)impl->Shutdown();
    return s;
  }
  if (options.on_stuck)
    for (const SagaInfo& i : stuck) options.on_stuck(i);
  return std::unique_ptr<SagaEngine>(new SagaEngine(std::move(impl)));
}

Result<bool> SagaEngine::start(std::string_view definition, std::string_view saga_id,
                               std::string_view input) {
  return impl_->Start(definition, saga_id, input);
}
Result<SagaInfo> SagaEngine::get(std::string_view saga_id) { return impl_->Get(saga_id); }
Result<std::vector<SagaInfo>> SagaEngine::list(SagaState state, size_t limit) {
  return impl_->List(state, limit);
}
Result<SagaInfo> SagaEngine::wait(std::string_view saga_id, std::chrono::milliseconds timeout) {
  return impl_->Wait(saga_id, timeout);
}
Status SagaEngine::wait_idle(std::chrono::milliseconds timeout) { return impl_->WaitIdle(timeout); }
Status SagaEngine::retry(std::string_view saga_id) { return impl_->Retry(saga_id); }
Status SagaEngine::resolve(std::string_view saga_id, std::string_view note) {
  return impl_->Resolve(saga_id, note);
}
SagaStats SagaEngine::stats() const { return impl_->Stats(); }
Status SagaEngine::status() const { return impl_->EngineStatus(); }
Status SagaEngine::shutdown() { return impl_->Shutdown(); }

// ---- Impl: set-up ----

SagaEngine::Impl::Impl(std::shared_ptr<internal::StoreImpl> store, const SagaEngineOptions& options)
    : store_(std::move(store)), opt_(options) {}

SagaEngine::Impl::~Impl() { (void)Shutdown(); }

Status SagaEngine::Impl::Register(std::span<const SagaDefinition> defs) {
  if (defs.empty()) return Status::InvalidArgument("saga engine: no definitions given");
  for (const SagaDefinition& d : defs) {
    Status s = saga::ValidateDefinition(d);
    if (!s.ok()) return s;
    auto& versions = defs_[d.name];
    for (const auto& v : versions)
      if (v->d.version == d.version)
        return Status::InvalidArgument("saga definition '" + d.name + "' v" +
                                       std::to_string(d.version) + " is given twice");
    auto def = std::make_shared<Def>();
    def->d = d;
    def->fingerprint = d.fingerprint();
    for (const StepDefinition& st : d.steps) def->step_names.push_back(st.name);
    versions.push_back(std::move(def));
    std::sort(versions.begin(), versions.end(),
              [](const auto& a, const auto& b) { return a->d.version < b->d.version; });
  }
  return Status::OK();
}

std::shared_ptr<const Def> SagaEngine::Impl::FindDef(std::string_view name,
                                                     uint64_t fingerprint) const {
  auto it = defs_.find(std::string(name));
  if (it == defs_.end()) return nullptr;
  for (const auto& d : it->second)
    if (d->fingerprint == fingerprint) return d;
  return nullptr;
}

std::string SagaEngine::Impl::MissingDefMessage(const Record& r) const {
  char fp[32];
  std::snprintf(fp, sizeof fp, "%016llx", static_cast<unsigned long long>(r.fingerprint));
  std::string msg = "saga '" + r.id + "' was started under definition '" + r.definition + "' v" +
                    std::to_string(r.version) + " (fingerprint " + fp +
                    "), which is not registered";
  auto it = defs_.find(r.definition);
  if (it == defs_.end()) return msg + "; no version of it is registered";
  msg += "; registered:";
  for (const auto& d : it->second) {
    std::snprintf(fp, sizeof fp, "%016llx", static_cast<unsigned long long>(d->fingerprint));
    msg += " v" + std::to_string(d->d.version) + " (" + fp + ")";
  }
  return msg + ". Register the definition it was started under, then retry it";
}

namespace {

// A record's step and outputs must fit its definition.
Status CheckShape(const Record& r, const Def& d) {
  size_t n = d.d.steps.size();
  if (r.step < 0 || static_cast<size_t>(r.step) >= n || r.outputs.size() > n)
    return Status::Corruption("saga record '" + r.id + "': step " + std::to_string(r.step) +
                              " does not fit definition '" + r.definition + "'");
  return Status::OK();
}

}  // namespace

Status SagaEngine::Impl::Recover(std::vector<SagaInfo>* stuck) {
  std::vector<Record> open_sagas;
  {
    internal::StoreImpl::OpGuard g(store_.get());
    if (g.closed()) return Status::Closed("store is closed");
    std::unique_ptr<rocksdb::Iterator> it(
        store_->db()->NewIterator(rocksdb::ReadOptions(), store_->cf(internal::kCfSagas)));
    Record r;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      Status s = format::DecodeSagaRecord(std::string_view(it->key().data(), it->key().size()),
                                          std::string_view(it->value().data(), it->value().size()),
                                          &r);
      if (!s.ok()) return s;
      auto st = static_cast<SagaState>(r.state);
      if (st == SagaState::kStuck) {
        stuck->push_back(saga::ToInfo(r, false));
      } else if (!IsFinal(st)) {
        open_sagas.push_back(std::move(r));
        r = Record();
      }
    }
    if (!it->status().ok())
      return internal::StatusFromRocks(it->status(), "scanning the sagas column family");
  }
  for (Record& r : open_sagas) {
    auto def = FindDef(r.definition, r.fingerprint);
    if (def) {
      Status s = CheckShape(r, *def);
      if (!s.ok()) return s;
      auto inst = std::make_shared<Instance>();
      inst->id = r.id;
      inst->def = def;
      int64_t at = r.next_attempt_ms;
      inst->rec = std::make_shared<const Record>(std::move(r));
      std::lock_guard<std::mutex> l(mu_);
      active_[inst->id] = inst;
      stats_.resumed++;
      ScheduleLocked(inst, at);
      continue;
    }
    // Not runnable here: park it as stuck, remembering where it was.
    Record next = r;
    next.stuck_phase = next.state;
    next.state = static_cast<uint8_t>(SagaState::kStuck);
    next.error = MissingDefMessage(r);
    AddHistory(&next, SagaEvent::kStuck, next.step, next.attempt, next.error);
    Status s = CommitRecord(&next, {}, nullptr);
    if (!s.ok()) return s;
    {
      std::lock_guard<std::mutex> l(mu_);
      stats_.stuck++;
    }
    stuck->push_back(saga::ToInfo(next, false));
  }
  std::lock_guard<std::mutex> l(mu_);
  for (size_t i = 0; i < opt_.threads; i++) workers_.emplace_back([this] { WorkerLoop(); });
  timer_ = std::thread([this] { TimerLoop(); });
  return Status::OK();
}

// ---- Persistence ----

void SagaEngine::Impl::AddHistory(Record* r, SagaEvent e, int32_t step, uint32_t attempt,
                                  std::string text) const {
  r->history.push_back(format::SagaHistoryData{saga::NowMs(), static_cast<uint8_t>(e), r->state,
                                               step, attempt, std::move(text)});
  if (r->history.size() > opt_.max_history) {
    size_t drop = r->history.size() - opt_.max_history;
    r->history.erase(r->history.begin(), r->history.begin() + static_cast<ptrdiff_t>(drop));
    r->history_dropped += static_cast<uint32_t>(drop);
  }
}

Status SagaEngine::Impl::CommitRecord(Record* next, std::span<const StreamAppend> events,
                                      std::function<Status()> precheck) {
  next->revision++;
  next->updated_ms = saga::NowMs();
  internal::ExtraWrite w;
  w.cf = internal::kCfSagas;
  w.key = next->id;
  format::EncodeSagaRecord(*next, &w.value);
  std::vector<internal::PartRef> parts;
  parts.reserve(events.size());
  for (const StreamAppend& p : events) parts.push_back(internal::PartRef{p.stream, p.expected, p.events});
  internal::CommitRequest req;
  req.parts = parts;
  req.extra = std::span<const internal::ExtraWrite>(&w, 1);
  req.precheck = std::move(precheck);
  return store_->Commit(&req);
}

Status SagaEngine::Impl::ReadRecord(std::string_view id, Record* out) {
  internal::StoreImpl::OpGuard g(store_.get());
  if (g.closed()) return Status::Closed("store is closed");
  std::string v;
  rocksdb::Status s = store_->db()->Get(rocksdb::ReadOptions(), store_->cf(internal::kCfSagas),
                                        rocksdb::Slice(id.data(), id.size()), &v);
  if (s.IsNotFound()) return Status::NotFound("no saga '" + std::string(id) + "'");
  if (!s.ok()) return internal::StatusFromRocks(s, "reading saga '" + std::string(id) + "'");
  return format::DecodeSagaRecord(id, v, out);
}

Status SagaEngine::Impl::CheckOpenLocked() const {
  if (closed_) return Status::Closed("saga engine is shut down");
  if (!failed_.ok()) return failed_;
  return Status::OK();
}

void SagaEngine::Impl::Notify(std::unique_lock<std::mutex>* l, bool is_stuck, SagaInfo info) {
  l->unlock();
  if (is_stuck && opt_.on_stuck) opt_.on_stuck(info);
  if (!is_stuck && opt_.on_finished) opt_.on_finished(info);
  l->lock();
  notifying_.erase(notifying_.find(info.id));
  SettledLocked(info.id);
}

// ---- Starting and querying ----

Result<bool> SagaEngine::Impl::Start(std::string_view definition, std::string_view id,
                                     std::string_view input) {
  Status s = saga::ValidateSagaId(id);
  if (!s.ok()) return s;
  auto dit = defs_.find(std::string(definition));
  if (dit == defs_.end())
    return Status::InvalidArgument("no saga definition named '" + std::string(definition) +
                                   "' is registered");
  std::shared_ptr<const Def> def = dit->second.back();
  std::string key(id);
  auto same = [&](const Record& r) -> Result<bool> {
    if (r.definition == definition && r.input == input) return false;
    return Status::InvalidArgument("saga '" + key + "' already exists with " +
                                   (r.definition != definition
                                        ? "definition '" + r.definition + "'"
                                        : std::string("another input")));
  };
  std::unique_lock<std::mutex> l(mu_);
  for (;;) {
    s = CheckOpenLocked();
    if (!s.ok()) return s;
    if (!starting_.count(key)) break;
    settle_cv_.wait(l);
  }
  if (auto it = active_.find(key); it != active_.end()) return same(*it->second->rec);
  starting_.insert(key);
  l.unlock();
  auto release = [&] {
    l.lock();
    starting_.erase(key);
    SettledLocked(key);
  };

  Record existing;
  s = ReadRecord(id, &existing);
  if (s.ok()) {
    release();
    return same(existing);
  }
  if (!s.IsNotFound()) {
    release();
    return s;
  }
  Record r;
  r.id = key;
  r.definition = def->d.name;
  r.version = def->d.version;
  r.fingerprint = def->fingerprint;
  r.state = static_cast<uint8_t>(SagaState::kPending);
  r.stuck_phase = r.state;
  r.step = 0;
  r.input = std::string(input);
  r.created_ms = saga::NowMs();
  AddHistory(&r, SagaEvent::kStarted, -1, 0, {});
  s = CommitRecord(&r, {}, nullptr);
  release();
  if (!s.ok()) {
    if (!s.IsClosed()) FailLocked(s);
    return s;
  }
  auto inst = std::make_shared<Instance>();
  inst->id = key;
  inst->def = def;
  inst->rec = std::make_shared<const Record>(std::move(r));
  active_[key] = inst;
  stats_.started++;
  ScheduleLocked(inst, 0);
  return true;
}

Result<SagaInfo> SagaEngine::Impl::Get(std::string_view id) {
  {
    std::lock_guard<std::mutex> l(mu_);
    Status s = CheckOpenLocked();
    if (!s.ok()) return s;
    auto it = active_.find(std::string(id));
    if (it != active_.end()) return saga::ToInfo(*it->second->rec, it->second->in_flight);
  }
  Record r;
  Status s = ReadRecord(id, &r);
  if (!s.ok()) return s;
  return saga::ToInfo(r, false);
}

Result<std::vector<SagaInfo>> SagaEngine::Impl::List(SagaState state, size_t limit) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (closed_) return Status::Closed("saga engine is shut down");
  }
  std::vector<SagaInfo> out;
  internal::StoreImpl::OpGuard g(store_.get());
  if (g.closed()) return Status::Closed("store is closed");
  std::unique_ptr<rocksdb::Iterator> it(
      store_->db()->NewIterator(rocksdb::ReadOptions(), store_->cf(internal::kCfSagas)));
  Record r;
  for (it->SeekToFirst(); it->Valid() && out.size() < limit; it->Next()) {
    Status s = format::DecodeSagaRecord(std::string_view(it->key().data(), it->key().size()),
                                        std::string_view(it->value().data(), it->value().size()),
                                        &r);
    if (!s.ok()) return s;
    if (static_cast<SagaState>(r.state) != state) continue;
    bool in_flight = false;
    {
      std::lock_guard<std::mutex> l(mu_);
      auto a = active_.find(r.id);
      in_flight = a != active_.end() && a->second->in_flight;
    }
    out.push_back(saga::ToInfo(r, in_flight));
  }
  if (!it->status().ok())
    return internal::StatusFromRocks(it->status(), "scanning the sagas column family");
  return out;
}

Result<SagaInfo> SagaEngine::Impl::Wait(std::string_view id, std::chrono::milliseconds timeout) {
  auto deadline = saga::Clock::now() + timeout;
  std::string key(id);
  {
    std::unique_lock<std::mutex> l(mu_);
    std::condition_variable cv;
    auto me = waiters_.emplace(key, &cv);
    Status s;
    while (BusyLocked(key)) {
      s = CheckOpenLocked();
      if (!s.ok()) break;
      if (cv.wait_until(l, deadline) == std::cv_status::timeout && BusyLocked(key)) {
        s = Status::TimedOut("saga '" + key + "' is still running");
        break;
      }
    }
    waiters_.erase(me);
    if (!s.ok()) return s;
    if (closed_) return Status::Closed("saga engine is shut down");
  }
  return Get(id);
}

Status SagaEngine::Impl::WaitIdle(std::chrono::milliseconds timeout) {
  auto deadline = saga::Clock::now() + timeout;
  std::unique_lock<std::mutex> l(mu_);
  while (!active_.empty() || !starting_.empty() || !notifying_.empty()) {
    Status s = CheckOpenLocked();
    if (!s.ok()) return s;
    if (settle_cv_.wait_until(l, deadline) == std::cv_status::timeout &&
        (!active_.empty() || !starting_.empty() || !notifying_.empty()))
      return Status::TimedOut(std::to_string(active_.size()) + " sagas are still running");
  }
  return CheckOpenLocked();
}

// ---- Stuck sagas, by hand ----

Status SagaEngine::Impl::Retry(std::string_view id) { return SettleByHand(id, false, {}); }

Status SagaEngine::Impl::Resolve(std::string_view id, std::string_view note) {
  return SettleByHand(id, true, note);
}

Status SagaEngine::Impl::SettleByHand(std::string_view id, bool resolve, std::string_view note) {
  std::string key(id);
  std::unique_lock<std::mutex> l(mu_);
  for (;;) {
    Status s = CheckOpenLocked();
    if (!s.ok()) return s;
    if (!starting_.count(key)) break;
    settle_cv_.wait(l);
  }
  if (auto it = active_.find(key); it != active_.end())
    return Status::InvalidArgument("saga '" + key + "' is not stuck: it is " +
                                   SagaStateName(static_cast<SagaState>(it->second->rec->state)));
  starting_.insert(key);
  l.unlock();
  auto release = [&] {
    l.lock();
    starting_.erase(key);
    SettledLocked(key);
  };
  Record r;
  Status s = ReadRecord(id, &r);
  if (!s.ok()) {
    release();
    return s;
  }
  if (static_cast<SagaState>(r.state) != SagaState::kStuck) {
    release();
    return Status::InvalidArgument("saga '" + key + "' is not stuck: it is " +
                                   SagaStateName(static_cast<SagaState>(r.state)));
  }
  std::shared_ptr<const Def> def;
  if (resolve) {
    r.state = static_cast<uint8_t>(SagaState::kCompensated);
    r.resolved = true;
    r.next_attempt_ms = 0;
    AddHistory(&r, SagaEvent::kResolved, r.step, r.attempt, std::string(note));
  } else {
    def = FindDef(r.definition, r.fingerprint);
    if (!def) {
      release();
      return Status::InvalidArgument(MissingDefMessage(r));
    }
    s = CheckShape(r, *def);
    if (!s.ok()) {
      release();
      return s;
    }
    r.state = r.stuck_phase;
    r.attempt = 0;
    r.next_attempt_ms = 0;
    AddHistory(&r, SagaEvent::kRetried, r.step, 0, std::string(note));
  }
  s = CommitRecord(&r, {}, nullptr);
  release();
  if (!s.ok()) {
    if (!s.IsClosed()) FailLocked(s);
    return s;
  }
  if (resolve) {
    stats_.compensated++;
    if (opt_.on_finished) {
      notifying_.insert(key);
      Notify(&l, false, saga::ToInfo(r, false));
    }
    return Status::OK();
  }
  auto inst = std::make_shared<Instance>();
  inst->id = key;
  inst->def = def;
  inst->rec = std::make_shared<const Record>(std::move(r));
  active_[key] = inst;
  ScheduleLocked(inst, 0);
  return Status::OK();
}

// ---- Stats and shutdown ----

SagaStats SagaEngine::Impl::Stats() const {
  std::lock_guard<std::mutex> l(mu_);
  SagaStats s = stats_;
  s.active = active_.size();
  uint64_t n = 0;
  for (uint64_t c : latency_buckets_) n += c;
  s.step_count = n;
  s.step_mean_us = n ? latency_sum_us_ / static_cast<double>(n) : 0;
  auto quantile = [&](double q) {
    uint64_t want = static_cast<uint64_t>(std::ceil(q * static_cast<double>(n)));
    uint64_t seen = 0;
    for (size_t b = 0; b < latency_buckets_.size(); b++) {
      seen += latency_buckets_[b];
      if (seen >= want && seen > 0) return std::ldexp(1.0, static_cast<int>(b));
    }
    return 0.0;
  };
  s.step_p50_us = n ? quantile(0.5) : 0;
  s.step_p99_us = n ? quantile(0.99) : 0;
  return s;
}

Status SagaEngine::Impl::EngineStatus() const {
  std::lock_guard<std::mutex> l(mu_);
  return CheckOpenLocked();
}

Status SagaEngine::Impl::Shutdown() {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (closed_ || stopping_) return Status::OK();
    stopping_ = true;
    for (auto& [id, inst] : active_)
      if (inst->in_flight && inst->cancel) inst->cancel->store(true);
    work_cv_.notify_all();
    timer_cv_.notify_all();
    WakeAllLocked();
  }
  for (auto& t : workers_) t.join();
  workers_.clear();
  if (timer_.joinable()) timer_.join();
  {
    std::lock_guard<std::mutex> l(mu_);
    closed_ = true;
    ready_.clear();
    timers_.clear();
    active_.clear();
    WakeAllLocked();
  }
  // Nothing of this engine writes any more: another may open.
  store_->DetachSagaEngine();
  return Status::OK();
}

}  // namespace evstore
