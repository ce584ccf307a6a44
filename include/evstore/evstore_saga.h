/* evstore_saga.h: durable sagas from C (the C side of saga.hpp):
 * definitions with C handlers, the engine that runs them on a store, and
 * the queries and by-hand settlement of sagas.
 *
 * Part of the C API: evstore.h includes this header, and this header
 * includes evstore.h, so either include gives the whole API. The
 * conventions numbered at the top of evstore.h (handles, buffers, status
 * codes, messages, NULL, ownership, threads, growth) hold here too; what
 * differs is stated below. */
#ifndef EVSTORE_EVSTORE_SAGA_H_
#define EVSTORE_EVSTORE_SAGA_H_

#include "evstore/evstore.h"

#ifdef __cplusplus
extern "C" {
#endif

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

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* EVSTORE_EVSTORE_SAGA_H_ */
