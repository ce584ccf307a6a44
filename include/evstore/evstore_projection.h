/* evstore_projection.h: projections and point-in-time snapshots from C
 * (the C side of projection.hpp and snapshot.hpp): C handlers that keep
 * keyed state in the store, its queries, and consistent reads of the log
 * and every projection as of one position.
 *
 * Part of the C API: evstore.h includes this header, and this header
 * includes evstore.h, so either include gives the whole API. The
 * conventions numbered at the top of evstore.h (handles, buffers, status
 * codes, messages, NULL, ownership, threads, growth) hold here too; what
 * differs is stated below. */
#ifndef EVSTORE_EVSTORE_PROJECTION_H_
#define EVSTORE_EVSTORE_PROJECTION_H_

#include "evstore/evstore.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Projections and point-in-time snapshots (docs/projections.md) ---- */

/* A projection is a named C handler over selected events that keeps keyed
 * state in the store (projection.hpp): the state changes of a batch of
 * events and the projection's checkpoint commit in one write, so the state
 * is always the fold of the log up to the checkpoint, across crashes and
 * power loss. It runs on a thread of its own: it catches up from its
 * checkpoint, then follows commits live. The queries (evs_projection_get,
 * _scan, _info, _list) work whether or not it runs, from any thread. A
 * snapshot (evs_snapshot_t) reads the log, the stream heads and every
 * projection as of one position, without tearing.
 *
 * Names are 1..256 bytes of UTF-8 without NUL; state keys 1..1024 bytes;
 * values at most 16 MiB. Durations are in milliseconds; values over 2^40
 * count as 2^40.
 *
 * Threads: a projection handle may be used from any number of threads;
 * options belong to one thread at a time; a snapshot may be read from any
 * number of threads at once. The handler runs on the projection's thread
 * with no internal lock held and may call any function of this API, except
 * evs_projection_wait on its own projection (EVS_BUSY). */

typedef struct evs_projection_options_t evs_projection_options_t;
typedef struct evs_projection_t evs_projection_t;
typedef struct evs_projection_event_t evs_projection_event_t;
typedef struct evs_projection_state_t evs_projection_state_t;
typedef struct evs_projection_status_t evs_projection_status_t;
typedef struct evs_projection_info_t evs_projection_info_t;
typedef struct evs_projection_list_t evs_projection_list_t;
typedef struct evs_projection_entries_t evs_projection_entries_t;
typedef struct evs_snapshot_t evs_snapshot_t;

/* Folds one event into the state and returns EVS_OK. Called once per
 * selected event, in position order; `event` and `state` are valid only
 * during the call. Any other return value is a handler failure: the
 * batch's changes are discarded and the batch is handled again after a
 * backoff (evs_projection_options_set_retry_backoff); the status shows the
 * error (with the text of evs_projection_state_set_error, if any) meanwhile.
 * The handler must be deterministic given the event and the state it reads:
 * a batch may be handled more than once, and only its state changes are
 * exactly once. */
typedef int (*evs_projection_handler_fn)(void* user_data, const evs_projection_event_t* event,
                                         evs_projection_state_t* state);

/* The event being folded. Byte accessors return NULL with *len = 0 for NULL
 * (len may be NULL: not wanted); the others 0. Views are valid during the
 * handler call. */
EVS_EXPORT const uint8_t* evs_projection_event_id(const evs_projection_event_t* event); /* 16 bytes */
EVS_EXPORT const char* evs_projection_event_stream(const evs_projection_event_t* event, size_t* len);
EVS_EXPORT const char* evs_projection_event_type(const evs_projection_event_t* event, size_t* len);
EVS_EXPORT const char* evs_projection_event_content_type(const evs_projection_event_t* event,
                                                         size_t* len);
EVS_EXPORT const void* evs_projection_event_data(const evs_projection_event_t* event, size_t* len);
EVS_EXPORT const void* evs_projection_event_metadata(const evs_projection_event_t* event,
                                                     size_t* len);
EVS_EXPORT uint64_t evs_projection_event_version(const evs_projection_event_t* event);
EVS_EXPORT uint64_t evs_projection_event_position(const evs_projection_event_t* event);
EVS_EXPORT int64_t evs_projection_event_timestamp_ms(const evs_projection_event_t* event);

/* The state as the handler sees it: the committed state plus the changes of
 * the batch being handled. EVS_OK: *value is a copy (free with evs_free;
 * non-NULL even when empty), *value_len (may be NULL) its length.
 * EVS_NOT_FOUND: no such key; *value is NULL. Errors: EVS_INVALID_ARGUMENT
 * (NULL state or value, a bad key), EVS_IO_ERROR, EVS_CORRUPTION. */
EVS_EXPORT int evs_projection_state_get(evs_projection_state_t* state, const void* key,
                                        size_t key_len, void** value, size_t* value_len,
                                        char** errmsg);
/* Sets or removes a key in the batch (both copy their bytes). Errors:
 * EVS_INVALID_ARGUMENT (NULL state, a bad key, a value over 16 MiB). */
EVS_EXPORT int evs_projection_state_put(evs_projection_state_t* state, const void* key,
                                        size_t key_len, const void* value, size_t value_len,
                                        char** errmsg);
EVS_EXPORT int evs_projection_state_erase(evs_projection_state_t* state, const void* key,
                                          size_t key_len, char** errmsg);
/* The text reported with a failure this handler call returns (copied; a
 * later call replaces it). Ignored when the handler returns EVS_OK. */
EVS_EXPORT int evs_projection_state_set_error(evs_projection_state_t* state, const char* text,
                                              size_t len, char** errmsg);

/* Every event, version 1, batches of up to 512 events, backoff from 100 ms
 * doubling up to 30 s, retry for ever. NULL when out of memory. */
EVS_EXPORT evs_projection_options_t* evs_projection_options_create(void);
EVS_EXPORT void evs_projection_options_destroy(evs_projection_options_t* options);
/* Setters return EVS_OK, or EVS_INVALID_ARGUMENT for NULL options or a NULL
 * buffer with a non-zero length. Values are checked by evs_projection_run.
 * The filter selects every event (the default), one stream, one category
 * (no '-') or a set of event types (at least one); a later filter setter
 * replaces the earlier one. */
EVS_EXPORT int evs_projection_options_set_filter_all(evs_projection_options_t* options,
                                                     char** errmsg);
EVS_EXPORT int evs_projection_options_set_filter_stream(evs_projection_options_t* options,
                                                        const char* stream, size_t stream_len,
                                                        char** errmsg);
EVS_EXPORT int evs_projection_options_set_filter_category(evs_projection_options_t* options,
                                                          const char* category,
                                                          size_t category_len, char** errmsg);
/* types[i] has type_lens[i] bytes, for i < count (both NULL when count 0). */
EVS_EXPORT int evs_projection_options_set_filter_types(evs_projection_options_t* options,
                                                       const char* const* types,
                                                       const size_t* type_lens, size_t count,
                                                       char** errmsg);
/* The handler's version: a stored projection of another version is rebuilt
 * online when it starts. */
EVS_EXPORT int evs_projection_options_set_version(evs_projection_options_t* options,
                                                  uint32_t version, char** errmsg);
/* Most events folded per commit (at least 1). */
EVS_EXPORT int evs_projection_options_set_max_batch(evs_projection_options_t* options,
                                                    size_t max_batch, char** errmsg);
/* After a handler failure: wait initial_ms (> 0), doubling up to max_ms
 * (>= initial_ms). */
EVS_EXPORT int evs_projection_options_set_retry_backoff(evs_projection_options_t* options,
                                                        uint64_t initial_ms, uint64_t max_ms,
                                                        char** errmsg);
/* This many consecutive failures stop the projection in
 * EVS_PROJECTION_FAILED (0: retry for ever). */
EVS_EXPORT int evs_projection_options_set_max_retries(evs_projection_options_t* options,
                                                      uint32_t max_retries, char** errmsg);

/* Starts projection `name` with handler(user_data, ...): creates it, or
 * resumes it after its checkpoint (rebuilding it online when the version
 * differs from the stored one). options: NULL for the defaults; copied.
 * *projection is the new handle (NULL on failure); the handler may run
 * before this returns. The handle keeps the store open (also after
 * evs_store_destroy) until it is destroyed; evs_store_close stops the
 * projection. Errors: EVS_INVALID_ARGUMENT (a bad name, filter or option,
 * NULL handler, a read-only store), EVS_BUSY (it runs already in this
 * process), EVS_CLOSED, EVS_CORRUPTION, EVS_IO_ERROR. */
EVS_EXPORT int evs_projection_run(evs_store_t* store, const char* name, size_t name_len,
                                  const evs_projection_options_t* options,
                                  evs_projection_handler_fn handler, void* user_data,
                                  evs_projection_t** projection, char** errmsg);
/* Waits until the serving state includes every selected event before
 * `position` (read your writes: an append's last_position + 1). Errors:
 * EVS_TIMED_OUT (always, from its own handler), EVS_CLOSED (it stopped),
 * the error that failed it. */
EVS_EXPORT int evs_projection_wait_for(evs_projection_t* projection, uint64_t position,
                                       uint64_t timeout_ms, char** errmsg);
/* Starts an online rebuild: the log is folded again from the start into a
 * new instance of the state while the old one serves queries; one write
 * swaps them when the new one has caught up. Errors: EVS_BUSY (one is under
 * way), EVS_CLOSED (it stopped). */
EVS_EXPORT int evs_projection_rebuild(evs_projection_t* projection, char** errmsg);
/* Asks the projection to stop after the batch in hand (which commits).
 * Idempotent; any thread, its own handler included. */
EVS_EXPORT int evs_projection_stop(evs_projection_t* projection, char** errmsg);
/* Waits until it has stopped and returns why: EVS_OK after
 * evs_projection_stop, EVS_CLOSED when the store closed, or the error that
 * failed it (handler failures past max_retries are EVS_ABORTED). EVS_BUSY
 * from its own handler. */
EVS_EXPORT int evs_projection_wait(evs_projection_t* projection, char** errmsg);
/* Stops the projection, waits for its thread and releases the handle. From
 * then on the handler is not called again: called from the handler, it
 * returns at once, the rest of the batch is not handled (nor committed: it
 * is handled again at the next run), and the thread ends after the handler
 * returns. NULL is fine. REQUIRES: no other thread is using the handle. */
EVS_EXPORT void evs_projection_destroy(evs_projection_t* projection);

/* Phases (evs_projection_status_phase). */
#define EVS_PROJECTION_STARTING 0    /* reading its stored state */
#define EVS_PROJECTION_CATCHING_UP 1 /* behind the end of the log */
#define EVS_PROJECTION_LIVE 2        /* caught up; following commits */
#define EVS_PROJECTION_RETRYING 3    /* the handler failed; waiting to retry */
#define EVS_PROJECTION_FAILED 4      /* stopped by an error (see last_error) */
#define EVS_PROJECTION_STOPPED 5     /* stopped, or the store closed */
/* Static names ("live", ...); "unknown" for other values. */
EVS_EXPORT const char* evs_projection_phase_name(int phase);

/* The running projection's status now, in *status (destroy with
 * evs_projection_status_destroy). Also after it stopped. */
EVS_EXPORT int evs_projection_status(evs_projection_t* projection,
                                     evs_projection_status_t** status, char** errmsg);
EVS_EXPORT void evs_projection_status_destroy(evs_projection_status_t* status);
/* Accessors return NULL / 0 for NULL; views are valid as long as status. */
EVS_EXPORT const char* evs_projection_status_name(const evs_projection_status_t* status,
                                                  size_t* len);
EVS_EXPORT int evs_projection_status_phase(const evs_projection_status_t* status);
EVS_EXPORT uint32_t evs_projection_status_version(const evs_projection_status_t* status);
/* Every selected event before it is folded into the serving state. */
EVS_EXPORT uint64_t evs_projection_status_position(const evs_projection_status_t* status);
/* Positions between it and the end of the log; age in ms of the oldest
 * event not folded in yet (0 when caught up). */
EVS_EXPORT uint64_t evs_projection_status_lag_events(const evs_projection_status_t* status);
EVS_EXPORT int64_t evs_projection_status_lag_ms(const evs_projection_status_t* status);
EVS_EXPORT double evs_projection_status_events_per_s(const evs_projection_status_t* status);
/* Events handled and handler failures of this run. */
EVS_EXPORT uint64_t evs_projection_status_events_handled(const evs_projection_status_t* status);
EVS_EXPORT uint64_t evs_projection_status_retries(const evs_projection_status_t* status);
/* Empty ("", 0) when none. */
EVS_EXPORT const char* evs_projection_status_last_error(const evs_projection_status_t* status,
                                                        size_t* len);
EVS_EXPORT int evs_projection_status_rebuilding(const evs_projection_status_t* status);
EVS_EXPORT uint64_t evs_projection_status_rebuild_position(const evs_projection_status_t* status);

/* Queries of stored projections (running or not), each at one consistent
 * point. EVS_NOT_FOUND when the projection does not exist; errors
 * EVS_INVALID_ARGUMENT (NULL or bad arguments), EVS_CLOSED, EVS_IO_ERROR,
 * EVS_CORRUPTION. */
/* The value under `key` in the serving state, as evs_projection_state_get
 * (EVS_NOT_FOUND also for a missing key). */
EVS_EXPORT int evs_projection_get(evs_store_t* store, const char* name, size_t name_len,
                                  const void* key, size_t key_len, void** value,
                                  size_t* value_len, char** errmsg);
/* A page of the entries whose keys start with `prefix` (may be empty), in
 * key order, after `start_after` (exclusive; empty: from the first), at
 * most `limit` (EVS_NO_LIMIT: all). Pass the page's last key as start_after
 * for the next page; an empty page is past the last. Prefix and start_after
 * are at most 1024 bytes. */
EVS_EXPORT int evs_projection_scan(evs_store_t* store, const char* name, size_t name_len,
                                   const void* prefix, size_t prefix_len,
                                   const void* start_after, size_t start_after_len,
                                   uint64_t limit, evs_projection_entries_t** entries,
                                   char** errmsg);
/* A stored projection's checkpoint and counts, in *info (destroy with
 * evs_projection_info_destroy). */
EVS_EXPORT int evs_projection_info(evs_store_t* store, const char* name, size_t name_len,
                                   evs_projection_info_t** info, char** errmsg);
/* Every stored projection, by name, in *list. */
EVS_EXPORT int evs_projection_list(evs_store_t* store, evs_projection_list_t** list,
                                   char** errmsg);
/* Deletes projection `name` and all its state. EVS_BUSY while it runs. */
EVS_EXPORT int evs_projection_delete(evs_store_t* store, const char* name, size_t name_len,
                                     char** errmsg);

/* Scan results: views valid until destroyed; NULL with *len = 0 out of
 * range or for NULL. */
EVS_EXPORT size_t evs_projection_entries_count(const evs_projection_entries_t* entries);
EVS_EXPORT const void* evs_projection_entries_key(const evs_projection_entries_t* entries,
                                                  size_t i, size_t* len);
EVS_EXPORT const void* evs_projection_entries_value(const evs_projection_entries_t* entries,
                                                    size_t i, size_t* len);
EVS_EXPORT void evs_projection_entries_destroy(evs_projection_entries_t* entries);

/* A stored projection. Accessors return NULL / 0 for NULL; views are valid
 * as long as the info (or the list holding it). */
EVS_EXPORT void evs_projection_info_destroy(evs_projection_info_t* info);
EVS_EXPORT const char* evs_projection_info_name(const evs_projection_info_t* info, size_t* len);
EVS_EXPORT uint32_t evs_projection_info_version(const evs_projection_info_t* info);
/* Every selected event before it is in the serving state. */
EVS_EXPORT uint64_t evs_projection_info_position(const evs_projection_info_t* info);
EVS_EXPORT uint64_t evs_projection_info_events_handled(const evs_projection_info_t* info);
EVS_EXPORT int64_t evs_projection_info_updated_ms(const evs_projection_info_t* info);
EVS_EXPORT int evs_projection_info_rebuilding(const evs_projection_info_t* info);
EVS_EXPORT uint64_t evs_projection_info_rebuild_position(const evs_projection_info_t* info);

EVS_EXPORT size_t evs_projection_list_size(const evs_projection_list_t* list);
/* The i-th projection, valid until the list is destroyed; NULL out of
 * range. */
EVS_EXPORT const evs_projection_info_t* evs_projection_list_get(const evs_projection_list_t* list,
                                                                size_t i);
EVS_EXPORT void evs_projection_list_destroy(evs_projection_list_t* list);

/* A point-in-time view of the store at one position P: reads see the events
 * before P and the stream heads then, and every projection at its
 * checkpoint then (never beyond P). While it exists evs_store_close returns
 * EVS_BUSY: hold it for a query, not for hours. Errors: EVS_INVALID_ARGUMENT
 * (NULL), EVS_CLOSED. */
EVS_EXPORT int evs_snapshot_create(evs_store_t* store, evs_snapshot_t** snapshot, char** errmsg);
/* NULL is fine. Iterators read from it stay valid after it is destroyed. */
EVS_EXPORT void evs_snapshot_destroy(evs_snapshot_t* snapshot);
/* P: every event before it is in the snapshot, none after (0 for NULL). */
EVS_EXPORT uint64_t evs_snapshot_position(const evs_snapshot_t* snapshot);
/* As evs_read_stream, evs_read_all, evs_read_category, evs_read_type and
 * evs_stream_head, bounded by the snapshot's position (a stream created
 * after it is EVS_NOT_FOUND). */
EVS_EXPORT int evs_snapshot_read_stream(const evs_snapshot_t* snapshot, const char* stream,
                                        size_t stream_len, uint64_t from, int direction,
                                        uint64_t limit, evs_iter_t** iter, char** errmsg);
EVS_EXPORT int evs_snapshot_read_all(const evs_snapshot_t* snapshot, uint64_t from, int direction,
                                     uint64_t limit, evs_iter_t** iter, char** errmsg);
EVS_EXPORT int evs_snapshot_read_category(const evs_snapshot_t* snapshot, const char* category,
                                          size_t category_len, uint64_t from, int direction,
                                          uint64_t limit, evs_iter_t** iter, char** errmsg);
EVS_EXPORT int evs_snapshot_read_type(const evs_snapshot_t* snapshot, const char* type,
                                      size_t type_len, uint64_t from, int direction,
                                      uint64_t limit, evs_iter_t** iter, char** errmsg);
EVS_EXPORT int evs_snapshot_stream_head(const evs_snapshot_t* snapshot, const char* stream,
                                        size_t stream_len, uint64_t* last_version,
                                        uint64_t* last_position, char** errmsg);
/* As evs_projection_get, _scan and _info, as of the snapshot: the state is
 * the one at evs_projection_info_position of the snapshot's info. */
EVS_EXPORT int evs_snapshot_projection_get(const evs_snapshot_t* snapshot, const char* name,
                                           size_t name_len, const void* key, size_t key_len,
                                           void** value, size_t* value_len, char** errmsg);
EVS_EXPORT int evs_snapshot_projection_scan(const evs_snapshot_t* snapshot, const char* name,
                                            size_t name_len, const void* prefix,
                                            size_t prefix_len, const void* start_after,
                                            size_t start_after_len, uint64_t limit,
                                            evs_projection_entries_t** entries, char** errmsg);
EVS_EXPORT int evs_snapshot_projection_info(const evs_snapshot_t* snapshot, const char* name,
                                            size_t name_len, evs_projection_info_t** info,
                                            char** errmsg);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* EVSTORE_EVSTORE_PROJECTION_H_ */
