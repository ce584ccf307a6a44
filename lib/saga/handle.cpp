// SagaEngine, the public handle: opening an engine on a store (the checks
// that come before any work), and the calls it hands to SagaEngine::Impl.
#include "evstore/store.hpp"
#include "log/store_impl.hpp"
#include "metrics/hub.hpp"
#include "saga/engine_impl.hpp"

namespace evstore {

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
  // Cleared by Shutdown (always before the engine is destroyed), which waits
  // for a metrics call in progress.
  si->metrics()->SetSagaSource([e = impl.get()](SagaMetrics* m) { e->FillMetrics(m); });
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

}  // namespace evstore
