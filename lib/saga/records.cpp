// Saga persistence: committing a record with the index entries its state
// implies (and, for a step, the events it emits) through the log's commit
// pipeline, the write gate shutdown closes, reading a record, and its
// history. The key layout is in format/saga_record.hpp and docs/format.md.
#include <array>
#include <vector>

#include "common/time.hpp"
#include "log/cf_cursor.hpp"
#include "log/rocks_status.hpp"
#include "log/store_impl.hpp"
#include "saga/engine_impl.hpp"
#include "saga/saga_cf.hpp"

namespace evstore {

using internal::ExtraWrite;
using internal::kCfSagas;
using saga::Def;
using saga::Erase;
using saga::Put;
using saga::Record;

namespace saga {

Status CheckShape(const Record& r, const Def& d) {
  size_t n = d.d.steps.size();
  if (r.step < 0 || static_cast<size_t>(r.step) >= n || r.outputs.size() > n)
    return Status::Corruption("saga record '" + r.id + "': step " + std::to_string(r.step) +
                              " does not fit definition '" + r.definition + "'");
  return Status::OK();
}

}  // namespace saga

Status SagaEngine::Impl::BeginWrite() {
  std::lock_guard<std::mutex> l(mu_);
  if (writes_closed_) return Status::Closed("saga engine is shut down");
  writes_++;
  return Status::OK();
}

void SagaEngine::Impl::EndWrite() {
  std::lock_guard<std::mutex> l(mu_);
  if (--writes_ == 0) exit_cv_.notify_all();
}

Status SagaEngine::Impl::CommitRecord(Record* next, bool is_new,
                                      std::span<const StreamAppend> events,
                                      std::function<Status()> precheck, bool sync) {
  next->revision++;
  next->updated_ms = NowMs();
  std::array<ExtraWrite, 3> w;
  size_t n = 0;
  w[n] = Put(next->id);
  format::EncodeSagaRecord(*next, &w[n++].value);
  // The indexes change with the record, in the same batch.
  if (is_new) w[n++] = Put(format::SagaOpenKey(next->id));
  if (IsFinal(static_cast<SagaState>(next->state))) {
    w[n++] = Erase(format::SagaOpenKey(next->id));
    w[n++] = Put(format::SagaFinishedKey(next->updated_ms, next->id));
  }
  std::vector<internal::PartRef> parts;
  parts.reserve(events.size());
  for (const StreamAppend& p : events)
    parts.push_back(internal::PartRef{p.stream, p.expected, p.events});
  internal::CommitRequest req;
  req.parts = parts;
  req.extra = std::span<const ExtraWrite>(w.data(), n);
  req.precheck = std::move(precheck);
  req.sync = sync;
  Status s = BeginWrite();
  if (!s.ok()) return s;
  s = store_->Commit(&req);
  EndWrite();
  return s;
}

Status SagaEngine::Impl::CommitWrites(std::span<const ExtraWrite> writes, bool sync) {
  internal::CommitRequest req;
  req.extra = writes;
  req.sync = sync;
  Status s = BeginWrite();
  if (!s.ok()) return s;
  s = store_->Commit(&req);
  EndWrite();
  return s;
}

Status SagaEngine::Impl::ReadRecord(std::string_view id, Record* out) {
  internal::StoreImpl::OpGuard g(store_.get());
  if (g.closed()) return Status::Closed("store is closed");
  std::string v;
  Status s = internal::CfGet(*store_, kCfSagas, id, &v);
  if (s.IsNotFound()) return Status::NotFound("no saga '" + std::string(id) + "'");
  if (!s.ok()) return internal::InContext(s, "reading saga '" + std::string(id) + "'");
  return format::DecodeSagaRecord(id, v, out);
}

void SagaEngine::Impl::AddHistory(Record* r, SagaEvent e, int32_t step, uint32_t attempt,
                                  std::string text) const {
  r->history.push_back(format::SagaHistoryData{NowMs(), static_cast<uint8_t>(e), r->state,
                                               step, attempt, std::move(text)});
  if (r->history.size() > opt_.max_history) {
    size_t drop = r->history.size() - opt_.max_history;
    r->history.erase(r->history.begin(), r->history.begin() + static_cast<ptrdiff_t>(drop));
    r->history_dropped += static_cast<uint32_t>(drop);
  }
}

}  // namespace evstore
