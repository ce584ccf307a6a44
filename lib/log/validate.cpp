// Validation of events against a store's limits (validate.hpp).
#include "log/validate.hpp"

#include <algorithm>
#include <string>
#include <vector>

#include "common/utf8.hpp"

namespace evstore::internal {

Status ValidateParts(std::span<const PartRef> parts, const Options& o, size_t* bytes) {
  if (parts.empty()) return Status::InvalidArgument("append: no streams given");
  if (parts.size() > o.max_streams_per_transaction)
    return Status::InvalidArgument("append: " + std::to_string(parts.size()) +
                                   " streams exceed max_streams_per_transaction (" +
                                   std::to_string(o.max_streams_per_transaction) + ")");
  size_t total_events = 0, total_bytes = 0;
  for (size_t i = 0; i < parts.size(); i++) {
    const PartRef& p = parts[i];
    if (p.stream.empty()) return Status::InvalidArgument("append: stream name is empty");
    if (p.stream.size() > o.max_stream_name_bytes)
      return Status::InvalidArgument("append: stream name is " + std::to_string(p.stream.size()) +
                                     " bytes, over max_stream_name_bytes (" +
                                     std::to_string(o.max_stream_name_bytes) + ")");
    if (!IsValidName(p.stream))
      return Status::InvalidArgument("append: stream name is not valid UTF-8 or contains NUL");
    if (p.events.empty())
      return Status::InvalidArgument("append: no events for stream '" + std::string(p.stream) + "'");
    for (size_t j = 0; j < i; j++)
      if (parts[j].stream == p.stream)
        return Status::InvalidArgument("append: stream '" + std::string(p.stream) +
                                       "' appears twice in one transaction");
    total_events += p.events.size();
    total_bytes += p.stream.size();
    for (const EventData& e : p.events) {
      if (e.type.empty()) return Status::InvalidArgument("append: event type is empty");
      if (e.type.size() > o.max_type_name_bytes)
        return Status::InvalidArgument("append: event type is " + std::to_string(e.type.size()) +
                                       " bytes, over max_type_name_bytes (" +
                                       std::to_string(o.max_type_name_bytes) + ")");
      if (!IsValidName(e.type))
        return Status::InvalidArgument("append: event type is not valid UTF-8 or contains NUL");
      if (e.content_type.size() > o.max_content_type_bytes)
        return Status::InvalidArgument("append: content type over max_content_type_bytes (" +
                                       std::to_string(o.max_content_type_bytes) + ")");
      if (!e.content_type.empty() && !IsValidName(e.content_type))
        return Status::InvalidArgument("append: content type is not valid UTF-8 or contains NUL");
      for (const std::string* id : {&e.correlation_id, &e.causation_id}) {
        if (id->size() > kMaxProvenanceBytes)
          return Status::InvalidArgument("append: correlation or causation id over " +
                                         std::to_string(kMaxProvenanceBytes) + " bytes");
        if (!id->empty() && !IsValidName(*id))
          return Status::InvalidArgument(
              "append: correlation or causation id is not valid UTF-8 or contains NUL");
      }
      if (e.schema_version == 0)
        return Status::InvalidArgument("append: event schema version 0 (the first is 1)");
      size_t ev = e.data.size() + e.metadata.size();
      if (ev > o.max_event_bytes)
        return Status::InvalidArgument("append: event of " + std::to_string(ev) +
                                       " bytes is over max_event_bytes (" +
                                       std::to_string(o.max_event_bytes) + ")");
      total_bytes += ev + e.type.size() + e.content_type.size() + e.correlation_id.size() +
                     e.causation_id.size();
    }
  }
  // An id names one event: the same supplied id twice in one commit (in one
  // stream or across the streams of a transaction) is a caller error.
  std::vector<Uuid> ids;
  for (const PartRef& p : parts)
    for (const EventData& e : p.events)
      if (!e.id.is_nil()) ids.push_back(e.id);
  if (ids.size() > 1) {
    std::sort(ids.begin(), ids.end());
    auto dup = std::adjacent_find(ids.begin(), ids.end());
    if (dup != ids.end())
      return Status::InvalidArgument("append: event id " + dup->ToString() +
                                     " appears twice in one commit");
  }
  if (total_events > o.max_events_per_append)
    return Status::InvalidArgument("append: " + std::to_string(total_events) +
                                   " events exceed max_events_per_append (" +
                                   std::to_string(o.max_events_per_append) + ")");
  if (total_bytes > o.max_append_bytes)
    return Status::InvalidArgument("append: " + std::to_string(total_bytes) +
                                   " bytes exceed max_append_bytes (" +
                                   std::to_string(o.max_append_bytes) + ")");
  *bytes = total_bytes;
  return Status::OK();
}

}  // namespace evstore::internal
