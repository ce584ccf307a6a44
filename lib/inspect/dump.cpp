// inspect: Dump and the shared event rendering.
#include "evstore/inspect.hpp"
#include "format/keys.hpp"
#include "format/record.hpp"
#include "inspect/read_view.hpp"
#include "inspect/text.hpp"

namespace evstore::inspect {

namespace {

// Renders the record stored at `position` (absent records are corrupt too:
// an index points at them).
void RenderRecord(uint64_t position, std::string_view value, const DumpOptions& o,
                  std::string* scratch, std::string* out, DumpSummary* sum) {
  EventView e;
  Status s = format::DecodeEvent(position, value, scratch, &e);
  if (s.ok()) {
    FormatEvent(e, o.format, value, out);
  } else {
    FormatCorrupt(position, s.message(), o.format, value, out);
    sum->corrupt++;
  }
  sum->events++;
}

}  // namespace

Status Dump(const Store& store, const DumpOptions& o,
            const std::function<void(std::string_view)>& sink, DumpSummary* summary) {
  DumpSummary local;
  DumpSummary* sum = summary ? summary : &local;
  *sum = DumpSummary();
  if (o.from > o.to) return Status::InvalidArgument("dump: --from is after --to");
  ReadView view(store);
  if (!view.status().ok()) return view.status();
  std::string scratch, out;
  if (o.stream.empty()) {
    uint64_t total = 0;
    if (o.to != kEnd) total = o.to - o.from + 1;
    if (o.limit != kNoLimit) total = total ? std::min(total, o.limit) : o.limit;
    Ticker ticker(o.progress, "events", total);
    auto it = view.Cursor(internal::kCfEvents);
    for (it->Seek(format::Be64(o.from).view()); it->Valid() && sum->events < o.limit; it->Next()) {
      out.clear();
      auto pos = format::DecodeEventKey(it->key());
      if (!pos) {
        std::string msg = "malformed key in events: ";
        AppendHex(it->key(), &msg);
        FormatCorrupt(0, msg, o.format, it->value(), &out);
        sum->corrupt++;
        sum->events++;
      } else {
        if (*pos > o.to) break;
        RenderRecord(*pos, it->value(), o, &scratch, &out, sum);
      }
      sink(out);
      ticker.Tick();
    }
    if (!it->status().ok()) return InContext(it->status(), "reading events");
    ticker.Finish();
    return Status::OK();
  }

  std::string rec;
  Status rs = view.Get(internal::kCfStreams, o.stream, &rec);
  if (rs.IsNotFound()) {
    std::string msg = "no stream \"";
    AppendEscaped(o.stream, &msg);
    return Status::NotFound(msg + "\"");
  }
  if (!rs.ok()) return InContext(rs, "reading streams");
  format::StreamFields f{};
  Status ds = format::DecodeStream(o.stream, rec, &scratch, &f);
  if (!ds.ok()) return ds;
  uint64_t sid = f.stream_id;
  std::string upper;
  if (sid != UINT64_MAX) upper = format::StreamIndexKey(sid + 1, 0).view();
  auto it = view.Cursor(internal::kCfStreamIndex, std::move(upper));
  Ticker ticker(o.progress, "events", 0);
  std::string value;
  for (it->Seek(format::StreamIndexKey(sid, o.from).view()); it->Valid() && sum->events < o.limit;
       it->Next()) {
    out.clear();
    auto k = format::DecodeStreamIndexKey(it->key());
    if (!k || k->stream_id != sid) break;
    if (k->version > o.to) break;
    auto pos = format::DecodePositionValue(it->value());
    if (!pos) {
      FormatCorrupt(0, "stream_index entry of version " + std::to_string(k->version) +
                           " has a malformed value",
                    o.format, std::string_view(), &out);
      sum->corrupt++;
      sum->events++;
    } else {
      Status gs = view.Get(internal::kCfEvents, format::EventKey(*pos).view(), &value);
      if (gs.IsNotFound()) {
        FormatCorrupt(*pos, "stream_index entry of version " + std::to_string(k->version) +
                                " points at a missing event",
                      o.format, std::string_view(), &out);
        sum->corrupt++;
        sum->events++;
      } else if (!gs.ok()) {
        return InContext(gs, "reading events");
      } else {
        RenderRecord(*pos, value, o, &scratch, &out, sum);
      }
    }
    sink(out);
    ticker.Tick();
  }
  if (!it->status().ok()) return InContext(it->status(), "reading stream_index");
  ticker.Finish();
  return Status::OK();
}

}  // namespace evstore::inspect
