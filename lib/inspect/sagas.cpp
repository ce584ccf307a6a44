// inspect: saga records (lib/format/saga_record.hpp).
#include <algorithm>

#include "evstore/inspect.hpp"
#include "evstore/saga.hpp"
#include "format/saga_record.hpp"
#include "inspect/read_view.hpp"
#include "inspect/text.hpp"

namespace evstore::inspect {

namespace {

SagaInfo ToInfo(format::SagaRecordData&& r) {
  SagaInfo s;
  s.id = std::move(r.id);
  s.definition = std::move(r.definition);
  s.version = r.version;
  s.state = SagaStateName(static_cast<SagaState>(r.state));
  s.step = r.step;
  s.attempt = r.attempt;
  s.started = r.started;
  s.next_attempt_ms = r.next_attempt_ms;
  s.tainted = r.tainted;
  s.resolved = r.resolved;
  s.error = std::move(r.error);
  s.created_ms = r.created_ms;
  s.updated_ms = r.updated_ms;
  s.revision = r.revision;
  s.input = std::move(r.input);
  s.outputs = std::move(r.outputs);
  s.history_dropped = r.history_dropped;
  for (auto& h : r.history) {
    s.history.push_back(SagaHistoryItem{h.time_ms, SagaEventName(static_cast<SagaEvent>(h.kind)),
                                        SagaStateName(static_cast<SagaState>(h.state)), h.step,
                                        h.attempt, std::move(h.text)});
  }
  return s;
}

}  // namespace

Status ListSagas(const Store& store, std::string_view from_id,
                 const std::function<bool(const SagaInfo&)>& visit) {
  ReadView view(store);
  if (!view.status().ok()) return view.status();
  auto it = view.Cursor(internal::kCfSagas);
  // Records sort after the engine's index keys (format/saga_record.hpp).
  std::string from = std::max(std::string(from_id), std::string(format::kSagaRecordsStart));
  for (it->Seek(from); it->Valid(); it->Next()) {
    format::SagaRecordData r;
    Status s = format::DecodeSagaRecord(it->key(), it->value(), &r);
    if (!s.ok()) return s;
    if (!visit(ToInfo(std::move(r)))) return Status::OK();
  }
  if (!it->status().ok()) return InContext(it->status(), "reading sagas");
  return Status::OK();
}

Result<SagaInfo> GetSaga(const Store& store, std::string_view id) {
  ReadView view(store);
  if (!view.status().ok()) return view.status();
  std::string value;
  Status gs = format::IsSagaIndexKey(id) ? Status::NotFound("an index key names no saga")
                                         : view.Get(internal::kCfSagas, id, &value);
  if (gs.IsNotFound()) {
    std::string msg = "no saga \"";
    AppendEscaped(id, &msg);
    return Status::NotFound(msg + "\"");
  }
  if (!gs.ok()) return InContext(gs, "reading sagas");
  format::SagaRecordData r;
  Status s = format::DecodeSagaRecord(id, value, &r);
  if (!s.ok()) return s;
  return ToInfo(std::move(r));
}

}  // namespace evstore::inspect
