// CommandLog: the durable command log of one store (the `commands` column
// family; format/command_record.hpp) and the ids being committed now.
//
// At most once per id: a command's record is an extra write of the commit
// that appends its events, and that commit's precheck (run by the commit
// leader, one request after another) refuses an id that is recorded already
// or claimed by an earlier request not yet finished. The claim lasts from
// the precheck until the claiming handler's commit has returned; by then
// the record is written (or the commit failed and wrote nothing), so
// whoever finds the id claimed waits for the claim to end and reads the log.
//
// Thread safety: every method may be called from any thread. mu_ guards the
// claims only, never held while reading RocksDB or running user code.
#ifndef EVSTORE_LIB_COMMAND_COMMAND_LOG_HPP_
#define EVSTORE_LIB_COMMAND_COMMAND_LOG_HPP_

#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_set>

#include "evstore/command.hpp"
#include "format/command_record.hpp"
#include "log/store_impl.hpp"

namespace evstore::internal {

class CommandLog {
 public:
  // The log of `store` (one per store, shared by every handler).
  static std::shared_ptr<CommandLog> Of(StoreImpl* store);

  explicit CommandLog(StoreImpl* store) : store_(store) {}

  // What a precheck found.
  enum class Verdict { kClaimed, kHandled, kInFlight, kError };

  // The commit leader's check for command `id` (see above). OK and
  // kClaimed: the caller must Release(id) once its commit has returned.
  Status Precheck(const std::string& id, Verdict* verdict);
  void Release(const std::string& id);
  // Returns once no commit holds a claim on `id`.
  void WaitUnclaimed(const std::string& id);

  // The stored outcome of `id`, nullopt when none. With a fingerprint, a
  // record of another command is DuplicateEvent.
  Result<std::optional<CommandResult>> Lookup(const std::string& id,
                                              std::optional<uint64_t> fingerprint);

  // Deletes records by `retention`; how many.
  Result<uint64_t> Prune(const CommandRetention& retention);

 private:
  StoreImpl* const store_;  // the owner of this attachment: outlives it
  std::mutex mu_;
  std::condition_variable cv_;
  std::unordered_set<std::string> claimed_;  // guarded by mu_
};

// InvalidArgument naming `what` unless `s` is 1..kMaxCommandName bytes of
// UTF-8 without NUL (or empty, when `optional`).
Status ValidCommandName(std::string_view s, const char* what, bool optional);

}  // namespace evstore::internal

#endif  // EVSTORE_LIB_COMMAND_COMMAND_LOG_HPP_
