// MetricsHub (hub.hpp).
#include "metrics/hub.hpp"

#include <algorithm>

#include "metrics/rocks_hooks.hpp"

namespace evstore::metrics {

MetricsHub::MetricsHub(const Options& options) : log_(options.log), log_level_(options.log_level) {}

uint64_t MetricsHub::AddReader(std::string kind, std::string name,
                               std::function<uint64_t()> position) {
  std::lock_guard<std::mutex> l(readers_mu_);
  uint64_t token = next_token_++;
  readers_.emplace(token, Reader{std::move(kind), std::move(name), std::move(position)});
  return token;
}

void MetricsHub::RemoveReader(uint64_t token) noexcept {
  std::lock_guard<std::mutex> l(readers_mu_);
  readers_.erase(token);
}

void MetricsHub::ReaderLags(uint64_t end, StoreMetrics* m) const {
  std::lock_guard<std::mutex> l(readers_mu_);
  m->subscriptions = 0;
  m->lags.clear();
  for (const auto& entry : readers_) {
    const Reader& r = entry.second;  // not a structured binding: clang 14 cannot capture one
    if (r.kind == "subscription") m->subscriptions++;
    if (r.name.empty()) continue;
    uint64_t pos = r.position();
    uint64_t lag = pos < end ? end - pos : 0;
    // Readers sharing a name (a checkpoint several subscriptions use) are
    // one series: the largest lag.
    auto same = std::find_if(m->lags.begin(), m->lags.end(), [&](const LagMetrics& x) {
      return x.kind == r.kind && x.name == r.name;
    });
    if (same != m->lags.end()) {
      same->lag_events = std::max(same->lag_events, lag);
    } else {
      m->lags.push_back({r.kind, r.name, lag});
    }
  }
  std::sort(m->lags.begin(), m->lags.end(), [](const LagMetrics& a, const LagMetrics& b) {
    return a.kind != b.kind ? a.kind < b.kind : a.name < b.name;
  });
}

void MetricsHub::SetSagaSource(std::function<void(SagaMetrics*)> source) {
  std::lock_guard<std::mutex> l(saga_mu_);
  saga_source_ = std::move(source);
}

std::optional<SagaMetrics> MetricsHub::Sagas() const {
  std::lock_guard<std::mutex> l(saga_mu_);
  if (!saga_source_) return std::nullopt;
  SagaMetrics s;
  saga_source_(&s);
  s.step = saga_step.Snapshot();
  return s;
}


void MetricsHub::CallLog(LogLevel level, std::string_view msg) const noexcept {
  try {
    log_(level, msg);
  } catch (...) {
  }
}

void MetricsHub::Log(LogLevel level, std::string_view msg) noexcept {
  if (level < log_level_) return;
  if (log_) return CallLog(level, msg);
  std::shared_ptr<rocksdb::Logger> logger;
  {
    std::lock_guard<std::mutex> l(fallback_mu_);
    logger = fallback_;
  }
  if (logger)
    rocksdb::Log(RocksLevel(level), logger, "evstore: %.*s", static_cast<int>(msg.size()), msg.data());
}

void MetricsHub::SetFallbackLog(std::shared_ptr<rocksdb::Logger> logger) {
  std::lock_guard<std::mutex> l(fallback_mu_);
  fallback_ = std::move(logger);
}

}  // namespace evstore::metrics
