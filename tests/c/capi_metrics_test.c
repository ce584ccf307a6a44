/* The metrics text and the logging hook from C (evstore_metrics.h): NULL
 * arguments, bad levels, use after close, exact counts in the text, and the
 * callback receiving RocksDB's info log with a NUL-terminated message. */
#include "check.h"

typedef struct {
  atomic_int calls;
  atomic_int bad;    /* messages whose length or NUL did not match */
  atomic_int below;  /* messages under the requested level */
  atomic_int options_seen;
} LogState;

static void OnLog(void* user, int level, const char* msg, size_t len) {
  LogState* s = (LogState*)user;
  atomic_fetch_add(&s->calls, 1);
  if (msg == NULL || strlen(msg) != len) atomic_fetch_add(&s->bad, 1);
  if (level < EVS_LOG_INFO || level > EVS_LOG_FATAL) atomic_fetch_add(&s->below, 1);
  if (msg != NULL && strstr(msg, "Options") != NULL) atomic_fetch_add(&s->options_seen, 1);
}

static int Contains(const char* text, const char* line) { return strstr(text, line) != NULL; }

static void TestMetricsText(void) {
  evs_store_t* store = Open(Sub("m"), NULL);
  evs_event_t ev = Ev("Happened", "{}");
  EXPECT_MSG(EVS_OK, evs_append(store, STR("acct-1"), EVS_EXPECT_ANY, &ev, 1, NULL, &msg));
  EXPECT_MSG(EVS_OK, evs_append(store, STR("acct-1"), EVS_EXPECT_ANY, &ev, 1, NULL, &msg));
  EXPECT_RC(EVS_WRONG_EXPECTED_VERSION,
            evs_append(store, STR("acct-1"), EVS_EXPECT_NO_STREAM, &ev, 1, NULL, NULL));
  evs_iter_t* it = NULL;
  EXPECT_RC(EVS_OK, evs_read_event(store, 0, &it, NULL));
  evs_iter_destroy(it);

  char* text = (char*)"unset";
  size_t len = 12345;
  EXPECT_MSG(EVS_OK, evs_store_metrics_text(store, &text, &len, &msg));
  CHECK(text != NULL);
  if (text != NULL) {
    CHECK(strlen(text) == len);
    CHECK(Contains(text, "\nevstore_appends_total 2\n"));
    CHECK(Contains(text, "\nevstore_events_appended_total 2\n"));
    CHECK(Contains(text, "\nevstore_conflicts_total 1\n"));
    CHECK(Contains(text, "\nevstore_reads_total{kind=\"point\"} 1\n"));
    CHECK(Contains(text, "# TYPE evstore_commit_write_seconds histogram\n"));
    CHECK(Contains(text, "\nevstore_commit_write_seconds_count 2\n"));
    CHECK(Contains(text, "\nevstore_commit_write_seconds_bucket{le=\"+Inf\"} 2\n"));
  }
  evs_free(text);
  /* len may be NULL. */
  text = NULL;
  EXPECT_MSG(EVS_OK, evs_store_metrics_text(store, &text, NULL, &msg));
  CHECK(text != NULL);
  evs_free(text);

  /* NULL arguments. */
  text = (char*)"unset";
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_store_metrics_text(NULL, &text, &len, &msg));
  CHECK(text == NULL);
  CHECK(len == 0);
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_store_metrics_text(store, NULL, &len, &msg));
  EXPECT_RC(EVS_INVALID_ARGUMENT, evs_store_metrics_text(store, NULL, NULL, NULL));

  /* After close. */
  EXPECT_MSG(EVS_OK, evs_store_close(store, &msg));
  text = (char*)"unset";
  EXPECT_MSG(EVS_CLOSED, evs_store_metrics_text(store, &text, &len, &msg));
  CHECK(text == NULL);
  evs_store_destroy(store);
}

static void TestLogHook(void) {
  /* Bad arguments. */
  evs_options_t* o = evs_options_create();
  CHECK(o != NULL);
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_options_set_log(NULL, OnLog, NULL, EVS_LOG_WARN, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_options_set_log(o, OnLog, NULL, -1, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_options_set_log(o, OnLog, NULL, EVS_LOG_FATAL + 1, &msg));

  /* RocksDB logs its options at INFO while it opens. */
  LogState state;
  atomic_init(&state.calls, 0);
  atomic_init(&state.bad, 0);
  atomic_init(&state.below, 0);
  atomic_init(&state.options_seen, 0);
  EXPECT_MSG(EVS_OK, evs_options_set_log(o, OnLog, &state, EVS_LOG_INFO, &msg));
  evs_store_t* store = Open(Sub("log"), o);
  CHECK(atomic_load(&state.calls) > 0);
  CHECK(atomic_load(&state.options_seen) > 0);
  CHECK(atomic_load(&state.bad) == 0);
  CHECK(atomic_load(&state.below) == 0);
  /* With a hook there is no LOG file. */
  char path[400];
  snprintf(path, sizeof path, "%s/LOG", Sub("log"));
  CHECK(access(path, F_OK) != 0);
  evs_store_destroy(store);

  /* fn NULL restores the LOG file. */
  EXPECT_MSG(EVS_OK, evs_options_set_log(o, NULL, NULL, EVS_LOG_INFO, &msg));
  int before = atomic_load(&state.calls);
  store = Open(Sub("log2"), o);
  CHECK(atomic_load(&state.calls) == before);
  snprintf(path, sizeof path, "%s/LOG", Sub("log2"));
  CHECK(access(path, F_OK) == 0);
  evs_store_destroy(store);
  evs_options_destroy(o);
}

int main(void) {
  MakeRoot();
  TestMetricsText();
  TestLogHook();
  RemoveRoot();
  printf("%d checks, %d failures\n", g_checks, g_failures);
  return g_failures ? 1 : 0;
}
