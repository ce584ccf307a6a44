// SubscriptionImpl and PushImpl: the state behind evstore::Subscription and
// evstore::PushSubscription (include/evstore/subscription.hpp).
//
// A subscription is a cursor over the published log: `next_` is the first
// position not yet delivered. Each read creates iterators bounded by what is
// published at that moment, takes up to max_batch selected events at or
// after next_, and moves next_ past them (or to the end of the published log
// when none is left). When nothing is left it waits, outside the store's
// gate, for the commit pipeline to publish more (StoreImpl::WaitVisible).
#ifndef EVSTORE_LIB_LOG_SUBSCRIPTION_IMPL_HPP_
#define EVSTORE_LIB_LOG_SUBSCRIPTION_IMPL_HPP_

#include <atomic>
#include <memory>
#include <mutex>
#include <thread>

#include "evstore/subscription.hpp"
#include "log/store_impl.hpp"

namespace evstore::internal {

// InvalidArgument unless `name` is 1..256 bytes of UTF-8 without NUL.
Status ValidCheckpointName(std::string_view name);
// InvalidArgument naming what is wrong with `o`.
Status ValidateSubscribeOptions(const SubscribeOptions& o, const Options& store_options);

class SubscriptionImpl {
 public:
  // Validates `o`, resolves where delivery starts (the checkpoint, or
  // `from`), and returns the subscription.
  static Result<Subscription> Make(std::shared_ptr<StoreImpl> store, const SubscribeOptions& o);
  static Result<std::unique_ptr<SubscriptionImpl>> Create(std::shared_ptr<StoreImpl> store,
                                                          const SubscribeOptions& o);

  ~SubscriptionImpl();
  Result<Delivery> Next(std::chrono::milliseconds timeout);
  // Next into `d`, reusing the storage of the events it holds.
  Status NextInto(Delivery* d, std::chrono::milliseconds timeout);
  Status Checkpoint(std::optional<uint64_t> position);
  void Stop();
  uint64_t position() const { return next_.load(std::memory_order_acquire); }

 private:
  SubscriptionImpl(std::shared_ptr<StoreImpl> store, const SubscribeOptions& o, uint64_t next);
  // Reads up to max_batch selected events from next_, bounded by `end`
  // (what was published when the read began); moves next_ past them.
  Status ReadBatch(uint64_t end, std::vector<RecordedEvent>* out);
  Status ReadStream(uint64_t end, std::vector<RecordedEvent>* out);
  Status ReadMerged(uint64_t end, std::vector<RecordedEvent>* out);

  const std::shared_ptr<StoreImpl> store_;
  const SubscribeOptions o_;
  std::atomic<uint64_t> next_;
  uint64_t delivered_ = 0;  // the position of the last delivery (checkpoint bound)
  bool live_ = false;       // caught up, and said so
  // Stream subscriptions: the next version to deliver, once the stream
  // exists and its version at next_ is known.
  bool version_known_ = false;
  uint64_t next_version_ = 0;
  std::atomic<bool> stopped_{false};
  std::chrono::steady_clock::time_point last_wake_{};  // see min_wake_interval
  uint64_t metrics_token_ = 0;  // its entry in the store's lag report
};

class PushImpl : public std::enable_shared_from_this<PushImpl> {
 public:
  static Result<std::unique_ptr<PushSubscription>> Make(std::shared_ptr<StoreImpl> store,
                                                        const SubscribeOptions& o,
                                                        DeliveryHandler handler);
  ~PushImpl();
  void Stop();
  Status Wait();
  // Waits for the thread to end (no-op on the thread itself).
  void Join();
  bool done() const;
  uint64_t position() const;

 private:
  PushImpl(std::unique_ptr<SubscriptionImpl> sub, DeliveryHandler handler);
  void Run();

  std::unique_ptr<SubscriptionImpl> sub_;
  DeliveryHandler handler_;
  std::thread thread_;
  mutable std::mutex mu_;
  std::condition_variable done_cv_;
  bool done_ = false;
  Status result_;
  std::atomic<bool> stop_{false};
};

}  // namespace evstore::internal

#endif  // EVSTORE_LIB_LOG_SUBSCRIPTION_IMPL_HPP_
