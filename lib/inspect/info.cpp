// inspect: info, streams and stats.
#include <algorithm>
#include <unordered_map>

#include "evstore/inspect.hpp"
#include "format/keys.hpp"
#include "format/record.hpp"
#include "inspect/read_view.hpp"
#include "inspect/text.hpp"

namespace evstore::inspect {

using internal::Cf;

namespace {

// The last stream_index entry of `stream_id` at the view's snapshot.
Status FindHead(const ReadView& view, std::string_view name, uint64_t stream_id,
                StreamSummary* s) {
  std::string upper;
  if (stream_id != UINT64_MAX) upper = format::StreamIndexKey(stream_id + 1, 0).view();
  auto it = view.Cursor(internal::kCfStreamIndex, std::move(upper));
  it->SeekForPrev(format::StreamIndexKey(stream_id, UINT64_MAX).view());
  if (it->Valid()) {
    auto k = format::DecodeStreamIndexKey(it->key());
    if (k && k->stream_id == stream_id) {
      auto p = format::DecodePositionValue(it->value());
      if (!p) {
        std::string msg = "stream_index entry of stream \"";
        AppendEscaped(name, &msg);
        return Status::Corruption(msg + "\" at version " + std::to_string(k->version) +
                                  " has a malformed value");
      }
      s->has_events = true;
      s->head_version = k->version;
      s->head_position = *p;
      s->event_count = k->version + 1;
    }
  }
  if (!it->status().ok()) return InContext(it->status(), "reading stream_index");
  return Status::OK();
}

}  // namespace

Result<StoreInfo> GetInfo(const Store& store) {
  ReadView view(store);
  if (!view.status().ok()) return view.status();
  StoreInfo info;
  info.path = store.path();
  std::string v;
  Status s = view.Get(internal::kCfDefault, format::kFormatKey, &v);
  if (!s.ok()) return InContext(s, "reading the format record");
  auto fr = format::DecodeFormatRecord(v);
  if (!fr) return Status::Corruption("the format record is damaged");
  info.format_version = fr->version;
  info.created_ms = fr->created_ms;
  s = view.Get(internal::kCfDefault, format::kIdTagKey, &v);
  if (!s.ok()) return InContext(s, "reading the id tag");
  if (v.size() != 8) return Status::Corruption("the id tag record is damaged");
  AppendHex(v, &info.id_tag);
  s = view.Get(internal::kCfDefault, format::kNextStreamIdKey, &v);
  if (s.ok()) {
    auto n = format::DecodePositionValue(v);
    if (!n) return Status::Corruption("the next-stream-id record is damaged");
    info.next_stream_id = *n;
  } else if (s.IsNotFound()) {
    info.next_stream_id = 1;
  } else {
    return InContext(s, "reading the next stream id");
  }

  auto it = view.Cursor(internal::kCfEvents);
  it->SeekToLast();
  if (it->Valid()) {
    auto p = format::DecodeEventKey(it->key());
    if (!p) return Status::Corruption("the last key of the events column family is malformed");
    info.next_position = *p + 1;
  }
  for (it->SeekToFirst(); it->Valid(); it->Next()) info.event_count++;
  if (!it->status().ok()) return InContext(it->status(), "reading events");
  it = view.Cursor(internal::kCfStreams);
  for (it->SeekToFirst(); it->Valid(); it->Next()) info.stream_count++;
  if (!it->status().ok()) return InContext(it->status(), "reading streams");
  it.reset();

  for (int c = 0; c < internal::kNumCfs; c++) {
    ColumnFamilyInfo ci;
    ci.name = internal::kCfNames[c];
    auto property = [&](const char* name) {
      return internal::CfIntProperty(view.store(), static_cast<Cf>(c), name).value_or(0);
    };
    ci.estimated_keys = property("rocksdb.estimate-num-keys");
    ci.sst_bytes = property("rocksdb.total-sst-files-size");
    ci.memtable_bytes = property("rocksdb.cur-size-all-mem-tables");
    info.column_families.push_back(std::move(ci));
  }
  return info;
}

Status ListStreams(const Store& store, std::string_view from_name,
                   const std::function<bool(const StreamSummary&)>& visit) {
  ReadView view(store);
  if (!view.status().ok()) return view.status();
  auto it = view.Cursor(internal::kCfStreams);
  std::string scratch;
  for (it->Seek(from_name); it->Valid(); it->Next()) {
    std::string_view name = it->key();
    format::StreamFields f{};
    Status ds = format::DecodeStream(name, it->value(), &scratch, &f);
    if (!ds.ok()) return ds;
    StreamSummary s;
    s.name = std::string(name);
    s.stream_id = f.stream_id;
    s.created_position = f.created_position;
    s.created_ms = f.created_ms;
    Status hs = FindHead(view, name, f.stream_id, &s);
    if (!hs.ok()) return hs;
    if (!visit(s)) return Status::OK();
  }
  if (!it->status().ok()) return InContext(it->status(), "reading streams");
  return Status::OK();
}

Result<LogStats> GetStats(const Store& store, size_t top, const ProgressFn& progress) {
  ReadView view(store);
  if (!view.status().ok()) return view.status();
  LogStats st;
  std::unordered_map<std::string, uint64_t> types, categories, streams;
  Ticker ticker(progress, "events", EstimateKeys(view, internal::kCfEvents));
  auto it = view.Cursor(internal::kCfEvents);
  std::string scratch;
  bool first = true;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    ticker.Tick();
    auto pos = format::DecodeEventKey(it->key());
    EventView e;
    if (!pos || !format::DecodeEvent(*pos, it->value(), &scratch, &e).ok()) {
      st.corrupt_records++;
      continue;
    }
    st.events++;
    uint64_t rb = it->value().size();
    st.record_bytes += rb;
    st.data_bytes += e.data.size();
    st.metadata_bytes += e.metadata.size();
    if (rb > st.largest_record_bytes) {
      st.largest_record_bytes = rb;
      st.largest_record_position = *pos;
    }
    if (first) st.first_timestamp_ms = e.timestamp_ms;
    first = false;
    st.last_timestamp_ms = e.timestamp_ms;
    types[std::string(e.type)]++;
    std::string_view cat = CategoryOf(e.stream);
    if (!cat.empty()) categories[std::string(cat)]++;
    streams[std::string(e.stream)]++;
  }
  if (!it->status().ok()) return InContext(it->status(), "reading events");
  ticker.Finish();

  // Caller-supplied ids are exactly the entries of event_ids.
  it = view.Cursor(internal::kCfEventIds);
  for (it->SeekToFirst(); it->Valid(); it->Next()) st.caller_ids++;
  if (!it->status().ok()) return InContext(it->status(), "reading event_ids");

  st.streams = streams.size();
  for (const auto& [name, n] : streams) {
    if (n > st.longest_stream_events || (n == st.longest_stream_events && name < st.longest_stream)) {
      st.longest_stream_events = n;
      st.longest_stream = name;
    }
  }
  auto topn = [top](const std::unordered_map<std::string, uint64_t>& m) {
    std::vector<NameCount> v;
    v.reserve(m.size());
    for (const auto& [name, n] : m) v.push_back(NameCount{name, n});
    auto order = [](const NameCount& a, const NameCount& b) {
      return a.events != b.events ? a.events > b.events : a.name < b.name;
    };
    size_t k = std::min(top, v.size());
    std::partial_sort(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end(), order);
    v.resize(k);
    return v;
  };
  st.types = topn(types);
  st.categories = topn(categories);
  st.distinct_types = types.size();
  st.distinct_categories = categories.size();
  return st;
}

}  // namespace evstore::inspect
