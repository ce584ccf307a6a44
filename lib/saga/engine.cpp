// The saga engine: opening, starting sagas, queries, the by-hand operations
// on stuck sagas, and shutdown. Execution is in executor.cpp, persistence
// and recovery in records.cpp.
#include <algorithm>
#include <chrono>
#include <cmath>

#include "evstore/store.hpp"
#include "common/time.hpp"
#include "log/store_impl.hpp"
#include "saga/engine_impl.hpp"

namespace evstore {

using saga::Def;
using saga::InstPtr;
using saga::Instance;
using saga::Record;

namespace saga {

Clock::time_point After(std::chrono::milliseconds d) {
  // About 30 years: far enough to mean "never", near enough not to overflow.
  constexpr std::chrono::milliseconds kFar = std::chrono::hours(24 * 365 * 30);
  return Clock::now() + std::min(d, kFar);
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
  i.attempts_started = std::max(r.started, r.attempt);
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

SagaEngine::SagaEngine(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

SagaEngine::~SagaEngine() {
  if (impl_) (void)impl_->Shutdown();
}

Result<std::unique_ptr<SagaEngine>> SagaEngine::open(Store& store,
                                                     std::span<const SagaDefinition> definitions,
                                                     const SagaEngineOptions& options) {
  internal::StoreImpl* si = internal::StoreAccess::Impl(store);
  if (si == nullptr) return Status::Closed("store handle was moved from");
  if (si->options().read_only)
    return Status::NotSupported("sagas need a store opened for writing");
  if (options.threads == 0) return Status::InvalidArgument("saga engine: threads must be >= 1");
  if (options.max_history == 0)
    return Status::InvalidArgument("saga engine: max_history must be >= 1");
  if (options.keep_finished_for.count() < 0)
    return Status::InvalidArgument("saga engine: keep_finished_for must not be negative");
  if (options.retention_interval.count() <= 0)
    return Status::InvalidArgument("saga engine: retention_interval must be positive");
  if (options.shutdown_timeout.count() < 0)
    return Status::InvalidArgument("saga engine: shutdown_timeout must not be negative");
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
  auto impl = std::make_shared<Impl>(si->shared_from_this(), options);
  impl->set_attached();
  Status s = impl->Register(definitions);
  std::vector<SagaInfo> stuck;
  if (s.ok()) s = impl->Recover(&stuck);
  if (!s.ok()) {
    (void)impl->Shutdown();  // stops what started; detaches from the store
    return s;
  }
  if (options.on_damaged)
    for (const SagaDamage& d : impl->Damaged()) options.on_damaged(d);
  if (options.on_stuck)
    for (const SagaInfo& i : stuck) options.on_stuck(i);
  return std::unique_ptr<SagaEngine>(new SagaEngine(std::move(impl)));
}

Result<bool> SagaEngine::start(std::string_view definition, std::string_view saga_id,
                               std::string_view input) {
  return impl_->Start(definition, saga_id, input);
}
Result<SagaInfo> SagaEngine::get(std::string_view saga_id) { return impl_->Get(saga_id); }
Result<SagaPage> SagaEngine::list(SagaState state, std::string_view after_id, size_t limit) {
  return impl_->List(state, after_id, limit);
}
Result<std::vector<SagaInfo>> SagaEngine::list(SagaState state, size_t limit) {
  auto page = impl_->List(state, {}, limit);
  if (!page.ok()) return page.status();
  return std::move(page->sagas);
}
Result<SagaInfo> SagaEngine::wait(std::string_view saga_id, std::chrono::milliseconds timeout) {
  return impl_->Wait(saga_id, timeout);
}
Status SagaEngine::wait_idle(std::chrono::milliseconds timeout) { return impl_->WaitIdle(timeout); }
Status SagaEngine::retry(std::string_view saga_id) { return impl_->Retry(saga_id); }
Status SagaEngine::resolve(std::string_view saga_id, std::string_view note) {
  return impl_->Resolve(saga_id, note);
}
Result<uint64_t> SagaEngine::purge_finished() { return impl_->Purge(); }
std::vector<SagaDamage> SagaEngine::damaged() const { return impl_->Damaged(); }
SagaStats SagaEngine::stats() const { return impl_->Stats(); }
Status SagaEngine::status() const { return impl_->EngineStatus(); }
Status SagaEngine::shutdown() { return impl_->Shutdown(); }

// ---- Impl: set-up ----

SagaEngine::Impl::Impl(std::shared_ptr<internal::StoreImpl> store, const SagaEngineOptions& options)
    : store_(std::move(store)), opt_(options) {}

// Runs after Shutdown() (the handle and open() make sure of it), possibly on
// the last abandoned worker thread; nothing is left to stop.
SagaEngine::Impl::~Impl() = default;

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
  r.created_ms = NowMs();
  AddHistory(&r, SagaEvent::kStarted, -1, 0, {});
  s = CommitRecord(&r, /*is_new=*/true, {}, nullptr);
  release();
  if (!s.ok()) {
    if (!s.IsClosed()) FailLocked(s);
    return s;
  }
  stats_.started++;
  // Recorded: when shutdown got here first, it resumes at the next open.
  if (stopping_ || closed_) return true;
  auto inst = std::make_shared<Instance>();
  inst->id = key;
  inst->def = def;
  inst->rec = std::make_shared<const Record>(std::move(r));
  active_[key] = inst;
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
  // An id that start() refuses names no saga (and never an index key).
  if (!saga::ValidateSagaId(id).ok()) return Status::NotFound("no saga '" + std::string(id) + "'");
  Record r;
  Status s = ReadRecord(id, &r);
  if (!s.ok()) return s;
  return saga::ToInfo(r, false);
}

Result<SagaInfo> SagaEngine::Impl::Wait(std::string_view id, std::chrono::milliseconds timeout) {
  auto deadline = saga::After(timeout);
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
  auto deadline = saga::After(timeout);
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

std::vector<SagaDamage> SagaEngine::Impl::Damaged() const {
  std::lock_guard<std::mutex> l(mu_);
  return damaged_;
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
  if (!saga::ValidateSagaId(id).ok()) return Status::NotFound("no saga '" + key + "'");
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
    s = saga::CheckShape(r, *def);
    if (!s.ok()) {
      release();
      return s;
    }
    r.state = r.stuck_phase;
    r.attempt = 0;
    r.started = 0;
    r.next_attempt_ms = 0;
    AddHistory(&r, SagaEvent::kRetried, r.step, 0, std::string(note));
  }
  s = CommitRecord(&r, /*is_new=*/false, {}, nullptr);
  release();
  if (!s.ok()) {
    if (!s.IsClosed()) FailLocked(s);
    return s;
  }
  if (stopping_ || closed_) return Status::OK();  // committed; resumes at the next open
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
  s.abandoned_threads = abandoned_;
  s.damaged = damaged_.size();
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
  std::unique_lock<std::mutex> l(mu_);
  if (closed_ || stopping_) return Status::OK();
  stopping_ = true;
  for (auto& [id, inst] : active_)
    if (inst->in_flight && inst->cancel) inst->cancel->store(true);
  work_cv_.notify_all();
  timer_cv_.notify_all();
  maint_cv_.notify_all();
  WakeAllLocked();
  l.unlock();
  // Neither runs user code: both return promptly.
  if (timer_.joinable()) timer_.join();
  if (maint_.joinable()) maint_.join();
  l.lock();
  // Workers exit once their handler (and what follows it) is done.
  auto deadline = saga::After(opt_.shutdown_timeout);
  exit_cv_.wait_until(l, deadline, [&] { return threads_ == 0; });
  const size_t abandoned = threads_;
  // Join the workers that exited; the others run a handler that did not
  // return in time, and are let go.
  std::vector<std::thread> finished, given_up;
  for (auto& [id, w] : workers_)
    (w.exited ? finished : given_up).push_back(std::move(w.thread));
  workers_.clear();
  writes_closed_ = true;
  // Give up the attempts still running: whatever they return is discarded,
  // and the next open finds them interrupted.
  for (auto& [id, inst] : active_) {
    if (!inst->in_flight) continue;
    inst->in_flight = false;
    inst->token = ++seq_;
    inst->runner = nullptr;
  }
  // A write that began is waited for, however long the store takes: once
  // detached, another engine may write the same sagas.
  exit_cv_.wait(l, [&] { return writes_ == 0; });
  closed_ = true;
  ready_.clear();
  timers_.clear();
  active_.clear();
  WakeAllLocked();
  l.unlock();
  for (std::thread& t : finished)
    if (t.joinable()) t.join();
  for (std::thread& t : given_up)
    if (t.joinable()) t.detach();
  if (attached_) store_->DetachSagaEngine();
  attached_ = false;
  if (abandoned > 0)
    return Status::TimedOut(
        "saga engine shut down, but " + std::to_string(abandoned) +
        " handler or callback thread(s) did not return within " +
        std::to_string(opt_.shutdown_timeout.count()) +
        " ms and were abandoned; their results will be discarded and their sagas resume at the "
        "next open");
  return Status::OK();
}

}  // namespace evstore
