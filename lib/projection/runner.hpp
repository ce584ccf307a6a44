// ProjectionRunner: the thread behind an evstore::Projection
// (include/evstore/projection.hpp), and StateOverlay, the batch of state
// changes a handler builds.
//
// The runner feeds one instance of the projection's state at a time: the
// serving one, or during a rebuild the new one (the serving one then stays
// as it was, answering queries). It reads the log through a subscription
// from the instance's checkpoint, hands each event to the handler with a
// StateOverlay over the committed state, and commits the overlay together
// with the instance's new checkpoint in one write (not synced on its own:
// after a power loss both come back together, from an earlier point).
#ifndef EVSTORE_LIB_PROJECTION_RUNNER_HPP_
#define EVSTORE_LIB_PROJECTION_RUNNER_HPP_

#include <atomic>
#include <condition_variable>
#include <map>
#include <unordered_map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "evstore/projection.hpp"
#include "log/store_impl.hpp"
#include "log/subscription_impl.hpp"

namespace evstore::internal {

// InvalidArgument unless `name` is 1..256 bytes of UTF-8 without NUL.
Status ValidProjectionName(std::string_view name);

class StateOverlay {
 public:
  StateOverlay(StoreImpl* store, uint64_t instance) : store_(store), instance_(instance) {}
  Result<std::string> Get(std::string_view key);
  Status Put(std::string_view key, std::string_view value);
  Status Erase(std::string_view key);
  void Clear() {
    changes_.clear();
    last_ = nullptr;
  }
  // The changes as writes of the `projections` column family.
  void ToWrites(std::vector<ExtraWrite>* out) const;

 private:
  StoreImpl* const store_;
  const uint64_t instance_;
  // nullopt: erased in this batch.
  using Changes = std::unordered_map<std::string, std::optional<std::string>, StringHash, std::equal_to<>>;
  using Change = Changes::value_type;
  Changes changes_;
  // The entry the last Get found or the last Put wrote (nodes do not move
  // on insertion); null after Clear.
  Change* last_ = nullptr;
};

class ProjectionRunner : public std::enable_shared_from_this<ProjectionRunner> {
 public:
  static Result<std::unique_ptr<Projection>> Start(std::shared_ptr<StoreImpl> store, std::string_view name,
                                                   const ProjectionOptions& options,
                                                   ProjectionHandler handler);
  ~ProjectionRunner();

  ProjectionStatus GetStatus() const;
  Status WaitFor(uint64_t position, std::chrono::milliseconds timeout);
  Status Rebuild();
  void Stop();
  Status Wait();
  void Join();

 private:
  ProjectionRunner(std::shared_ptr<StoreImpl> store, std::string name, const ProjectionOptions& o,
                   ProjectionHandler handler);
  // Reads the stored meta, deletes instances a crash left behind, and
  // creates the first instance or starts a rebuild as needed.
  Status Prepare();
  void Run();
  // Feeds the instance being built or served until it must change (a
  // rebuild began or ended), the runner stops, or an error. OK: go on.
  Status Feed(bool* retry);
  // Commits the first instance, or a new one to build (meta + instance).
  Status BeginInstance();
  // The instance being built has caught up: make it the serving one.
  Status Swap(uint64_t position);
  Status CommitBatch(StateOverlay& overlay, uint64_t position, uint64_t handled);
  bool SleepUnlessStopped(std::chrono::milliseconds d);
  void Finish(Status why, ProjectionStatus::Phase phase);

  const std::shared_ptr<StoreImpl> store_;
  const std::string name_;
  const ProjectionOptions o_;
  const ProjectionHandler handler_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> rebuild_requested_{false};

  mutable std::mutex mu_;  // guards everything below; never held while the handler runs
  std::condition_variable cv_;  // progress, phase changes, stop
  format::ProjectionMeta meta_;
  // The instance fed now, and its committed checkpoint.
  uint64_t feeding_ = 0;
  uint64_t feeding_position_ = 0;
  uint64_t feeding_handled_ = 0;
  uint64_t serving_position_ = 0;
  ProjectionStatus::Phase phase_ = ProjectionStatus::Phase::kStarting;
  uint64_t handled_this_run_ = 0;
  uint64_t retries_ = 0;
  uint32_t consecutive_failures_ = 0;
  uint64_t rebuilds_ = 0;
  std::string last_error_;
  bool done_ = false;
  Status result_;
  // Rate samples: handled_this_run_ at two instants at least a second apart.
  std::chrono::steady_clock::time_point rate_t0_, rate_t1_;
  uint64_t rate_n0_ = 0, rate_n1_ = 0;
  // The subscription being read (so Stop() can wake it).
  std::shared_ptr<SubscriptionImpl> sub_;
  uint64_t metrics_token_ = 0;  // its entry in the store's lag report (Run to Finish)
};

}  // namespace evstore::internal

#endif  // EVSTORE_LIB_PROJECTION_RUNNER_HPP_
