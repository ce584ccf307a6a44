// SagaEngine::Impl's life: set-up and the registered definitions, starting
// a saga, and shutdown. Queries are in queries.cpp, the by-hand settlement
// of stuck sagas in settlement.cpp, execution in executor.cpp, and
// persistence in records.cpp, recovery.cpp and retention.cpp.
#include <algorithm>
#include <chrono>
#include <cstdio>

#include "common/time.hpp"
#include "log/store_impl.hpp"
#include "metrics/hub.hpp"
#include "saga/engine_impl.hpp"

namespace evstore {

using saga::Def;
using saga::Instance;
using saga::Record;

namespace saga {

Clock::time_point After(std::chrono::milliseconds d) {
  // About 30 years: far enough to mean "never", near enough not to overflow.
  constexpr std::chrono::milliseconds kFar = std::chrono::hours(24 * 365 * 30);
  return Clock::now() + std::min(d, kFar);
}

}  // namespace saga

// ---- Set-up ----

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

Status SagaEngine::Impl::AwaitReservationLocked(std::unique_lock<std::mutex>* l,
                                                const std::string& id) {
  for (;;) {
    Status s = CheckOpenLocked();
    if (!s.ok()) return s;
    if (!starting_.count(id)) return Status::OK();
    settle_cv_.wait(*l);
  }
}

void SagaEngine::Impl::EndReservationLocked(const std::string& id) {
  starting_.erase(id);
  SettledLocked(id);
}

void SagaEngine::Impl::ActivateLocked(const std::string& id, std::shared_ptr<const Def> def,
                                      Record r, int64_t next_attempt_ms) {
  auto inst = std::make_shared<Instance>();
  inst->id = id;
  inst->def = std::move(def);
  inst->rec = std::make_shared<const Record>(std::move(r));
  active_[id] = inst;
  ScheduleLocked(inst, next_attempt_ms);
}

void SagaEngine::Impl::Notify(std::unique_lock<std::mutex>* l, bool is_stuck, SagaInfo info) {
  l->unlock();
  if (is_stuck && opt_.on_stuck) opt_.on_stuck(info);
  if (!is_stuck && opt_.on_finished) opt_.on_finished(info);
  l->lock();
  notifying_.erase(notifying_.find(info.id));
  SettledLocked(info.id);
}

// ---- Starting ----

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
  s = AwaitReservationLocked(&l, key);
  if (!s.ok()) return s;
  if (auto it = active_.find(key); it != active_.end()) return same(*it->second->rec);
  starting_.insert(key);
  l.unlock();
  auto release = [&] {
    l.lock();
    EndReservationLocked(key);
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
  ActivateLocked(key, def, std::move(r), 0);
  return true;
}

// ---- Status and shutdown ----

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
  // Threads outside a handler run no user code and leave promptly: wait for
  // them whatever the timeout, so that only threads still in a handler are
  // abandoned (and counted as such).
  exit_cv_.wait(l, [&] { return threads_ == in_handler_; });
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
  if (attached_) {
    store_->metrics()->SetSagaSource(nullptr);
    store_->DetachSagaEngine();
  }
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
