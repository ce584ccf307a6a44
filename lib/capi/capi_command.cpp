// C API: aggregates with C state callbacks, command handling with C decide
// callbacks, the command log, and upcasters (include/evstore/command.h).
// The readers of provenance fields sit next to the objects they read
// (capi_store.cpp, capi_subscription.cpp, capi_projection.cpp).
#include "evstore/command.h"

#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "capi/capi_internal.hpp"
#include "evstore/aggregate.hpp"
#include "evstore/command.hpp"
#include "evstore/store.hpp"
#include "evstore/upcast.hpp"

using evstore::AggregateOptions;
using evstore::Command;
using evstore::CommandResult;
using evstore::Decision;
using evstore::EventData;
using evstore::EventView;
using evstore::Result;
using evstore::StateOps;
using evstore::Status;
using evstore::UntypedAggregate;
using evstore::UntypedDecide;
using evstore::UpcastEvent;
using evstore::capi::Bytes;
using evstore::capi::Fail;
using evstore::capi::FromStatus;
using evstore::capi::Guard;
using evstore::capi::NoBytes;
using evstore::capi::StoreOf;
using evstore::capi::View;

struct evs_upcast_event_t {
  UpcastEvent* e;
};

struct evs_buffer_t {
  std::string bytes;
};

struct evs_event_view_t {
  const EventView* e;
};

struct evs_aggregate_def_t {
  AggregateOptions options;
  evs_state_init_fn init = nullptr;
  evs_state_clone_fn clone = nullptr;
  evs_state_free_fn free_fn = nullptr;
  evs_evolve_fn evolve = nullptr;
  evs_state_encode_fn encode = nullptr;
  evs_state_decode_fn decode = nullptr;
  evs_state_weigh_fn weigh = nullptr;
  void* user_data = nullptr;
};

struct evs_aggregate_t {
  std::shared_ptr<UntypedAggregate> aggregate;
};

struct evs_loaded_t {
  UntypedAggregate::Loaded loaded;
};

struct evs_decision_t {
  Decision decision;
};

struct evs_command_result_t {
  CommandResult result;
};

struct evs_command_bus_t {
  std::unique_ptr<evstore::CommandBus> bus;
};

namespace {

// "<what> returned <code> (<text>)": the message of a failed callback.
std::string Returned(const char* what, int rc) {
  return std::string(what) + " callback returned " + std::to_string(rc) + " (" + evs_errstr(rc) + ")";
}

Status CallbackStatus(const char* what, int rc) {
  // A callback's own code is kept where it means something to the caller.
  return evstore::capi::ToStatus(rc == EVS_NO_MEMORY ? EVS_ABORTED : rc, Returned(what, rc));
}

// A C state in a shared pointer that frees it with the def's callback.
std::shared_ptr<void> Own(void* state, evs_state_free_fn free_fn, void* user) {
  return std::shared_ptr<void>(state, [free_fn, user](void* p) {
    if (p != nullptr) free_fn(user, p);
  });
}

StateOps OpsOf(const evs_aggregate_def_t& d) {
  StateOps ops;
  auto free_fn = d.free_fn;
  void* user = d.user_data;
  ops.make_initial = [init = d.init, free_fn, user]() -> std::shared_ptr<void> {
    void* p = init(user);
    if (p == nullptr) throw std::runtime_error("the init callback returned no state");
    return Own(p, free_fn, user);
  };
  ops.clone = [clone = d.clone, free_fn, user](const void* s) -> std::shared_ptr<void> {
    void* p = clone(user, s);
    if (p == nullptr) throw std::runtime_error("the clone callback returned no state");
    return Own(p, free_fn, user);
  };
  ops.evolve = [evolve = d.evolve, user](void* s, const EventView& e) -> Status {
    evs_event_view_t v{&e};
    int rc = evolve(user, s, &v);
    return rc == EVS_OK ? Status::OK() : CallbackStatus("evolve", rc);
  };
  if (d.encode != nullptr) {
    ops.encode = [encode = d.encode, user](const void* s) -> Result<std::string> {
      evs_buffer_t out;
      int rc = encode(user, s, &out);
      if (rc != EVS_OK) return CallbackStatus("encode", rc);
      return std::move(out.bytes);
    };
    ops.decode = [decode = d.decode, free_fn, user](std::string_view b) -> Result<std::shared_ptr<void>> {
      void* p = nullptr;
      int rc = decode(user, b.data(), b.size(), &p);
      std::shared_ptr<void> owned = Own(p, free_fn, user);  // freed if the decode failed
      if (rc != EVS_OK) return CallbackStatus("decode", rc);
      if (!owned) return Status::Aborted("the decode callback returned no state");
      return owned;
    };
  }
  if (d.weigh != nullptr)
    ops.weigh = [weigh = d.weigh, user](const void* s) { return weigh(user, s); };
  return ops;
}

// Copies a C command; EVS_OK or EVS_INVALID_ARGUMENT.
int ToCommand(const evs_command_desc_t* c, Command* out, char** errmsg) {
  EVS_CHECK_ARG(c, "command");
  EVS_CHECK_BUF(c->type, c->type_len, "command type");
  EVS_CHECK_BUF(c->stream, c->stream_len, "command stream");
  EVS_CHECK_BUF(c->payload, c->payload_len, "command payload");
  EVS_CHECK_BUF(c->id, c->id_len, "command id");
  EVS_CHECK_BUF(c->correlation_id, c->correlation_id_len, "command correlation id");
  out->type.assign(View(c->type, c->type_len));
  out->stream.assign(View(c->stream, c->stream_len));
  out->payload.assign(View(c->payload, c->payload_len));
  out->id.assign(View(c->id, c->id_len));
  out->correlation_id.assign(View(c->correlation_id, c->correlation_id_len));
  return EVS_OK;
}

UntypedDecide WrapDecide(evs_decide_fn fn, void* user) {
  return [fn, user](const void* state, const Command& c) -> Decision {
    evs_command_desc_t desc{c.type.data(),    c.type.size(),    c.stream.data(),
                            c.stream.size(),  c.payload.data(), c.payload.size(),
                            c.id.data(),      c.id.size(),      c.correlation_id.data(),
                            c.correlation_id.size()};
    evs_decision_t d;
    int rc = fn(user, state, &desc, &d);
    // HandleUntyped reports what decide throws as Aborted, appending nothing.
    if (rc != EVS_OK) throw std::runtime_error(Returned("decide", rc));
    return std::move(d.decision);
  };
}

int ToResult(Result<CommandResult> r, evs_command_result_t** out, char** errmsg) {
  if (!r.ok()) return FromStatus(r.status(), errmsg);
  *out = new evs_command_result_t{std::move(r).value()};
  return EVS_OK;
}

// The upcast event's field accessor and setter pair.
int SetField(evs_upcast_event_t* event, std::string UpcastEvent::*field, const void* p, size_t len,
             char** errmsg) {
  EVS_CHECK_ARG(event, "event");
  EVS_CHECK_BUF(p, len, "value");
  (event->e->*field).assign(View(p, len));
  return EVS_OK;
}

}  // namespace

namespace evstore::capi {
std::shared_ptr<const Upcasters> CopyUpcasters(const evs_upcasters_t* upcasters) {
  if (upcasters == nullptr || upcasters->up.empty()) return nullptr;
  return std::make_shared<const Upcasters>(upcasters->up);
}
}  // namespace evstore::capi

extern "C" {

// ---- Upcasters ----

evs_upcasters_t* evs_upcasters_create(void) { return new (std::nothrow) evs_upcasters_t(); }

void evs_upcasters_destroy(evs_upcasters_t* upcasters) { delete upcasters; }

int evs_upcasters_add(evs_upcasters_t* upcasters, const char* type, size_t type_len, uint32_t from,
                      uint32_t to, evs_upcast_fn fn, void* user_data, char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(upcasters, "upcasters");
    EVS_CHECK_ARG(fn, "fn");
    EVS_CHECK_BUF(type, type_len, "type");
    Status s = upcasters->up.add(std::string(View(type, type_len)), from, to,
                                 [fn, user_data](UpcastEvent& e) -> Status {
                                   evs_upcast_event_t ev{&e};
                                   int rc = fn(user_data, &ev);
                                   return rc == EVS_OK ? Status::OK() : CallbackStatus("upcast", rc);
                                 });
    return FromStatus(s, errmsg);
  });
}

const char* evs_upcast_event_type(const evs_upcast_event_t* event, size_t* len) {
  return event ? Bytes(event->e->type, len) : NoBytes(len);
}
const void* evs_upcast_event_data(const evs_upcast_event_t* event, size_t* len) {
  return event ? Bytes(event->e->data, len) : NoBytes(len);
}
const void* evs_upcast_event_metadata(const evs_upcast_event_t* event, size_t* len) {
  return event ? Bytes(event->e->metadata, len) : NoBytes(len);
}
const char* evs_upcast_event_content_type(const evs_upcast_event_t* event, size_t* len) {
  return event ? Bytes(event->e->content_type, len) : NoBytes(len);
}
uint32_t evs_upcast_event_schema_version(const evs_upcast_event_t* event) {
  return event ? event->e->schema_version : 0;
}
int evs_upcast_event_set_type(evs_upcast_event_t* event, const char* type, size_t len, char** errmsg) {
  return Guard(errmsg, [&] { return SetField(event, &UpcastEvent::type, type, len, errmsg); });
}
int evs_upcast_event_set_data(evs_upcast_event_t* event, const void* data, size_t len, char** errmsg) {
  return Guard(errmsg, [&] { return SetField(event, &UpcastEvent::data, data, len, errmsg); });
}
int evs_upcast_event_set_metadata(evs_upcast_event_t* event, const void* metadata, size_t len,
                                  char** errmsg) {
  return Guard(errmsg, [&] { return SetField(event, &UpcastEvent::metadata, metadata, len, errmsg); });
}
int evs_upcast_event_set_content_type(evs_upcast_event_t* event, const char* content_type,
                                      size_t len, char** errmsg) {
  return Guard(errmsg,
               [&] { return SetField(event, &UpcastEvent::content_type, content_type, len, errmsg); });
}

// ---- Aggregates ----

int evs_buffer_set(evs_buffer_t* out, const void* bytes, size_t len, char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(out, "out");
    EVS_CHECK_BUF(bytes, len, "bytes");
    out->bytes.assign(View(bytes, len));
    return EVS_OK;
  });
}

const uint8_t* evs_event_view_id(const evs_event_view_t* event) {
  return event ? event->e->id.bytes : nullptr;
}
const char* evs_event_view_stream(const evs_event_view_t* event, size_t* len) {
  return event ? Bytes(event->e->stream, len) : NoBytes(len);
}
const char* evs_event_view_type(const evs_event_view_t* event, size_t* len) {
  return event ? Bytes(event->e->type, len) : NoBytes(len);
}
const char* evs_event_view_content_type(const evs_event_view_t* event, size_t* len) {
  return event ? Bytes(event->e->content_type, len) : NoBytes(len);
}
const void* evs_event_view_data(const evs_event_view_t* event, size_t* len) {
  return event ? Bytes(event->e->data, len) : NoBytes(len);
}
const void* evs_event_view_metadata(const evs_event_view_t* event, size_t* len) {
  return event ? Bytes(event->e->metadata, len) : NoBytes(len);
}
const char* evs_event_view_correlation_id(const evs_event_view_t* event, size_t* len) {
  return event ? Bytes(event->e->correlation_id, len) : NoBytes(len);
}
const char* evs_event_view_causation_id(const evs_event_view_t* event, size_t* len) {
  return event ? Bytes(event->e->causation_id, len) : NoBytes(len);
}
uint32_t evs_event_view_schema_version(const evs_event_view_t* event) {
  return event ? event->e->schema_version : 0;
}
uint64_t evs_event_view_version(const evs_event_view_t* event) { return event ? event->e->version : 0; }
uint64_t evs_event_view_position(const evs_event_view_t* event) { return event ? event->e->position : 0; }
int64_t evs_event_view_timestamp_ms(const evs_event_view_t* event) {
  return event ? event->e->timestamp_ms : 0;
}

int evs_aggregate_def_create(const char* name, size_t name_len, evs_aggregate_def_t** def,
                             char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(def, "def");
    *def = nullptr;
    EVS_CHECK_BUF(name, name_len, "name");
    auto d = std::make_unique<evs_aggregate_def_t>();
    d->options.name.assign(View(name, name_len));
    *def = d.release();
    return EVS_OK;
  });
}

void evs_aggregate_def_destroy(evs_aggregate_def_t* def) { delete def; }

int evs_aggregate_def_set_state(evs_aggregate_def_t* def, evs_state_init_fn init,
                                evs_state_clone_fn clone, evs_state_free_fn free_fn,
                                evs_evolve_fn evolve, void* user_data, char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(def, "def");
    EVS_CHECK_ARG(init, "init");
    EVS_CHECK_ARG(clone, "clone");
    EVS_CHECK_ARG(free_fn, "free_fn");
    EVS_CHECK_ARG(evolve, "evolve");
    def->init = init;
    def->clone = clone;
    def->free_fn = free_fn;
    def->evolve = evolve;
    def->user_data = user_data;
    return EVS_OK;
  });
}

int evs_aggregate_def_set_codec(evs_aggregate_def_t* def, evs_state_encode_fn encode,
                                evs_state_decode_fn decode, char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(def, "def");
    if ((encode == nullptr) != (decode == nullptr))
      return Fail(errmsg, EVS_INVALID_ARGUMENT, "a codec needs both encode and decode");
    def->encode = encode;
    def->decode = decode;
    return EVS_OK;
  });
}

int evs_aggregate_def_set_weigher(evs_aggregate_def_t* def, evs_state_weigh_fn weigh, char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(def, "def");
    def->weigh = weigh;
    return EVS_OK;
  });
}

int evs_aggregate_def_set_snapshots(evs_aggregate_def_t* def, uint64_t every_events,
                                    uint64_t every_bytes, uint32_t schema, char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(def, "def");
    def->options.snapshots.every_events = every_events;
    def->options.snapshots.every_bytes = every_bytes;
    def->options.snapshot_schema = schema;
    return EVS_OK;
  });
}

int evs_aggregate_def_set_cache(evs_aggregate_def_t* def, size_t l1_bytes, size_t l2_bytes,
                                char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(def, "def");
    def->options.cache_l1_bytes = l1_bytes;
    def->options.cache_l2_bytes = l2_bytes;
    return EVS_OK;
  });
}

int evs_aggregate_def_set_upcasters(evs_aggregate_def_t* def, const evs_upcasters_t* upcasters,
                                    char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(def, "def");
    def->options.upcasters = evstore::capi::CopyUpcasters(upcasters);
    return EVS_OK;
  });
}

int evs_aggregate_open(evs_store_t* store, const evs_aggregate_def_t* def,
                       evs_aggregate_t** aggregate, char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(aggregate, "aggregate");
    *aggregate = nullptr;
    EVS_CHECK_ARG(store, "store");
    EVS_CHECK_ARG(def, "def");
    if (def->init == nullptr)
      return Fail(errmsg, EVS_INVALID_ARGUMENT,
                  "the aggregate def has no state callbacks (evs_aggregate_def_set_state)");
    auto r = UntypedAggregate::Open(StoreOf(store), def->options, OpsOf(*def));
    if (!r.ok()) return FromStatus(r.status(), errmsg);
    *aggregate = new evs_aggregate_t{std::move(r).value()};
    return EVS_OK;
  });
}

void evs_aggregate_destroy(evs_aggregate_t* aggregate) {
  // The snapshot writer's thread is joined here; nothing it does throws.
  delete aggregate;
}

int evs_aggregate_load(evs_aggregate_t* aggregate, const char* stream, size_t stream_len,
                       evs_loaded_t** loaded, char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(loaded, "loaded");
    *loaded = nullptr;
    EVS_CHECK_ARG(aggregate, "aggregate");
    EVS_CHECK_BUF(stream, stream_len, "stream");
    auto r = aggregate->aggregate->Load(View(stream, stream_len));
    if (!r.ok()) return FromStatus(r.status(), errmsg);
    *loaded = new evs_loaded_t{std::move(r).value()};
    return EVS_OK;
  });
}

const void* evs_loaded_state(const evs_loaded_t* loaded) {
  return loaded ? loaded->loaded.state.get() : nullptr;
}
int64_t evs_loaded_version(const evs_loaded_t* loaded) { return loaded ? loaded->loaded.version : -1; }
uint64_t evs_loaded_position(const evs_loaded_t* loaded) { return loaded ? loaded->loaded.position : 0; }
int evs_loaded_source(const evs_loaded_t* loaded) {
  if (loaded == nullptr) return -1;
  switch (loaded->loaded.source) {
    case evstore::LoadSource::kCache: return EVS_LOAD_CACHE;
    case evstore::LoadSource::kCacheAndLog: return EVS_LOAD_CACHE_AND_LOG;
    case evstore::LoadSource::kSnapshot: return EVS_LOAD_SNAPSHOT;
    case evstore::LoadSource::kLog: return EVS_LOAD_LOG;
    case evstore::LoadSource::kEmpty: return EVS_LOAD_EMPTY;
  }
  return -1;
}
void evs_loaded_destroy(evs_loaded_t* loaded) { delete loaded; }

int evs_aggregate_save_snapshot(evs_aggregate_t* aggregate, const char* stream, size_t stream_len,
                                char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(aggregate, "aggregate");
    EVS_CHECK_BUF(stream, stream_len, "stream");
    return FromStatus(aggregate->aggregate->SaveSnapshot(View(stream, stream_len)), errmsg);
  });
}

int evs_aggregate_flush_snapshots(evs_aggregate_t* aggregate, char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(aggregate, "aggregate");
    return FromStatus(aggregate->aggregate->FlushSnapshots(), errmsg);
  });
}

int evs_aggregate_clear_cache(evs_aggregate_t* aggregate, char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(aggregate, "aggregate");
    aggregate->aggregate->ClearCache();
    return EVS_OK;
  });
}

int evs_aggregate_stats(evs_aggregate_t* aggregate, evs_aggregate_stats_t* stats,
                        char** last_snapshot_error, char** errmsg) {
  if (last_snapshot_error) *last_snapshot_error = nullptr;
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(aggregate, "aggregate");
    EVS_CHECK_ARG(stats, "stats");
    evstore::AggregateStats s = aggregate->aggregate->Stats();
    *stats = evs_aggregate_stats_t{s.loads,          s.from_cache,        s.from_cache_and_log,
                                   s.from_snapshot,  s.from_log,          s.events_folded,
                                   s.snapshots_written, s.snapshots_dropped, s.snapshot_errors,
                                   s.snapshots_ignored};
    if (last_snapshot_error && !s.last_snapshot_error.empty()) {
      char* m = static_cast<char*>(std::malloc(s.last_snapshot_error.size() + 1));
      if (m == nullptr) return Fail(errmsg, EVS_NO_MEMORY, "out of memory");
      std::memcpy(m, s.last_snapshot_error.c_str(), s.last_snapshot_error.size() + 1);
      *last_snapshot_error = m;
    }
    return EVS_OK;
  });
}

// ---- Commands ----

int evs_decision_add_event(evs_decision_t* decision, const evs_event_t* event,
                           uint32_t schema_version, char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(decision, "decision");
    EVS_CHECK_ARG(event, "event");
    std::vector<EventData> one;
    if (int rc = evstore::capi::CopyEvents(event, 1, &one, errmsg); rc != EVS_OK) return rc;
    one[0].schema_version = schema_version == 0 ? 1 : schema_version;
    decision->decision.events.push_back(std::move(one[0]));
    return EVS_OK;
  });
}

int evs_decision_reject(evs_decision_t* decision, const char* code, size_t code_len,
                        const char* message, size_t message_len, char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(decision, "decision");
    EVS_CHECK_BUF(code, code_len, "code");
    EVS_CHECK_BUF(message, message_len, "message");
    decision->decision = Decision::Reject(std::string(View(code, code_len)),
                                          std::string(View(message, message_len)));
    return EVS_OK;
  });
}

namespace {
int ToOptions(const evs_command_options_t* o, evstore::CommandOptions* out, char** errmsg) {
  if (o == nullptr) return EVS_OK;
  if (o->max_tries == 0) return Fail(errmsg, EVS_INVALID_ARGUMENT, "max_tries must be at least 1");
  if (!(o->jitter >= 0.0 && o->jitter <= 1.0))
    return Fail(errmsg, EVS_INVALID_ARGUMENT, "jitter must be between 0 and 1");
  constexpr uint64_t kMaxUs = uint64_t{1} << 40;
  out->max_tries = o->max_tries;
  out->initial_backoff = std::chrono::microseconds(std::min(o->initial_backoff_us, kMaxUs));
  out->max_backoff = std::chrono::microseconds(std::min(o->max_backoff_us, kMaxUs));
  out->jitter = o->jitter;
  return EVS_OK;
}
}  // namespace

int evs_command_handle(evs_aggregate_t* aggregate, const evs_command_desc_t* command,
                       evs_decide_fn decide, void* user_data, const evs_command_options_t* options,
                       evs_command_result_t** result, char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(result, "result");
    *result = nullptr;
    EVS_CHECK_ARG(aggregate, "aggregate");
    EVS_CHECK_ARG(decide, "decide");
    Command c;
    if (int rc = ToCommand(command, &c, errmsg); rc != EVS_OK) return rc;
    evstore::CommandOptions o;
    if (int rc = ToOptions(options, &o, errmsg); rc != EVS_OK) return rc;
    return ToResult(evstore::HandleUntyped(*aggregate->aggregate, c, WrapDecide(decide, user_data), o),
                    result, errmsg);
  });
}

int evs_command_lookup(evs_store_t* store, const char* id, size_t id_len,
                       evs_command_result_t** result, char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(result, "result");
    *result = nullptr;
    EVS_CHECK_ARG(store, "store");
    EVS_CHECK_BUF(id, id_len, "id");
    return ToResult(evstore::LookupCommand(StoreOf(store), View(id, id_len)), result, errmsg);
  });
}

int evs_command_log_prune(evs_store_t* store, uint64_t max_age_ms, uint64_t max_count,
                          uint64_t* deleted, char** errmsg) {
  if (deleted) *deleted = 0;
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(store, "store");
    auto r = evstore::PruneCommandLog(StoreOf(store),
                                      evstore::CommandRetention{evstore::capi::Ms(max_age_ms), max_count});
    if (!r.ok()) return FromStatus(r.status(), errmsg);
    if (deleted) *deleted = *r;
    return EVS_OK;
  });
}

int evs_command_result_accepted(const evs_command_result_t* result) {
  return result && result->result.accepted() ? 1 : 0;
}
const char* evs_command_result_error_code(const evs_command_result_t* result, size_t* len) {
  return result && result->result.error ? Bytes(result->result.error->code, len) : NoBytes(len);
}
const char* evs_command_result_error_message(const evs_command_result_t* result, size_t* len) {
  return result && result->result.error ? Bytes(result->result.error->message, len) : NoBytes(len);
}
uint64_t evs_command_result_events(const evs_command_result_t* result) {
  return result ? result->result.events : 0;
}
int evs_command_result_append(const evs_command_result_t* result, evs_append_result_t* append,
                              char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(result, "result");
    EVS_CHECK_ARG(append, "append");
    const evstore::AppendResult& a = result->result.append;
    *append = evs_append_result_t{a.first_version, a.last_version, a.first_position, a.last_position,
                                  a.idempotent_replay ? 1 : 0, EVS_NO_STREAM};
    return EVS_OK;
  });
}
uint32_t evs_command_result_tries(const evs_command_result_t* result) {
  return result ? result->result.tries : 0;
}
int evs_command_result_from_log(const evs_command_result_t* result) {
  return result && result->result.from_log ? 1 : 0;
}
int64_t evs_command_result_handled_ms(const evs_command_result_t* result) {
  return result ? result->result.handled_ms : 0;
}
void evs_command_result_destroy(evs_command_result_t* result) { delete result; }

int evs_command_bus_create(evs_store_t* store, const evs_command_options_t* options,
                           uint64_t retention_max_age_ms, uint64_t retention_max_count,
                           uint64_t retention_interval_ms, evs_command_bus_t** bus, char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(bus, "bus");
    *bus = nullptr;
    EVS_CHECK_ARG(store, "store");
    evstore::CommandBusOptions o;
    if (int rc = ToOptions(options, &o.handling, errmsg); rc != EVS_OK) return rc;
    o.retention.max_age = evstore::capi::Ms(retention_max_age_ms);
    o.retention.max_count = retention_max_count;
    o.retention_interval = evstore::capi::Ms(retention_interval_ms);
    auto r = evstore::CommandBus::Create(StoreOf(store), o);
    if (!r.ok()) return FromStatus(r.status(), errmsg);
    *bus = new evs_command_bus_t{std::move(r).value()};
    return EVS_OK;
  });
}

void evs_command_bus_destroy(evs_command_bus_t* bus) { delete bus; }

int evs_command_bus_register(evs_command_bus_t* bus, const char* type, size_t type_len,
                             evs_aggregate_t* aggregate, evs_decide_fn decide, void* user_data,
                             char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(bus, "bus");
    EVS_CHECK_ARG(aggregate, "aggregate");
    EVS_CHECK_ARG(decide, "decide");
    EVS_CHECK_BUF(type, type_len, "type");
    return FromStatus(bus->bus->register_untyped(std::string(View(type, type_len)),
                                                 aggregate->aggregate, WrapDecide(decide, user_data)),
                      errmsg);
  });
}

int evs_command_bus_handle(evs_command_bus_t* bus, const evs_command_desc_t* command,
                           evs_command_result_t** result, char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(result, "result");
    *result = nullptr;
    EVS_CHECK_ARG(bus, "bus");
    Command c;
    if (int rc = ToCommand(command, &c, errmsg); rc != EVS_OK) return rc;
    return ToResult(bus->bus->handle(c), result, errmsg);
  });
}

}  // extern "C"
