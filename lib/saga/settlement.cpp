// Settling a stuck saga by hand: retry (run it again from where it got
// stuck) or resolve (mark it compensated, with a note).
#include "log/store_impl.hpp"
#include "saga/engine_impl.hpp"

namespace evstore {

using saga::Def;
using saga::Record;

Status SagaEngine::Impl::Retry(std::string_view id) { return SettleByHand(id, false, {}); }

Status SagaEngine::Impl::Resolve(std::string_view id, std::string_view note) {
  return SettleByHand(id, true, note);
}

Status SagaEngine::Impl::SettleByHand(std::string_view id, bool resolve, std::string_view note) {
  std::string key(id);
  std::unique_lock<std::mutex> l(mu_);
  if (Status s = AwaitReservationLocked(&l, key); !s.ok()) return s;
  if (auto it = active_.find(key); it != active_.end())
    return Status::InvalidArgument("saga '" + key + "' is not stuck: it is " +
                                   SagaStateName(static_cast<SagaState>(it->second->rec->state)));
  if (!saga::ValidateSagaId(id).ok()) return Status::NotFound("no saga '" + key + "'");
  starting_.insert(key);
  l.unlock();
  auto release = [&] {
    l.lock();
    EndReservationLocked(key);
  };
  Record r;
  Status s = ReadRecord(id, &r);
  if (!s.ok()) {
    release();
    return s;
  }
  if (static_cast<SagaState>(r.state) != SagaState::kStuck) {
    release();
    return Status::InvalidArgument("saga '" + key + "' is not stuck: it is " +
                                   SagaStateName(static_cast<SagaState>(r.state)));
  }
  std::shared_ptr<const Def> def;
  if (resolve) {
    r.state = static_cast<uint8_t>(SagaState::kCompensated);
    r.resolved = true;
    r.next_attempt_ms = 0;
    AddHistory(&r, SagaEvent::kResolved, r.step, r.attempt, std::string(note));
  } else {
    def = FindDef(r.definition, r.fingerprint);
    if (!def) {
      release();
      return Status::InvalidArgument(MissingDefMessage(r));
    }
    s = saga::CheckShape(r, *def);
    if (!s.ok()) {
      release();
      return s;
    }
    r.state = r.stuck_phase;
    r.attempt = 0;
    r.started = 0;
    r.next_attempt_ms = 0;
    AddHistory(&r, SagaEvent::kRetried, r.step, 0, std::string(note));
  }
  s = CommitRecord(&r, /*is_new=*/false, {}, nullptr);
  release();
  if (!s.ok()) {
    if (!s.IsClosed()) FailLocked(s);
    return s;
  }
  if (stopping_ || closed_) return Status::OK();  // committed; resumes at the next open
  if (resolve) {
    stats_.compensated++;
    if (opt_.on_finished) {
      notifying_.insert(key);
      Notify(&l, false, saga::ToInfo(r, false));
    }
    return Status::OK();
  }
  ActivateLocked(key, def, std::move(r), 0);
  return Status::OK();
}

}  // namespace evstore
