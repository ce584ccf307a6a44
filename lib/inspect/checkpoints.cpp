// inspect: subscription checkpoints and their lag behind the log.
#include "evstore/inspect.hpp"
#include "format/checkpoint_record.hpp"
#include "inspect/read_view.hpp"

namespace evstore::inspect {

Status ListCheckpoints(const Store& store,
                       const std::function<bool(const CheckpointStatus&)>& visit,
                       uint64_t* log_end) {
  ReadView view(store);
  if (!view.status().ok()) return view.status();
  // The end and the checkpoints come from one snapshot: a checkpoint is
  // written in the same commit group as, or after, the events it covers, so
  // a sound one never lies past this end.
  const uint64_t end = LogEnd(view);
  if (log_end != nullptr) *log_end = end;
  auto it = view.Cursor(internal::kCfCheckpoints);
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    CheckpointStatus c;
    c.name = std::string(it->key());
    format::CheckpointFields f;
    Status ds = format::DecodeCheckpoint(c.name, it->value(), &f);
    if (!ds.ok()) {
      c.state = CheckpointStatus::State::kDamaged;
      c.problem = std::string(ds.message());
    } else {
      c.position = f.position;
      c.updated_ms = f.updated_ms;
      if (f.position > end) {
        c.state = CheckpointStatus::State::kBeyondEnd;
        c.problem = "position " + std::to_string(f.position) +
                    " is beyond the end of the log (the next event gets " + std::to_string(end) +
                    ")";
      } else {
        c.lag = end - f.position;
      }
    }
    if (!visit(c)) return Status::OK();
  }
  if (!it->status().ok()) return it->status();
  return Status::OK();
}

}  // namespace evstore::inspect
