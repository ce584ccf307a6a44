// Queries of the saga engine: one saga, a page of sagas in a state (the
// index of unfinished sagas, or a scan for finished ones), waiting for
// sagas to settle, and the engine's counters and damaged records.
#include <algorithm>
#include <chrono>
#include <cmath>

#include "log/cf_cursor.hpp"
#include "log/rocks_status.hpp"
#include "log/store_impl.hpp"
#include "saga/engine_impl.hpp"
#include "saga/saga_cf.hpp"

namespace evstore {

using internal::kCfSagas;
using saga::PrefixEnd;
using saga::Record;

namespace saga {

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

Result<SagaPage> SagaEngine::Impl::List(SagaState state, std::string_view after_id,
                                        size_t limit) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (closed_) return Status::Closed("saga engine is shut down");
  }
  SagaPage page;
  if (limit == 0) return page;
  internal::StoreImpl::OpGuard g(store_.get());
  if (g.closed()) return Status::Closed("store is closed");
  // Unfinished sagas are few and indexed; finished ones are scanned.
  const bool indexed = !IsFinal(state);
  std::string start;
  internal::CfCursorOptions co;
  if (indexed) {
    start = format::SagaOpenKey(after_id);
    co.upper = PrefixEnd(format::kSagaOpenPrefix);
  } else {
    start = std::max(std::string(after_id), std::string(format::kSagaRecordsStart));
  }
  internal::CfCursor it(*store_, kCfSagas, std::move(co));
  std::string v;
  Record r;
  for (it.Seek(start); it.Valid(); it.Next()) {
    std::string_view id;
    std::string_view value;
    if (indexed) {
      format::SagaIndexEntry e;
      if (!format::ParseSagaIndexKey(it.key(), &e)) continue;
      id = e.id;
      Status gs = internal::CfGet(*store_, kCfSagas, id, &v);
      if (gs.IsNotFound()) continue;  // retention, or a damaged index: not in any state
      if (!gs.ok()) return internal::InContext(gs, "reading saga '" + std::string(id) + "'");
      value = v;
    } else {
      id = it.key();
      value = it.value();
    }
    if (id == after_id) continue;
    if (!format::DecodeSagaRecord(id, value, &r).ok()) {
      page.damaged.emplace_back(id);
      continue;
    }
    if (static_cast<SagaState>(r.state) != state) continue;
    bool in_flight = false;
    {
      std::lock_guard<std::mutex> l(mu_);
      auto a = active_.find(r.id);
      in_flight = a != active_.end() && a->second->in_flight;
    }
    page.sagas.push_back(saga::ToInfo(r, in_flight));
    if (page.sagas.size() == limit) {
      page.next_after = r.id;
      break;
    }
  }
  if (!it.status().ok()) return internal::InContext(it.status(), "scanning the sagas column family");
  return page;
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

void SagaEngine::Impl::FillMetrics(SagaMetrics* m) const {
  std::lock_guard<std::mutex> l(mu_);
  m->started = stats_.started;
  m->completed = stats_.completed;
  m->compensated = stats_.compensated;
  m->stuck = stats_.stuck;
  m->step_retries = stats_.step_retries;
  m->timeouts = stats_.timeouts;
  m->in_flight = stats_.in_flight;
  for (const auto& [id, inst] : active_) {
    if (!inst->rec) continue;
    switch (static_cast<SagaState>(inst->rec->state)) {
      case SagaState::kPending: m->pending++; break;
      case SagaState::kRunning: m->running++; break;
      case SagaState::kCompensating: m->compensating++; break;
      default: break;
    }
  }
}

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

}  // namespace evstore
