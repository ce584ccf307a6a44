/* A small check harness shared by the C API tests: CHECK / EXPECT_RC /
 * EXPECT_MSG count checks and report failures with their line, plus a
 * temporary root directory and event helpers. C11 + POSIX. */
#ifndef EVSTORE_TESTS_C_CHECK_H_
#define EVSTORE_TESTS_C_CHECK_H_

#ifndef _XOPEN_SOURCE
#define _XOPEN_SOURCE 700
#endif

#include <evstore/evstore.h>
#include <ftw.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <threads.h>
#include <time.h>
#include <unistd.h>

static int g_checks;
static int g_failures;

#define CHECK(cond)                                                \
  do {                                                             \
    g_checks++;                                                    \
    if (!(cond)) {                                                 \
      g_failures++;                                                \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
    }                                                              \
  } while (0)

/* Checks that `call` returns `code`; prints the message otherwise. */
#define EXPECT_RC(code, call)                                                              \
  do {                                                                                     \
    int rc_ = (call);                                                                      \
    g_checks++;                                                                            \
    if (rc_ != (code)) {                                                                   \
      g_failures++;                                                                        \
      fprintf(stderr, "%s:%d: %s returned %d (%s), expected %d (%s)\n", __FILE__, __LINE__, \
              #call, rc_, evs_errstr(rc_), (int)(code), evs_errstr(code));                 \
    }                                                                                      \
  } while (0)

/* What EXPECT_MSG's `msg` holds before the call: *errmsg must be written. */
static char g_unwritten[] = "(errmsg not written)";

/* Runs `call` with an errmsg out-argument named `msg` and checks code and
 * message presence: *errmsg is written, with a message exactly when the code
 * is not EVS_OK. */
#define EXPECT_MSG(code, call)                                                             \
  do {                                                                                     \
    char* msg = g_unwritten;                                                               \
    int rc_ = (call);                                                                      \
    g_checks++;                                                                            \
    if (rc_ != (code)) {                                                                   \
      g_failures++;                                                                        \
      fprintf(stderr, "%s:%d: %s returned %d (%s: %s), expected %d (%s)\n", __FILE__,       \
              __LINE__, #call, rc_, evs_errstr(rc_), msg ? msg : "(no message)",            \
              (int)(code), evs_errstr(code));                                              \
    }                                                                                      \
    CHECK(msg != g_unwritten);                                                             \
    if (msg == g_unwritten) msg = NULL;                                                    \
    CHECK((code) == EVS_OK ? msg == NULL : (msg != NULL && msg[0] != '\0'));               \
    evs_free(msg);                                                                         \
  } while (0)

#define STR(s) (s), strlen(s)

static char g_root[256];

static inline int RemoveEntry(const char* path, const struct stat* sb, int flag, struct FTW* ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(path);
}

static inline void MakeRoot(void) {
  const char* tmp = getenv("TMPDIR");
  snprintf(g_root, sizeof g_root, "%s/evstore-capi-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(g_root)) {
    perror("mkdtemp");
    exit(2);
  }
}

static inline void RemoveRoot(void) { nftw(g_root, RemoveEntry, 16, FTW_DEPTH | FTW_PHYS); }

/* A path under the test's root directory (static buffer per slot). */
static inline const char* Sub(const char* name) {
  static char bufs[8][320];
  static int next;
  char* b = bufs[next++ % 8];
  snprintf(b, sizeof bufs[0], "%s/%s", g_root, name);
  return b;
}

static inline evs_event_t Ev(const char* type, const char* data) {
  evs_event_t e;
  memset(&e, 0, sizeof e);
  e.type = type;
  e.type_len = strlen(type);
  e.data = data;
  e.data_len = strlen(data);
  e.content_type = "application/json";
  e.content_type_len = strlen(e.content_type);
  return e;
}

static inline int BytesEq(const void* p, size_t len, const char* s) {
  return len == strlen(s) && (len == 0 || memcmp(p, s, len) == 0);
}

static inline evs_store_t* Open(const char* dir, const evs_options_t* options) {
  evs_store_t* store = NULL;
  char* msg = NULL;
  int rc = evs_store_open(dir, options, &store, &msg);
  if (rc != EVS_OK) {
    fprintf(stderr, "cannot open %s: %s\n", dir, msg ? msg : evs_errstr(rc));
    evs_free(msg);
    exit(2);
  }
  return store;
}

static inline uint64_t CountEvents(evs_iter_t* it) {
  uint64_t n = 0;
  for (; evs_iter_valid(it); evs_iter_next(it)) n++;
  return n;
}

static inline void SleepMs(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  thrd_sleep(&ts, NULL);
}

#endif /* EVSTORE_TESTS_C_CHECK_H_ */
