// The upcaster registry (include/evstore/upcast.hpp).
#include "evstore/upcast.hpp"

#include "common/utf8.hpp"

namespace evstore {

namespace {
constexpr size_t kMaxTypeBytes = 256;

bool ValidType(std::string_view t) { return !t.empty() && t.size() <= kMaxTypeBytes && IsValidName(t); }
}  // namespace

Status Upcasters::add(std::string type, uint32_t from, uint32_t to, Upcaster fn) {
  if (!ValidType(type))
    return Status::InvalidArgument("upcaster: the event type must be 1..256 bytes of UTF-8 without NUL");
  if (from == 0) return Status::InvalidArgument("upcaster: schema versions start at 1");
  if (to <= from)
    return Status::InvalidArgument("upcaster for '" + type + "': the target version " +
                                   std::to_string(to) + " is not newer than " + std::to_string(from));
  if (!fn) return Status::InvalidArgument("upcaster for '" + type + "': the function is empty");
  auto key = std::make_pair(type, from);
  if (steps_.count(key))
    return Status::InvalidArgument("upcaster for '" + type + "' version " + std::to_string(from) +
                                   " is registered already");
  steps_.emplace(std::move(key), Step{to, std::move(fn)});
  return Status::OK();
}

bool Upcasters::applies(std::string_view type, uint32_t version) const {
  return steps_.find(std::make_pair(std::string(type), version)) != steps_.end();
}

Status Upcasters::Run(UpcastEvent* e, bool* ran) const {
  *ran = false;
  // Versions only grow along a chain, so it ends.
  for (;;) {
    auto it = steps_.find(std::make_pair(e->type, e->schema_version));
    if (it == steps_.end()) return Status::OK();
    const std::string from_type = e->type;
    const uint32_t from = e->schema_version;
    auto where = [&] { return "upcasting '" + from_type + "' version " + std::to_string(from); };
    Status s;
    try {
      s = it->second.fn(*e);
    } catch (const std::exception& ex) {
      return Status::Aborted(where() + ": the upcaster threw: " + ex.what());
    } catch (...) {
      return Status::Aborted(where() + ": the upcaster threw an exception");
    }
    if (!s.ok()) {
      std::string msg = where() + ": " + std::string(s.message());
      switch (s.code()) {
        case Status::Code::kInvalidArgument: return Status::InvalidArgument(msg);
        case Status::Code::kCorruption: return Status::Corruption(msg);
        case Status::Code::kNotSupported: return Status::NotSupported(msg);
        default: return Status::Aborted(msg);
      }
    }
    if (!ValidType(e->type))
      return Status::InvalidArgument(where() + ": the upcaster left an invalid event type");
    e->schema_version = it->second.to;
    *ran = true;
  }
}

Status Upcasters::Upcast(const EventView& in, UpcastEvent* scratch, EventView* out) const {
  *out = in;
  if (!applies(in.type, in.schema_version)) return Status::OK();
  scratch->type.assign(in.type);
  scratch->data.assign(in.data);
  scratch->metadata.assign(in.metadata);
  scratch->content_type.assign(in.content_type);
  scratch->schema_version = in.schema_version;
  bool ran = false;
  Status s = Run(scratch, &ran);
  if (!s.ok()) return s;
  out->type = scratch->type;
  out->data = scratch->data;
  out->metadata = scratch->metadata;
  out->content_type = scratch->content_type;
  out->schema_version = scratch->schema_version;
  return Status::OK();
}

Status Upcasters::Upcast(RecordedEvent* event) const {
  if (!applies(event->type, event->schema_version)) return Status::OK();
  UpcastEvent e{std::move(event->type), std::move(event->data), std::move(event->metadata),
                std::move(event->content_type), event->schema_version};
  bool ran = false;
  Status s = Run(&e, &ran);
  // Moved back whatever happened, so a failure leaves the event readable.
  event->type = std::move(e.type);
  event->data = std::move(e.data);
  event->metadata = std::move(e.metadata);
  event->content_type = std::move(e.content_type);
  event->schema_version = e.schema_version;
  return s;
}

}  // namespace evstore
