/* evstore_subscription.h: subscriptions and checkpoints from C (the C
 * side of subscription.hpp): deliveries of a selection of the log, pulled
 * or pushed to a callback, from a starting point or a durable checkpoint,
 * and the checkpoints themselves.
 *
 * Part of the C API: evstore.h includes this header, and this header
 * includes evstore.h, so either include gives the whole API. The
 * conventions numbered at the top of evstore.h (handles, buffers, status
 * codes, messages, NULL, ownership, threads, growth) hold here too; what
 * differs is stated below. */
#ifndef EVSTORE_EVSTORE_SUBSCRIPTION_H_
#define EVSTORE_EVSTORE_SUBSCRIPTION_H_

#include "evstore/evstore.h"

#ifdef __cplusplus
extern "C" {
#endif

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
/* The shortest time between two wake-ups of a live subscription, in
 * microseconds (0..1,000,000; default 0: wake for every commit, for the
 * lowest delay). Under a stream of small commits, a longer interval gathers
 * more events per delivery and takes less CPU from the appenders; the first
 * commit after a quiet spell is still delivered at once. */
EVS_EXPORT int evs_subscribe_options_set_min_wake_interval(evs_subscribe_options_t* options,
                                                           uint64_t microseconds, char** errmsg);

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

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* EVSTORE_EVSTORE_SUBSCRIPTION_H_ */
