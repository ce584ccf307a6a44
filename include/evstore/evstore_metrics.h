/* evstore_metrics.h: a store's metrics as Prometheus text, and the logging
 * hook (the C side of metrics.hpp and Options::log; see docs/metrics.md).
 *
 * Part of the C API: evstore.h includes this header, and this header
 * includes evstore.h, so either include gives the whole API. The
 * conventions numbered at the top of evstore.h (handles, buffers, status
 * codes, messages, NULL, ownership, threads, growth) hold here too; what
 * differs is stated below: the log callback is the exception to convention
 * 8 (it must not call this API). */
#ifndef EVSTORE_EVSTORE_METRICS_H_
#define EVSTORE_EVSTORE_METRICS_H_

#include "evstore/evstore.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Metrics ---- */

/* The store's metrics in the Prometheus text exposition format 0.0.4
 * (counters, latency histograms, readers' lag, the caches, the saga engine
 * when one is open, RocksDB's figures; every name starts with evstore_). A
 * host serves it on its own endpoint with the content type
 * "text/plain; version=0.0.4; charset=utf-8". On success *text is a new
 * NUL-terminated buffer (free it with evs_free) and *len, when len is not
 * NULL, its length without the NUL; on failure *text is NULL. Thread-safe;
 * cheap enough for every scrape. Errors: EVS_INVALID_ARGUMENT (NULL store
 * or text), EVS_CLOSED, EVS_NO_MEMORY. */
EVS_EXPORT int evs_store_metrics_text(evs_store_t* store, char** text, size_t* len, char** errmsg);

/* ---- Logging ---- */

#define EVS_LOG_DEBUG 0
#define EVS_LOG_INFO 1
#define EVS_LOG_WARN 2
#define EVS_LOG_ERROR 3
#define EVS_LOG_FATAL 4

/* Receives one log message: its EVS_LOG_* level and its text, `len` bytes
 * followed by a NUL, valid only during the call. */
typedef void (*evs_log_fn)(void* user_data, int level, const char* message, size_t len);

/* Routes the store's log to `fn`: RocksDB's info log, RocksDB's background
 * errors and the reason the store stops accepting writes (fail-stop), each
 * message at `min_level` (an EVS_LOG_* level) or above. fn NULL (the
 * default): they go to the LOG file in the store's directory, at min_level
 * and above. `user_data` is passed to every call; it must stay valid until
 * the store opened with these options is destroyed.
 * The callback may run on any thread, RocksDB's background threads
 * included, sometimes while RocksDB holds its own locks (never an evstore
 * lock): it must be quick and must not call any function of this API.
 * Errors: EVS_INVALID_ARGUMENT (NULL options, a level outside
 * EVS_LOG_DEBUG..EVS_LOG_FATAL). */
EVS_EXPORT int evs_options_set_log(evs_options_t* options, evs_log_fn fn, void* user_data,
                                   int min_level, char** errmsg);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* EVSTORE_EVSTORE_METRICS_H_ */
