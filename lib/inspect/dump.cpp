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
    auto it = view.NewIterator(internal::kCfEvents);
    format::Be64 start(o.from);
    for (it->Seek(rocksdb::Slice(start.buf, 8)); it->Valid() && sum->events < o.limit;
         it->Next()) {
      out.clear();
      auto pos = format::DecodeEventKey(ToView(it->key()));
      if (!pos) {
        std::string msg = "malformed key in events: ";
        AppendHex(ToView(it->key()), &msg);
        FormatCorrupt(0, msg, o.format, ToView(it->value()), &out);
        sum->corrupt++;
        sum->events++;
      } else {
        if (*pos > o.to) break;
        RenderRecord(*pos, ToView(it->value()), o, &scratch, &out, sum);
      }
      sink(out);
      ticker.Tick();
    }
    if (!it->status().ok()) return FromRocks(it->status(), "reading events");
    ticker.Finish();
    return Status::OK();
  }

  std::string rec;
  rocksdb::Status rs = view.Get(internal::kCfStreams, o.stream, &rec);
  if (rs.IsNotFound()) {
    std::string msg = "no stream \"";
    AppendEscaped(o.stream, &msg);
    return Status::NotFound(msg + "\"");
  }
  if (!rs.ok()) return FromRocks(rs, "reading streams");
  format::StreamFields f{};
  Status ds = format::DecodeStream(o.stream, rec, &scratch, &f);
  if (!ds.ok()) return ds;
  uint64_t sid = f.stream_id;
  format::StreamIndexKey upper(sid + 1, 0);
  rocksdb::Slice ub(upper.buf, 16);
  auto it = view.NewIterator(internal::kCfStreamIndex, sid == UINT64_MAX ? nullptr : &ub);
  Ticker ticker(o.progress, "events", 0);
  format::StreamIndexKey start(sid, o.from);
  std::string value;
  for (it->Seek(rocksdb::Slice(start.buf, 16)); it->Valid() && sum->events < o.limit;
       it->Next()) {
    out.clear();
    auto k = format::DecodeStreamIndexKey(ToView(it->key()));
    if (!k || k->stream_id != sid) break;
    if (k->version > o.to) break;
    auto pos = format::DecodePositionValue(ToView(it->value()));
    if (!pos) {
      FormatCorrupt(0, "stream_index entry of version " + std::to_string(k->version) +
                           " has a malformed value",
                    o.format, std::string_view(), &out);
      sum->corrupt++;
      sum->events++;
    } else {
      rocksdb::Status gs = view.Get(internal::kCfEvents, format::EventKey(*pos).view(), &value);
      if (gs.IsNotFound()) {
        FormatCorrupt(*pos, "stream_index entry of version " + std::to_string(k->version) +
                                " points at a missing event",
                      o.format, std::string_view(), &out);
        sum->corrupt++;
        sum->events++;
      } else if (!gs.ok()) {
        return FromRocks(gs, "reading events");
      } else {
        RenderRecord(*pos, value, o, &scratch, &out, sum);
      }
    }
    sink(out);
    ticker.Tick();
  }
  if (!it->status().ok()) return FromRocks(it->status(), "reading stream_index");
  ticker.Finish();
  return Status::OK();
}

}  // namespace evstore::inspect
