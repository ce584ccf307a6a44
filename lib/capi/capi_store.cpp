// C API: options, store, appends, transactions, reads and iterators.
#include <cstdlib>
#include <cstring>
#include <optional>
#include <utility>

#include "capi/capi_internal.hpp"
#include "evstore/store.hpp"

using evstore::AppendResult;
using evstore::Direction;
using evstore::EventData;
using evstore::EventIterator;
using evstore::ExpectedVersion;
using evstore::Options;
using evstore::Result;
using evstore::Status;
using evstore::Store;
using evstore::StreamAppend;
using evstore::capi::Fail;
using evstore::capi::FromStatus;
using evstore::capi::Guard;
using evstore::capi::Bytes;
using evstore::capi::NoBytes;
using evstore::capi::View;

struct evs_store_t {
  explicit evs_store_t(Store s) : store(std::move(s)) {}
  Store store;
};

struct evs_tx_t {
  std::vector<StreamAppend> parts;
};

// An iterator over a read, or over the one event of a point read (which is
// served by the store's event cache and holds its own copy).
struct evs_iter_t {
  explicit evs_iter_t(EventIterator i) : it(std::move(i)) {}
  explicit evs_iter_t(evstore::RecordedEvent e) : one(std::move(e)), one_valid(true) {
    one_view = evstore::EventView{one->id,       one->stream,  one->type,
                                  one->content_type, one->data, one->metadata,
                                  one->version,  one->position, one->timestamp_ms,
                                  one->correlation_id, one->causation_id, one->schema_version};
  }
  ~evs_iter_t() { std::free(error_msg); }
  evs_iter_t(const evs_iter_t&) = delete;
  evs_iter_t& operator=(const evs_iter_t&) = delete;

  std::optional<EventIterator> it;
  std::optional<evstore::RecordedEvent> one;
  evstore::EventView one_view;
  bool one_valid = false;
  // Set when a move threw (out of memory, say): the read is over with this
  // code and message (malloc'd, may be NULL). The C++ iterator may have been
  // left half-way through the move, so it is never used again.
  int error = EVS_OK;
  char* error_msg = nullptr;
};

namespace evstore::capi {

std::optional<ExpectedVersion> ToExpected(int64_t e) {
  if (e >= 0) return ExpectedVersion::Exact(static_cast<uint64_t>(e));
  switch (e) {
    case EVS_EXPECT_ANY: return ExpectedVersion::Any();
    case EVS_EXPECT_NO_STREAM: return ExpectedVersion::NoStream();
    case EVS_EXPECT_STREAM_EXISTS: return ExpectedVersion::StreamExists();
    default: return std::nullopt;
  }
}

// Copies C events into `out`; EVS_OK or EVS_INVALID_ARGUMENT.
int CopyEvents(const evs_event_t* events, size_t count, std::vector<EventData>* out,
               char** errmsg) {
  out->reserve(out->size() + count);
  for (size_t i = 0; i < count; i++) {
    const evs_event_t& e = events[i];
    EVS_CHECK_BUF(e.type, e.type_len, "event type");
    EVS_CHECK_BUF(e.content_type, e.content_type_len, "event content type");
    EVS_CHECK_BUF(e.data, e.data_len, "event data");
    EVS_CHECK_BUF(e.metadata, e.metadata_len, "event metadata");
    EventData d;
    std::memcpy(d.id.bytes, e.id, sizeof d.id.bytes);
    d.type = View(e.type, e.type_len);
    d.content_type = View(e.content_type, e.content_type_len);
    d.data = View(e.data, e.data_len);
    d.metadata = View(e.metadata, e.metadata_len);
    out->push_back(std::move(d));
  }
  return EVS_OK;
}

Store& StoreOf(evs_store_t* store) { return store->store; }

evs_iter_t* NewIter(EventIterator it) { return new evs_iter_t(std::move(it)); }

}  // namespace evstore::capi

namespace {

using evstore::capi::CopyEvents;
using evstore::capi::ToExpected;

void FillResult(const AppendResult& r, evs_append_result_t* out) {
  out->first_version = r.first_version;
  out->last_version = r.last_version;
  out->first_position = r.first_position;
  out->last_position = r.last_position;
  out->idempotent_replay = r.idempotent_replay ? 1 : 0;
  out->actual_version = EVS_NO_STREAM;
}

void FillConflict(const Status& s, evs_append_result_t* out) {
  *out = evs_append_result_t{};
  out->actual_version = s.IsWrongExpectedVersion() ? s.actual_version() : EVS_NO_STREAM;
}

int ToDirection(int d, Direction* out, char** errmsg) {
  if (d == EVS_FORWARD) {
    *out = Direction::kForward;
  } else if (d == EVS_BACKWARD) {
    *out = Direction::kBackward;
  } else {
    return Fail(errmsg, EVS_INVALID_ARGUMENT, "direction must be EVS_FORWARD or EVS_BACKWARD");
  }
  return EVS_OK;
}

int Emit(Result<EventIterator> r, evs_iter_t** iter, char** errmsg) {
  if (!r.ok()) return FromStatus(r.status(), errmsg);
  *iter = new evs_iter_t(std::move(r).value());
  return EVS_OK;
}

// Shared by the four read entry points: validates and reads.
template <typename F>
int Read(evs_store_t* store, const void* name, size_t name_len, bool named, int direction,
         evs_iter_t** iter, char** errmsg, F&& read) {
  return Guard(errmsg, [&] {
    if (iter) *iter = nullptr;
    EVS_CHECK_ARG(store, "store");
    EVS_CHECK_ARG(iter, "iter");
    if (named) EVS_CHECK_BUF(name, name_len, "name");
    Direction dir = Direction::kForward;
    if (int rc = ToDirection(direction, &dir, errmsg); rc != EVS_OK) return rc;
    return Emit(read(View(name, name_len), dir), iter, errmsg);
  });
}

const evstore::EventView* ValidIter(const evs_iter_t* iter) {
  if (!iter || iter->error != EVS_OK) return nullptr;
  if (iter->it) return iter->it->Valid() ? &iter->it->value() : nullptr;
  return iter->one_valid ? &iter->one_view : nullptr;
}

// Runs `move` (Next or Seek). An exception must not pass for the end of the
// read, which is what the C++ iterator would show after it (not valid, status
// OK): it fails the iterator for good, with Guard's code and message.
template <typename F>
void MoveIter(evs_iter_t* iter, F&& move) noexcept {
  char* msg = nullptr;
  int rc = Guard(&msg, [&] {
    move();
    return EVS_OK;
  });
  if (rc == EVS_OK) return;
  iter->error = rc;
  iter->error_msg = msg;
}

}  // namespace

#define EVS_OPTION_SETTER(field, type, stored)                                       \
  int evs_options_set_##field(evs_options_t* options, type value, char** errmsg) { \
    return Guard(errmsg, [&] {                                                      \
      EVS_CHECK_ARG(options, "options");                                            \
      options->options.field = (stored);                                            \
      return EVS_OK;                                                                \
    });                                                                             \
  }

extern "C" {

// ---- Options ----

evs_options_t* evs_options_create(void) { return new (std::nothrow) evs_options_t(); }

void evs_options_destroy(evs_options_t* options) { delete options; }

EVS_OPTION_SETTER(create_if_missing, uint8_t, value != 0)
EVS_OPTION_SETTER(read_only, uint8_t, value != 0)
EVS_OPTION_SETTER(sync, uint8_t, value != 0)
EVS_OPTION_SETTER(max_event_bytes, size_t, value)
EVS_OPTION_SETTER(max_stream_name_bytes, size_t, value)
EVS_OPTION_SETTER(max_type_name_bytes, size_t, value)
EVS_OPTION_SETTER(max_content_type_bytes, size_t, value)
EVS_OPTION_SETTER(max_events_per_append, size_t, value)
EVS_OPTION_SETTER(max_append_bytes, size_t, value)
EVS_OPTION_SETTER(max_streams_per_transaction, size_t, value)
EVS_OPTION_SETTER(event_cache_l1_bytes, size_t, value)
EVS_OPTION_SETTER(event_cache_l2_bytes, size_t, value)
EVS_OPTION_SETTER(event_cache_ttl_ms, uint64_t, value)
EVS_OPTION_SETTER(head_cache_entries, size_t, value)
EVS_OPTION_SETTER(block_cache_bytes, size_t, value)
EVS_OPTION_SETTER(max_group_requests, size_t, value)
EVS_OPTION_SETTER(max_group_bytes, size_t, value)

// ---- Store ----

int evs_store_open(const char* path, const evs_options_t* options, evs_store_t** store,
                   char** errmsg) {
  return Guard(errmsg, [&] {
    if (store) *store = nullptr;
    EVS_CHECK_ARG(path, "path");
    EVS_CHECK_ARG(store, "store");
    auto r = Store::open(path, options ? options->options : Options());
    if (!r.ok()) return FromStatus(r.status(), errmsg);
    *store = new evs_store_t(std::move(r).value());
    return EVS_OK;
  });
}

int evs_store_close(evs_store_t* store, char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(store, "store");
    return FromStatus(store->store.close(), errmsg);
  });
}

void evs_store_destroy(evs_store_t* store) {
  try {
    delete store;
  } catch (...) {  // a destructor that throws terminates anyway; keep C callers safe
  }
}

const char* evs_store_path(const evs_store_t* store) {
  return store ? store->store.path().c_str() : "";
}

int evs_store_stats(evs_store_t* store, evs_store_stats_t* stats, char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(store, "store");
    EVS_CHECK_ARG(stats, "stats");
    auto r = store->store.stats();
    if (!r.ok()) return FromStatus(r.status(), errmsg);
    stats->next_position = r->next_position;
    stats->appends = r->appends;
    stats->events_appended = r->events_appended;
    stats->commit_groups = r->commit_groups;
    stats->conflicts = r->conflicts;
    stats->idempotent_replays = r->idempotent_replays;
    return EVS_OK;
  });
}

int evs_store_cache_stats(evs_store_t* store, evs_cache_stats_t* events, evs_cache_stats_t* heads,
                          char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(store, "store");
    auto r = store->store.cache_stats();
    if (!r.ok()) return FromStatus(r.status(), errmsg);
    if (events) evstore::capi::ToC(r->events, events);
    if (heads) evstore::capi::ToC(r->heads, heads);
    return EVS_OK;
  });
}

int evs_store_reset_cache_stats(evs_store_t* store, char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(store, "store");
    Status s = store->store.reset_cache_stats();
    if (!s.ok()) return FromStatus(s, errmsg);
    return EVS_OK;
  });
}

// ---- Appending ----

int evs_append(evs_store_t* store, const char* stream, size_t stream_len, int64_t expected,
               const evs_event_t* events, size_t count, evs_append_result_t* result,
               char** errmsg) {
  return Guard(errmsg, [&] {
    if (result) *result = evs_append_result_t{0, 0, 0, 0, 0, EVS_NO_STREAM};
    EVS_CHECK_ARG(store, "store");
    EVS_CHECK_BUF(stream, stream_len, "stream");
    EVS_CHECK_BUF(events, count, "events");
    auto exp = ToExpected(expected);
    if (!exp) return Fail(errmsg, EVS_INVALID_ARGUMENT, "not an expected version");
    std::vector<EventData> data;
    if (int rc = CopyEvents(events, count, &data, errmsg); rc != EVS_OK) return rc;
    auto r = store->store.append(View(stream, stream_len), *exp, data);
    if (!r.ok()) {
      if (result) FillConflict(r.status(), result);
      return FromStatus(r.status(), errmsg);
    }
    if (result) FillResult(*r, result);
    return EVS_OK;
  });
}

evs_tx_t* evs_tx_create(void) { return new (std::nothrow) evs_tx_t(); }

void evs_tx_destroy(evs_tx_t* tx) { delete tx; }

int evs_tx_add(evs_tx_t* tx, const char* stream, size_t stream_len, int64_t expected,
               const evs_event_t* events, size_t count, char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(tx, "tx");
    EVS_CHECK_BUF(stream, stream_len, "stream");
    EVS_CHECK_BUF(events, count, "events");
    auto exp = ToExpected(expected);
    if (!exp) return Fail(errmsg, EVS_INVALID_ARGUMENT, "not an expected version");
    StreamAppend part;
    part.stream = View(stream, stream_len);
    part.expected = *exp;
    if (int rc = CopyEvents(events, count, &part.events, errmsg); rc != EVS_OK) return rc;
    tx->parts.push_back(std::move(part));
    return EVS_OK;
  });
}

size_t evs_tx_size(const evs_tx_t* tx) { return tx ? tx->parts.size() : 0; }

int evs_tx_clear(evs_tx_t* tx, char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(tx, "tx");
    tx->parts.clear();
    return EVS_OK;
  });
}

int evs_tx_commit(evs_store_t* store, const evs_tx_t* tx, evs_append_result_t* results,
                  size_t results_cap, size_t* conflict_part, char** errmsg) {
  return Guard(errmsg, [&] {
    if (conflict_part) *conflict_part = EVS_NO_PART;
    EVS_CHECK_ARG(store, "store");
    EVS_CHECK_ARG(tx, "tx");
    if (results && results_cap < tx->parts.size())
      return Fail(errmsg, EVS_INVALID_ARGUMENT, "results_cap is smaller than the transaction");
    auto r = store->store.append_multi(tx->parts);
    if (!r.ok()) {
      if (results)
        for (size_t i = 0; i < tx->parts.size(); i++) FillConflict(Status::OK(), &results[i]);
      if (r.status().IsWrongExpectedVersion()) {
        int64_t p = r.status().part();
        size_t part = p >= 0 && static_cast<size_t>(p) < tx->parts.size() ? static_cast<size_t>(p)
                                                                           : EVS_NO_PART;
        if (conflict_part) *conflict_part = part;
        if (results && part != EVS_NO_PART) FillConflict(r.status(), &results[part]);
      }
      return FromStatus(r.status(), errmsg);
    }
    if (results)
      for (size_t i = 0; i < r->size(); i++) FillResult((*r)[i], &results[i]);
    return EVS_OK;
  });
}

// ---- Reading ----

int evs_read_stream(evs_store_t* store, const char* stream, size_t stream_len, uint64_t from,
                    int direction, uint64_t limit, evs_iter_t** iter, char** errmsg) {
  return Read(store, stream, stream_len, true, direction, iter, errmsg,
              [&](std::string_view name, Direction dir) {
                return store->store.read_stream(name, from, dir, limit);
              });
}

int evs_read_all(evs_store_t* store, uint64_t from, int direction, uint64_t limit,
                 evs_iter_t** iter, char** errmsg) {
  return Read(store, nullptr, 0, false, direction, iter, errmsg,
              [&](std::string_view, Direction dir) { return store->store.read_all(from, dir, limit); });
}

int evs_read_category(evs_store_t* store, const char* category, size_t category_len, uint64_t from,
                      int direction, uint64_t limit, evs_iter_t** iter, char** errmsg) {
  return Read(store, category, category_len, true, direction, iter, errmsg,
              [&](std::string_view name, Direction dir) {
                return store->store.read_category(name, from, dir, limit);
              });
}

int evs_read_type(evs_store_t* store, const char* type, size_t type_len, uint64_t from,
                  int direction, uint64_t limit, evs_iter_t** iter, char** errmsg) {
  return Read(store, type, type_len, true, direction, iter, errmsg,
              [&](std::string_view name, Direction dir) {
                return store->store.read_type(name, from, dir, limit);
              });
}

int evs_read_event(evs_store_t* store, uint64_t position, evs_iter_t** iter, char** errmsg) {
  return Guard(errmsg, [&] {
    if (iter) *iter = nullptr;
    EVS_CHECK_ARG(store, "store");
    EVS_CHECK_ARG(iter, "iter");
    auto r = store->store.read_event(position);
    if (!r.ok()) return FromStatus(r.status(), errmsg);
    *iter = new evs_iter_t(std::move(r).value());
    return EVS_OK;
  });
}

int evs_iter_valid(const evs_iter_t* iter) { return ValidIter(iter) ? 1 : 0; }

void evs_iter_next(evs_iter_t* iter) {
  if (!ValidIter(iter)) return;
  if (!iter->it) {
    iter->one_valid = false;
    return;
  }
  MoveIter(iter, [&] { iter->it->Next(); });
}

void evs_iter_seek(evs_iter_t* iter, uint64_t from) {
  if (!iter || iter->error != EVS_OK) return;
  if (!iter->it) {
    iter->one_valid = from == iter->one->position;
    return;
  }
  MoveIter(iter, [&] { iter->it->Seek(from); });
}

int evs_iter_status(const evs_iter_t* iter, char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(iter, "iter");
    if (iter->error != EVS_OK)
      return Fail(errmsg, iter->error, iter->error_msg ? iter->error_msg : evs_errstr(iter->error));
    return iter->it ? FromStatus(iter->it->status(), errmsg) : EVS_OK;
  });
}

void evs_iter_destroy(evs_iter_t* iter) { delete iter; }

const uint8_t* evs_iter_id(const evs_iter_t* iter) {
  const evstore::EventView* v = ValidIter(iter);
  return v ? v->id.bytes : nullptr;
}

const char* evs_iter_stream(const evs_iter_t* iter, size_t* len) {
  const evstore::EventView* v = ValidIter(iter);
  return v ? Bytes(v->stream, len) : NoBytes(len);
}

const char* evs_iter_type(const evs_iter_t* iter, size_t* len) {
  const evstore::EventView* v = ValidIter(iter);
  return v ? Bytes(v->type, len) : NoBytes(len);
}

const char* evs_iter_content_type(const evs_iter_t* iter, size_t* len) {
  const evstore::EventView* v = ValidIter(iter);
  return v ? Bytes(v->content_type, len) : NoBytes(len);
}

const void* evs_iter_data(const evs_iter_t* iter, size_t* len) {
  const evstore::EventView* v = ValidIter(iter);
  return v ? Bytes(v->data, len) : NoBytes(len);
}

const void* evs_iter_metadata(const evs_iter_t* iter, size_t* len) {
  const evstore::EventView* v = ValidIter(iter);
  return v ? Bytes(v->metadata, len) : NoBytes(len);
}

uint64_t evs_iter_version(const evs_iter_t* iter) {
  const evstore::EventView* v = ValidIter(iter);
  return v ? v->version : 0;
}

uint64_t evs_iter_position(const evs_iter_t* iter) {
  const evstore::EventView* v = ValidIter(iter);
  return v ? v->position : 0;
}

int64_t evs_iter_timestamp_ms(const evs_iter_t* iter) {
  const evstore::EventView* v = ValidIter(iter);
  return v ? v->timestamp_ms : 0;
}

const char* evs_iter_correlation_id(const evs_iter_t* iter, size_t* len) {
  const evstore::EventView* v = ValidIter(iter);
  return v ? Bytes(v->correlation_id, len) : NoBytes(len);
}

const char* evs_iter_causation_id(const evs_iter_t* iter, size_t* len) {
  const evstore::EventView* v = ValidIter(iter);
  return v ? Bytes(v->causation_id, len) : NoBytes(len);
}

uint32_t evs_iter_schema_version(const evs_iter_t* iter) {
  const evstore::EventView* v = ValidIter(iter);
  return v ? v->schema_version : 0;
}

int evs_append_traced(evs_store_t* store, const char* stream, size_t stream_len, int64_t expected,
                      const evs_event_t* events, size_t count, const char* correlation_id,
                      size_t correlation_id_len, const char* causation_id, size_t causation_id_len,
                      uint32_t schema_version, evs_append_result_t* result, char** errmsg) {
  return Guard(errmsg, [&] {
    if (result) *result = evs_append_result_t{0, 0, 0, 0, 0, EVS_NO_STREAM};
    EVS_CHECK_ARG(store, "store");
    EVS_CHECK_BUF(stream, stream_len, "stream");
    EVS_CHECK_BUF(events, count, "events");
    EVS_CHECK_BUF(correlation_id, correlation_id_len, "correlation_id");
    EVS_CHECK_BUF(causation_id, causation_id_len, "causation_id");
    auto exp = ToExpected(expected);
    if (!exp) return Fail(errmsg, EVS_INVALID_ARGUMENT, "not an expected version");
    std::vector<EventData> data;
    if (int rc = CopyEvents(events, count, &data, errmsg); rc != EVS_OK) return rc;
    for (EventData& e : data) {
      e.correlation_id.assign(View(correlation_id, correlation_id_len));
      e.causation_id.assign(View(causation_id, causation_id_len));
      e.schema_version = schema_version;
    }
    auto r = store->store.append(View(stream, stream_len), *exp, data);
    if (!r.ok()) {
      if (result) FillConflict(r.status(), result);
      return FromStatus(r.status(), errmsg);
    }
    if (result) FillResult(*r, result);
    return EVS_OK;
  });
}

int evs_stream_head(evs_store_t* store, const char* stream, size_t stream_len,
                    uint64_t* last_version, uint64_t* last_position, char** errmsg) {
  return Guard(errmsg, [&] {
    EVS_CHECK_ARG(store, "store");
    EVS_CHECK_BUF(stream, stream_len, "stream");
    auto r = store->store.stream_head(View(stream, stream_len));
    if (!r.ok()) return FromStatus(r.status(), errmsg);
    if (last_version) *last_version = r->last_version;
    if (last_position) *last_position = r->last_position;
    return EVS_OK;
  });
}

}  // extern "C"
