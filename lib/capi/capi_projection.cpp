// C API: projections with C handlers, their queries, and point-in-time
// snapshots (include/evstore/evstore.h, "Projections and point-in-time
// snapshots").
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "capi/capi_internal.hpp"
#include "evstore/projection.hpp"
#include "evstore/snapshot.hpp"
#include "evstore/store.hpp"

using evstore::Direction;
using evstore::EventIterator;
using evstore::Projection;
using evstore::ProjectionEntry;
using evstore::ProjectionHandler;
using evstore::ProjectionInfo;
using evstore::ProjectionOptions;
using evstore::ProjectionState;
using evstore::ProjectionStatus;
using evstore::RecordedEvent;
using evstore::Result;
using evstore::Snapshot;
using evstore::Status;
using evstore::SubscriptionFilter;
using evstore::capi::Fail;
using evstore::capi::FromStatus;
using evstore::capi::Guard;
using evstore::capi::StoreOf;
using evstore::capi::View;

struct evs_projection_options_t {
  ProjectionOptions options;
};

struct evs_projection_event_t {
  const RecordedEvent* event;
};

struct evs_projection_state_t {
  ProjectionState* state;
  std::string error;  // evs_projection_state_set_error
};

struct evs_projection_t {
  // Shared with the handler wrapper: set by evs_projection_destroy, after
  // which the C handler is not called again (its user_data may be gone).
  std::shared_ptr<std::atomic<bool>> destroyed;
  std::unique_ptr<Projection> projection;
};

struct evs_projection_status_t {
  ProjectionStatus status;
};

struct evs_projection_info_t {
  ProjectionInfo info;
};

struct evs_projection_list_t {
  std::vector<evs_projection_info_t> infos;
};

struct evs_projection_entries_t {
  std::vector<ProjectionEntry> entries;
};

struct evs_snapshot_t {
  explicit evs_snapshot_t(Snapshot s) : snapshot(std::move(s)) {}
  Snapshot snapshot;
};

namespace {

// Longer durations (about 35 years) are clamped, so that adding them to a
// clock reading cannot overflow.
constexpr uint64_t kMaxMs = uint64_t{1} << 40;

std::chrono::milliseconds Ms(uint64_t ms) {
  return std::chrono::milliseconds(static_cast<int64_t>(ms > kMaxMs ? kMaxMs : ms));
}

// A uint64_t count where EVS_NO_LIMIT (and anything past SIZE_MAX) means none.
size_t Count(uint64_t n) { return n > SIZE_MAX ? SIZE_MAX : static_cast<size_t>(n); }

const char* Bytes(std::string_view v, size_t* len) {
  if (len) *len = v.size();
  return v.data() ? v.data() : "";
}

const char* NoBytes(size_t* len) {
  if (len) *len = 0;
  return nullptr;
}

// The C constant of each phase. No default: -Wswitch names a phase added to
// the C++ enum and missing here.
constexpr int CPhase(ProjectionStatus::Phase p) {
  using P = ProjectionStatus::Phase;
  switch (p) {
    case P::kStarting: return EVS_PROJECTION_STARTING;
    case P::kCatchingUp: return EVS_PROJECTION_CATCHING_UP;
    case P::kLive: return EVS_PROJECTION_LIVE;
    case P::kRetrying: return EVS_PROJECTION_RETRYING;
    case P::kFailed: return EVS_PROJECTION_FAILED;
    case P::kStopped: return EVS_PROJECTION_STOPPED;
  }
  return -1;
}
static_assert(CPhase(ProjectionStatus::Phase::kStarting) == 0 &&
                  CPhase(ProjectionStatus::Phase::kStopped) == 5,
              "EVS_PROJECTION_* constants are 0..5 in the order of ProjectionStatus::Phase");

ProjectionHandler Wrap(evs_projection_handler_fn fn, void* user_data,
                       std::shared_ptr<std::atomic<bool>> destroyed) {
  return [fn, user_data, destroyed = std::move(destroyed)](const RecordedEvent& e,
                                                           ProjectionState& st) -> Status {
    // The runner finishes its batch after a stop; once the handle is
    // destroyed, a failure ends the batch instead (uncommitted, so it is
    // handled again at the next run) and user_data is left alone.
    if (destroyed->load(std::memory_order_acquire))
      return Status::Aborted("the projection's handle was destroyed");
    evs_projection_event_t event{&e};
    evs_projection_state_t state{&st, {}};
    const int rc = fn(user_data, &event, &state);
    if (rc == EVS_OK) return Status::OK();
    if (state.error.empty())
      state.error = "handler returned " + std::to_string(rc) + " (" + evs_errstr(rc) + ")";
    return evstore::capi::ToStatus(rc, state.error);
  };
}

// *value = a malloc'd copy of v (never NULL), *value_len = its size.
int CopyOut(const std::string& v, void** value, size_t* value_len, char** errmsg) {
  void* p = std::malloc(v.empty() ? 1 : v.size());
  if (!p) return Fail(errmsg, EVS_NO_MEMORY, "out of memory");
  if (!v.empty()) std::memcpy(p, v.data(), v.size());
  *value = p;
  if (value_len) *value_len = v.size();
  return EVS_OK;
}

int EmitValue(Result<std::string> r, void** value, size_t* value_len, char** errmsg) {
  if (!r.ok()) return FromStatus(r.status(), errmsg);
  return CopyOut(*r, value, value_len, errmsg);
}

int EmitEntries(Result<std::vector<ProjectionEntry>> r, evs_projection_entries_t** entries,
                char** errmsg) {
  if (!r.ok()) return FromStatus(r.status(), errmsg);
  auto e = std::make_unique<evs_projection_entries_t>();
  e->entries = std::move(r).value();
  *entries = e.release();
  return EVS_OK;
}

int EmitInfo(Result<ProjectionInfo> r, evs_projection_info_t** info, char** errmsg) {
  if (!r.ok()) return FromStatus(r.status(), errmsg);
  *info = new evs_projection_info_t{std::move(r).value()};
  return EVS_OK;
}

// The queries shared by the store and snapshot forms: argument checks, then
// `query` (which reads at one point).
template <typename F>
int Get(const void* handle, const char* what, const char* name, size_t name_len, const void* key, size_t key_len,
        void** value, size_t* value_len, char** errmsg, F&& query) {
  return Guard(errmsg, [&] {
    if (value) *value = nullptr;
    if (value_len) *value_len = 0;
    if (!handle) return Fail(errmsg, EVS_INVALID_ARGUMENT, {what, " is NULL"});
    EVS_CHECK_BUF(name, name_len, "name");
    EVS_CHECK_BUF(key, key_len, "key");
    EVS_CHECK_ARG(value, "value");
    return EmitValue(query(View(name, name_len), View(key, key_len)), value, value_len, errmsg);
  });
}

template <typename F>
int Scan(const void* handle, const char* what, const char* name, size_t name_len, const void* prefix,
         size_t prefix_len, const void* start_after, size_t start_after_len,
         evs_projection_entries_t** entries, char** errmsg, F&& query) {
  return Guard(errmsg, [&] {
    if (entries) *entries = nullptr;
    if (!handle) return Fail(errmsg, EVS_INVALID_ARGUMENT, {what, " is NULL"});
    EVS_CHECK_BUF(name, name_len, "name");
    EVS_CHECK_BUF(prefix, prefix_len, "prefix");
    EVS_CHECK_BUF(start_after, start_after_len, "start_after");
    EVS_CHECK_ARG(entries, "entries");
    return EmitEntries(query(View(name, name_len), View(prefix, prefix_len),
                             View(start_after, start_after_len)),
                       entries, errmsg);
  });
}

template <typename F>
int Info(const void* handle, const char* what, const char* name, size_t name_len, evs_projection_info_t** info,
         char** errmsg, F&& query) {
  return Guard(errmsg, [&] {
    if (info) *info = nullptr;
    if (!handle) return Fail(errmsg, EVS_INVALID_ARGUMENT, {what, " is NULL"});
    EVS_CHECK_BUF(name, name_len, "name");
    EVS_CHECK_ARG(info, "info");
    return EmitInfo(query(View(name, name_len)), info, errmsg);
  });
}

// The snapshot reads: argument checks, then `read`.
template <typename F>
int Read(const evs_snapshot_t* snapshot, const char* name, size_t name_len, bool named,
         int direction, evs_iter_t** iter, char** errmsg, F&& read) {
  return Guard(errmsg, [&] {
    if (iter) *iter = nullptr;
    EVS_CHECK_ARG(snapshot, "snapshot");
    EVS_CHECK_ARG(iter, "iter");
    if (named) EVS_CHECK_BUF(name, name_len, "name");
    if (direction != EVS_FORWARD && direction != EVS_BACKWARD)
      return Fail(errmsg, EVS_INVALID_ARGUMENT, "direction must be EVS_FORWARD or EVS_BACKWARD");
    Result<EventIterator> r = read(View(name, name_len), direction == EVS_FORWARD
                                                             ? Direction::kForward
                                                             : Direction::kBackward);
    if (!r.ok()) return FromStatus(r.status(), errmsg);
    *iter = evstore::capi::NewIter(std::move(r).value());
    return EVS_OK;
  });
}

const ProjectionEntry* EntryAt(const evs_projection_entries_t* e, size_t i) {
  return e && i < e->entries.size() ? &e->entries[i] : nullptr;
}

}  // namespace

extern "C" {

// ---- The handler's event and state ----

const uint8_t* evs_projection_event_id(const evs_projection_event_t* event) {
  return event ? event->event->id.bytes : nullptr;
}

const char* evs_projection_event_stream(const evs_projection_event_t* event, size_t* len) {
  return event ? Bytes(event->event->stream, len) : NoBytes(len);
}

const char* evs_projection_event_type(const evs_projection_event_t* event, size_t* len) {
  return event ? Bytes(event->event->type, len) : NoBytes(len);
}

const char* evs_projection_event_content_type(const evs_projection_event_t* event, size_t* len) {
  return event ? Bytes(event->event->content_type, len) : NoBytes(len);
}

const void* evs_projection_event_data(const evs_projection_event_t* event, size_t* len) {
  return event ? Bytes(event->event->data, len) : NoBytes(len);
}

const void* evs_projection_event_metadata(const evs_projection_event_t* event, size_t* len) {
  return event ? Bytes(event->event->metadata, len) : NoBytes(len);
}

uint64_t evs_projection_event_version(const evs_projection_event_t* event) {
  return event ? event->event->version : 0;
}

uint64_t evs_projection_event_position(const evs_projection_event_t* event) {
  return event ? event->event->position : 0;
}

int64_t evs_projection_event_timestamp_ms(const evs_projection_event_t* event) {
  return event ? event->event->timestamp_ms : 0;
}

const char* evs_projection_event_correlation_id(const evs_projection_event_t* event, size_t* len) {
  return event ? Bytes(event->event->correlation_id, len) : NoBytes(len);
}

const char* evs_projection_event_causation_id(const evs_projection_event_t* event, size_t* len) {
  return event ? Bytes(event->event->causation_id, len) : NoBytes(len);
}

uint32_t evs_projection_event_schema_version(const evs_projection_event_t* event) {
  return event ? event->event->schema_version : 0;
}

int evs_projection_state_get(evs_projection_state_t* state, const void* key, size_t key_len,
                             void** value, size_t* value_len, char** errmsg) {
  return Get(state, "state", "", 0, key, key_len, value, value_len, errmsg,
             [&](std::string_view, std::string_view k) { return state->state->get(k); });
}

int evs_projection_state_put(evs_projection_state_t* state, const void* key, size_t key_len,
                             const void* value, size_t value_len, char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(state, "state");
    EVS_CHECK_BUF(key, key_len, "key");
    EVS_CHECK_BUF(value, value_len, "value");
    return FromStatus(state->state->put(View(key, key_len), View(value, value_len)), errmsg);
  });
}

int evs_projection_state_erase(evs_projection_state_t* state, const void* key, size_t key_len,
                               char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(state, "state");
    EVS_CHECK_BUF(key, key_len, "key");
    return FromStatus(state->state->erase(View(key, key_len)), errmsg);
  });
}

int evs_projection_state_set_error(evs_projection_state_t* state, const char* text, size_t len,
                                   char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(state, "state");
    EVS_CHECK_BUF(text, len, "text");
    state->error.assign(View(text, len));
    return EVS_OK;
  });
}

// ---- Options ----

evs_projection_options_t* evs_projection_options_create(void) {
  return new (std::nothrow) evs_projection_options_t();
}

void evs_projection_options_destroy(evs_projection_options_t* options) { delete options; }

int evs_projection_options_set_filter_all(evs_projection_options_t* options, char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(options, "options");
    options->options.filter = SubscriptionFilter::All();
    return EVS_OK;
  });
}

int evs_projection_options_set_filter_stream(evs_projection_options_t* options, const char* stream,
                                             size_t stream_len, char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(options, "options");
    EVS_CHECK_BUF(stream, stream_len, "stream");
    options->options.filter = SubscriptionFilter::Stream(std::string(View(stream, stream_len)));
    return EVS_OK;
  });
}

int evs_projection_options_set_filter_category(evs_projection_options_t* options,
                                               const char* category, size_t category_len,
                                               char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(options, "options");
    EVS_CHECK_BUF(category, category_len, "category");
    options->options.filter =
        SubscriptionFilter::Category(std::string(View(category, category_len)));
    return EVS_OK;
  });
}

int evs_projection_options_set_filter_types(evs_projection_options_t* options,
                                            const char* const* types, const size_t* type_lens,
                                            size_t count, char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(options, "options");
    return evstore::capi::TypesFilter(types, type_lens, count, errmsg, &options->options.filter);
  });
}

int evs_projection_options_set_version(evs_projection_options_t* options, uint32_t version,
                                       char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(options, "options");
    options->options.version = version;
    return EVS_OK;
  });
}

int evs_projection_options_set_max_batch(evs_projection_options_t* options, size_t max_batch,
                                         char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(options, "options");
    options->options.max_batch = max_batch;
    return EVS_OK;
  });
}

int evs_projection_options_set_retry_backoff(evs_projection_options_t* options,
                                             uint64_t initial_ms, uint64_t max_ms,
                                             char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(options, "options");
    options->options.retry_initial = Ms(initial_ms);
    options->options.retry_max = Ms(max_ms);
    return EVS_OK;
  });
}

int evs_projection_options_set_upcasters(evs_projection_options_t* options,
                                         const evs_upcasters_t* upcasters, char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(options, "options");
    options->options.upcasters = evstore::capi::CopyUpcasters(upcasters);
    return EVS_OK;
  });
}

int evs_projection_options_set_max_retries(evs_projection_options_t* options,
                                           uint32_t max_retries, char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(options, "options");
    options->options.max_retries = max_retries;
    return EVS_OK;
  });
}

// ---- Running ----

int evs_projection_run(evs_store_t* store, const char* name, size_t name_len,
                       const evs_projection_options_t* options, evs_projection_handler_fn handler,
                       void* user_data, evs_projection_t** projection, char** errmsg) {
  return Guard(errmsg, [&] {
    if (projection) *projection = nullptr;
    EVS_CHECK_ARG(store, "store");
    EVS_CHECK_BUF(name, name_len, "name");
    EVS_CHECK_ARG(handler, "handler");
    EVS_CHECK_ARG(projection, "projection");
    auto h = std::make_unique<evs_projection_t>();
    h->destroyed = std::make_shared<std::atomic<bool>>(false);
    auto r = StoreOf(store).run_projection(View(name, name_len),
                                           options ? options->options : ProjectionOptions(),
                                           Wrap(handler, user_data, h->destroyed));
    if (!r.ok()) return FromStatus(r.status(), errmsg);
    h->projection = std::move(r).value();
    *projection = h.release();
    return EVS_OK;
  });
}

int evs_projection_wait_for(evs_projection_t* projection, uint64_t position, uint64_t timeout_ms,
                            char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(projection, "projection");
    return FromStatus(projection->projection->wait_for(position, Ms(timeout_ms)), errmsg);
  });
}

int evs_projection_rebuild(evs_projection_t* projection, char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(projection, "projection");
    return FromStatus(projection->projection->rebuild(), errmsg);
  });
}

int evs_projection_stop(evs_projection_t* projection, char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(projection, "projection");
    projection->projection->stop();
    return EVS_OK;
  });
}

int evs_projection_wait(evs_projection_t* projection, char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(projection, "projection");
    return FromStatus(projection->projection->wait(), errmsg);
  });
}

void evs_projection_destroy(evs_projection_t* projection) {
  if (!projection) return;
  try {
    // Stop first: the runner then takes the failure below for the stop it
    // is, not for a handler error to retry.
    projection->projection->stop();
    projection->destroyed->store(true, std::memory_order_release);
    delete projection;  // joins the thread, unless called from the handler
  } catch (...) {  // a failed join terminates anyway; keep C callers safe
  }
}

// ---- Status ----

const char* evs_projection_phase_name(int phase) {
  switch (phase) {
    case EVS_PROJECTION_STARTING: return "starting";
    case EVS_PROJECTION_CATCHING_UP: return "catching up";
    case EVS_PROJECTION_LIVE: return "live";
    case EVS_PROJECTION_RETRYING: return "retrying";
    case EVS_PROJECTION_FAILED: return "failed";
    case EVS_PROJECTION_STOPPED: return "stopped";
    default: return "unknown";
  }
}

int evs_projection_status(evs_projection_t* projection, evs_projection_status_t** status,
                          char** errmsg) {
  return Guard(errmsg, [&] {
    if (status) *status = nullptr;
    EVS_CHECK_ARG(projection, "projection");
    EVS_CHECK_ARG(status, "status");
    *status = new evs_projection_status_t{projection->projection->status()};
    return EVS_OK;
  });
}

void evs_projection_status_destroy(evs_projection_status_t* status) { delete status; }

const char* evs_projection_status_name(const evs_projection_status_t* status, size_t* len) {
  return status ? Bytes(status->status.name, len) : NoBytes(len);
}

int evs_projection_status_phase(const evs_projection_status_t* status) {
  return status ? CPhase(status->status.phase) : 0;
}

uint32_t evs_projection_status_version(const evs_projection_status_t* status) {
  return status ? status->status.version : 0;
}

uint64_t evs_projection_status_position(const evs_projection_status_t* status) {
  return status ? status->status.position : 0;
}

uint64_t evs_projection_status_lag_events(const evs_projection_status_t* status) {
  return status ? status->status.lag_events : 0;
}

int64_t evs_projection_status_lag_ms(const evs_projection_status_t* status) {
  return status ? status->status.lag_ms : 0;
}

double evs_projection_status_events_per_s(const evs_projection_status_t* status) {
  return status ? status->status.events_per_s : 0;
}

uint64_t evs_projection_status_events_handled(const evs_projection_status_t* status) {
  return status ? status->status.events_handled : 0;
}

uint64_t evs_projection_status_retries(const evs_projection_status_t* status) {
  return status ? status->status.retries : 0;
}

const char* evs_projection_status_last_error(const evs_projection_status_t* status, size_t* len) {
  return status ? Bytes(status->status.last_error, len) : NoBytes(len);
}

int evs_projection_status_rebuilding(const evs_projection_status_t* status) {
  return status && status->status.rebuilding ? 1 : 0;
}

uint64_t evs_projection_status_rebuild_position(const evs_projection_status_t* status) {
  return status ? status->status.rebuild_position : 0;
}

// ---- Queries ----

int evs_projection_get(evs_store_t* store, const char* name, size_t name_len, const void* key,
                       size_t key_len, void** value, size_t* value_len, char** errmsg) {
  return Get(store, "store", name, name_len, key, key_len, value, value_len, errmsg,
             [&](std::string_view n, std::string_view k) {
               return StoreOf(store).projection_get(n, k);
             });
}

int evs_projection_scan(evs_store_t* store, const char* name, size_t name_len, const void* prefix,
                        size_t prefix_len, const void* start_after, size_t start_after_len,
                        uint64_t limit, evs_projection_entries_t** entries, char** errmsg) {
  return Scan(store, "store", name, name_len, prefix, prefix_len, start_after, start_after_len, entries,
              errmsg, [&](std::string_view n, std::string_view p, std::string_view after) {
                return StoreOf(store).projection_scan(n, p, after, Count(limit));
              });
}

int evs_projection_info(evs_store_t* store, const char* name, size_t name_len,
                        evs_projection_info_t** info, char** errmsg) {
  return Info(store, "store", name, name_len, info, errmsg,
              [&](std::string_view n) { return StoreOf(store).projection_info(n); });
}

int evs_projection_list(evs_store_t* store, evs_projection_list_t** list, char** errmsg) {
  return Guard(errmsg, [&] {
    if (list) *list = nullptr;
    EVS_CHECK_ARG(store, "store");
    EVS_CHECK_ARG(list, "list");
    auto r = StoreOf(store).list_projections();
    if (!r.ok()) return FromStatus(r.status(), errmsg);
    auto l = std::make_unique<evs_projection_list_t>();
    l->infos.reserve(r->size());
    for (ProjectionInfo& i : *r) l->infos.push_back(evs_projection_info_t{std::move(i)});
    *list = l.release();
    return EVS_OK;
  });
}

int evs_projection_delete(evs_store_t* store, const char* name, size_t name_len, char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(store, "store");
    EVS_CHECK_BUF(name, name_len, "name");
    return FromStatus(StoreOf(store).delete_projection(View(name, name_len)), errmsg);
  });
}

size_t evs_projection_entries_count(const evs_projection_entries_t* entries) {
  return entries ? entries->entries.size() : 0;
}

const void* evs_projection_entries_key(const evs_projection_entries_t* entries, size_t i,
                                       size_t* len) {
  const ProjectionEntry* e = EntryAt(entries, i);
  return e ? Bytes(e->key, len) : NoBytes(len);
}

const void* evs_projection_entries_value(const evs_projection_entries_t* entries, size_t i,
                                         size_t* len) {
  const ProjectionEntry* e = EntryAt(entries, i);
  return e ? Bytes(e->value, len) : NoBytes(len);
}

void evs_projection_entries_destroy(evs_projection_entries_t* entries) { delete entries; }

void evs_projection_info_destroy(evs_projection_info_t* info) { delete info; }

const char* evs_projection_info_name(const evs_projection_info_t* info, size_t* len) {
  return info ? Bytes(info->info.name, len) : NoBytes(len);
}

uint32_t evs_projection_info_version(const evs_projection_info_t* info) {
  return info ? info->info.version : 0;
}

uint64_t evs_projection_info_position(const evs_projection_info_t* info) {
  return info ? info->info.position : 0;
}

uint64_t evs_projection_info_events_handled(const evs_projection_info_t* info) {
  return info ? info->info.events_handled : 0;
}

int64_t evs_projection_info_updated_ms(const evs_projection_info_t* info) {
  return info ? info->info.updated_ms : 0;
}

int evs_projection_info_rebuilding(const evs_projection_info_t* info) {
  return info && info->info.rebuilding ? 1 : 0;
}

uint64_t evs_projection_info_rebuild_position(const evs_projection_info_t* info) {
  return info ? info->info.rebuild_position : 0;
}

size_t evs_projection_list_size(const evs_projection_list_t* list) {
  return list ? list->infos.size() : 0;
}

const evs_projection_info_t* evs_projection_list_get(const evs_projection_list_t* list, size_t i) {
  return list && i < list->infos.size() ? &list->infos[i] : nullptr;
}

void evs_projection_list_destroy(evs_projection_list_t* list) { delete list; }

// ---- Snapshots ----

int evs_snapshot_create(evs_store_t* store, evs_snapshot_t** snapshot, char** errmsg) {
  return Guard(errmsg, [&] {
    if (snapshot) *snapshot = nullptr;
    EVS_CHECK_ARG(store, "store");
    EVS_CHECK_ARG(snapshot, "snapshot");
    auto r = StoreOf(store).snapshot();
    if (!r.ok()) return FromStatus(r.status(), errmsg);
    *snapshot = new evs_snapshot_t(std::move(r).value());
    return EVS_OK;
  });
}

void evs_snapshot_destroy(evs_snapshot_t* snapshot) { delete snapshot; }

uint64_t evs_snapshot_position(const evs_snapshot_t* snapshot) {
  return snapshot ? snapshot->snapshot.position() : 0;
}

int evs_snapshot_read_stream(const evs_snapshot_t* snapshot, const char* stream, size_t stream_len,
                             uint64_t from, int direction, uint64_t limit, evs_iter_t** iter,
                             char** errmsg) {
  return Read(snapshot, stream, stream_len, true, direction, iter, errmsg,
              [&](std::string_view name, Direction dir) {
                return snapshot->snapshot.read_stream(name, from, dir, limit);
              });
}

int evs_snapshot_read_all(const evs_snapshot_t* snapshot, uint64_t from, int direction,
                          uint64_t limit, evs_iter_t** iter, char** errmsg) {
  return Read(snapshot, nullptr, 0, false, direction, iter, errmsg,
              [&](std::string_view, Direction dir) {
                return snapshot->snapshot.read_all(from, dir, limit);
              });
}

int evs_snapshot_read_category(const evs_snapshot_t* snapshot, const char* category,
                               size_t category_len, uint64_t from, int direction, uint64_t limit,
                               evs_iter_t** iter, char** errmsg) {
  return Read(snapshot, category, category_len, true, direction, iter, errmsg,
              [&](std::string_view name, Direction dir) {
                return snapshot->snapshot.read_category(name, from, dir, limit);
              });
}

int evs_snapshot_read_type(const evs_snapshot_t* snapshot, const char* type, size_t type_len,
                           uint64_t from, int direction, uint64_t limit, evs_iter_t** iter,
                           char** errmsg) {
  return Read(snapshot, type, type_len, true, direction, iter, errmsg,
              [&](std::string_view name, Direction dir) {
                return snapshot->snapshot.read_type(name, from, dir, limit);
              });
}

int evs_snapshot_stream_head(const evs_snapshot_t* snapshot, const char* stream, size_t stream_len,
                             uint64_t* last_version, uint64_t* last_position, char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(snapshot, "snapshot");
    EVS_CHECK_BUF(stream, stream_len, "stream");
    auto r = snapshot->snapshot.stream_head(View(stream, stream_len));
    if (!r.ok()) return FromStatus(r.status(), errmsg);
    if (last_version) *last_version = r->last_version;
    if (last_position) *last_position = r->last_position;
    return EVS_OK;
  });
}

int evs_snapshot_projection_get(const evs_snapshot_t* snapshot, const char* name, size_t name_len,
                                const void* key, size_t key_len, void** value, size_t* value_len,
                                char** errmsg) {
  return Get(snapshot, "snapshot", name, name_len, key, key_len, value, value_len, errmsg,
             [&](std::string_view n, std::string_view k) {
               return snapshot->snapshot.projection_get(n, k);
             });
}

int evs_snapshot_projection_scan(const evs_snapshot_t* snapshot, const char* name,
                                 size_t name_len, const void* prefix, size_t prefix_len,
                                 const void* start_after, size_t start_after_len, uint64_t limit,
                                 evs_projection_entries_t** entries, char** errmsg) {
  return Scan(snapshot, "snapshot", name, name_len, prefix, prefix_len, start_after, start_after_len, entries,
              errmsg, [&](std::string_view n, std::string_view p, std::string_view after) {
                return snapshot->snapshot.projection_scan(n, p, after, Count(limit));
              });
}

int evs_snapshot_projection_info(const evs_snapshot_t* snapshot, const char* name,
                                 size_t name_len, evs_projection_info_t** info, char** errmsg) {
  return Info(snapshot, "snapshot", name, name_len, info, errmsg,
              [&](std::string_view n) { return snapshot->snapshot.projection_info(n); });
}

}  // extern "C"
