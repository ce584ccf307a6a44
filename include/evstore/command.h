/* evstore/command.h: event sourcing from C: aggregates, commands with
 * conflict retry, the command log, upcasting, and the provenance fields of
 * events (correlation id, causation id, schema version).
 *
 * The C form of aggregate.hpp, command.hpp and upcast.hpp; see
 * docs/event-sourcing.md for the model. Every convention of evstore.h
 * (handles, buffers, status codes, errmsg, NULL, ownership, threads) holds
 * here too. In addition:
 *
 *  - States are yours: opaque pointers made by your callbacks (init, clone,
 *    decode) and released by your free callback. A state handed to
 *    evs_loaded_state or to decide is shared and immutable: never change it.
 *    evolve changes a private copy (made by clone or init) in place.
 *  - Callbacks return EVS_OK or another EVS_* code; any other code fails the
 *    operation that called them (the message names the callback and the
 *    code). They run with no evstore lock held, possibly on several threads
 *    at once (several loads, the snapshot writer), and must not call back
 *    into the same aggregate; they may use the rest of the API. user_data
 *    must stay valid while any handle using it lives.
 *  - No C++ exception ever crosses this API.
 */
#ifndef EVSTORE_COMMAND_H_
#define EVSTORE_COMMAND_H_

#include <stddef.h>
#include <stdint.h>

#include "evstore/evstore.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Provenance and schema version of events ----
 * Every event carries a correlation id and a causation id (0..1024 bytes of
 * UTF-8 without NUL; empty when unset) and the schema version of its data
 * layout (1 unless set). The accessors follow those of the same object in
 * evstore.h: NULL with *len = 0 (or 0) for NULL or a position without an
 * event; views valid as long as the object's other views. */
EVS_EXPORT const char* evs_iter_correlation_id(const evs_iter_t* iter, size_t* len);
EVS_EXPORT const char* evs_iter_causation_id(const evs_iter_t* iter, size_t* len);
EVS_EXPORT uint32_t evs_iter_schema_version(const evs_iter_t* iter);
EVS_EXPORT const char* evs_delivery_event_correlation_id(const evs_delivery_t* delivery, size_t i,
                                                         size_t* len);
EVS_EXPORT const char* evs_delivery_event_causation_id(const evs_delivery_t* delivery, size_t i,
                                                       size_t* len);
EVS_EXPORT uint32_t evs_delivery_event_schema_version(const evs_delivery_t* delivery, size_t i);
EVS_EXPORT const char* evs_projection_event_correlation_id(const evs_projection_event_t* event,
                                                           size_t* len);
EVS_EXPORT const char* evs_projection_event_causation_id(const evs_projection_event_t* event,
                                                         size_t* len);
EVS_EXPORT uint32_t evs_projection_event_schema_version(const evs_projection_event_t* event);

/* Appends like evs_append, every event with these provenance ids (either
 * may be empty) and `schema_version` (>= 1). Errors: as evs_append, and
 * EVS_INVALID_ARGUMENT for ids over 1024 bytes, not UTF-8 or with NUL, or
 * schema version 0. */
EVS_EXPORT int evs_append_traced(evs_store_t* store, const char* stream, size_t stream_len,
                                 int64_t expected, const evs_event_t* events, size_t count,
                                 const char* correlation_id, size_t correlation_id_len,
                                 const char* causation_id, size_t causation_id_len,
                                 uint32_t schema_version, evs_append_result_t* result,
                                 char** errmsg);

/* ---- Upcasters: old events read in their newest layout ---- */

typedef struct evs_upcasters_t evs_upcasters_t;
/* An event an upcaster changes. Valid during the call. */
typedef struct evs_upcast_event_t evs_upcast_event_t;

/* Turns `event` (of the registered type and version) into the registered
 * target version, in place (the setters below). */
typedef int (*evs_upcast_fn)(void* user_data, evs_upcast_event_t* event);

/* An empty registry; NULL when out of memory. */
EVS_EXPORT evs_upcasters_t* evs_upcasters_create(void);
EVS_EXPORT void evs_upcasters_destroy(evs_upcasters_t* upcasters);
/* Registers fn for events of `type` at version `from` producing version
 * `to`. Errors: EVS_INVALID_ARGUMENT (NULL upcasters or fn, a bad type, from
 * 0, to <= from, (type, from) registered already). Registering is not
 * thread-safe; aggregates and projections take a copy when given the
 * registry (evs_aggregate_def_set_upcasters,
 * evs_projection_options_set_upcasters), so later additions do not reach
 * them. */
EVS_EXPORT int evs_upcasters_add(evs_upcasters_t* upcasters, const char* type, size_t type_len,
                                 uint32_t from, uint32_t to, evs_upcast_fn fn, void* user_data,
                                 char** errmsg);

EVS_EXPORT const char* evs_upcast_event_type(const evs_upcast_event_t* event, size_t* len);
EVS_EXPORT const void* evs_upcast_event_data(const evs_upcast_event_t* event, size_t* len);
EVS_EXPORT const void* evs_upcast_event_metadata(const evs_upcast_event_t* event, size_t* len);
EVS_EXPORT const char* evs_upcast_event_content_type(const evs_upcast_event_t* event, size_t* len);
EVS_EXPORT uint32_t evs_upcast_event_schema_version(const evs_upcast_event_t* event);
/* Replace a field (copied). A NULL event is EVS_INVALID_ARGUMENT. An empty
 * type fails the read once the upcaster returns. */
EVS_EXPORT int evs_upcast_event_set_type(evs_upcast_event_t* event, const char* type, size_t len,
                                         char** errmsg);
EVS_EXPORT int evs_upcast_event_set_data(evs_upcast_event_t* event, const void* data, size_t len,
                                         char** errmsg);
EVS_EXPORT int evs_upcast_event_set_metadata(evs_upcast_event_t* event, const void* metadata,
                                             size_t len, char** errmsg);
EVS_EXPORT int evs_upcast_event_set_content_type(evs_upcast_event_t* event,
                                                 const char* content_type, size_t len,
                                                 char** errmsg);

/* Projections upcast the events their handler sees (a copy of the
 * registry; NULL: none). */
EVS_EXPORT int evs_projection_options_set_upcasters(evs_projection_options_t* options,
                                                    const evs_upcasters_t* upcasters,
                                                    char** errmsg);

/* ---- Aggregates ---- */

typedef struct evs_aggregate_def_t evs_aggregate_def_t;
typedef struct evs_aggregate_t evs_aggregate_t;
typedef struct evs_loaded_t evs_loaded_t;
/* An event passed to evolve: valid during the call. */
typedef struct evs_event_view_t evs_event_view_t;
/* Bytes a callback produces (evs_buffer_set). */
typedef struct evs_buffer_t evs_buffer_t;

/* A new initial state, or NULL (out of memory: the load fails). */
typedef void* (*evs_state_init_fn)(void* user_data);
/* A copy of `state` that evolve may change, or NULL. */
typedef void* (*evs_state_clone_fn)(void* user_data, const void* state);
/* Releases a state made by init, clone or decode. */
typedef void (*evs_state_free_fn)(void* user_data, void* state);
/* Folds `event` into `state` in place; EVS_OK or a code that fails the
 * load. */
typedef int (*evs_evolve_fn)(void* user_data, void* state, const evs_event_view_t* event);
/* Writes the state's bytes with evs_buffer_set (snapshots, the cache's L2). */
typedef int (*evs_state_encode_fn)(void* user_data, const void* state, evs_buffer_t* out);
/* Makes a state of `bytes` in *state; a non-OK code (the snapshot is then
 * skipped and reported). */
typedef int (*evs_state_decode_fn)(void* user_data, const void* bytes, size_t len, void** state);
/* The state's weight in the cache, in bytes. */
typedef size_t (*evs_state_weigh_fn)(void* user_data, const void* state);

/* Sets *out to bytes[0..len-1] (copied). */
EVS_EXPORT int evs_buffer_set(evs_buffer_t* out, const void* bytes, size_t len, char** errmsg);

/* The event being folded (accessors as evs_iter_*). */
EVS_EXPORT const uint8_t* evs_event_view_id(const evs_event_view_t* event); /* 16 bytes */
EVS_EXPORT const char* evs_event_view_stream(const evs_event_view_t* event, size_t* len);
EVS_EXPORT const char* evs_event_view_type(const evs_event_view_t* event, size_t* len);
EVS_EXPORT const char* evs_event_view_content_type(const evs_event_view_t* event, size_t* len);
EVS_EXPORT const void* evs_event_view_data(const evs_event_view_t* event, size_t* len);
EVS_EXPORT const void* evs_event_view_metadata(const evs_event_view_t* event, size_t* len);
EVS_EXPORT const char* evs_event_view_correlation_id(const evs_event_view_t* event, size_t* len);
EVS_EXPORT const char* evs_event_view_causation_id(const evs_event_view_t* event, size_t* len);
EVS_EXPORT uint32_t evs_event_view_schema_version(const evs_event_view_t* event);
EVS_EXPORT uint64_t evs_event_view_version(const evs_event_view_t* event);
EVS_EXPORT uint64_t evs_event_view_position(const evs_event_view_t* event);
EVS_EXPORT int64_t evs_event_view_timestamp_ms(const evs_event_view_t* event);

/* An aggregate type: its name (1..256 bytes of UTF-8 without NUL; snapshots
 * are stored under it), its state callbacks and its options. */
EVS_EXPORT int evs_aggregate_def_create(const char* name, size_t name_len,
                                        evs_aggregate_def_t** def, char** errmsg);
EVS_EXPORT void evs_aggregate_def_destroy(evs_aggregate_def_t* def);
/* Required: init, clone, free and evolve (none NULL). */
EVS_EXPORT int evs_aggregate_def_set_state(evs_aggregate_def_t* def, evs_state_init_fn init,
                                           evs_state_clone_fn clone, evs_state_free_fn free_fn,
                                           evs_evolve_fn evolve, void* user_data, char** errmsg);
/* Optional, both or neither (NULL, NULL): needed by snapshots and L2. */
EVS_EXPORT int evs_aggregate_def_set_codec(evs_aggregate_def_t* def, evs_state_encode_fn encode,
                                           evs_state_decode_fn decode, char** errmsg);
/* Optional (NULL: 256 bytes per state). */
EVS_EXPORT int evs_aggregate_def_set_weigher(evs_aggregate_def_t* def, evs_state_weigh_fn weigh,
                                             char** errmsg);
/* Snapshot every `every_events` events or `every_bytes` bytes folded (0:
 * that trigger off; both 0, the default: no snapshots), under your
 * `schema` version (default 1; snapshots of another schema are ignored). */
EVS_EXPORT int evs_aggregate_def_set_snapshots(evs_aggregate_def_t* def, uint64_t every_events,
                                               uint64_t every_bytes, uint32_t schema,
                                               char** errmsg);
/* Cache tiers in bytes (defaults 16 MiB and 0; 0 disables a tier). */
EVS_EXPORT int evs_aggregate_def_set_cache(evs_aggregate_def_t* def, size_t l1_bytes,
                                           size_t l2_bytes, char** errmsg);
/* A copy of `upcasters` (NULL: none) applied before evolve. */
EVS_EXPORT int evs_aggregate_def_set_upcasters(evs_aggregate_def_t* def,
                                               const evs_upcasters_t* upcasters, char** errmsg);

/* Opens an aggregate type on `store` (def is copied and may be destroyed
 * right after). Errors: EVS_INVALID_ARGUMENT (NULL arguments, no state
 * callbacks, snapshots or L2 without a codec), EVS_CLOSED. An aggregate
 * keeps the store's internals alive; destroy it before or after closing
 * the store. */
EVS_EXPORT int evs_aggregate_open(evs_store_t* store, const evs_aggregate_def_t* def,
                                  evs_aggregate_t** aggregate, char** errmsg);
/* Stops the snapshot writer (after writing what is queued, unless the store
 * is closed) and releases the handle. NULL is fine. */
EVS_EXPORT void evs_aggregate_destroy(evs_aggregate_t* aggregate);

/* Where a load found its state (evs_loaded_source). */
#define EVS_LOAD_CACHE 0          /* the cache held the state at the stream's head */
#define EVS_LOAD_CACHE_AND_LOG 1  /* a cached older state plus the events after it */
#define EVS_LOAD_SNAPSHOT 2       /* a snapshot plus the events after it */
#define EVS_LOAD_LOG 3            /* every event from the initial state */
#define EVS_LOAD_EMPTY 4          /* the stream has no events */

/* The state of `stream` after every event published when the load began.
 * *loaded is a new handle (NULL on failure). Errors: EVS_INVALID_ARGUMENT
 * (NULL arguments, a bad stream name), EVS_ABORTED (a callback failed: the
 * message names it, the stream and the version), EVS_CORRUPTION,
 * EVS_IO_ERROR, EVS_CLOSED. */
EVS_EXPORT int evs_aggregate_load(evs_aggregate_t* aggregate, const char* stream,
                                  size_t stream_len, evs_loaded_t** loaded, char** errmsg);
/* The state: shared and immutable, valid until the handle is destroyed. */
EVS_EXPORT const void* evs_loaded_state(const evs_loaded_t* loaded);
/* The version of the newest event folded in; -1 when the stream has none
 * (as expected version: EVS_EXPECT_NO_STREAM). */
EVS_EXPORT int64_t evs_loaded_version(const evs_loaded_t* loaded);
EVS_EXPORT uint64_t evs_loaded_position(const evs_loaded_t* loaded);
EVS_EXPORT int evs_loaded_source(const evs_loaded_t* loaded); /* EVS_LOAD_*; -1 for NULL */
EVS_EXPORT void evs_loaded_destroy(evs_loaded_t* loaded);

/* Loads `stream` and writes its snapshot now, on this thread.
 * EVS_INVALID_ARGUMENT without a codec; EVS_NOT_FOUND for a stream without
 * events; the codec's error. */
EVS_EXPORT int evs_aggregate_save_snapshot(evs_aggregate_t* aggregate, const char* stream,
                                           size_t stream_len, char** errmsg);
/* Waits until every snapshot queued before the call is written or failed. */
EVS_EXPORT int evs_aggregate_flush_snapshots(evs_aggregate_t* aggregate, char** errmsg);
/* Drops every cached state. */
EVS_EXPORT int evs_aggregate_clear_cache(evs_aggregate_t* aggregate, char** errmsg);

typedef struct evs_aggregate_stats_t {
  uint64_t loads;
  uint64_t from_cache;
  uint64_t from_cache_and_log;
  uint64_t from_snapshot;
  uint64_t from_log;
  uint64_t events_folded;
  uint64_t snapshots_written;
  uint64_t snapshots_dropped;
  uint64_t snapshot_errors;
  uint64_t snapshots_ignored;
} evs_aggregate_stats_t;
/* Fills *stats; *last_snapshot_error (may be NULL: not wanted) receives
 * the latest snapshot error as a NUL-terminated string to free with
 * evs_free, or NULL when there was none. */
EVS_EXPORT int evs_aggregate_stats(evs_aggregate_t* aggregate, evs_aggregate_stats_t* stats,
                                   char** last_snapshot_error, char** errmsg);

/* ---- Commands ---- */

/* A command. Zero-initialise it and set what you need: type (required),
 * stream (required), payload, and optionally an id (handled at most once)
 * and a correlation id (empty: the id). Names are 1..256 bytes of UTF-8
 * without NUL. decide receives the command in this form, valid during the
 * call. */
typedef struct evs_command_desc_t {
  const char* type;
  size_t type_len;
  const char* stream;
  size_t stream_len;
  const void* payload;
  size_t payload_len;
  const char* id;
  size_t id_len;
  const char* correlation_id;
  size_t correlation_id_len;
} evs_command_desc_t;

/* What decide answers with (evs_decision_add_event, evs_decision_reject). */
typedef struct evs_decision_t evs_decision_t;
typedef struct evs_command_result_t evs_command_result_t;
typedef struct evs_command_bus_t evs_command_bus_t;

/* Decides on `state` (the aggregate's, immutable): adds events, or rejects
 * with a domain error, and returns EVS_OK; with no events and no rejection
 * the command is accepted and appends nothing. Another code fails handling
 * (EVS_ABORTED, nothing appended). It may run more than once for one
 * command (once per try): no effects of its own. */
typedef int (*evs_decide_fn)(void* user_data, const void* state,
                             const evs_command_desc_t* command, evs_decision_t* decision);

/* Adds a copy of `event` to the decision, with data layout `schema_version`
 * (0: 1). Its correlation and causation ids are the command's. With a
 * command id the event's id must be all zero. */
EVS_EXPORT int evs_decision_add_event(evs_decision_t* decision, const evs_event_t* event,
                                      uint32_t schema_version, char** errmsg);
/* Rejects the command with a domain error: `code` 1..256 bytes of UTF-8
 * without NUL, `message` up to 64 KiB. Events added are dropped. */
EVS_EXPORT int evs_decision_reject(evs_decision_t* decision, const char* code, size_t code_len,
                                   const char* message, size_t message_len, char** errmsg);

/* Retry bounds; NULL as an argument: the defaults (10 tries, 100 us
 * initial and 20 ms maximum backoff, jitter 0.5). */
typedef struct evs_command_options_t {
  uint32_t max_tries;           /* at least 1 */
  uint64_t initial_backoff_us;
  uint64_t max_backoff_us;
  double jitter;                /* 0 to 1 */
} evs_command_options_t;

/* Handles `command` on `aggregate`: load, decide, append with the loaded
 * version, retrying conflicts. *result is a new handle on success (NULL on
 * failure); a domain error is a success (evs_command_result_accepted 0).
 * Errors: EVS_INVALID_ARGUMENT (NULL arguments, bad names or sizes, bad
 * decided events), EVS_WRONG_EXPECTED_VERSION (still conflicting after
 * max_tries), EVS_DUPLICATE_EVENT (the id was used for another command),
 * EVS_ABORTED (decide or a state callback failed), EVS_IO_ERROR (outcome
 * unknown: handle it again with the same id after reopening),
 * EVS_CORRUPTION, EVS_CLOSED. */
EVS_EXPORT int evs_command_handle(evs_aggregate_t* aggregate, const evs_command_desc_t* command,
                                  evs_decide_fn decide, void* user_data,
                                  const evs_command_options_t* options,
                                  evs_command_result_t** result, char** errmsg);
/* The stored outcome of command `id` (from_log 1). EVS_NOT_FOUND when the
 * log has none. */
EVS_EXPORT int evs_command_lookup(evs_store_t* store, const char* id, size_t id_len,
                                  evs_command_result_t** result, char** errmsg);
/* Deletes command records older than max_age_ms (0: no age limit) and,
 * beyond max_count (0: no limit), the oldest. *deleted (may be NULL) gets
 * how many. */
EVS_EXPORT int evs_command_log_prune(evs_store_t* store, uint64_t max_age_ms, uint64_t max_count,
                                     uint64_t* deleted, char** errmsg);

/* The outcome of a command. 0 / NULL for NULL. */
EVS_EXPORT int evs_command_result_accepted(const evs_command_result_t* result);
/* The domain error of a rejected command; NULL with *len = 0 otherwise. */
EVS_EXPORT const char* evs_command_result_error_code(const evs_command_result_t* result,
                                                     size_t* len);
EVS_EXPORT const char* evs_command_result_error_message(const evs_command_result_t* result,
                                                        size_t* len);
/* Events appended; where they landed (valid when events > 0; *append may
 * not be NULL). */
EVS_EXPORT uint64_t evs_command_result_events(const evs_command_result_t* result);
EVS_EXPORT int evs_command_result_append(const evs_command_result_t* result,
                                         evs_append_result_t* append, char** errmsg);
EVS_EXPORT uint32_t evs_command_result_tries(const evs_command_result_t* result);
EVS_EXPORT int evs_command_result_from_log(const evs_command_result_t* result);
EVS_EXPORT int64_t evs_command_result_handled_ms(const evs_command_result_t* result);
EVS_EXPORT void evs_command_result_destroy(evs_command_result_t* result);

/* A registry of handlers by command type, with optional retention of the
 * command log on a thread of its own (max_age_ms, max_count as in
 * evs_command_log_prune; both 0: none) every retention_interval_ms.
 * options: NULL for the defaults. */
EVS_EXPORT int evs_command_bus_create(evs_store_t* store, const evs_command_options_t* options,
                                      uint64_t retention_max_age_ms, uint64_t retention_max_count,
                                      uint64_t retention_interval_ms, evs_command_bus_t** bus,
                                      char** errmsg);
/* Stops the retention thread and releases the bus. NULL is fine. */
EVS_EXPORT void evs_command_bus_destroy(evs_command_bus_t* bus);
/* Handles commands of `type` with `decide` on `aggregate` (which the bus
 * then keeps alive). EVS_INVALID_ARGUMENT for a type registered already. */
EVS_EXPORT int evs_command_bus_register(evs_command_bus_t* bus, const char* type, size_t type_len,
                                        evs_aggregate_t* aggregate, evs_decide_fn decide,
                                        void* user_data, char** errmsg);
/* Handles `command` by its type, as evs_command_handle. EVS_NOT_FOUND when
 * no handler is registered for it. */
EVS_EXPORT int evs_command_bus_handle(evs_command_bus_t* bus, const evs_command_desc_t* command,
                                      evs_command_result_t** result, char** errmsg);

#ifdef __cplusplus
}
#endif

#endif /* EVSTORE_COMMAND_H_ */
