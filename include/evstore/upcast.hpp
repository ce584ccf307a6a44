// evstore::Upcasters: old events read as new ones, without rewriting them.
//
// An event type's data layout changes over time; every event record carries
// the version of its layout (EventData::schema_version, 1 unless set). An
// upcaster turns an event of (type, version) into a newer version (and may
// rename the type); a registry chains them, so an event stored as v1 is read
// as v3 through v1 -> v2 and v2 -> v3. Stored events never change: aggregates
// (AggregateOptions::upcasters) and projections
// (ProjectionOptions::upcasters) upcast as they read, so evolve and
// projection handlers only ever see the newest layouts.
//
//   auto up = std::make_shared<evstore::Upcasters>();
//   up->add("OrderPlaced", 1, 2, [](evstore::UpcastEvent& e) {
//     e.data = AddCurrency(e.data, "EUR");   // v2 added a currency
//     return evstore::Status::OK();
//   });
//   aggregate_options.upcasters = up;
//
// Thread safety: register everything with add() before the registry is
// shared; afterwards it is only read, and Upcast may be called from any
// number of threads at once. Upcasters run on the reading thread with no
// evstore lock held; they must be safe to call concurrently and must not
// have effects (an event is upcast each time it is read).
#ifndef EVSTORE_UPCAST_HPP_
#define EVSTORE_UPCAST_HPP_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>

#include "evstore/event.hpp"
#include "evstore/export.hpp"
#include "evstore/status.hpp"

namespace evstore {

// An event as an upcaster changes it. schema_version is set by the registry
// (to the registered target version) after the upcaster returns.
struct UpcastEvent {
  std::string type;
  std::string data;
  std::string metadata;
  std::string content_type;
  uint32_t schema_version = 1;
};

// Turns an event of the registered (type, version) into the registered
// target version. A non-OK status (or an exception, reported as Aborted)
// fails the read that met the event.
using Upcaster = std::function<Status(UpcastEvent& event)>;

class EVSTORE_EXPORT Upcasters {
 public:
  // Registers `fn` for events of `type` at version `from`, producing version
  // `to`. InvalidArgument: an empty or invalid type (as for events), from 0,
  // to <= from (so that every chain ends), an empty fn, or (type, from)
  // registered already. Not thread-safe (see above).
  Status add(std::string type, uint32_t from, uint32_t to, Upcaster fn);

  bool empty() const { return steps_.empty(); }
  size_t size() const { return steps_.size(); }
  // True when an upcaster is registered for (type, version).
  bool applies(std::string_view type, uint32_t version) const;

  // `in` upcast as far as the registry goes. Without an upcaster for its
  // (type, version), *out is `in` itself. Otherwise *out points into
  // *scratch and has every field of `in` but the upcast type, data,
  // metadata, content type and schema version; it is valid while *scratch
  // and `in` are. Errors: the upcaster's (its message names the type and
  // version), Aborted for one that threw, InvalidArgument for one that left
  // the type empty.
  Status Upcast(const EventView& in, UpcastEvent* scratch, EventView* out) const;
  // The same on an owning copy, in place.
  Status Upcast(RecordedEvent* event) const;

 private:
  struct Step {
    uint32_t to;
    Upcaster fn;
  };
  // Runs the chain from (e->type, e->schema_version); *ran: any step ran.
  Status Run(UpcastEvent* e, bool* ran) const;
  std::map<std::pair<std::string, uint32_t>, Step, std::less<>> steps_;
};

}  // namespace evstore

#endif  // EVSTORE_UPCAST_HPP_
