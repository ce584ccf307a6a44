/* evstore.h: the C API of evstore, an embedded transactional event store.
 *
 * A thin layer over the C++ API (store.hpp, cache.hpp, saga.hpp): open a
 * store in a directory, append events to streams with optimistic concurrency
 * (expected versions) and idempotent retries, read them back by stream,
 * category, event type or as one global log in commit order; subscriptions
 * that deliver events as they commit, with durable checkpoints; a tiered
 * cache; durable sagas with C handlers. Plain C11, also valid C++.
 * See docs/c-api.md for a guide and a complete example.
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

/* ---- Subscriptions and checkpoints ---- */

/* A subscription delivers a selection of the log (every event, one stream,
 * one category, or a set of event types) in position order from a starting
 * point: first what is stored (catch-up), then each event as its commit
 * publishes it (live), with no gap and no repeat at the switch. A commit
 * wakes waiting subscribers; nothing polls. A slow subscriber never holds
 * appenders up nor grows memory: it reads the log at its own pace and is
 * never dropped. Besides batches of events, a subscription says when it has
 * caught up (it is live from there) and when, live, it fell behind.
 *
 * Two forms: pull (evs_subscribe, then evs_subscription_next on the
 * caller's thread) and push (evs_subscribe_push: a C callback on a thread
 * the store starts). A subscription with a checkpoint name resumes, also
 * after a restart, at the position last checkpointed under that name:
 * delivery is at least once for effects outside the store (events after
 * the checkpoint are delivered again). Competing consumers (several
 * subscribers sharing one stream of work) are not offered: every
 * subscription sees every selected event.
 *
 * A subscription keeps the store's internals alive, like an iterator, but
 * does not stop evs_store_close: closing the store ends every subscription
 * with EVS_CLOSED. Timeouts are in milliseconds; values over 2^40 count as
 * 2^40. */

typedef struct evs_subscribe_options_t evs_subscribe_options_t;
typedef struct evs_subscription_t evs_subscription_t;
typedef struct evs_push_subscription_t evs_push_subscription_t;
typedef struct evs_delivery_t evs_delivery_t;
typedef struct evs_checkpoint_list_t evs_checkpoint_list_t;

/* As `from`: only events committed after evs_subscribe returns. */
#define EVS_FROM_NOW UINT64_MAX

/* Options: every event from position 0, no checkpoint, batches of at most
 * 256 events, "fell behind" beyond 4096 positions. NULL when out of
 * memory. */
EVS_EXPORT evs_subscribe_options_t* evs_subscribe_options_create(void);
EVS_EXPORT void evs_subscribe_options_destroy(evs_subscribe_options_t* options);
/* Setters copy their input and return EVS_OK, or EVS_INVALID_ARGUMENT for
 * NULL options or a NULL buffer with a non-zero length. Names and counts
 * are checked by evs_subscribe. The filter setters replace each other's
 * filter: the last call wins. */
EVS_EXPORT int evs_subscribe_options_set_filter_all(evs_subscribe_options_t* options,
                                                    char** errmsg);
EVS_EXPORT int evs_subscribe_options_set_filter_stream(evs_subscribe_options_t* options,
                                                       const char* stream, size_t stream_len,
                                                       char** errmsg);
/* A category as in evs_read_category (it never contains '-'). */
EVS_EXPORT int evs_subscribe_options_set_filter_category(evs_subscribe_options_t* options,
                                                         const char* category,
                                                         size_t category_len, char** errmsg);
/* Events of any of types[0..count-1] (type i has type_lens[i] bytes); at
 * least one type. types and type_lens may be NULL only when count is 0. */
EVS_EXPORT int evs_subscribe_options_set_filter_types(evs_subscribe_options_t* options,
                                                      const char* const* types,
                                                      const size_t* type_lens, size_t count,
                                                      char** errmsg);
/* The first position to deliver when no checkpoint applies: 0 for the
 * whole log, EVS_FROM_NOW for only what commits after subscribing. */
EVS_EXPORT int evs_subscribe_options_set_from(evs_subscribe_options_t* options, uint64_t position,
                                              char** errmsg);
/* A durable checkpoint's name (1..256 bytes of UTF-8 without NUL; length
 * 0: none). When a checkpoint is stored under it, delivery resumes there
 * and `from` is ignored. */
EVS_EXPORT int evs_subscribe_options_set_checkpoint(evs_subscribe_options_t* options,
                                                    const char* name, size_t name_len,
                                                    char** errmsg);
/* Most events in one delivery (at least 1). */
EVS_EXPORT int evs_subscribe_options_set_max_batch(evs_subscribe_options_t* options,
                                                   size_t max_batch, char** errmsg);
/* A live subscription this many positions short of the end of the log is
 * told it fell behind (at least 1). */
EVS_EXPORT int evs_subscribe_options_set_behind_after(evs_subscribe_options_t* options,
                                                      uint64_t positions, char** errmsg);

/* What a delivery is (evs_delivery_kind). */
#define EVS_DELIVERY_EVENTS 0      /* 1..max_batch events, in position order */
#define EVS_DELIVERY_CAUGHT_UP 1   /* everything published was delivered: live from here */
#define EVS_DELIVERY_FELL_BEHIND 2 /* live, then more than behind_after positions short */
#define EVS_DELIVERY_TIMED_OUT 3   /* pull only: nothing new within the timeout */

/* A pull subscription in *sub (NULL on failure), positioned at its
 * checkpoint or at `from`. options: NULL for the defaults; it is copied.
 * Errors: EVS_INVALID_ARGUMENT (a bad stream, category or type name, no
 * types, a bad checkpoint name, max_batch or behind_after 0), EVS_CLOSED,
 * EVS_CORRUPTION or EVS_IO_ERROR reading its checkpoint. */
EVS_EXPORT int evs_subscribe(evs_store_t* store, const evs_subscribe_options_t* options,
                             evs_subscription_t** sub, char** errmsg);
/* The next delivery in *delivery, waiting up to timeout_ms for new commits
 * when caught up (EVS_DELIVERY_TIMED_OUT then). *delivery belongs to the
 * subscription and stays valid until the next call of this function on it
 * or its destruction; it is NULL on failure. Errors: EVS_CLOSED (stopped,
 * or the store was closed), EVS_CORRUPTION or EVS_IO_ERROR reading the log
 * (the subscription stays where it was: call again to retry),
 * EVS_NO_MEMORY. */
EVS_EXPORT int evs_subscription_next(evs_subscription_t* sub, uint64_t timeout_ms,
                                     const evs_delivery_t** delivery, char** errmsg);
/* Stores the position of the last delivery (_checkpoint) or `position`
 * (_checkpoint_at) under the subscription's checkpoint name. Not synced on
 * its own: a power loss may set a checkpoint back (events are delivered
 * again), never forward. Errors: EVS_INVALID_ARGUMENT (the subscription
 * has no checkpoint name; a position beyond the last delivery), EVS_CLOSED,
 * EVS_NOT_SUPPORTED (read-only store), EVS_IO_ERROR. */
EVS_EXPORT int evs_subscription_checkpoint(evs_subscription_t* sub, char** errmsg);
EVS_EXPORT int evs_subscription_checkpoint_at(evs_subscription_t* sub, uint64_t position,
                                              char** errmsg);
/* Makes evs_subscription_next return EVS_CLOSED from now on, waking a call
 * waiting on another thread. Idempotent. The one function of a pull
 * subscription that any thread may call at any time (until destroy). */
EVS_EXPORT int evs_subscription_stop(evs_subscription_t* sub, char** errmsg);
/* Where delivery resumes: the position of the last delivery (0 for
 * NULL). */
EVS_EXPORT uint64_t evs_subscription_position(const evs_subscription_t* sub);
/* NULL is fine. REQUIRES: no other thread is using the subscription (stop
 * it and let a waiting evs_subscription_next return first). */
EVS_EXPORT void evs_subscription_destroy(evs_subscription_t* sub);

/* A delivery: its kind, its position (every selected event before it has
 * been delivered: the position to checkpoint once the delivery is handled)
 * and, for EVS_DELIVERY_EVENTS, its events. 0 for NULL. */
EVS_EXPORT int evs_delivery_kind(const evs_delivery_t* delivery);
EVS_EXPORT uint64_t evs_delivery_position(const evs_delivery_t* delivery);
EVS_EXPORT size_t evs_delivery_event_count(const evs_delivery_t* delivery);
/* Event i (0 .. count-1), as the evs_iter_* accessors give it; views live as
 * long as the delivery. For NULL or i out of range: NULL with *len = 0, or
 * 0. `len` may be NULL (not wanted). */
EVS_EXPORT const uint8_t* evs_delivery_event_id(const evs_delivery_t* delivery, size_t i);
EVS_EXPORT const char* evs_delivery_event_stream(const evs_delivery_t* delivery, size_t i,
                                                 size_t* len);
EVS_EXPORT const char* evs_delivery_event_type(const evs_delivery_t* delivery, size_t i,
                                               size_t* len);
EVS_EXPORT const char* evs_delivery_event_content_type(const evs_delivery_t* delivery, size_t i,
                                                       size_t* len);
EVS_EXPORT const void* evs_delivery_event_data(const evs_delivery_t* delivery, size_t i,
                                               size_t* len);
EVS_EXPORT const void* evs_delivery_event_metadata(const evs_delivery_t* delivery, size_t i,
                                                   size_t* len);
EVS_EXPORT uint64_t evs_delivery_event_version(const evs_delivery_t* delivery, size_t i);
EVS_EXPORT uint64_t evs_delivery_event_position(const evs_delivery_t* delivery, size_t i);
EVS_EXPORT int64_t evs_delivery_event_timestamp_ms(const evs_delivery_t* delivery, size_t i);

/* A push callback: runs on the subscription's thread, one delivery at a
 * time (never EVS_DELIVERY_TIMED_OUT), with no internal lock held. The
 * delivery is valid during the call. `sub` is the subscription's own
 * handle: the callback may call evs_push_subscription_stop (or _destroy) on
 * it. Return EVS_OK to go on; any other code ends the subscription with
 * that code (codes this API does not define become EVS_ABORTED). */
typedef int (*evs_delivery_fn)(void* user_data, const evs_delivery_t* delivery,
                               evs_push_subscription_t* sub);

/* A push subscription in *sub (NULL on failure): fn(user_data, ...) runs on
 * a thread the store starts, possibly before this call returns (the
 * callback's own `sub` argument is complete from its first call on; *sub
 * may not be written yet). user_data must outlive the subscription. Errors
 * as evs_subscribe, and EVS_INVALID_ARGUMENT for a NULL fn. */
EVS_EXPORT int evs_subscribe_push(evs_store_t* store, const evs_subscribe_options_t* options,
                                  evs_delivery_fn fn, void* user_data,
                                  evs_push_subscription_t** sub, char** errmsg);
/* Asks the subscription to end; it ends after the callback returns (if it
 * is running). Any thread, the callback included. Idempotent. */
EVS_EXPORT int evs_push_subscription_stop(evs_push_subscription_t* sub, char** errmsg);
/* Waits until the subscription has ended and returns why: EVS_OK after a
 * stop, EVS_CLOSED when the store was closed, the callback's code, or the
 * error of a read. EVS_BUSY (without waiting) from the callback. */
EVS_EXPORT int evs_push_subscription_wait(evs_push_subscription_t* sub, char** errmsg);
/* 1 once it has ended (0 for NULL). */
EVS_EXPORT int evs_push_subscription_done(const evs_push_subscription_t* sub);
/* The position of its last delivery (0 for NULL). */
EVS_EXPORT uint64_t evs_push_subscription_position(const evs_push_subscription_t* sub);
/* Stops the subscription, waits for it to end (its callback may use the
 * handle until then) and releases the handle. From the callback: the
 * handle is released at once and the subscription ends when the callback
 * returns (the callback must not use `sub` after the call). NULL is fine.
 * REQUIRES: no thread but the callback's is using the handle. */
EVS_EXPORT void evs_push_subscription_destroy(evs_push_subscription_t* sub);

/* Checkpoints by name (1..256 bytes of UTF-8 without NUL), as subscriptions
 * store them; by hand, a subscription with that name then starts from the
 * position set, or from its `from` once the checkpoint is deleted. Writes
 * are not synced on their own. Errors: EVS_INVALID_ARGUMENT (NULL store, a
 * bad name), EVS_CLOSED, EVS_NOT_SUPPORTED (writing to a read-only store),
 * EVS_CORRUPTION, EVS_IO_ERROR. */
/* The checkpoint `name`: its position and the wall-clock time of its last
 * update in Unix ms (each out-pointer may be NULL: not wanted).
 * EVS_NOT_FOUND if none is stored. */
EVS_EXPORT int evs_checkpoint_get(evs_store_t* store, const char* name, size_t name_len,
                                  uint64_t* position, int64_t* updated_ms, char** errmsg);
EVS_EXPORT int evs_checkpoint_set(evs_store_t* store, const char* name, size_t name_len,
                                  uint64_t position, char** errmsg);
/* Deleting a checkpoint that does not exist is EVS_OK. */
EVS_EXPORT int evs_checkpoint_delete(evs_store_t* store, const char* name, size_t name_len,
                                     char** errmsg);
/* Every stored checkpoint, by name, in *list (destroy with
 * evs_checkpoint_list_destroy). */
EVS_EXPORT int evs_checkpoint_list(evs_store_t* store, evs_checkpoint_list_t** list,
                                   char** errmsg);
EVS_EXPORT size_t evs_checkpoint_list_size(const evs_checkpoint_list_t* list);
/* Entry i: its name (not NUL-terminated; valid until the list is
 * destroyed), position and update time. Each out-pointer may be NULL.
 * EVS_INVALID_ARGUMENT for NULL list or i out of range. */
EVS_EXPORT int evs_checkpoint_list_get(const evs_checkpoint_list_t* list, size_t i,
                                       const char** name, size_t* name_len, uint64_t* position,
                                       int64_t* updated_ms, char** errmsg);
EVS_EXPORT void evs_checkpoint_list_destroy(evs_checkpoint_list_t* list);

/* ---- Cache: a standalone two-tier cache of byte strings ---- */

/* evstore's tiered cache (cache.hpp) over byte keys and values: L1 keeps the
 * hottest entries, L2 more of them in compact form; W-TinyLFU admission;
 * per-tier capacity in bytes (key + value length) and TTL; single-flight
 * loads. */
typedef struct evs_cache_options_t evs_cache_options_t;
typedef struct evs_cache_t evs_cache_t;

/* Options with both tiers disabled (capacity 0), no TTL, automatic shards.
 * NULL when out of memory. */
EVS_EXPORT evs_cache_options_t* evs_cache_options_create(void);
EVS_EXPORT void evs_cache_options_destroy(evs_cache_options_t* options);
/* Setters return EVS_OK or EVS_INVALID_ARGUMENT (NULL options, a tier other
 * than 1 or 2, a TTL over 2^63 ns). tier is 1 (L1) or 2 (L2); capacity in
 * bytes; ttl_ms 0 = none. */
EVS_EXPORT int evs_cache_options_set_capacity(evs_cache_options_t* options, int tier,
                                              uint64_t bytes, char** errmsg);
EVS_EXPORT int evs_cache_options_set_ttl_ms(evs_cache_options_t* options, int tier, uint64_t ttl_ms,
                                            char** errmsg);
/* Shards: 0 = automatic; otherwise rounded down to a power of two, at most
 * 256. */
EVS_EXPORT int evs_cache_options_set_shards(evs_cache_options_t* options, uint32_t shards,
                                            char** errmsg);
/* Adaptive split: 0 (default) keeps each tier's capacity; non-zero lets the
 * cache move capacity between the tiers, their sum fixed: L1 takes 15/16 of
 * it while L2's entries weigh about what L1's do (as with this API's
 * key + value weights), so L2 would hold no more entries and only add a copy
 * to its hits. evs_cache_capacity reports the current split. */
EVS_EXPORT int evs_cache_options_set_adaptive_split(evs_cache_options_t* options, int enabled,
                                                    char** errmsg);

/* A new cache in *cache. options: NULL for the defaults (nothing is cached:
 * puts succeed and keep nothing). options is copied. */
EVS_EXPORT int evs_cache_create(const evs_cache_options_t* options, evs_cache_t** cache,
                                char** errmsg);
/* REQUIRES: no other thread is using the cache. NULL is fine. */
EVS_EXPORT void evs_cache_destroy(evs_cache_t* cache);

/* Looks `key` up. EVS_OK: *value is a copy (free with evs_free; non-NULL
 * even when empty) and *value_len its length. EVS_NOT_FOUND: not cached or
 * expired; *value is NULL. */
EVS_EXPORT int evs_cache_get(evs_cache_t* cache, const void* key, size_t key_len, void** value,
                             size_t* value_len, char** errmsg);
/* Caches a copy of value for key, replacing any previous one, with an
 * optional per-entry TTL (0: none; the tier TTL still applies). Errors:
 * EVS_INVALID_ARGUMENT when the entry is heavier than a shard's share of
 * both tiers (the key is then no longer cached). */
EVS_EXPORT int evs_cache_put(evs_cache_t* cache, const void* key, size_t key_len,
                             const void* value, size_t value_len, uint64_t ttl_ms, char** errmsg);
/* Removes key: EVS_OK if it was cached, EVS_NOT_FOUND if not. */
EVS_EXPORT int evs_cache_erase(evs_cache_t* cache, const void* key, size_t key_len,
                               char** errmsg);
/* Removes every entry (statistics are kept). */
EVS_EXPORT int evs_cache_clear(evs_cache_t* cache, char** errmsg);
/* Removes expired entries now. */
EVS_EXPORT int evs_cache_cleanup(evs_cache_t* cache, char** errmsg);

/* Where a loader puts the value it loaded. */
typedef struct evs_cache_load_t evs_cache_load_t;
/* Sets the loaded value (copied; a later call replaces it). Without a call
 * the value is empty. Only valid inside the loader it was passed to. */
EVS_EXPORT int evs_cache_load_set_value(evs_cache_load_t* load, const void* value, size_t len,
                                        char** errmsg);

/* A loader: loads the value of key into `load` and returns EVS_OK, or
 * returns another EVS_* code for a failure (it is not cached and every
 * caller waiting for this key gets it). Every code this API defines,
 * EVS_NO_MEMORY included, reaches the callers as it is; other codes become
 * EVS_ABORTED. */
typedef int (*evs_cache_loader_fn)(void* user_data, const void* key, size_t key_len,
                                   evs_cache_load_t* load);

/* The cached value of key; on a miss calls loader(user_data, key, ...)
 * and caches a successful result with ttl_ms (0: none). Concurrent misses
 * on one key run the loader once; the other callers wait for its result.
 * Output as evs_cache_get. The loader runs on the calling thread with no
 * lock held and may call this API, including this cache, except
 * evs_cache_get_or_load of the same key (that returns EVS_BUSY instead of
 * waiting for itself). Errors: the loader's code, EVS_BUSY. */
EVS_EXPORT int evs_cache_get_or_load(evs_cache_t* cache, const void* key, size_t key_len,
                                     evs_cache_loader_fn loader, void* user_data, uint64_t ttl_ms,
                                     void** value, size_t* value_len, char** errmsg);

/* Statistics of one tier: counters since the last reset, and contents. */
typedef struct evs_cache_tier_stats_t {
  uint64_t hits;
  uint64_t misses;      /* lookups that reached this tier and missed */
  uint64_t evictions;   /* dropped for capacity while in this tier */
  uint64_t expirations; /* dropped for TTL while in this tier */
  uint64_t promotions;  /* L2 -> L1 */
  uint64_t demotions;   /* L1 -> L2 */
  uint64_t entries;     /* now in this tier */
  uint64_t bytes;       /* now in this tier */
} evs_cache_tier_stats_t;

typedef struct evs_cache_stats_t {
  evs_cache_tier_stats_t l1;
  evs_cache_tier_stats_t l2;
  uint64_t misses;      /* lookups found in neither tier */
  uint64_t loads;       /* loader calls */
  uint64_t load_errors; /* loader calls that failed */
  uint64_t rejections;  /* values not cached because too heavy */
} evs_cache_stats_t;

EVS_EXPORT int evs_cache_stats(const evs_cache_t* cache, evs_cache_stats_t* stats, char** errmsg);
/* Zeroes the counters; entries and bytes keep describing the contents. */
EVS_EXPORT int evs_cache_reset_stats(evs_cache_t* cache, char** errmsg);
/* The tiers' current capacities in bytes (the configured ones unless the
 * adaptive split moved them); either output pointer may be NULL. */
EVS_EXPORT int evs_cache_capacity(const evs_cache_t* cache, uint64_t* l1_bytes, uint64_t* l2_bytes,
                                  char** errmsg);

/* The statistics of a store's own caches: event records (*events) and stream
 * heads (*heads); either pointer may be NULL when not wanted. EVS_CLOSED after
 * close. */
EVS_EXPORT int evs_store_cache_stats(evs_store_t* store, evs_cache_stats_t* events,
                                     evs_cache_stats_t* heads, char** errmsg);
/* Zeroes the counters of the store's caches. */
EVS_EXPORT int evs_store_reset_cache_stats(evs_store_t* store, char** errmsg);

/* ---- Sagas ---- */

/* Durable sagas on a store (saga.hpp): a saga runs its steps' actions in
 * order; when one fails for good, the compensations of the steps that had
 * effects run in reverse. Every state change is committed before the next
 * handler runs, so after a crash unfinished sagas resume (a handler may run
 * more than once, always with the same idempotency key). A compensation that
 * keeps failing makes the saga stuck, for a person to retry or resolve.
 *
 * Handlers and callbacks run on the engine's worker threads with no engine
 * lock held. They may call any function of this API (append to the store,
 * start, get, list, retry or resolve sagas), except evs_saga_engine_shutdown
 * and evs_saga_engine_destroy.
 *
 * Durations are in milliseconds; values over 2^40 (about 35 years) count as
 * 2^40. */

typedef struct evs_saga_def_t evs_saga_def_t;
typedef struct evs_saga_step_t evs_saga_step_t;
typedef struct evs_saga_result_t evs_saga_result_t;
typedef struct evs_saga_options_t evs_saga_options_t;
typedef struct evs_saga_engine_t evs_saga_engine_t;
typedef struct evs_saga_info_t evs_saga_info_t;
typedef struct evs_saga_list_t evs_saga_list_t;
typedef struct evs_saga_damaged_t evs_saga_damaged_t;

/* Saga states (stored on disk; never renumbered). */
#define EVS_SAGA_PENDING 0      /* started, no step finished yet */
#define EVS_SAGA_RUNNING 1      /* running actions forward */
#define EVS_SAGA_COMPENSATING 2 /* undoing completed steps */
#define EVS_SAGA_COMPLETED 3    /* final: every action succeeded */
#define EVS_SAGA_COMPENSATED 4  /* final: compensated, or resolved by hand */
#define EVS_SAGA_STUCK 5        /* needs evs_saga_retry or evs_saga_resolve */

/* History events (stored on disk; never renumbered). */
#define EVS_SAGA_EVENT_STARTED 0
#define EVS_SAGA_EVENT_STEP_COMPLETED 1
#define EVS_SAGA_EVENT_STEP_FAILED 2
#define EVS_SAGA_EVENT_STEP_TIMED_OUT 3
#define EVS_SAGA_EVENT_COMPENSATION_STARTED 4
#define EVS_SAGA_EVENT_STEP_COMPENSATED 5
#define EVS_SAGA_EVENT_COMPENSATION_FAILED 6
#define EVS_SAGA_EVENT_COMPENSATION_TIMED_OUT 7
#define EVS_SAGA_EVENT_COMPLETED 8
#define EVS_SAGA_EVENT_COMPENSATED 9
#define EVS_SAGA_EVENT_STUCK 10
#define EVS_SAGA_EVENT_RETRIED 11
#define EVS_SAGA_EVENT_RESOLVED 12
/* An attempt began but never reported: the process stopped while it ran, or
 * shutdown gave up on it. Counts as a failure that may have had effects; a
 * retry is scheduled. */
#define EVS_SAGA_EVENT_STEP_INTERRUPTED 13
#define EVS_SAGA_EVENT_COMPENSATION_INTERRUPTED 14

/* Static names ("pending", "step completed", "step interrupted", ...) of
 * every state and event above; "unknown" for other values. */
EVS_EXPORT const char* evs_saga_state_name(int state);
EVS_EXPORT const char* evs_saga_event_name(int event);

/* A step's action or compensation. It reads the step through the evs_saga_step_*
 * accessors and reports through evs_saga_result_success, _retry or _fail. A
 * handler that returns without a result that took (none called, or each
 * call failed) has failed retryably and partially (as if it had called
 * evs_saga_result_retry with partial = 1), with the error "handler returned
 * without setting a result ..." in the saga's history. */
typedef void (*evs_saga_handler_fn)(void* user_data, const evs_saga_step_t* step,
                                    evs_saga_result_t* result);

/* A definition: a name, a version and ordered steps. Checked (names, retry
 * policies) by evs_saga_engine_open, which copies it. */
EVS_EXPORT int evs_saga_def_create(const char* name, size_t name_len, uint32_t version,
                                   evs_saga_def_t** def, char** errmsg);
EVS_EXPORT void evs_saga_def_destroy(evs_saga_def_t* def);
/* Adds a step: action (required), compensation (NULL: the step is not
 * undone), both called with user_data; an attempt running longer than
 * timeout_ms (0: the default, 30 s) fails and is abandoned. Retries default
 * to 3 attempts with backoff from 20 ms. */
EVS_EXPORT int evs_saga_def_add_step(evs_saga_def_t* def, const char* name, size_t name_len,
                                     evs_saga_handler_fn action, evs_saga_handler_fn compensation,
                                     void* user_data, uint64_t timeout_ms, char** errmsg);
/* The retry policy of step `step_index` (from 0): its action's, or its
 * compensation's when `compensation` is non-zero. Attempt n failing waits
 * min(initial_backoff_ms * multiplier^(n-1), max_backoff_ms), scaled by a
 * random factor in [1 - jitter, 1 + jitter]. max_attempts >= 1. */
EVS_EXPORT int evs_saga_def_set_retry(evs_saga_def_t* def, size_t step_index, uint8_t compensation,
                                      uint32_t max_attempts, uint64_t initial_backoff_ms,
                                      double multiplier, uint64_t max_backoff_ms, double jitter,
                                      char** errmsg);

/* The step a handler runs. Everything returned is valid while the handler
 * runs. Byte accessors return NULL with *len = 0 for NULL. */
EVS_EXPORT const char* evs_saga_step_saga_id(const evs_saga_step_t* step, size_t* len);
EVS_EXPORT const char* evs_saga_step_definition(const evs_saga_step_t* step, size_t* len);
EVS_EXPORT const char* evs_saga_step_name(const evs_saga_step_t* step, size_t* len);
EVS_EXPORT uint32_t evs_saga_step_index(const evs_saga_step_t* step);
/* 1 for the first attempt. */
EVS_EXPORT uint32_t evs_saga_step_attempt(const evs_saga_step_t* step);
EVS_EXPORT int evs_saga_step_compensating(const evs_saga_step_t* step);
/* "<saga id>/<step>" (action) or "<saga id>/<step>/compensate": the same for
 * every attempt, before and after restarts. */
EVS_EXPORT const char* evs_saga_step_idempotency_key(const evs_saga_step_t* step, size_t* len);
EVS_EXPORT const char* evs_saga_step_input(const evs_saga_step_t* step, size_t* len);
/* The output of the completed step called `name`; empty ("") if none. */
EVS_EXPORT const char* evs_saga_step_output_of(const evs_saga_step_t* step, const char* name,
                                               size_t name_len, size_t* len);
/* When compensating: why the saga failed. */
EVS_EXPORT const char* evs_saga_step_failure(const evs_saga_step_t* step, size_t* len);
/* 1 when the attempt timed out or the engine shuts down: its result will be
 * discarded, so long handlers should poll this. */
EVS_EXPORT int evs_saga_step_cancelled(const evs_saga_step_t* step);
/* Milliseconds left before the attempt times out (0 when past). */
EVS_EXPORT int64_t evs_saga_step_remaining_ms(const evs_saga_step_t* step);
/* out[0..15]: an event id derived from the idempotency key and n, stable
 * across attempts, so events the handler appends replay idempotently. */
EVS_EXPORT int evs_saga_step_event_id(const evs_saga_step_t* step, uint32_t n, uint8_t* out,
                                      char** errmsg);

/* What the handler reports (the last call that succeeds wins; each copies
 * its bytes). Errors: EVS_INVALID_ARGUMENT (NULL result, a NULL buffer with a
 * non-zero length), EVS_NO_MEMORY. */
/* Success; output is kept and passed to later steps. */
EVS_EXPORT int evs_saga_result_success(evs_saga_result_t* result, const void* output, size_t len,
                                       char** errmsg);
/* A retryable failure (retried per the step's policy). partial: the attempt
 * had effects, so the step is compensated too. */
EVS_EXPORT int evs_saga_result_retry(evs_saga_result_t* result, const char* error, size_t len,
                                     uint8_t partial, char** errmsg);
/* A permanent failure: the saga compensates. */
EVS_EXPORT int evs_saga_result_fail(evs_saga_result_t* result, const char* error, size_t len,
                                    uint8_t partial, char** errmsg);
/* Events appended in the same commit as the step's completion (success
 * only; all or nothing). A rejected append is a retryable failure. */
EVS_EXPORT int evs_saga_result_add_events(evs_saga_result_t* result, const char* stream,
                                          size_t stream_len, int64_t expected,
                                          const evs_event_t* events, size_t count, char** errmsg);

/* Engine options. Callbacks receive a saga valid during the call. */
typedef void (*evs_saga_callback_fn)(void* user_data, const evs_saga_info_t* saga);
/* A saga found damaged at open: its id, the status code (EVS_CORRUPTION) and
 * a NUL-terminated message naming what is wrong, read as an errmsg (all
 * valid during the call). */
typedef void (*evs_saga_damaged_fn)(void* user_data, const char* id, size_t id_len, int code,
                                    const char* message);
/* 4 threads, 64 history entries, finished sagas kept 7 days (checked every
 * minute), shutdown waits 30 s, 16 abandoned threads, no callbacks. NULL
 * when out of memory. */
EVS_EXPORT evs_saga_options_t* evs_saga_options_create(void);
EVS_EXPORT void evs_saga_options_destroy(evs_saga_options_t* options);
/* Setters return EVS_OK, or EVS_INVALID_ARGUMENT when options is NULL.
 * Values are checked by evs_saga_engine_open. */
EVS_EXPORT int evs_saga_options_set_threads(evs_saga_options_t* options, size_t threads,
                                            char** errmsg);
EVS_EXPORT int evs_saga_options_set_max_history(evs_saga_options_t* options, size_t entries,
                                                char** errmsg);
/* Called once each time a saga becomes stuck, and at open for every saga
 * already stuck. fn NULL: none. */
EVS_EXPORT int evs_saga_options_set_on_stuck(evs_saga_options_t* options, evs_saga_callback_fn fn,
                                             void* user_data, char** errmsg);
/* Called when a saga completes or is compensated. fn NULL: none. */
EVS_EXPORT int evs_saga_options_set_on_finished(evs_saga_options_t* options,
                                                evs_saga_callback_fn fn, void* user_data,
                                                char** errmsg);
/* Called by evs_saga_engine_open, on its thread and before it returns, for
 * each unfinished saga whose record is damaged (not run; see
 * evs_saga_engine_damaged). The engine handle does not exist yet: the
 * callback must not wait for it. fn NULL: none. */
EVS_EXPORT int evs_saga_options_set_on_damaged(evs_saga_options_t* options, evs_saga_damaged_fn fn,
                                               void* user_data, char** errmsg);
/* Retention of finished (completed or compensated) sagas: every
 * interval_ms (> 0; default 60000) a pass deletes, record and history, each
 * one that finished keep_ms ago or earlier (default 7 days; 2^40 and more:
 * about forever), and the oldest ones beyond max_finished (default
 * EVS_NO_LIMIT). Stuck and unfinished sagas are never deleted, nor the
 * events their steps appended. A deleted saga is gone: evs_saga_get returns
 * EVS_NOT_FOUND and evs_saga_start with its id starts a new saga. */
EVS_EXPORT int evs_saga_options_set_keep_finished_ms(evs_saga_options_t* options, uint64_t keep_ms,
                                                     char** errmsg);
EVS_EXPORT int evs_saga_options_set_max_finished(evs_saga_options_t* options,
                                                 uint64_t max_finished, char** errmsg);
EVS_EXPORT int evs_saga_options_set_retention_interval_ms(evs_saga_options_t* options,
                                                          uint64_t interval_ms, char** errmsg);
/* How long evs_saga_engine_shutdown waits for running handlers and
 * callbacks before it gives them up (default 30000; 0: not at all). */
EVS_EXPORT int evs_saga_options_set_shutdown_timeout_ms(evs_saga_options_t* options,
                                                        uint64_t timeout_ms, char** errmsg);
/* A handler still running past its attempt's timeout is abandoned and its
 * worker replaced at once; at most this many abandoned threads exist at a
 * time (default 16). Beyond that a timed-out handler keeps its worker. */
EVS_EXPORT int evs_saga_options_set_max_abandoned_threads(evs_saga_options_t* options,
                                                          size_t threads, char** errmsg);

/* Opens an engine on store with defs[0..count-1] (copied) and options (NULL:
 * defaults), then resumes every unfinished saga in the store. An unfinished
 * saga whose record is damaged is not run: it is reported (on_damaged,
 * evs_saga_engine_damaged) and the others run. The engine keeps the store
 * open; destroy the engine before closing the store. At most one engine
 * runs on a store. Errors: EVS_INVALID_ARGUMENT (no or bad definitions, bad
 * options), EVS_BUSY (another engine is open on this store until it is shut
 * down or destroyed), EVS_NOT_SUPPORTED (read-only store; sagas indexed by
 * a newer evstore), EVS_CLOSED, EVS_CORRUPTION (the saga index is damaged),
 * EVS_IO_ERROR. */
EVS_EXPORT int evs_saga_engine_open(evs_store_t* store, const evs_saga_def_t* const* defs,
                                    size_t count, const evs_saga_options_t* options,
                                    evs_saga_engine_t** engine, char** errmsg);
/* Stops the engine: no new handler starts, running ones are cancelled and
 * waited for up to the shutdown timeout. Unfinished sagas resume at the next
 * open, and the store is free for another engine. Handlers still running
 * then are given up: what they return is discarded, their attempts count as
 * interrupted at the next open, and the call returns EVS_TIMED_OUT naming
 * how many (the engine is shut down all the same). A given-up handler keeps
 * running on its thread: its user_data must outlive it. Afterwards every
 * call returns EVS_CLOSED, except evs_saga_engine_stats and
 * evs_saga_engine_damaged (the engine's last figures). Idempotent: later
 * calls return EVS_OK. REQUIRES: not called from a handler or callback. */
EVS_EXPORT int evs_saga_engine_shutdown(evs_saga_engine_t* engine, char** errmsg);
/* Shuts down and releases the engine. NULL is fine. Same REQUIRES. */
EVS_EXPORT void evs_saga_engine_destroy(evs_saga_engine_t* engine);
/* EVS_OK while running; EVS_CLOSED after shutdown; otherwise the store
 * error that stopped it. */
EVS_EXPORT int evs_saga_engine_status(const evs_saga_engine_t* engine, char** errmsg);

/* Counters since the engine opened, and gauges. */
typedef struct evs_saga_stats_t {
  uint64_t started;
  uint64_t completed;
  uint64_t compensated; /* including resolved by hand */
  uint64_t stuck;       /* transitions into EVS_SAGA_STUCK */
  uint64_t resumed;     /* unfinished sagas picked up at open */
  uint64_t step_retries; /* failed attempts that were retried */
  uint64_t timeouts;
  uint64_t late_results_discarded;
  uint64_t interrupted;       /* attempts found begun and never finished */
  uint64_t purged;            /* finished sagas deleted by retention */
  uint64_t active;            /* gauge: not final and not stuck */
  uint64_t in_flight;         /* gauge: handlers running now */
  uint64_t abandoned_threads; /* gauge: handlers past their timeout, still running */
  uint64_t damaged;           /* gauge: sagas found damaged at open */
  /* Action and compensation run times (power-of-two buckets). */
  uint64_t step_count;
  double step_mean_us, step_p50_us, step_p99_us, step_max_us;
} evs_saga_stats_t;
EVS_EXPORT int evs_saga_engine_stats(const evs_saga_engine_t* engine, evs_saga_stats_t* stats,
                                     char** errmsg);

/* Runs a retention pass now (see evs_saga_options_set_keep_finished_ms);
 * *deleted (may be NULL: not wanted) is how many finished sagas it deleted.
 * Errors: EVS_CLOSED, EVS_IO_ERROR, the error that stopped the engine. */
EVS_EXPORT int evs_saga_engine_purge_finished(evs_saga_engine_t* engine, uint64_t* deleted,
                                              char** errmsg);

/* The unfinished sagas found damaged at open and not run, in *damaged
 * (destroy with evs_saga_damaged_destroy). Their records stay as they are
 * for a person (evstore-inspect sagas --id, verify). */
EVS_EXPORT int evs_saga_engine_damaged(const evs_saga_engine_t* engine,
                                       evs_saga_damaged_t** damaged, char** errmsg);
EVS_EXPORT size_t evs_saga_damaged_count(const evs_saga_damaged_t* damaged);
/* Entry i: the saga id, its status code (EVS_CORRUPTION) and a
 * NUL-terminated message naming what is wrong; views valid until the list is
 * destroyed. Each out-pointer may be NULL. EVS_INVALID_ARGUMENT for NULL
 * damaged or i out of range. */
EVS_EXPORT int evs_saga_damaged_get(const evs_saga_damaged_t* damaged, size_t i, const char** id,
                                    size_t* id_len, int* code, const char** message,
                                    char** errmsg);
EVS_EXPORT void evs_saga_damaged_destroy(evs_saga_damaged_t* damaged);

/* Starts saga `id` under the highest registered version of `definition`
 * with `input`. *created (may be NULL) is 1 for a new saga, 0 when one with
 * this id, definition and input exists (an idempotent start). Errors:
 * EVS_INVALID_ARGUMENT (unknown definition; an empty, long or non-UTF-8 id;
 * an existing id with another definition or input), EVS_CLOSED. */
EVS_EXPORT int evs_saga_start(evs_saga_engine_t* engine, const char* definition,
                              size_t definition_len, const char* id, size_t id_len,
                              const void* input, size_t input_len, int* created, char** errmsg);
/* The saga as last committed, in *saga (destroy with evs_saga_info_destroy).
 * EVS_NOT_FOUND if absent (also once retention deleted it); EVS_CORRUPTION
 * if its record is damaged. */
EVS_EXPORT int evs_saga_get(evs_saga_engine_t* engine, const char* id, size_t id_len,
                            evs_saga_info_t** saga, char** errmsg);
/* Waits until the saga is final or stuck; *saga (may be NULL: not wanted)
 * as evs_saga_get. EVS_TIMED_OUT after timeout_ms. */
EVS_EXPORT int evs_saga_wait(evs_saga_engine_t* engine, const char* id, size_t id_len,
                             uint64_t timeout_ms, evs_saga_info_t** saga, char** errmsg);
/* Waits until no saga is pending, running or compensating. */
EVS_EXPORT int evs_saga_wait_idle(evs_saga_engine_t* engine, uint64_t timeout_ms, char** errmsg);
/* One page of the sagas in `state`, in id order: at most `limit`
 * (EVS_NO_LIMIT) whose ids come after after_id (NULL, 0: from the first).
 * Page through them all by passing the page's evs_saga_list_next_after
 * until it is empty. Damaged records met on the way are skipped and named
 * (evs_saga_list_damaged_id). Unfinished states are read through the index
 * of unfinished sagas; final states scan the records. Errors:
 * EVS_INVALID_ARGUMENT (not a state, NULL list), EVS_CLOSED, EVS_IO_ERROR. */
EVS_EXPORT int evs_saga_list(evs_saga_engine_t* engine, int state, const char* after_id,
                             size_t after_id_len, uint64_t limit, evs_saga_list_t** list,
                             char** errmsg);
/* Resumes a stuck saga where it stopped. Errors: EVS_NOT_FOUND,
 * EVS_INVALID_ARGUMENT (not stuck), EVS_CLOSED. */
EVS_EXPORT int evs_saga_retry(evs_saga_engine_t* engine, const char* id, size_t id_len,
                              char** errmsg);
/* Settles a stuck saga by hand: it becomes EVS_SAGA_COMPENSATED with `note`
 * in its history; nothing runs. Errors as evs_saga_retry. */
EVS_EXPORT int evs_saga_resolve(evs_saga_engine_t* engine, const char* id, size_t id_len,
                                const char* note, size_t note_len, char** errmsg);

EVS_EXPORT size_t evs_saga_list_size(const evs_saga_list_t* list);
/* The i-th saga, valid until the list is destroyed; NULL out of range. */
EVS_EXPORT const evs_saga_info_t* evs_saga_list_get(const evs_saga_list_t* list, size_t i);
/* The after_id of the next page; NULL with *len = 0 when there is none.
 * Valid until the list is destroyed. */
EVS_EXPORT const char* evs_saga_list_next_after(const evs_saga_list_t* list, size_t* len);
/* Ids whose records failed verification in the range the page covered. */
EVS_EXPORT size_t evs_saga_list_damaged_count(const evs_saga_list_t* list);
EVS_EXPORT const char* evs_saga_list_damaged_id(const evs_saga_list_t* list, size_t i, size_t* len);
EVS_EXPORT void evs_saga_list_destroy(evs_saga_list_t* list);

/* A saga as last committed. Accessors return NULL / 0 for NULL; views are
 * valid as long as the info. */
EVS_EXPORT void evs_saga_info_destroy(evs_saga_info_t* saga);
EVS_EXPORT const char* evs_saga_info_id(const evs_saga_info_t* saga, size_t* len);
EVS_EXPORT const char* evs_saga_info_definition(const evs_saga_info_t* saga, size_t* len);
EVS_EXPORT uint32_t evs_saga_info_version(const evs_saga_info_t* saga);
EVS_EXPORT int evs_saga_info_state(const evs_saga_info_t* saga);
/* For a stuck saga: the state evs_saga_retry resumes. */
EVS_EXPORT int evs_saga_info_stuck_in(const evs_saga_info_t* saga);
/* The step being run or compensated, and its attempts that ended without
 * success. */
EVS_EXPORT int32_t evs_saga_info_step(const evs_saga_info_t* saga);
EVS_EXPORT uint32_t evs_saga_info_attempt(const evs_saga_info_t* saga);
/* That step's attempts begun: evs_saga_info_attempt + 1 while one runs, or
 * when one was interrupted and the engine has not recorded that yet. */
EVS_EXPORT uint32_t evs_saga_info_attempts_started(const evs_saga_info_t* saga);
EVS_EXPORT const char* evs_saga_info_input(const evs_saga_info_t* saga, size_t* len);
/* Outputs of the completed steps: count, then each (NULL out of range). */
EVS_EXPORT size_t evs_saga_info_output_count(const evs_saga_info_t* saga);
EVS_EXPORT const char* evs_saga_info_output(const evs_saga_info_t* saga, size_t i, size_t* len);
/* Why it compensated or is stuck. */
EVS_EXPORT const char* evs_saga_info_error(const evs_saga_info_t* saga, size_t* len);
EVS_EXPORT int64_t evs_saga_info_created_ms(const evs_saga_info_t* saga);
EVS_EXPORT int64_t evs_saga_info_updated_ms(const evs_saga_info_t* saga);
EVS_EXPORT int evs_saga_info_resolved_by_hand(const evs_saga_info_t* saga);
/* History, oldest first (the newest max_history entries; older ones are
 * counted by evs_saga_info_history_dropped). */
EVS_EXPORT size_t evs_saga_info_history_count(const evs_saga_info_t* saga);
EVS_EXPORT uint32_t evs_saga_info_history_dropped(const evs_saga_info_t* saga);
/* Entry i: event (EVS_SAGA_EVENT_*), state after it, step (-1: none),
 * attempt, wall-clock time, and text (error or note). Each out-pointer may
 * be NULL. EVS_INVALID_ARGUMENT for NULL saga or i out of range. */
EVS_EXPORT int evs_saga_info_history(const evs_saga_info_t* saga, size_t i, int* event, int* state,
                                     int32_t* step, uint32_t* attempt, int64_t* time_ms,
                                     const char** text, size_t* text_len, char** errmsg);

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

#endif /* EVSTORE_EVSTORE_H_ */
