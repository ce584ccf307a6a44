// Saga execution: the worker pool, the timer (retry waits and timeouts), the
// retention thread, and the state machine that turns an attempt's outcome
// into the next committed record. See engine_impl.hpp for the concurrency
// model.
#include <algorithm>
#include <bit>
#include <cmath>
#include <random>

#include "common/thread_name.hpp"
#include "common/time.hpp"
#include "log/store_impl.hpp"
#include "metrics/hub.hpp"
#include "saga/engine_impl.hpp"

namespace evstore {

using saga::Clock;
using saga::InstPtr;
using saga::Outcome;
using saga::Record;

namespace {

int64_t BackoffMs(const RetryPolicy& p, uint32_t attempt) {
  double ms = static_cast<double>(p.initial_backoff.count()) *
              std::pow(p.multiplier, static_cast<double>(attempt > 0 ? attempt - 1 : 0));
  ms = std::min(ms, static_cast<double>(p.max_backoff.count()));
  if (p.jitter > 0) {
    thread_local std::mt19937_64 rng(std::random_device{}());
    std::uniform_real_distribution<double> d(1.0 - p.jitter, 1.0 + p.jitter);
    ms *= d(rng);
  }
  return static_cast<int64_t>(std::max(0.0, ms));
}

std::string StepName(const saga::Def& d, int32_t i) { return "'" + d.d.steps[i].name + "'"; }

// The highest step at or below `from` that has a compensation; -1 if none.
int32_t PrevCompensable(const saga::Def& d, int32_t from) {
  for (int32_t j = from; j >= 0; j--)
    if (d.d.steps[j].compensation) return j;
  return -1;
}

bool RequestSpecific(const Status& s) {
  return s.IsWrongExpectedVersion() || s.IsDuplicateEvent() || s.IsInvalidArgument();
}

}  // namespace

// ---- Scheduling ----

void SagaEngine::Impl::EraseTimerLocked(saga::Instance* inst) {
  if (!inst->has_timer) return;
  timers_.erase(inst->timer_key);
  inst->has_timer = false;
}

void SagaEngine::Impl::ScheduleLocked(const InstPtr& inst, int64_t next_attempt_ms) {
  if (stopping_) return;
  int64_t wait = next_attempt_ms - NowMs();
  if (next_attempt_ms == 0 || wait <= 0) {
    ready_.push_back(inst);
    work_cv_.notify_one();
    return;
  }
  inst->token = ++seq_;
  EraseTimerLocked(inst.get());
  inst->timer_key = TimerKey(saga::After(std::chrono::milliseconds(wait)), inst->token);
  inst->has_timer = true;
  bool first = timers_.empty() || inst->timer_key < timers_.begin()->first;
  timers_.emplace(inst->timer_key, TimerEntry{inst, false});
  if (first) timer_cv_.notify_one();
}

void SagaEngine::Impl::FailLocked(const Status& s) {
  if (failed_.ok()) failed_ = s;
  work_cv_.notify_all();
  WakeAllLocked();
}

void SagaEngine::Impl::RecordLatencyLocked(double us) {
  uint64_t v = us < 1 ? 1 : static_cast<uint64_t>(us);
  size_t b = static_cast<size_t>(std::bit_width(v));
  latency_buckets_[std::min<size_t>(b, latency_buckets_.size() - 1)]++;
  latency_sum_us_ += us;
  stats_.step_max_us = std::max(stats_.step_max_us, us);
  store_->metrics()->saga_step.RecordNs(static_cast<uint64_t>(us * 1000));
}

// ---- Threads ----

bool SagaEngine::Impl::SpawnWorkerLocked() {
  ReapWorkersLocked();
  const uint64_t id = ++worker_seq_;
  std::thread t;
  try {
    // The thread holds the engine: a handler may outlive shutdown() and the
    // handle, and its worker still touches the engine when it returns.
    t = std::thread([self = shared_from_this(), id]() mutable {
      NameThisThread("evs-saga");
      self->WorkerLoop(id);
      self.reset();  // may free the engine: nothing of it is touched after this
    });
  } catch (const std::system_error&) {
    return false;
  }
  threads_++;
  live_workers_++;
  try {
    workers_[id].thread = std::move(t);
  } catch (...) {
    t.detach();  // out of memory: it runs all the same, unjoined
  }
  return true;
}

void SagaEngine::Impl::ReapWorkersLocked() {
  for (auto it = workers_.begin(); it != workers_.end();) {
    if (!it->second.exited) {
      ++it;
      continue;
    }
    // It set `exited` under mu_ and takes it no more: the join is short.
    if (it->second.thread.joinable()) it->second.thread.join();
    it = workers_.erase(it);
  }
}

void SagaEngine::Impl::WorkerLoop(uint64_t id) {
  saga::Worker me;
  std::unique_lock<std::mutex> l(mu_);
  for (;;) {
    if (me.abandoned) {
      // The handler outlived its attempt and the pool went on without this
      // thread: rejoin it if it is short of workers, else leave.
      me.abandoned = false;
      abandoned_--;
      if (stopping_ || live_workers_ >= opt_.threads) break;
      live_workers_++;
    }
    work_cv_.wait(l, [&] { return stopping_ || !ready_.empty(); });
    if (stopping_) {
      live_workers_--;
      break;
    }
    InstPtr inst = std::move(ready_.front());
    ready_.pop_front();
    l.unlock();
    while (RunOnce(inst, &me)) {
    }
    inst.reset();
    l.lock();
  }
  if (auto it = workers_.find(id); it != workers_.end()) it->second.exited = true;
  --threads_;
  if (threads_ == 0 || stopping_) exit_cv_.notify_all();
}

void SagaEngine::Impl::TimerLoop() {
  std::unique_lock<std::mutex> l(mu_);
  while (!stopping_) {
    if (timers_.empty()) {
      timer_cv_.wait(l);
      continue;
    }
    auto first = timers_.begin();
    // A copy: the entry may be erased while this thread waits.
    const Clock::time_point at = first->first.first;
    if (Clock::now() < at) {
      timer_cv_.wait_until(l, at);
      continue;
    }
    TimerEntry e = std::move(first->second);
    uint64_t token = first->first.second;
    timers_.erase(first);
    saga::Instance& inst = *e.inst;
    inst.has_timer = false;
    if (inst.token != token || !failed_.ok()) continue;
    if (e.timeout) {
      if (!inst.in_flight) continue;
      // The attempt ran out of time: claim it, so that its late result is
      // discarded, and hand its failure to a worker to commit. This thread
      // never commits: a slow sync must not delay another saga's deadline.
      inst.in_flight = false;
      inst.token = ++seq_;
      if (inst.cancel) inst.cancel->store(true);
      stats_.timeouts++;
      if (inst.runner != nullptr) {
        // Its worker is stuck in the handler until it returns, which may be
        // never: the pool goes on with a replacement, within the bound.
        inst.runner->abandoned = true;
        inst.runner = nullptr;
        live_workers_--;
        abandoned_++;
        if (abandoned_ <= opt_.max_abandoned_threads) (void)SpawnWorkerLocked();
      }
      const uint32_t attempt = inst.rec->started;
      Outcome out;
      out.kind = Outcome::Kind::kTimedOut;
      out.error = "attempt " + std::to_string(attempt) + " timed out after " +
                  std::to_string(inst.def->d.steps[inst.rec->step].timeout.count()) + " ms";
      out.partial = true;  // it may still be having effects
      inst.timed_out = std::move(out);
      inst.timed_out_attempt = attempt;
    }
    ready_.push_back(std::move(e.inst));
    work_cv_.notify_one();
  }
}

void SagaEngine::Impl::MaintenanceLoop() {
  std::unique_lock<std::mutex> l(mu_);
  for (;;) {
    maint_cv_.wait_until(l, saga::After(opt_.retention_interval), [&] { return stopping_; });
    if (stopping_ || !failed_.ok()) return;
    l.unlock();
    Result<uint64_t> r = Purge();
    l.lock();
    if (!r.ok() && !stopping_) FailLocked(r.status());
  }
}

bool SagaEngine::Impl::RunOnce(const InstPtr& inst, saga::Worker* me) {
  std::unique_lock<std::mutex> l(mu_);
  if (stopping_ || !failed_.ok()) {
    const bool undo = inst->prestarted && failed_.ok();
    inst->prestarted = false;
    l.unlock();
    if (undo) UndoPrestart(inst);
    return false;
  }
  if (inst->timed_out) {
    Outcome out = std::move(*inst->timed_out);
    inst->timed_out.reset();
    const uint32_t attempt = inst->timed_out_attempt;
    l.unlock();
    return Transition(inst, std::move(out), attempt);
  }
  saga::RecordPtr rec = inst->rec;
  if (inst->prestarted) {
    // The transition this worker just committed counted this attempt.
    inst->prestarted = false;
  } else if (rec->started > rec->attempt) {
    // Begun by an earlier run (or given up by shutdown) and never finished.
    stats_.interrupted++;
    l.unlock();
    Outcome out;
    out.kind = Outcome::Kind::kInterrupted;
    out.error = "attempt " + std::to_string(rec->started) +
                " was interrupted: it began but never finished (the process stopped, or the "
                "engine was shut down without waiting for it)";
    out.partial = true;  // it may have had effects
    return Transition(inst, std::move(out), rec->started);
  } else {
    // Count the attempt before its handler runs, so that one that never
    // returns (it crashes the process, or hangs through shutdown) still uses
    // up an attempt. Unsynced: a power cut that loses it only undercounts,
    // and the next synced commit makes it durable anyway.
    l.unlock();
    Record next = *rec;
    next.started = rec->attempt + 1;
    Status s = CommitFenced(inst, &next, {}, /*sync=*/false);
    if (!s.ok()) {
      CommitFailed(s);
      return false;
    }
    rec = std::make_shared<const Record>(std::move(next));
    l.lock();
  }
  const uint32_t attempt = rec->started;
  const saga::Def& def = *inst->def;
  const bool comp = static_cast<SagaState>(rec->state) == SagaState::kCompensating;
  const StepDefinition& sd = def.d.steps[rec->step];
  inst->rec = rec;
  if (!failed_.ok()) return false;  // counted, not run: interrupted at the next open
  uint64_t token = ++seq_;
  inst->token = token;
  inst->in_flight = true;
  inst->runner = me;
  // Shut down meanwhile: the handler still runs (its start is recorded), told
  // to stop at once.
  auto cancel = std::make_shared<std::atomic<bool>>(stopping_);
  inst->cancel = cancel;
  auto deadline = saga::After(sd.timeout);
  EraseTimerLocked(inst.get());
  inst->timer_key = TimerKey(deadline, token);
  inst->has_timer = true;
  bool first = timers_.empty() || inst->timer_key < timers_.begin()->first;
  timers_.emplace(inst->timer_key, TimerEntry{inst, true});
  if (first) timer_cv_.notify_one();
  stats_.in_flight++;
  in_handler_++;
  l.unlock();

  std::string key = inst->id + "/" + sd.name + (comp ? "/compensate" : "");
  StepContext ctx;
  ctx.saga_id = inst->id;
  ctx.definition = def.d.name;
  ctx.step = sd.name;
  ctx.step_index = static_cast<uint32_t>(rec->step);
  ctx.attempt = attempt;
  ctx.compensating = comp;
  ctx.idempotency_key = key;
  ctx.input = rec->input;
  ctx.outputs = rec->outputs;
  ctx.step_names = def.step_names;
  ctx.failure = rec->error;
  ctx.deadline = deadline;
  ctx.cancel = cancel.get();
  const StepHandler& h = comp ? sd.compensation : sd.action;
  auto t0 = Clock::now();
  StepResult r;
  try {
    r = h(ctx);
  } catch (const std::exception& e) {
    // It may have had effects before it threw: like a timed-out attempt,
    // the step is then compensated too.
    r = StepResult::Retry(std::string("handler threw: ") + e.what(), /*partial=*/true);
  } catch (...) {
    r = StepResult::Retry("handler threw a non-standard exception", /*partial=*/true);
  }
  double us = std::chrono::duration<double, std::micro>(Clock::now() - t0).count();

  l.lock();
  stats_.in_flight--;
  in_handler_--;
  if (stopping_) exit_cv_.notify_all();
  RecordLatencyLocked(us);
  if (inst->runner == me) inst->runner = nullptr;
  if (inst->token != token || !inst->in_flight) {
    stats_.late_results_discarded++;  // the timer or shutdown took this attempt over
    return false;
  }
  inst->in_flight = false;
  inst->token = ++seq_;
  EraseTimerLocked(inst.get());
  l.unlock();

  Outcome out;
  switch (r.kind) {
    case StepResult::Kind::kSuccess: out.kind = Outcome::Kind::kSuccess; break;
    case StepResult::Kind::kRetry: out.kind = Outcome::Kind::kRetry; break;
    case StepResult::Kind::kFail: out.kind = Outcome::Kind::kFail; break;
  }
  out.output = std::move(r.output);
  out.error = std::move(r.error);
  out.partial = r.partial;
  out.events = std::move(r.events);
  // The saga is the conversation its events belong to; the step caused them.
  for (StreamAppend& part : out.events)
    for (EventData& e : part.events) {
      if (e.correlation_id.empty()) e.correlation_id = inst->id;
      if (e.causation_id.empty()) e.causation_id = key;
    }
  return Transition(inst, std::move(out), attempt);
}

// ---- The state machine ----

bool SagaEngine::Impl::Transition(const InstPtr& inst, Outcome out, uint32_t attempt) {
  const saga::Def& def = *inst->def;
  Record next = *inst->rec;
  const int32_t i = next.step;
  const int32_t n = static_cast<int32_t>(def.d.steps.size());
  const StepDefinition& sd = def.d.steps[i];
  const bool comp = static_cast<SagaState>(next.state) == SagaState::kCompensating;
  const bool timed_out = out.kind == Outcome::Kind::kTimedOut;
  const bool interrupted = out.kind == Outcome::Kind::kInterrupted;
  // Lost track of: it may have had effects.
  const bool lost = timed_out || interrupted;
  auto set_state = [&](SagaState s) { next.state = static_cast<uint8_t>(s); };
  auto go_stuck = [&](std::string why) {
    next.stuck_phase = next.state;
    set_state(SagaState::kStuck);
    next.error = std::move(why);
    next.next_attempt_ms = 0;
    next.attempt = attempt;
    AddHistory(&next, SagaEvent::kStuck, i, attempt, next.error);
  };
  auto begin_compensation = [&](std::string why) {
    int32_t top = PrevCompensable(def, next.tainted ? i : i - 1);
    next.error = why;
    next.tainted = false;
    next.attempt = 0;
    next.next_attempt_ms = 0;
    set_state(top < 0 ? SagaState::kCompensated : SagaState::kCompensating);
    AddHistory(&next, SagaEvent::kCompensationStarted, i, attempt, std::move(why));
    if (top < 0) {
      AddHistory(&next, SagaEvent::kCompensated, -1, 0, {});
    } else {
      next.step = top;
    }
  };
  auto schedule_retry = [&](const RetryPolicy& p, SagaEvent e) {
    next.attempt = attempt;
    next.next_attempt_ms = NowMs() + BackoffMs(p, attempt);
    AddHistory(&next, e, i, attempt, out.error);
  };

  std::vector<StreamAppend> events;
  if (!comp) {
    switch (out.kind) {
      case Outcome::Kind::kSuccess:
        next.outputs.resize(static_cast<size_t>(i));
        next.outputs.push_back(std::move(out.output));
        next.tainted = false;
        next.attempt = 0;
        next.next_attempt_ms = 0;
        if (i + 1 == n) {
          set_state(SagaState::kCompleted);
          AddHistory(&next, SagaEvent::kStepCompleted, i, attempt, {});
          AddHistory(&next, SagaEvent::kCompleted, -1, 0, {});
        } else {
          set_state(SagaState::kRunning);
          AddHistory(&next, SagaEvent::kStepCompleted, i, attempt, {});
          next.step = i + 1;
        }
        events = std::move(out.events);
        break;
      case Outcome::Kind::kRetry:
      case Outcome::Kind::kTimedOut:
      case Outcome::Kind::kInterrupted:
        next.tainted = next.tainted || out.partial || lost;
        if (attempt < sd.retry.max_attempts) {
          set_state(SagaState::kRunning);
          schedule_retry(sd.retry, timed_out     ? SagaEvent::kStepTimedOut
                                   : interrupted ? SagaEvent::kStepInterrupted
                                                 : SagaEvent::kStepFailed);
          std::lock_guard<std::mutex> l(mu_);
          stats_.step_retries++;
        } else {
          begin_compensation("step " + StepName(def, i) + " failed after " +
                             std::to_string(attempt) + " attempts: " + out.error);
        }
        break;
      case Outcome::Kind::kFail:
        next.tainted = next.tainted || out.partial;
        begin_compensation("step " + StepName(def, i) + " failed: " + out.error);
        break;
    }
  } else {
    switch (out.kind) {
      case Outcome::Kind::kSuccess: {
        AddHistory(&next, SagaEvent::kStepCompensated, i, attempt, {});
        int32_t j = PrevCompensable(def, i - 1);
        next.attempt = 0;
        next.next_attempt_ms = 0;
        if (j < 0) {
          set_state(SagaState::kCompensated);
          AddHistory(&next, SagaEvent::kCompensated, -1, 0, {});
        } else {
          next.step = j;
        }
        events = std::move(out.events);
        break;
      }
      case Outcome::Kind::kRetry:
      case Outcome::Kind::kTimedOut:
      case Outcome::Kind::kInterrupted:
        if (attempt < sd.compensation_retry.max_attempts) {
          schedule_retry(sd.compensation_retry,
                         timed_out     ? SagaEvent::kCompensationTimedOut
                         : interrupted ? SagaEvent::kCompensationInterrupted
                                       : SagaEvent::kCompensationFailed);
          std::lock_guard<std::mutex> l(mu_);
          stats_.step_retries++;
        } else {
          go_stuck("compensation of step " + StepName(def, i) + " failed after " +
                   std::to_string(attempt) + " attempts: " + out.error);
        }
        break;
      case Outcome::Kind::kFail:
        go_stuck("compensation of step " + StepName(def, i) + " failed: " + out.error);
        break;
    }
  }
  // When the next attempt runs right away, on this worker, this commit also
  // counts its start: the common path needs no commit of its own for that.
  const auto st = static_cast<SagaState>(next.state);
  const bool prestart = !IsFinal(st) && st != SagaState::kStuck && next.next_attempt_ms == 0;
  next.started = next.attempt + (prestart ? 1 : 0);
  return CommitTransition(inst, std::move(next), std::move(events), attempt);
}

Status SagaEngine::Impl::CommitFenced(const InstPtr& inst, Record* next,
                                      std::span<const StreamAppend> events, bool sync) {
  uint64_t base = inst->rec->revision;
  // Fencing in commit order: the record this change was computed from must
  // still be the current one.
  auto precheck = [this, inst, base]() -> Status {
    std::lock_guard<std::mutex> l(mu_);
    if (inst->rec->revision != base)
      return Status::Aborted("saga '" + inst->id + "' changed since this attempt began");
    return Status::OK();
  };
  return CommitRecord(next, /*is_new=*/false, events, precheck, sync);
}

void SagaEngine::Impl::CommitFailed(const Status& s) {
  std::lock_guard<std::mutex> l(mu_);
  // Fenced: another path owns the saga. Refused by shutdown: the saga
  // resumes at the next open.
  if (s.IsAborted() || writes_closed_) return;
  FailLocked(s);
}

bool SagaEngine::Impl::CommitTransition(const InstPtr& inst, Record next,
                                        std::vector<StreamAppend> events, uint32_t attempt) {
  // The store validates the step's events like any append's.
  Status s = CommitFenced(inst, &next, events, /*sync=*/true);
  if (s.ok()) return Apply(inst, std::move(next));
  if (!events.empty() && RequestSpecific(s)) {
    // The step's events were refused and nothing was written: the attempt
    // failed, retryably (a conflict may clear on the next attempt).
    Outcome out;
    out.kind = Outcome::Kind::kRetry;
    out.error = "the step's events were rejected: " + s.ToString();
    return Transition(inst, std::move(out), attempt);
  }
  CommitFailed(s);
  return false;
}

bool SagaEngine::Impl::Apply(const InstPtr& inst, Record next) {
  std::unique_lock<std::mutex> l(mu_);
  auto state = static_cast<SagaState>(next.state);
  int64_t at = next.next_attempt_ms;
  const bool prestarted = next.started > next.attempt;
  inst->rec = std::make_shared<const Record>(std::move(next));
  if (closed_) return false;  // committed after shutdown let go of the saga
  if (IsFinal(state) || state == SagaState::kStuck) {
    active_.erase(inst->id);
    EraseTimerLocked(inst.get());
    if (state == SagaState::kCompleted) stats_.completed++;
    if (state == SagaState::kCompensated) stats_.compensated++;
    if (state == SagaState::kStuck) stats_.stuck++;
    SettledLocked(inst->id);
    bool is_stuck = state == SagaState::kStuck;
    if ((is_stuck && opt_.on_stuck) || (!is_stuck && opt_.on_finished)) {
      notifying_.insert(inst->id);
      Notify(&l, is_stuck, saga::ToInfo(*inst->rec, false));
    }
    return false;
  }
  if (stopping_) {
    l.unlock();
    if (prestarted) UndoPrestart(inst);
    return false;
  }
  if (at != 0 && at > NowMs()) {
    ScheduleLocked(inst, at);
    return false;
  }
  inst->prestarted = prestarted;
  return true;
}

void SagaEngine::Impl::UndoPrestart(const InstPtr& inst) {
  // Shut down between a transition and the attempt it counted: that attempt
  // will not run, so the next open must not find it interrupted.
  Record next = *inst->rec;
  next.started = next.attempt;
  Status s = CommitFenced(inst, &next, {}, /*sync=*/false);
  if (!s.ok()) {
    CommitFailed(s);
    return;
  }
  std::lock_guard<std::mutex> l(mu_);
  inst->rec = std::make_shared<const Record>(std::move(next));
}

}  // namespace evstore
