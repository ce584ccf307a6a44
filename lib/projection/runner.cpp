// Projections: the runner thread, the state overlay, and the public
// Projection and ProjectionState handles (include/evstore/projection.hpp).
#include "projection/runner.hpp"

#include <algorithm>

#include "common/thread_name.hpp"
#include "common/time.hpp"
#include "common/utf8.hpp"
#include "metrics/hub.hpp"

namespace evstore {

namespace internal {

namespace {

constexpr size_t kMaxProjectionName = 256;
// How long the feeding loop waits for commits before looking at stop and
// rebuild requests again (both also wake it directly; this is a backstop).
constexpr auto kFeedWait = std::chrono::milliseconds(250);

Status ValidKey(std::string_view key) {
  if (key.empty() || key.size() > kMaxProjectionKey)
    return Status::InvalidArgument("projection state key must be 1.." + std::to_string(kMaxProjectionKey) +
                                   " bytes");
  return Status::OK();
}

Status HandlerFailed(const char* what) {
  return Status::Aborted(std::string("projection handler threw: ") + what);
}

}  // namespace

Status ValidProjectionName(std::string_view name) {
  if (name.empty() || name.size() > kMaxProjectionName || !IsValidName(name))
    return Status::InvalidArgument("projection name must be 1.." + std::to_string(kMaxProjectionName) +
                                   " bytes of UTF-8 without NUL");
  return Status::OK();
}

// ---- StateOverlay ----

Result<std::string> StateOverlay::Get(std::string_view key) {
  Status v = ValidKey(key);
  if (!v.ok()) return v;
  auto it = changes_.find(key);
  if (it != changes_.end()) {
    last_ = &*it;
    if (!it->second) return Status::NotFound("no such key");
    return *it->second;
  }
  auto r = store_->ReadProjectionValue(instance_, key, nullptr);
  if (!r.ok()) return r.status();
  if (!r->has_value()) return Status::NotFound("no such key");
  return std::move(**r);
}

Status StateOverlay::Put(std::string_view key, std::string_view value) {
  Status v = ValidKey(key);
  if (!v.ok()) return v;
  if (value.size() > kMaxProjectionValue)
    return Status::InvalidArgument("projection state value is over " + std::to_string(kMaxProjectionValue) +
                                   " bytes");
  // A handler typically reads a key and then writes it: the read found
  // the entry already.
  Change* c = last_ != nullptr && last_->first == key ? last_ : nullptr;
  if (c == nullptr) {
    auto it = changes_.find(key);
    if (it == changes_.end()) {
      last_ = &*changes_.emplace(std::string(key), std::string(value)).first;
      return Status::OK();
    }
    c = &*it;
  }
  if (c->second)
    c->second->assign(value);
  else
    c->second.emplace(value);
  last_ = c;
  return Status::OK();
}

Status StateOverlay::Erase(std::string_view key) {
  Status v = ValidKey(key);
  if (!v.ok()) return v;
  auto it = changes_.find(key);
  if (it == changes_.end())
    changes_.emplace(std::string(key), std::nullopt);
  else
    it->second.reset();
  return Status::OK();
}

void StateOverlay::ToWrites(std::vector<ExtraWrite>* out) const {
  for (const auto& [key, value] : changes_) {
    ExtraWrite w;
    w.cf = kCfProjections;
    w.key = format::ProjStateKey(instance_, key);
    if (value)
      w.value = *value;
    else
      w.erase = true;
    out->push_back(std::move(w));
  }
}

// ---- ProjectionRunner ----

ProjectionRunner::ProjectionRunner(std::shared_ptr<StoreImpl> store, std::string name,
                                   const ProjectionOptions& o, ProjectionHandler handler)
    : store_(std::move(store)), name_(std::move(name)), o_(o), handler_(std::move(handler)) {}

ProjectionRunner::~ProjectionRunner() {
  // Joinable only when the handler destroyed its own Projection: the thread
  // holds the last reference and ends right after this.
  if (thread_.joinable()) thread_.detach();
}

Result<std::unique_ptr<Projection>> ProjectionRunner::Start(std::shared_ptr<StoreImpl> store,
                                                            std::string_view name,
                                                            const ProjectionOptions& o,
                                                            ProjectionHandler handler) {
  Status s = ValidProjectionName(name);
  if (!s.ok()) return s;
  if (!handler) return Status::InvalidArgument("run_projection: no handler given");
  SubscribeOptions so;
  so.filter = o.filter;
  so.max_batch = o.max_batch;
  s = ValidateSubscribeOptions(so, store->options());
  if (!s.ok()) return Status::InvalidArgument("run_projection: " + std::string(s.message()));
  if (o.retry_initial.count() <= 0 || o.retry_max < o.retry_initial)
    return Status::InvalidArgument("run_projection: retry_initial must be positive and at most retry_max");
  if (store->options().read_only) return Status::InvalidArgument("run_projection: the store is read-only");
  if (store->closed()) return Status::Closed("store is closed");
  if (!store->ClaimProjection(name))
    return Status::Busy("projection '" + std::string(name) + "' is already running in this process");
  // The claim is released on every way out (an error, or an exception such
  // as bad_alloc) until the runner's thread owns it; Finish releases it then.
  struct ClaimGuard {
    StoreImpl* store;
    std::string_view name;
    bool armed = true;
    ~ClaimGuard() {
      if (armed) store->ReleaseProjection(name);
    }
  } claim{store.get(), name};
  std::shared_ptr<ProjectionRunner> r(new ProjectionRunner(store, std::string(name), o, std::move(handler)));
  s = r->Prepare();
  if (!s.ok()) return s;
  // The handle exists before the thread does, so nothing can fail once the
  // thread runs (a failed thread start leaves a handle with no thread).
  std::unique_ptr<Projection> handle(new Projection(r));
  {
    // Run() takes mu_ first: the thread sees thread_ assigned (Wait and Join
    // read it to recognise the handler's own thread).
    std::lock_guard<std::mutex> l(r->mu_);
    r->thread_ = std::thread([self = r] {
      NameThisThread("evs-projection");
      self->Run();
    });
  }
  claim.armed = false;
  return handle;
}

Status ProjectionRunner::Prepare() {
  auto meta = store_->ReadProjectionMeta(name_, nullptr);
  if (!meta.ok()) return meta.status();
  // Instances of this projection that no meta names: a crash interrupted
  // their deletion (after a swap) or their creation.
  std::vector<std::pair<uint64_t, format::ProjectionInstance>> instances;
  Status s = store_->ListProjectionInstances(&instances);
  if (!s.ok()) return s;
  for (const auto& [id, rec] : instances) {
    if (rec.name != name_) continue;
    if (meta->has_value() && (id == (*meta)->active_id || id == (*meta)->building_id)) continue;
    s = store_->EraseProjectionInstance(id);
    if (!s.ok()) return s;
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    if (meta->has_value()) meta_ = **meta;
  }
  if (!meta->has_value()) {
    s = BeginInstance();  // the first instance: serving from the start
    if (!s.ok()) return s;
  } else if (meta_.building_id != 0 && meta_.building_version != o_.version) {
    // A rebuild for another handler version: its state is of no use.
    const uint64_t stale = meta_.building_id;
    format::ProjectionMeta m = meta_;
    m.building_id = 0;
    m.building_version = 0;
    const std::string key = format::ProjMetaKey(name_);
    ExtraWrite w{kCfProjections, key, format::EncodeProjectionMeta(key, m), false};
    CommitRequest req;
    req.extra = std::span<const ExtraWrite>(&w, 1);
    req.sync = false;
    s = store_->Commit(&req);
    if (!s.ok()) return s;
    {
      std::lock_guard<std::mutex> l(mu_);
      meta_ = m;
    }
    s = store_->EraseProjectionInstance(stale);
    if (!s.ok()) return s;
  }
  if (meta_.building_id == 0 && meta_.active_version != o_.version) {
    s = BeginInstance();  // a new handler version: rebuild online
    if (!s.ok()) return s;
  }
  std::lock_guard<std::mutex> l(mu_);
  feeding_ = meta_.building_id != 0 ? meta_.building_id : meta_.active_id;
  for (uint64_t id : {meta_.active_id, feeding_}) {
    auto rec = store_->ReadProjectionInstance(id, nullptr);
    if (!rec.ok()) return rec.status();
    if (!rec->has_value())
      return Status::Corruption("projection '" + name_ + "': the record of instance " + std::to_string(id) +
                                " is missing");
    if (id == meta_.active_id) serving_position_ = (*rec)->position;
    if (id == feeding_) {
      feeding_position_ = (*rec)->position;
      feeding_handled_ = (*rec)->handled;
    }
  }
  phase_ = ProjectionStatus::Phase::kCatchingUp;
  return Status::OK();
}

Status ProjectionRunner::BeginInstance() {
  auto id = store_->AllocateProjectionInstance();
  if (!id.ok()) return id.status();
  format::ProjectionMeta m;
  {
    std::lock_guard<std::mutex> l(mu_);
    m = meta_;
  }
  const bool first = m.active_id == 0;
  if (first) {
    m.active_id = *id;
    m.active_version = o_.version;
  } else {
    m.building_id = *id;
    m.building_version = o_.version;
  }
  const std::string meta_key = format::ProjMetaKey(name_), inst_key = format::ProjInstanceKey(*id);
  format::ProjectionInstance rec;
  rec.version = o_.version;
  rec.updated_ms = NowMs();
  rec.name = name_;
  ExtraWrite w[2] = {{kCfProjections, meta_key, format::EncodeProjectionMeta(meta_key, m), false},
                     {kCfProjections, inst_key, format::EncodeProjectionInstance(inst_key, rec), false}};
  CommitRequest req;
  req.extra = std::span<const ExtraWrite>(w, 2);
  req.sync = false;
  Status s = store_->Commit(&req);
  if (!s.ok()) return s;
  std::lock_guard<std::mutex> l(mu_);
  meta_ = m;
  feeding_ = *id;
  feeding_position_ = 0;
  feeding_handled_ = 0;
  if (first) serving_position_ = 0;
  phase_ = ProjectionStatus::Phase::kCatchingUp;
  cv_.notify_all();
  return Status::OK();
}

Status ProjectionRunner::CommitBatch(StateOverlay& overlay, uint64_t position, uint64_t handled) {
  std::vector<ExtraWrite> writes;
  overlay.ToWrites(&writes);
  uint64_t id, total;
  {
    std::lock_guard<std::mutex> l(mu_);
    id = feeding_;
    total = feeding_handled_ + handled;
  }
  const std::string key = format::ProjInstanceKey(id);
  format::ProjectionInstance rec;
  rec.position = position;
  rec.handled = total;
  rec.updated_ms = NowMs();
  rec.version = o_.version;
  rec.name = name_;
  writes.push_back(ExtraWrite{kCfProjections, key, format::EncodeProjectionInstance(key, rec), false});
  CommitRequest req;
  req.extra = std::span<const ExtraWrite>(writes);
  // State and checkpoint are one write: a power loss takes both back
  // together, so no sync of its own is needed for exactly once.
  req.sync = false;
  Status s = store_->Commit(&req);
  if (!s.ok()) return s;
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard<std::mutex> l(mu_);
  feeding_position_ = position;
  feeding_handled_ = total;
  if (id == meta_.active_id) serving_position_ = position;
  handled_this_run_ += handled;
  if (handled > 0) consecutive_failures_ = 0;
  if (rate_t1_ == std::chrono::steady_clock::time_point()) {
    rate_t0_ = rate_t1_ = now;
    rate_n0_ = rate_n1_ = handled_this_run_ - handled;
  } else if (now - rate_t1_ >= std::chrono::seconds(1)) {
    rate_t0_ = rate_t1_;
    rate_n0_ = rate_n1_;
    rate_t1_ = now;
    rate_n1_ = handled_this_run_;
  }
  cv_.notify_all();
  return Status::OK();
}

Status ProjectionRunner::Swap(uint64_t position) {
  format::ProjectionMeta m;
  {
    std::lock_guard<std::mutex> l(mu_);
    m = meta_;
  }
  const uint64_t old = m.active_id;
  m.active_id = m.building_id;
  m.active_version = m.building_version;
  m.building_id = 0;
  m.building_version = 0;
  const std::string key = format::ProjMetaKey(name_);
  ExtraWrite w{kCfProjections, key, format::EncodeProjectionMeta(key, m), false};
  CommitRequest req;
  req.extra = std::span<const ExtraWrite>(&w, 1);
  req.sync = false;
  Status s = store_->Commit(&req);
  if (!s.ok()) return s;
  {
    std::lock_guard<std::mutex> l(mu_);
    meta_ = m;
    serving_position_ = position;
    cv_.notify_all();
  }
  // Queries that began before the swap read the old instance at a snapshot,
  // so deleting it now does not disturb them.
  Status es = store_->EraseProjectionInstance(old);
  if (!es.ok()) return es;
  std::lock_guard<std::mutex> l(mu_);
  rebuilds_++;  // swapped in, and the old state is gone
  cv_.notify_all();
  return Status::OK();
}

Status ProjectionRunner::Feed(bool* handler_failed) {
  SubscribeOptions so;
  so.filter = o_.filter;
  so.max_batch = o_.max_batch;
  uint64_t id;
  bool building;
  {
    std::lock_guard<std::mutex> l(mu_);
    so.from = feeding_position_;
    id = feeding_;
    building = meta_.building_id != 0;
  }
  auto created = SubscriptionImpl::Create(store_, so);
  if (!created.ok()) return created.status();
  std::shared_ptr<SubscriptionImpl> sub(std::move(created).value());
  {
    std::lock_guard<std::mutex> l(mu_);
    sub_ = sub;
  }
  if (stop_.load(std::memory_order_acquire)) sub->Stop();
  StateOverlay overlay(store_.get(), id);
  ProjectionState state(&overlay);
  // One delivery for the whole feed: each batch is copied into the strings
  // of the one before.
  Delivery delivery;
  Delivery* const d = &delivery;
  for (;;) {
    if (stop_.load(std::memory_order_acquire)) return Status::OK();
    if (rebuild_requested_.exchange(false) && !building) return BeginInstance();
    Status ns = sub->NextInto(d, kFeedWait);
    if (!ns.ok()) return ns;
    switch (d->kind) {
      case Delivery::Kind::kTimedOut: {
        // Live reads that found only events the filter skips move the
        // cursor without a delivery: move the checkpoint too, so wait_for
        // and the lag see every selected event folded in.
        const uint64_t at = sub->position();
        uint64_t committed;
        {
          std::lock_guard<std::mutex> l(mu_);
          committed = feeding_position_;
        }
        if (at > committed) {
          overlay.Clear();
          Status s = CommitBatch(overlay, at, 0);
          if (!s.ok()) return s;
        }
        continue;
      }
      case Delivery::Kind::kFellBehind: {
        std::lock_guard<std::mutex> l(mu_);
        phase_ = ProjectionStatus::Phase::kCatchingUp;
        continue;
      }
      case Delivery::Kind::kCaughtUp: {
        uint64_t committed;
        {
          std::lock_guard<std::mutex> l(mu_);
          committed = feeding_position_;
        }
        if (d->position > committed) {  // events skipped by the filter: move the checkpoint
          overlay.Clear();
          Status s = CommitBatch(overlay, d->position, 0);
          if (!s.ok()) return s;
        }
        if (building) return Swap(d->position);
        std::lock_guard<std::mutex> l(mu_);
        phase_ = ProjectionStatus::Phase::kLive;
        cv_.notify_all();
        continue;
      }
      case Delivery::Kind::kEvents: break;
    }
    overlay.Clear();
    for (const RecordedEvent& e : d->events) {
      Status h;
      try {
        h = handler_(e, state);
      } catch (const std::exception& ex) {
        h = HandlerFailed(ex.what());
      } catch (...) {
        h = HandlerFailed("an exception not derived from std::exception");
      }
      if (!h.ok()) {
        *handler_failed = true;
        return Status::Aborted("projection handler failed at position " + std::to_string(e.position) + ": " +
                               h.ToString());
      }
    }
    Status s = CommitBatch(overlay, d->position, d->events.size());
    if (!s.ok()) return s;
    std::lock_guard<std::mutex> l(mu_);
    if (phase_ == ProjectionStatus::Phase::kRetrying) phase_ = ProjectionStatus::Phase::kCatchingUp;
  }
}

bool ProjectionRunner::SleepUnlessStopped(std::chrono::milliseconds d) {
  std::unique_lock<std::mutex> l(mu_);
  return !cv_.wait_for(l, d, [&] { return stop_.load(std::memory_order_acquire); });
}

void ProjectionRunner::Run() {
  { std::lock_guard<std::mutex> l(mu_); }  // thread_ is assigned (Start)
  try {
    metrics_token_ = store_->metrics()->AddReader("projection", name_, [this] {
      std::lock_guard<std::mutex> l(mu_);
      return serving_position_;
    });
  } catch (...) {
    // Out of memory: the projection runs, unreported.
  }
  auto backoff = o_.retry_initial;
  for (;;) {
    if (stop_.load(std::memory_order_acquire)) return Finish(Status::OK(), ProjectionStatus::Phase::kStopped);
    bool handler_failed = false;
    Status s = Feed(&handler_failed);
    if (stop_.load(std::memory_order_acquire)) return Finish(Status::OK(), ProjectionStatus::Phase::kStopped);
    if (s.ok()) continue;
    if (!handler_failed)  // the store failed or closed: retrying cannot help
      return Finish(s, s.IsClosed() ? ProjectionStatus::Phase::kStopped : ProjectionStatus::Phase::kFailed);
    uint32_t failures;
    {
      std::lock_guard<std::mutex> l(mu_);
      retries_++;
      failures = ++consecutive_failures_;
      if (failures == 1) backoff = o_.retry_initial;
      last_error_ = s.ToString();
      phase_ = ProjectionStatus::Phase::kRetrying;
      cv_.notify_all();
    }
    if (o_.max_retries != 0 && failures >= o_.max_retries)
      return Finish(s, ProjectionStatus::Phase::kFailed);
    SleepUnlessStopped(backoff);
    backoff = std::min(backoff * 2, o_.retry_max);
  }
}

void ProjectionRunner::Finish(Status why, ProjectionStatus::Phase phase) {
  // Not under mu_: the store's metrics take mu_ inside their registry lock.
  store_->metrics()->RemoveReader(metrics_token_);
  metrics_token_ = 0;
  store_->ReleaseProjection(name_);
  std::lock_guard<std::mutex> l(mu_);
  sub_.reset();
  done_ = true;
  result_ = std::move(why);
  phase_ = phase;
  if (!result_.ok()) last_error_ = result_.ToString();
  cv_.notify_all();
}

void ProjectionRunner::Stop() {
  stop_.store(true, std::memory_order_release);
  std::lock_guard<std::mutex> l(mu_);
  if (sub_) sub_->Stop();
  cv_.notify_all();
}

Status ProjectionRunner::Wait() {
  if (thread_.joinable() && std::this_thread::get_id() == thread_.get_id())
    return Status::Busy("wait() called from the projection's own handler");
  std::unique_lock<std::mutex> l(mu_);
  cv_.wait(l, [&] { return done_; });
  return result_;
}

void ProjectionRunner::Join() {
  if (!thread_.joinable() || std::this_thread::get_id() == thread_.get_id()) return;
  thread_.join();
}

Status ProjectionRunner::Rebuild() {
  std::lock_guard<std::mutex> l(mu_);
  if (done_) return Status::Closed("projection '" + name_ + "' has stopped");
  if (meta_.building_id != 0 || rebuild_requested_.load())
    return Status::Busy("projection '" + name_ + "' is already being rebuilt");
  // The feeding loop starts it within one wait (kFeedWait).
  rebuild_requested_.store(true);
  return Status::OK();
}

Status ProjectionRunner::WaitFor(uint64_t position, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> l(mu_);
  bool ok = cv_.wait_for(l, timeout, [&] { return serving_position_ >= position || done_; });
  if (serving_position_ >= position) return Status::OK();
  if (!ok) return Status::TimedOut("projection '" + name_ + "' is at position " +
                                   std::to_string(serving_position_) + ", short of " + std::to_string(position));
  if (!result_.ok()) return result_;
  return Status::Closed("projection '" + name_ + "' has stopped");
}

ProjectionStatus ProjectionRunner::GetStatus() const {
  ProjectionStatus st;
  const auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard<std::mutex> l(mu_);
    st.name = name_;
    st.phase = phase_;
    st.version = meta_.active_version;
    st.position = serving_position_;
    st.events_handled = handled_this_run_;
    st.retries = retries_;
    st.last_error = last_error_;
    st.rebuilding = meta_.building_id != 0;
    st.rebuild_position = st.rebuilding ? feeding_position_ : 0;
    st.rebuilds = rebuilds_;
    if (rate_t1_ != std::chrono::steady_clock::time_point() && now > rate_t0_) {
      double secs = std::chrono::duration<double>(now - rate_t0_).count();
      if (secs > 0) st.events_per_s = static_cast<double>(handled_this_run_ - rate_n0_) / secs;
    }
  }
  const uint64_t end = store_->visible();
  st.lag_events = end > st.position ? end - st.position : 0;
  if (st.lag_events > 0) {
    auto e = store_->ReadEvent(st.position);
    if (e.ok()) st.lag_ms = std::max<int64_t>(0, NowMs() - e->timestamp_ms);
  }
  return st;
}

}  // namespace internal

// ---- Public handles ----

Result<std::string> ProjectionState::get(std::string_view key) { return overlay_->Get(key); }
Status ProjectionState::put(std::string_view key, std::string_view value) { return overlay_->Put(key, value); }
Status ProjectionState::erase(std::string_view key) { return overlay_->Erase(key); }

Projection::Projection(std::shared_ptr<internal::ProjectionRunner> runner) : runner_(std::move(runner)) {}
Projection::~Projection() {
  runner_->Stop();
  runner_->Join();  // from the handler's own thread: it ends after the handler returns
}
ProjectionStatus Projection::status() const { return runner_->GetStatus(); }
Status Projection::wait_for(uint64_t position, std::chrono::milliseconds timeout) {
  return runner_->WaitFor(position, timeout);
}
Status Projection::rebuild() { return runner_->Rebuild(); }
void Projection::stop() { runner_->Stop(); }
Status Projection::wait() { return runner_->Wait(); }

}  // namespace evstore
