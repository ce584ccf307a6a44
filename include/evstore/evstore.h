/* evstore.h: the C API of evstore, an embedded transactional event store.
 *
 * A thin layer over the C++ API (store.hpp, cache.hpp, saga.hpp, ...): open a
 * store in a directory, append events to streams with optimistic concurrency
 * (expected versions) and idempotent retries, read them back by stream,
 * category, event type or as one global log in commit order; subscriptions
 * that deliver events as they commit, with durable checkpoints; a tiered
 * cache; durable sagas with C handlers; projections and point-in-time
 * snapshots. Plain C11, also valid C++.
 * See docs/c-api.md for a guide and a complete example.
 *
 * Include this header: it declares the core (status codes, versions, event
 * ids, options, stores, appends, reads) and includes the rest, one header
 * per concept: evstore_subscription.h (subscriptions and checkpoints),
 * evstore_cache.h (the cache), evstore_saga.h (sagas) and
 * evstore_projection.h (projections and snapshots).
 *
 * Conventions
 *
 *  1. Handles. Every object is an opaque handle (evs_store_t, evs_options_t,
 *     evs_tx_t, evs_iter_t, evs_subscription_t, evs_cache_t, ...) made by an
 *     evs_<noun>_create or _open call (or evs_read_*, evs_subscribe*) and
 *     released by evs_<noun>_destroy. Destroy
 *     functions accept NULL and do nothing. A handle must not be used after it
 *     has been destroyed. The few plain structs (evs_event_t,
 *     evs_append_result_t, evs_store_stats_t, evs_cache_stats_t,
 *     evs_saga_stats_t) have a fixed layout that never changes.
 *
 *  2. Buffers are a pointer plus a length in bytes and need no NUL
 *     terminator. A NULL pointer with length 0 is the empty buffer; a NULL
 *     pointer with a non-zero length is EVS_INVALID_ARGUMENT. Only file-system
 *     paths are NUL-terminated strings.
 *
 *  3. Status. Fallible functions return an int status: EVS_OK (0) or one of
 *     the EVS_* codes below. Codes 0..11 are exactly evstore::Status::Code;
 *     codes are never renumbered and new ones are only ever added. Codes from
 *     100 on belong to the C API only (EVS_NO_MEMORY). No C++ exception ever
 *     crosses this API: out of memory is EVS_NO_MEMORY, any other internal
 *     failure EVS_ABORTED.
 *
 *  4. Messages. Every function that can fail takes a last argument
 *     `char** errmsg`, except the argument-less evs_*_create functions
 *     (their one failure, out of memory, is a NULL result) and
 *     evs_iter_next / evs_iter_seek (which report through evs_iter_status).
 *     Pass NULL when the message is not wanted. Otherwise *errmsg is always
 *     written: NULL on success, and on failure a NUL-terminated message that
 *     the caller owns and frees with evs_free (NULL only when memory for the
 *     message itself ran out; a previous value of *errmsg is not freed).
 *     Messages are per call, so this is thread-safe. evs_errstr(code)
 *     returns static text for a code.
 *
 *  5. Booleans are int (results: 1 true, 0 false) or uint8_t (arguments: 0
 *     false, anything else true).
 *
 *  6. NULL. A NULL handle, a NULL required out-pointer or a NULL buffer with
 *     a non-zero length is EVS_INVALID_ARGUMENT with a message, never a
 *     crash. Where NULL means something else, the function says so ("NULL:
 *     defaults", "may be NULL: not wanted"). Accessors that return a value
 *     directly (evs_iter_*, evs_delivery_*, evs_version*, evs_errstr, ...)
 *     return NULL, 0 or "" for a NULL handle.
 *
 *  7. Ownership. The caller owns every handle it creates and every buffer
 *     the API allocates for it (messages, cache values: free them with
 *     evs_free). The API never keeps a pointer to caller memory after a call
 *     returns; input bytes are copied. Pointers returned by iterators point
 *     into the iterator and stay valid until it moves (evs_iter_next,
 *     evs_iter_seek) or is destroyed; a pull subscription's delivery stays
 *     valid until its next evs_subscription_next or its destruction.
 *
 *  8. Threads. A store, a cache, a saga engine and a push subscription may
 *     be used from any number of threads at once, including evs_store_close.
 *     Options, transactions, iterators, pull subscriptions (except
 *     evs_subscription_stop, which any thread may call) and saga definitions
 *     belong to one thread at a time. Callbacks (evs_cache_get_or_load's
 *     loader, push subscription callbacks, saga handlers and engine
 *     callbacks) run with no internal lock held and may call any function of
 *     this API, on any handle, without deadlock (the exceptions are named at
 *     the functions).
 *
 *  9. Growth. Functions are only ever added (a changed behaviour or a new
 *     struct field comes as a new function, e.g. evs_append_v2); existing
 *     signatures and struct layouts never change.
 */
#ifndef EVSTORE_EVSTORE_H_
#define EVSTORE_EVSTORE_H_

#include <stddef.h>
#include <stdint.h>

#include "evstore/version.h"

#if defined(_WIN32)
#if defined(EVSTORE_BUILDING)
#define EVS_EXPORT __declspec(dllexport)
#else
#define EVS_EXPORT __declspec(dllimport)
#endif
#else
#define EVS_EXPORT __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Status codes (equal to evstore::Status::Code) ---- */

#define EVS_OK 0
#define EVS_NOT_FOUND 1
#define EVS_CORRUPTION 2
#define EVS_NOT_SUPPORTED 3
#define EVS_INVALID_ARGUMENT 4
#define EVS_IO_ERROR 5
#define EVS_WRONG_EXPECTED_VERSION 6 /* optimistic concurrency check failed */
#define EVS_DUPLICATE_EVENT 7        /* an event id is stored with other content */
#define EVS_BUSY 8                   /* cannot run now (e.g. close with open iterators) */
#define EVS_TIMED_OUT 9
#define EVS_ABORTED 10
#define EVS_CLOSED 11 /* the store was closed */
/* C API only. */
#define EVS_NO_MEMORY 100

/* Static, never-NULL English text for a status code ("unknown status code"
 * for codes this version does not know). */
EVS_EXPORT const char* evs_errstr(int code);

/* Frees a buffer allocated by this API (messages, cache values). NULL is
 * fine. */
EVS_EXPORT void evs_free(void* ptr);

/* ---- Version ---- */

/* The library's version as one number, major * 1000000 + minor * 1000 +
 * patch (compare with EVSTORE_VERSION_NUMBER from the headers). */
EVS_EXPORT int evs_version(void);
/* The library's version as static text, e.g. "0.1.0". */
EVS_EXPORT const char* evs_version_string(void);

/* ---- Event ids (16-byte UUIDs) ---- */

/* Writes a fresh random (version 4) UUID to out[0..15]. EVS_INVALID_ARGUMENT
 * if out is NULL; EVS_ABORTED if the system has no randomness to give.
 * Thread-safe. */
EVS_EXPORT int evs_uuid_generate(uint8_t* out, char** errmsg);
/* Parses "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" (case-insensitive, exactly
 * `len` bytes) into out[0..15]. EVS_INVALID_ARGUMENT on any other text. */
EVS_EXPORT int evs_uuid_parse(const char* text, size_t len, uint8_t* out, char** errmsg);
/* Writes the canonical lower-case text of id[0..15] and a NUL to
 * out[0..36] (37 bytes). */
EVS_EXPORT int evs_uuid_format(const uint8_t* id, char* out, char** errmsg);

/* ---- Options: how a store is opened ---- */

typedef struct evs_options_t evs_options_t;

/* Options with evstore's defaults (Durable: create if missing, sync every
 * commit; see options.hpp for each default). NULL when out of memory. */
EVS_EXPORT evs_options_t* evs_options_create(void);
EVS_EXPORT void evs_options_destroy(evs_options_t* options);
/* Each setter returns EVS_OK, or EVS_INVALID_ARGUMENT when options is NULL.
 * Values are checked by evs_store_open. */
/* Behaviour. */
EVS_EXPORT int evs_options_set_create_if_missing(evs_options_t* options, uint8_t value,
                                                 char** errmsg);
EVS_EXPORT int evs_options_set_read_only(evs_options_t* options, uint8_t value, char** errmsg);
EVS_EXPORT int evs_options_set_sync(evs_options_t* options, uint8_t value, char** errmsg);
/* Limits (appends beyond them fail with EVS_INVALID_ARGUMENT). */
EVS_EXPORT int evs_options_set_max_event_bytes(evs_options_t* options, size_t value, char** errmsg);
EVS_EXPORT int evs_options_set_max_stream_name_bytes(evs_options_t* options, size_t value,
                                                     char** errmsg);
EVS_EXPORT int evs_options_set_max_type_name_bytes(evs_options_t* options, size_t value,
                                                   char** errmsg);
EVS_EXPORT int evs_options_set_max_content_type_bytes(evs_options_t* options, size_t value,
                                                      char** errmsg);
EVS_EXPORT int evs_options_set_max_events_per_append(evs_options_t* options, size_t value,
                                                     char** errmsg);
EVS_EXPORT int evs_options_set_max_append_bytes(evs_options_t* options, size_t value,
                                                char** errmsg);
EVS_EXPORT int evs_options_set_max_streams_per_transaction(evs_options_t* options, size_t value,
                                                           char** errmsg);
/* Store caches (docs/cache.md): event records by position (L1 decoded, L2
 * stored bytes; capacities in bytes, 0 disables a tier), their TTL in ms
 * (0: none), and the number of stream heads kept in memory. */
EVS_EXPORT int evs_options_set_event_cache_l1_bytes(evs_options_t* options, size_t value,
                                                    char** errmsg);
EVS_EXPORT int evs_options_set_event_cache_l2_bytes(evs_options_t* options, size_t value,
                                                    char** errmsg);
EVS_EXPORT int evs_options_set_event_cache_ttl_ms(evs_options_t* options, uint64_t value,
                                                  char** errmsg);
EVS_EXPORT int evs_options_set_head_cache_entries(evs_options_t* options, size_t value,
                                                  char** errmsg);
/* Performance. */
EVS_EXPORT int evs_options_set_block_cache_bytes(evs_options_t* options, size_t value,
                                                 char** errmsg);
EVS_EXPORT int evs_options_set_max_group_requests(evs_options_t* options, size_t value,
                                                  char** errmsg);
EVS_EXPORT int evs_options_set_max_group_bytes(evs_options_t* options, size_t value, char** errmsg);

/* ---- Store ---- */

typedef struct evs_store_t evs_store_t;

/* Opens (or, with create_if_missing, creates) the store in the directory
 * `path` (NUL-terminated). options: NULL for the defaults; it is copied and
 * may be destroyed right after. On success *store is a new handle; on failure
 * *store is NULL. Errors: EVS_INVALID_ARGUMENT (NULL or empty path, a file, a
 * directory holding something else), EVS_NOT_FOUND (missing and not
 * create_if_missing), EVS_NOT_SUPPORTED (written by a newer evstore),
 * EVS_CORRUPTION, EVS_IO_ERROR (e.g. locked by another process). */
EVS_EXPORT int evs_store_open(const char* path, const evs_options_t* options, evs_store_t** store,
                              char** errmsg);

/* Closes the store: syncs the log and releases the directory. The handle
 * stays valid; afterwards every operation on it returns EVS_CLOSED. Closing
 * twice is EVS_OK. EVS_BUSY (and nothing changes) while iterators of this
 * store exist. */
EVS_EXPORT int evs_store_close(evs_store_t* store, char** errmsg);

/* Releases the handle, closing the store if it is open. Iterators that are
 * still alive keep the store open until they are destroyed. NULL is fine.
 * REQUIRES: no other thread is using the handle. */
EVS_EXPORT void evs_store_destroy(evs_store_t* store);

/* The directory the store was opened on (NUL-terminated, valid until the
 * handle is destroyed); "" for NULL. */
EVS_EXPORT const char* evs_store_path(const evs_store_t* store);

/* Counters since open. */
typedef struct evs_store_stats_t {
  uint64_t next_position;      /* the position the next event will get */
  uint64_t appends;            /* committed appends and transactions */
  uint64_t events_appended;    /* events they wrote */
  uint64_t commit_groups;      /* writes to the storage engine (group commit) */
  uint64_t conflicts;          /* EVS_WRONG_EXPECTED_VERSION results */
  uint64_t idempotent_replays; /* appends answered from earlier identical ones */
} evs_store_stats_t;

/* Fills *stats. Errors: EVS_CLOSED. */
EVS_EXPORT int evs_store_stats(evs_store_t* store, evs_store_stats_t* stats, char** errmsg);

/* ---- Appending ---- */

/* Expected versions: one of these constants, or an exact version >= 0 (the
 * version of the stream's newest event). Other negative values are
 * EVS_INVALID_ARGUMENT. */
#define EVS_EXPECT_ANY (-2)           /* whatever the stream's state */
#define EVS_EXPECT_NO_STREAM (-1)     /* the stream must not exist yet */
#define EVS_EXPECT_STREAM_EXISTS (-4) /* the stream must hold an event */

/* "The stream does not exist", in evs_append_result_t.actual_version. */
#define EVS_NO_STREAM (-1)

/* One event to append. Zero-initialise it and set what you need: an all-zero
 * id means "generate one"; a caller-supplied id makes retries idempotent. */
typedef struct evs_event_t {
  uint8_t id[16];
  const char* type; /* required: 1..max_type_name_bytes of UTF-8 */
  size_t type_len;
  const char* content_type; /* e.g. "application/json"; may be empty */
  size_t content_type_len;
  const void* data; /* opaque bytes */
  size_t data_len;
  const void* metadata; /* opaque bytes */
  size_t metadata_len;
} evs_event_t;

/* Where an append landed. Versions are per stream (0-based, dense);
 * positions are global (0-based, dense, in commit order). */
typedef struct evs_append_result_t {
  uint64_t first_version;
  uint64_t last_version;
  uint64_t first_position;
  uint64_t last_position;
  /* 1 when every event was already stored at exactly this place by an
   * earlier append with the same ids and content: nothing was written. */
  int idempotent_replay;
  /* After EVS_WRONG_EXPECTED_VERSION: the stream's actual version, or
   * EVS_NO_STREAM. EVS_NO_STREAM after every other outcome. */
  int64_t actual_version;
} evs_append_result_t;

/* Appends events[0..count-1] to `stream` if it is at `expected`. All or
 * nothing. result may be NULL (not wanted); it is written on success and on
 * EVS_WRONG_EXPECTED_VERSION. Errors: EVS_WRONG_EXPECTED_VERSION (nothing
 * written), EVS_DUPLICATE_EVENT (an id is stored with other content or
 * elsewhere), EVS_INVALID_ARGUMENT (NULL store or events, count 0, a stream
 * name or type that is empty, too long or not UTF-8, oversize data, a bad
 * expected version), EVS_NOT_SUPPORTED (read-only store), EVS_IO_ERROR (the
 * outcome is unknown: retry with the same ids to learn whether it landed),
 * EVS_CLOSED.
 * Idempotency: when every event id is given and already stored, in order, at
 * consecutive versions of this stream with the same content, the original
 * result is returned with idempotent_replay = 1 and nothing is written. */
EVS_EXPORT int evs_append(evs_store_t* store, const char* stream, size_t stream_len,
                          int64_t expected, const evs_event_t* events, size_t count,
                          evs_append_result_t* result, char** errmsg);

/* A transaction: appends to several streams committed together, each with
 * its own expected version. All or nothing. */
typedef struct evs_tx_t evs_tx_t;

/* An empty transaction. NULL when out of memory. */
EVS_EXPORT evs_tx_t* evs_tx_create(void);
EVS_EXPORT void evs_tx_destroy(evs_tx_t* tx);
/* Adds a part: events[0..count-1] for `stream` at `expected` (copied). A
 * stream may appear only once per transaction (checked at commit). Errors:
 * EVS_INVALID_ARGUMENT (NULL tx, NULL events with count > 0, a bad expected
 * version). Names and sizes are checked at commit. */
EVS_EXPORT int evs_tx_add(evs_tx_t* tx, const char* stream, size_t stream_len, int64_t expected,
                          const evs_event_t* events, size_t count, char** errmsg);
/* Number of parts added so far; 0 for NULL. */
EVS_EXPORT size_t evs_tx_size(const evs_tx_t* tx);
/* Removes every part so that the transaction can be reused. */
EVS_EXPORT int evs_tx_clear(evs_tx_t* tx, char** errmsg);
/* "No part", in evs_tx_commit's *conflict_part. */
#define EVS_NO_PART SIZE_MAX

/* Commits the transaction. results may be NULL (not wanted); otherwise it
 * has room for `results_cap` >= evs_tx_size(tx) entries and receives one per
 * part, in order. conflict_part may be NULL (not wanted); it is always
 * written. On EVS_WRONG_EXPECTED_VERSION, *conflict_part is the index of the
 * (first) part whose expected version failed, results[*conflict_part]
 * .actual_version that stream's actual version (or EVS_NO_STREAM), and the
 * other entries are zero with actual_version EVS_NO_STREAM; the message
 * names the stream. After every other outcome *conflict_part is EVS_NO_PART.
 * The transaction is left as it was and may be committed again (e.g. as an
 * idempotent retry). Errors: as evs_append, plus EVS_INVALID_ARGUMENT for an
 * empty transaction, a stream given twice, too many streams or a
 * results_cap that is too small. */
EVS_EXPORT int evs_tx_commit(evs_store_t* store, const evs_tx_t* tx, evs_append_result_t* results,
                             size_t results_cap, size_t* conflict_part, char** errmsg);

/* ---- Reading ---- */

/* The newest end, as `from` in a backward read. */
#define EVS_END UINT64_MAX
/* No limit, as `limit`. */
#define EVS_NO_LIMIT UINT64_MAX

#define EVS_FORWARD 0
#define EVS_BACKWARD 1

/* A read in progress. It sees the log as it was when the read began. */
typedef struct evs_iter_t evs_iter_t;

/* Each read creates an iterator in *iter (NULL on failure) positioned at the
 * first event, reading in `direction` (EVS_FORWARD or EVS_BACKWARD), at most
 * `limit` events. `from` is a stream version for evs_read_stream and a global
 * position otherwise (EVS_END: the newest). Destroy the iterator with
 * evs_iter_destroy; while it exists evs_store_close returns EVS_BUSY.
 * Errors: EVS_INVALID_ARGUMENT (NULL arguments, a bad name, a bad
 * direction), EVS_CLOSED. */
/* One stream by version. EVS_NOT_FOUND if the stream does not exist. */
EVS_EXPORT int evs_read_stream(evs_store_t* store, const char* stream, size_t stream_len,
                               uint64_t from, int direction, uint64_t limit, evs_iter_t** iter,
                               char** errmsg);
/* The global log in commit order. */
EVS_EXPORT int evs_read_all(evs_store_t* store, uint64_t from, int direction, uint64_t limit,
                            evs_iter_t** iter, char** errmsg);
/* Every event of the streams in `category` (a stream's name up to its first
 * '-': "order-42" is in "order"), in global order. */
EVS_EXPORT int evs_read_category(evs_store_t* store, const char* category, size_t category_len,
                                 uint64_t from, int direction, uint64_t limit, evs_iter_t** iter,
                                 char** errmsg);
/* Every event of type `type`, in global order. */
EVS_EXPORT int evs_read_type(evs_store_t* store, const char* type, size_t type_len, uint64_t from,
                             int direction, uint64_t limit, evs_iter_t** iter, char** errmsg);
/* An iterator over the one event at global `position`, served through the
 * store's event cache; it holds its own copy of the event, so it does not
 * keep the store open. EVS_NOT_FOUND past the end of the log. */
EVS_EXPORT int evs_read_event(evs_store_t* store, uint64_t position, evs_iter_t** iter,
                              char** errmsg);

/* 1 while positioned at an event; 0 at the end, after an error (see
 * evs_iter_status) or for NULL. After a loop over evs_iter_valid, always
 * check evs_iter_status: only EVS_OK means the read reached its end. */
EVS_EXPORT int evs_iter_valid(const evs_iter_t* iter);
/* Moves to the next event in the read's direction. Does nothing when the
 * iterator is NULL or not valid. A failure (a storage error, corruption,
 * out of memory) makes the iterator not valid, with the error in
 * evs_iter_status. */
EVS_EXPORT void evs_iter_next(evs_iter_t* iter);
/* Repositions at `from` (as in the read that created the iterator), with the
 * limit counted afresh and a storage error or corruption cleared. Failures
 * as evs_iter_next. Does nothing for NULL, and nothing after EVS_NO_MEMORY
 * or EVS_ABORTED: those end the read for good (destroy the iterator and read
 * again). */
EVS_EXPORT void evs_iter_seek(evs_iter_t* iter, uint64_t from);
/* EVS_OK, or the error that ended the read: EVS_CORRUPTION (naming the
 * position), EVS_IO_ERROR, EVS_NO_MEMORY or EVS_ABORTED (an internal failure
 * during evs_iter_next or evs_iter_seek). EVS_INVALID_ARGUMENT for NULL. */
EVS_EXPORT int evs_iter_status(const evs_iter_t* iter, char** errmsg);
/* Releases the iterator. NULL is fine. */
EVS_EXPORT void evs_iter_destroy(evs_iter_t* iter);

/* The current event. REQUIRES evs_iter_valid(iter); otherwise (or for NULL)
 * the byte accessors return NULL with *len = 0 and the others 0. Returned
 * pointers stay valid until the iterator moves or is destroyed; a non-valid
 * call never crashes. `len` may be NULL (not wanted). Names are not
 * NUL-terminated. */
EVS_EXPORT const uint8_t* evs_iter_id(const evs_iter_t* iter); /* 16 bytes */
EVS_EXPORT const char* evs_iter_stream(const evs_iter_t* iter, size_t* len);
EVS_EXPORT const char* evs_iter_type(const evs_iter_t* iter, size_t* len);
EVS_EXPORT const char* evs_iter_content_type(const evs_iter_t* iter, size_t* len);
EVS_EXPORT const void* evs_iter_data(const evs_iter_t* iter, size_t* len);
EVS_EXPORT const void* evs_iter_metadata(const evs_iter_t* iter, size_t* len);
EVS_EXPORT uint64_t evs_iter_version(const evs_iter_t* iter);  /* in its stream */
EVS_EXPORT uint64_t evs_iter_position(const evs_iter_t* iter); /* in the global log */
EVS_EXPORT int64_t evs_iter_timestamp_ms(const evs_iter_t* iter); /* commit time, Unix ms */

/* The head of `stream`: the version and global position of its newest event
 * (each out-pointer may be NULL: not wanted). EVS_NOT_FOUND if the stream
 * does not exist; EVS_INVALID_ARGUMENT for a bad name; EVS_CLOSED. */
EVS_EXPORT int evs_stream_head(evs_store_t* store, const char* stream, size_t stream_len,
                               uint64_t* last_version, uint64_t* last_position, char** errmsg);

#ifdef __cplusplus
} /* extern "C" */
#endif

/* The rest of the API, one header per concept. Each also works as the only
 * include (it includes this header first). */
#include "evstore/evstore_subscription.h"
#include "evstore/evstore_cache.h"
#include "evstore/evstore_saga.h"
#include "evstore/evstore_projection.h"
#include "evstore/evstore_metrics.h"

#endif /* EVSTORE_EVSTORE_H_ */
