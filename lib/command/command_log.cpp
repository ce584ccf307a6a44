// The command log (command_log.hpp).
#include "command/command_log.hpp"

#include <vector>

#include "common/time.hpp"
#include "common/utf8.hpp"
#include "evstore/store.hpp"
#include "log/cf_cursor.hpp"
#include "log/rocks_status.hpp"

namespace evstore::internal {

namespace {
// Retention deletes in commits of this many records.
constexpr size_t kPruneChunk = 512;
}  // namespace

Status ValidCommandName(std::string_view s, const char* what, bool optional) {
  if (s.empty() && optional) return Status::OK();
  if (s.empty() || s.size() > kMaxCommandName || !IsValidName(s))
    return Status::InvalidArgument(std::string("command: ") + what + " must be 1.." +
                                   std::to_string(kMaxCommandName) +
                                   " bytes of UTF-8 without NUL");
  return Status::OK();
}

std::shared_ptr<CommandLog> CommandLog::Of(StoreImpl* store) {
  return std::static_pointer_cast<CommandLog>(store->Attachment(
      "evstore.command_log", [store] { return std::make_shared<CommandLog>(store); }));
}

Status CommandLog::Precheck(const std::string& id, Verdict* verdict) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (claimed_.count(id) != 0) {
      *verdict = Verdict::kInFlight;
      return Status::Busy("command '" + id + "' is being handled by another thread");
    }
  }
  // Only the commit leader claims, one request at a time, so nothing can
  // claim `id` between this read and the claim below.
  std::string value;
  Status s = CfGet(*store_, kCfCommands, format::CommandKey(id), &value);
  if (s.ok()) {
    *verdict = Verdict::kHandled;
    return Status::DuplicateEvent("command '" + id + "' was handled already");
  }
  if (!s.IsNotFound()) {
    *verdict = Verdict::kError;
    return InContext(s, "reading the command log");
  }
  std::lock_guard<std::mutex> l(mu_);
  claimed_.insert(id);
  *verdict = Verdict::kClaimed;
  return Status::OK();
}

void CommandLog::Release(const std::string& id) {
  std::lock_guard<std::mutex> l(mu_);
  claimed_.erase(id);
  cv_.notify_all();
}

void CommandLog::WaitUnclaimed(const std::string& id) {
  std::unique_lock<std::mutex> l(mu_);
  cv_.wait(l, [&] { return claimed_.count(id) == 0; });
}

Result<std::optional<CommandResult>> CommandLog::Lookup(const std::string& id,
                                                        std::optional<uint64_t> fingerprint) {
  std::string key = format::CommandKey(id), value;
  {
    StoreImpl::OpGuard g(store_);
    if (g.closed()) return Status::Closed("store is closed");
    Status s = CfGet(*store_, kCfCommands, key, &value);
    if (s.IsNotFound()) return std::optional<CommandResult>();
    if (!s.ok()) return InContext(s, "reading the command log");
  }
  format::CommandFields f;
  Status ds = format::DecodeCommand(key, value, &f);
  if (!ds.ok()) return ds;
  if (fingerprint && *fingerprint != f.fingerprint)
    return Status::DuplicateEvent("command id '" + id + "' was used by another command (type '" +
                                  f.type + "' on stream '" + f.stream + "')");
  CommandResult r;
  r.from_log = true;
  r.handled_ms = f.handled_ms;
  r.events = f.events;
  if (f.outcome == format::kOutcomeRejected) r.error = DomainError{f.error_code, f.error_message};
  if (f.events > 0) {
    // The events are the stream's versions base .. base + events - 1; the
    // log says where they landed.
    Result<EventIterator> it = store_->ReadStream(f.stream, f.base, Direction::kForward, f.events);
    if (!it.ok())
      return Status::Corruption("command '" + id + "': its events on '" + f.stream +
                                "' cannot be read: " + it.status().ToString());
    uint64_t n = 0;
    for (; it->Valid(); it->Next(), n++) {
      const EventView& e = it->value();
      if (e.version != f.base + n) break;
      if (n == 0) {
        r.append.first_version = e.version;
        r.append.first_position = e.position;
      }
      r.append.last_version = e.version;
      r.append.last_position = e.position;
    }
    if (!it->status().ok()) return it->status();
    if (n != f.events)
      return Status::Corruption("command '" + id + "': " + std::to_string(f.events) +
                                " events recorded at version " + std::to_string(f.base) + " of '" +
                                f.stream + "', " + std::to_string(n) + " found");
  }
  return std::optional<CommandResult>(std::move(r));
}

Result<uint64_t> CommandLog::Prune(const CommandRetention& retention) {
  if (retention.max_age.count() <= 0 && retention.max_count == 0) return uint64_t{0};
  const int64_t cutoff =
      retention.max_age.count() > 0 ? NowMs() - retention.max_age.count() : INT64_MIN;
  const std::string first(1, format::kCommandAgeTag), upper(1, format::kCommandAgeTag + 1);
  uint64_t total = 0;
  std::vector<std::string> doomed;
  {
    StoreImpl::OpGuard g(store_);
    if (g.closed()) return Status::Closed("store is closed");
    if (store_->cf(kCfCommands) == nullptr) return uint64_t{0};
    if (retention.max_count > 0) {
      CfCursor c(*store_, kCfCommands, CfCursorOptions{upper, nullptr, false});
      for (c.Seek(first); c.Valid(); c.Next()) total++;
      if (!c.status().ok()) return InContext(c.status(), "reading the command log");
    }
    // Oldest first: past the age cut, or beyond the count.
    CfCursor c(*store_, kCfCommands, CfCursorOptions{upper, nullptr, false});
    uint64_t seen = 0;
    for (c.Seek(first); c.Valid(); c.Next(), seen++) {
      auto k = format::DecodeCommandAgeKey(c.key());
      if (!k) return Status::Corruption("command log: a malformed age index key");
      bool old = k->handled_ms < cutoff;
      bool excess = retention.max_count > 0 && total - seen > retention.max_count;
      if (!old && !excess) break;
      doomed.emplace_back(c.key());
    }
    if (!c.status().ok()) return InContext(c.status(), "reading the command log");
  }
  uint64_t deleted = 0;
  for (size_t i = 0; i < doomed.size(); i += kPruneChunk) {
    std::vector<ExtraWrite> w;
    for (size_t j = i; j < std::min(doomed.size(), i + kPruneChunk); j++) {
      auto k = format::DecodeCommandAgeKey(doomed[j]);
      w.push_back(ExtraWrite{kCfCommands, format::CommandKey(k->id), {}, true});
      w.push_back(ExtraWrite{kCfCommands, doomed[j], {}, true});
    }
    CommitRequest req;
    req.extra = w;
    req.sync = false;
    Status s = store_->Commit(&req);
    if (!s.ok()) return s;
    deleted += w.size() / 2;
  }
  return deleted;
}

}  // namespace evstore::internal
