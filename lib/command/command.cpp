// Command handling: load, decide, append with the loaded version, retry
// conflicts, and the command log's at-most-once (command.hpp; the log's
// mechanics are in command_log.cpp).
#include <random>
#include <shared_mutex>
#include <thread>
#include <unordered_map>

#include "command/aggregate_impl.hpp"
#include "command/command_log.hpp"
#include "common/thread_name.hpp"
#include "common/time.hpp"
#include "evstore/command.hpp"
#include "evstore/store.hpp"

namespace evstore {

using internal::CommandLog;

namespace {

Status ValidateCommand(const Command& c, const Options& o) {
  Status s = internal::ValidCommandName(c.type, "type", false);
  if (s.ok()) s = internal::ValidCommandName(c.id, "id", true);
  if (s.ok()) s = internal::ValidCommandName(c.correlation_id, "correlation id", true);
  if (!s.ok()) return s;
  if (c.payload.size() > o.max_event_bytes)
    return Status::InvalidArgument("command: payload of " + std::to_string(c.payload.size()) +
                                   " bytes is over max_event_bytes");
  return Status::OK();
}

Status ValidateDecision(const Decision& d, const Command& c) {
  if (d.error) {
    Status s = internal::ValidCommandName(d.error->code, "domain error code", false);
    if (!s.ok()) return s;
    if (d.error->message.size() > kMaxDomainMessage)
      return Status::InvalidArgument("command: domain error message over " +
                                     std::to_string(kMaxDomainMessage) + " bytes");
    return Status::OK();
  }
  if (!c.id.empty())
    for (const EventData& e : d.events)
      if (!e.id.is_nil())
        return Status::InvalidArgument(
            "command '" + c.id +
            "': decided events must not carry ids (the command id makes it idempotent)");
  return Status::OK();
}

// The jittered backoff before try `tries + 1`.
std::chrono::microseconds Backoff(const CommandOptions& o, uint32_t tries, std::mt19937_64& rng) {
  double d = static_cast<double>(o.initial_backoff.count());
  for (uint32_t i = 1; i < tries && d < static_cast<double>(o.max_backoff.count()); i++) d *= 2;
  d = std::min(d, static_cast<double>(o.max_backoff.count()));
  double jitter = std::clamp(o.jitter, 0.0, 1.0);
  std::uniform_real_distribution<double> u(1.0 - jitter, 1.0);
  return std::chrono::microseconds(static_cast<int64_t>(d * u(rng)));
}

std::mt19937_64& Rng() {
  thread_local std::mt19937_64 rng(std::random_device{}());
  return rng;
}

}  // namespace

Result<CommandResult> HandleUntyped(UntypedAggregate& aggregate, const Command& command,
                                    const UntypedDecide& decide, const CommandOptions& options) {
  UntypedAggregate::Impl* agg = aggregate.impl();
  internal::StoreImpl* store = agg->store();
  if (!decide) return Status::InvalidArgument("command: decide is empty");
  if (options.max_tries == 0) return Status::InvalidArgument("command: max_tries must be at least 1");
  Status v = ValidateCommand(command, store->options());
  if (!v.ok()) return v;
  const bool logged = !command.id.empty();
  std::shared_ptr<CommandLog> log = logged ? CommandLog::Of(store) : nullptr;
  const uint64_t fingerprint =
      format::CommandFingerprint(command.type, command.stream, command.payload);

  for (uint32_t tries = 1;; tries++) {
    if (logged) {
      auto prior = log->Lookup(command.id, fingerprint);
      if (!prior.ok()) return prior.status();
      if (prior->has_value()) return std::move(**prior);
    }
    Result<UntypedAggregate::Loaded> loaded = agg->Load(command.stream);
    if (!loaded.ok()) return loaded.status();

    Decision d;
    try {
      d = decide(loaded->state.get(), command);
    } catch (const std::exception& e) {
      return Status::Aborted("command '" + command.type + "': decide threw: " + e.what());
    } catch (...) {
      return Status::Aborted("command '" + command.type + "': decide threw an exception");
    }
    v = ValidateDecision(d, command);
    if (!v.ok()) return v;
    const std::string& correlation = command.correlation_id.empty() ? command.id : command.correlation_id;
    for (EventData& e : d.events) {
      if (e.correlation_id.empty()) e.correlation_id = correlation;
      if (e.causation_id.empty()) e.causation_id = command.id;
    }

    CommandResult result;
    result.tries = tries;
    result.error = d.error;
    const bool append = !d.error && !d.events.empty();
    if (!logged && !append) return result;

    internal::PartRef part{command.stream,
                           loaded->version < 0 ? ExpectedVersion::NoStream()
                                               : ExpectedVersion::Exact(static_cast<uint64_t>(loaded->version)),
                           d.events};
    internal::CommitRequest req;
    if (append) req.parts = std::span<const internal::PartRef>(&part, 1);
    std::vector<internal::ExtraWrite> extra;
    CommandLog::Verdict verdict = CommandLog::Verdict::kError;
    if (logged) {
      format::CommandFields f;
      f.outcome = d.error ? format::kOutcomeRejected : format::kOutcomeAccepted;
      f.tries = tries;
      f.handled_ms = NowMs();
      f.fingerprint = fingerprint;
      f.base = static_cast<uint64_t>(loaded->version + 1);
      f.events = append ? d.events.size() : 0;
      f.type = command.type;
      f.stream = command.stream;
      if (d.error) {
        f.error_code = d.error->code;
        f.error_message = d.error->message;
      }
      std::string key = format::CommandKey(command.id);
      extra.push_back(internal::ExtraWrite{internal::kCfCommands, key, format::EncodeCommand(key, f), false});
      extra.push_back(internal::ExtraWrite{internal::kCfCommands,
                                           format::CommandAgeKey(f.handled_ms, command.id), {}, false});
      req.extra = extra;
      req.precheck = [&log, &command, &verdict] { return log->Precheck(command.id, &verdict); };
      result.handled_ms = f.handled_ms;
    }
    Status s = store->Commit(&req);
    if (verdict == CommandLog::Verdict::kClaimed) log->Release(command.id);
    if (s.ok()) {
      if (append) {
        result.events = d.events.size();
        result.append = req.results[0];
      }
      return result;
    }
    if (verdict == CommandLog::Verdict::kHandled) continue;  // the lookup answers
    if (verdict == CommandLog::Verdict::kInFlight) {
      log->WaitUnclaimed(command.id);
      continue;
    }
    if (!s.IsWrongExpectedVersion() || tries >= options.max_tries) return s;
    std::this_thread::sleep_for(Backoff(options, tries, Rng()));
  }
}

Result<CommandResult> LookupCommand(Store& store, std::string_view id) {
  internal::StoreImpl* impl = internal::StoreAccess::Impl(store);
  if (impl == nullptr) return Status::Closed("store handle was moved from");
  Status v = internal::ValidCommandName(id, "id", false);
  if (!v.ok()) return v;
  auto r = CommandLog::Of(impl)->Lookup(std::string(id), std::nullopt);
  if (!r.ok()) return r.status();
  if (!r->has_value()) return Status::NotFound("no command '" + std::string(id) + "' in the log");
  return std::move(**r);
}

Result<uint64_t> PruneCommandLog(Store& store, const CommandRetention& retention) {
  internal::StoreImpl* impl = internal::StoreAccess::Impl(store);
  if (impl == nullptr) return Status::Closed("store handle was moved from");
  return CommandLog::Of(impl)->Prune(retention);
}

// ---- CommandBus ----

class [[gnu::visibility("hidden")]] CommandBus::Impl {
 public:
  struct Handler {
    std::shared_ptr<UntypedAggregate> aggregate;
    UntypedDecide decide;
  };

  Impl(std::shared_ptr<internal::StoreImpl> store, CommandBusOptions o)
      : store_(std::move(store)), o_(std::move(o)) {}
  ~Impl() {
    {
      std::lock_guard<std::mutex> l(stop_mu_);
      stop_ = true;
    }
    stop_cv_.notify_all();
    if (retention_.joinable()) retention_.join();
  }

  void StartRetention() {
    if (o_.retention.max_age.count() <= 0 && o_.retention.max_count == 0) return;
    retention_ = std::thread([this] {
      NameThisThread("evs-cmd-retain");
      std::unique_lock<std::mutex> l(stop_mu_);
      while (!stop_cv_.wait_for(l, o_.retention_interval, [this] { return stop_; })) {
        l.unlock();
        (void)CommandLog::Of(store_.get())->Prune(o_.retention);
        l.lock();
      }
    });
  }

  const std::shared_ptr<internal::StoreImpl> store_;
  const CommandBusOptions o_;
  mutable std::shared_mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<const Handler>> handlers_;  // guarded by mu_
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stop_ = false;  // guarded by stop_mu_
  std::thread retention_;
};

CommandBus::CommandBus(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CommandBus::~CommandBus() = default;

Result<std::unique_ptr<CommandBus>> CommandBus::Create(Store& store, CommandBusOptions options) {
  internal::StoreImpl* impl = internal::StoreAccess::Impl(store);
  if (impl == nullptr) return Status::Closed("store handle was moved from");
  if (impl->closed()) return Status::Closed("store is closed");
  if (options.handling.max_tries == 0)
    return Status::InvalidArgument("command bus: max_tries must be at least 1");
  if (options.retention_interval.count() <= 0)
    return Status::InvalidArgument("command bus: retention_interval must be positive");
  auto i = std::make_unique<Impl>(impl->shared_from_this(), std::move(options));
  i->StartRetention();
  return std::unique_ptr<CommandBus>(new CommandBus(std::move(i)));
}

Status CommandBus::register_untyped(std::string type, std::shared_ptr<UntypedAggregate> aggregate,
                                    UntypedDecide decide) {
  Status v = internal::ValidCommandName(type, "type", false);
  if (!v.ok()) return v;
  if (!aggregate || !decide)
    return Status::InvalidArgument("command bus: an aggregate and decide are required");
  if (aggregate->impl()->store() != impl_->store_.get())
    return Status::InvalidArgument("command bus: the aggregate is on another store");
  auto h = std::make_shared<const Impl::Handler>(Impl::Handler{std::move(aggregate), std::move(decide)});
  std::unique_lock<std::shared_mutex> l(impl_->mu_);
  if (!impl_->handlers_.emplace(type, std::move(h)).second)
    return Status::InvalidArgument("command bus: a handler for '" + type + "' is registered already");
  return Status::OK();
}

Result<CommandResult> CommandBus::handle(const Command& command) {
  std::shared_ptr<const Impl::Handler> h;
  {
    std::shared_lock<std::shared_mutex> l(impl_->mu_);
    auto it = impl_->handlers_.find(command.type);
    if (it != impl_->handlers_.end()) h = it->second;
  }
  if (!h) return Status::NotFound("no handler for command type '" + command.type + "'");
  return HandleUntyped(*h->aggregate, command, h->decide, impl_->o_.handling);
}

bool CommandBus::has_handler(std::string_view type) const {
  std::shared_lock<std::shared_mutex> l(impl_->mu_);
  return impl_->handlers_.count(std::string(type)) != 0;
}

Result<uint64_t> CommandBus::prune() { return CommandLog::Of(impl_->store_.get())->Prune(impl_->o_.retention); }

}  // namespace evstore
