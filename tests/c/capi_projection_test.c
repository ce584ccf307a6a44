/* Projections and point-in-time snapshots through the C API from C11: a C
 * handler counting events, queries by key and by prefix a page at a time,
 * read-your-writes, handler failures with retries and max_retries, stop and
 * destroy from inside the handler, rebuilds, snapshots under concurrent
 * appends, bad input and use after close. Linked against the shared library.
 * Exits 0 when every check holds. */
#include "check.h"

#include <inttypes.h>

#define WAIT_MS 60000

/* VIEW_IS(call using &len, "text"): the call runs before len is read. */
static const void* g_view;
#define VIEW_IS(call, want) (g_view = (call), BytesEq(g_view, len, (want)))

/* ---- The example of docs/c-api.md ("Projections and snapshots") ---- */

/* Counts events by type: key "count/<type>", a decimal value. */
static int count_by_type(void* user_data, const evs_projection_event_t* event,
                         evs_projection_state_t* state) {
  char key[300], text[32];
  size_t type_len, len = 0;
  const char* type = evs_projection_event_type(event, &type_len);
  void* old = NULL;
  unsigned long long n = 0;
  int rc;
  (void)user_data;
  snprintf(key, sizeof key, "count/%.*s", (int)type_len, type);
  rc = evs_projection_state_get(state, key, strlen(key), &old, &len, NULL);
  if (rc == EVS_OK) {
    snprintf(text, sizeof text, "%.*s", (int)len, (const char*)old);
    n = strtoull(text, NULL, 10);
  }
  evs_free(old);
  if (rc != EVS_OK && rc != EVS_NOT_FOUND) return rc; /* e.g. an I/O error: retried */
  snprintf(text, sizeof text, "%llu", n + 1);
  return evs_projection_state_put(state, key, strlen(key), text, strlen(text), NULL);
}

/* ---- Helpers ---- */

/* Shared by a test's handlers. */
typedef struct {
  _Atomic(evs_projection_t*) self; /* the running projection, once known */
  atomic_int calls;
  atomic_int fail_position; /* the event at this position fails; -1: none */
  atomic_int fail_code;
  atomic_int with_text;      /* the failure carries evs_projection_state_set_error text */
  atomic_int stop_inside;    /* evs_projection_stop from the handler */
  atomic_int destroy_inside; /* evs_projection_destroy from the handler */
  atomic_int wait_busy;      /* evs_projection_wait from the handler gave EVS_BUSY with a message */
  atomic_int context_ok;     /* every check of the event and state held */
  atomic_int version2;       /* count under "v2/<type>" instead */
} World;

static void InitWorld(World* w) {
  atomic_init(&w->self, NULL);
  atomic_init(&w->calls, 0);
  atomic_init(&w->fail_position, -1);
  atomic_init(&w->fail_code, EVS_OK);
  atomic_init(&w->with_text, 0);
  atomic_init(&w->stop_inside, 0);
  atomic_init(&w->destroy_inside, 0);
  atomic_init(&w->wait_busy, 0);
  atomic_init(&w->context_ok, 1);
  atomic_init(&w->version2, 0);
}

static void ContextFail(World* w, const char* what) {
  fprintf(stderr, "handler context check failed: %s\n", what);
  atomic_store(&w->context_ok, 0);
}

/* count_by_type, with the World's failures, stops and checks. */
static int Counting(void* user, const evs_projection_event_t* ev, evs_projection_state_t* st) {
  World* w = (World*)user;
  size_t len;
  const char* p;
  atomic_fetch_add(&w->calls, 1);
  if (evs_projection_event_id(ev) == NULL) ContextFail(w, "id");
  p = evs_projection_event_stream(ev, &len);
  if (p == NULL || len == 0) ContextFail(w, "stream");
  p = evs_projection_event_content_type(ev, &len);
  if (!BytesEq(p, len, "application/json")) ContextFail(w, "content type");
  p = (const char*)evs_projection_event_data(ev, &len);
  if (p == NULL || len == 0 || p[0] != '{') ContextFail(w, "data");
  p = (const char*)evs_projection_event_metadata(ev, &len);
  if (p == NULL || len != 0) ContextFail(w, "metadata");
  if (evs_projection_event_version(ev) > evs_projection_event_position(ev)) ContextFail(w, "version");
  if (evs_projection_event_timestamp_ms(ev) <= 0) ContextFail(w, "timestamp");

  if (atomic_load(&w->stop_inside) || atomic_load(&w->destroy_inside)) {
    evs_projection_t* self;
    int i;
    for (i = 0; i < WAIT_MS && (self = atomic_load(&w->self)) == NULL; i++) SleepMs(1);
    if (atomic_load(&w->destroy_inside)) {
      atomic_store(&w->self, NULL);
      evs_projection_destroy(self); /* must return at once */
    } else {
      char* msg = NULL;
      if (evs_projection_stop(self, NULL) != EVS_OK) ContextFail(w, "stop");
      if (evs_projection_wait(self, &msg) == EVS_BUSY && msg != NULL) atomic_store(&w->wait_busy, 1);
      evs_free(msg);
    }
  }
  if ((int)evs_projection_event_position(ev) == atomic_load(&w->fail_position)) {
    if (atomic_load(&w->with_text))
      evs_projection_state_set_error(st, STR("downstream lookup failed"), NULL);
    return atomic_load(&w->fail_code);
  }
  if (atomic_load(&w->version2)) {
    char key[64];
    p = evs_projection_event_type(ev, &len);
    snprintf(key, sizeof key, "v2/%.*s", (int)len, p);
    return evs_projection_state_put(st, key, strlen(key), "seen", 4, NULL);
  }
  return count_by_type(NULL, ev, st);
}

/* Counts its calls in *user (if not NULL) and changes nothing. */
static int Nop(void* user, const evs_projection_event_t* ev, evs_projection_state_t* st) {
  (void)ev;
  (void)st;
  if (user) atomic_fetch_add((atomic_int*)user, 1);
  return EVS_OK;
}

/* Fails every event. */
static int Refuse(void* user, const evs_projection_event_t* ev, evs_projection_state_t* st) {
  (void)user;
  (void)ev;
  (void)st;
  return EVS_ABORTED;
}

static uint64_t Append(evs_store_t* store, const char* stream, const char* type, int n) {
  evs_append_result_t r;
  evs_event_t e[16];
  char* msg = NULL;
  int i, rc;
  for (i = 0; i < n; i++) e[i] = Ev(type, "{\"n\":1}");
  rc = evs_append(store, stream, strlen(stream), EVS_EXPECT_ANY, e, (size_t)n, &r, &msg);
  if (rc != EVS_OK) {
    fprintf(stderr, "append: %s\n", msg ? msg : evs_errstr(rc));
    evs_free(msg);
    exit(2);
  }
  return r.last_position;
}

static evs_projection_t* Run(evs_store_t* store, const char* name, const evs_projection_options_t* o,
                             evs_projection_handler_fn fn, World* w) {
  evs_projection_t* p = NULL;
  char* msg = NULL;
  int rc = evs_projection_run(store, name, strlen(name), o, fn, w, &p, &msg);
  if (rc != EVS_OK) {
    fprintf(stderr, "run %s: %s\n", name, msg ? msg : evs_errstr(rc));
    evs_free(msg);
    exit(2);
  }
  if (w) atomic_store(&w->self, p);
  return p;
}

/* The decimal value under key, or -1 (EVS_NOT_FOUND), or -2 (another error). */
static long long GetNum(evs_store_t* store, const evs_snapshot_t* snap, const char* name,
                        const char* key) {
  void* v = NULL;
  size_t len = 0;
  char text[32];
  int rc = snap ? evs_snapshot_projection_get(snap, name, strlen(name), key, strlen(key), &v, &len, NULL)
                : evs_projection_get(store, name, strlen(name), key, strlen(key), &v, &len, NULL);
  if (rc == EVS_NOT_FOUND) return v == NULL ? -1 : -2;
  if (rc != EVS_OK || v == NULL || len >= sizeof text) {
    evs_free(v);
    return -2;
  }
  snprintf(text, sizeof text, "%.*s", (int)len, (const char*)v);
  evs_free(v);
  return strtoll(text, NULL, 10);
}

static evs_projection_status_t* Status(evs_projection_t* p) {
  evs_projection_status_t* st = NULL;
  if (evs_projection_status(p, &st, NULL) != EVS_OK) {
    fprintf(stderr, "status failed\n");
    exit(2);
  }
  return st;
}

static int Phase(evs_projection_t* p) {
  evs_projection_status_t* st = Status(p);
  int phase = evs_projection_status_phase(st);
  evs_projection_status_destroy(st);
  return phase;
}

/* Polls until the projection is in `phase`; 0 if it never gets there. */
static int ReachesPhase(evs_projection_t* p, int phase) {
  int i;
  for (i = 0; i < WAIT_MS && Phase(p) != phase; i++) SleepMs(1);
  return Phase(p) == phase;
}

static int WaitFor(evs_projection_t* p, uint64_t position) {
  char* msg = NULL;
  int rc = evs_projection_wait_for(p, position, WAIT_MS, &msg);
  if (rc != EVS_OK) fprintf(stderr, "wait_for %" PRIu64 ": %s\n", position, msg ? msg : evs_errstr(rc));
  evs_free(msg);
  return rc;
}

static uint64_t NextPosition(evs_store_t* store) {
  evs_store_stats_t s;
  if (evs_store_stats(store, &s, NULL) != EVS_OK) exit(2);
  return s.next_position;
}

/* Every entry of `name` under prefix, `limit` at a time, as "key=value "
 * (static buffer); *pages counts the pages read (the last one is empty). */
static const char* ScanAll(evs_store_t* store, const evs_snapshot_t* snap, const char* name,
                           const char* prefix, uint64_t limit, int* pages) {
  static char out[2048];
  char after[256] = "";
  size_t after_len = 0;
  out[0] = '\0';
  *pages = 0;
  for (;;) {
    evs_projection_entries_t* e = NULL;
    char* msg = NULL;
    size_t i, n, klen, vlen;
    int rc = snap ? evs_snapshot_projection_scan(snap, name, strlen(name), prefix, strlen(prefix),
                                                 after, after_len, limit, &e, &msg)
                  : evs_projection_scan(store, name, strlen(name), prefix, strlen(prefix), after,
                                        after_len, limit, &e, &msg);
    if (rc != EVS_OK) {
      fprintf(stderr, "scan: %s\n", msg ? msg : evs_errstr(rc));
      evs_free(msg);
      strcpy(out, "(failed)");
      return out;
    }
    ++*pages;
    n = evs_projection_entries_count(e);
    CHECK(n <= limit);
    for (i = 0; i < n; i++) {
      const char* k = (const char*)evs_projection_entries_key(e, i, &klen);
      const char* v = (const char*)evs_projection_entries_value(e, i, &vlen);
      snprintf(out + strlen(out), sizeof out - strlen(out), "%.*s=%.*s ", (int)klen, k, (int)vlen, v);
      if (i + 1 == n && klen < sizeof after) {
        memcpy(after, k, klen);
        after_len = klen;
      }
    }
    CHECK(evs_projection_entries_key(e, n, &klen) == NULL && klen == 0);
    CHECK(evs_projection_entries_value(e, n, &vlen) == NULL && vlen == 0);
    evs_projection_entries_destroy(e);
    if (n == 0 || *pages > 100) return out;
  }
}

/* The sum of the values under "count/". */
static long long SumCounts(evs_store_t* store, const evs_snapshot_t* snap, const char* name) {
  int pages;
  const char* s = ScanAll(store, snap, name, "count/", EVS_NO_LIMIT, &pages);
  long long sum = 0;
  while ((s = strchr(s, '=')) != NULL) sum += strtoll(++s, NULL, 10);
  return sum;
}

static uint64_t InfoPosition(evs_store_t* store, const evs_snapshot_t* snap, const char* name) {
  evs_projection_info_t* info = NULL;
  int rc = snap ? evs_snapshot_projection_info(snap, name, strlen(name), &info, NULL)
                : evs_projection_info(store, name, strlen(name), &info, NULL);
  uint64_t pos = evs_projection_info_position(info);
  CHECK(rc == EVS_OK);
  evs_projection_info_destroy(info);
  return pos;
}

static evs_projection_options_t* QuickRetries(uint32_t max_retries) {
  evs_projection_options_t* o = evs_projection_options_create();
  EXPECT_MSG(EVS_OK, evs_projection_options_set_retry_backoff(o, 1, 4, &msg));
  EXPECT_MSG(EVS_OK, evs_projection_options_set_max_retries(o, max_retries, &msg));
  return o;
}

/* ---- Tests ---- */

/* A projection counts events by type over several batches (its handler
 * reads the batch's own puts); queries by key, by prefix a page at a time;
 * status, info and list; filters by types, stream and category. */
static void TestCountAndQuery(evs_store_t* store) {
  World w;
  evs_projection_options_t* o = evs_projection_options_create();
  evs_projection_t* p;
  evs_projection_status_t* st;
  evs_projection_info_t* info = NULL;
  evs_projection_list_t* list = NULL;
  void* v = (void*)&w;
  size_t len = 99;
  uint64_t last;
  int pages;
  InitWorld(&w);
  Append(store, "order-1", "Placed", 3);
  Append(store, "order-2", "Shipped", 2);
  EXPECT_MSG(EVS_OK, evs_projection_options_set_max_batch(o, 2, &msg));
  p = Run(store, "by-type", o, Counting, &w);
  last = Append(store, "order-3", "Placed", 1);
  CHECK(WaitFor(p, last + 1) == EVS_OK);

  CHECK(GetNum(store, NULL, "by-type", "count/Placed") == 4);
  CHECK(GetNum(store, NULL, "by-type", "count/Shipped") == 2);
  EXPECT_MSG(EVS_NOT_FOUND, evs_projection_get(store, STR("by-type"), STR("count/Nothing"), &v, &len, &msg));
  CHECK(v == NULL && len == 0);
  EXPECT_MSG(EVS_NOT_FOUND, evs_projection_get(store, STR("no-such"), STR("count/Placed"), &v, &len, &msg));
  CHECK(strcmp(ScanAll(store, NULL, "by-type", "count/", 1, &pages), "count/Placed=4 count/Shipped=2 ") == 0);
  CHECK(pages == 3);
  CHECK(strcmp(ScanAll(store, NULL, "by-type", "count/", EVS_NO_LIMIT, &pages),
               "count/Placed=4 count/Shipped=2 ") == 0);
  CHECK(pages == 2);
  CHECK(strcmp(ScanAll(store, NULL, "by-type", "count/S", 10, &pages), "count/Shipped=2 ") == 0);
  CHECK(strcmp(ScanAll(store, NULL, "by-type", "nothing/", 10, &pages), "") == 0);
  CHECK(strcmp(ScanAll(store, NULL, "by-type", "", 0, &pages), "") == 0); /* limit 0: empty */
  {
    evs_projection_entries_t* e = NULL;
    EXPECT_MSG(EVS_OK, evs_projection_scan(store, STR("by-type"), STR("count/"), STR("count/Placed"), 10, &e, &msg));
    CHECK(evs_projection_entries_count(e) == 1);
    CHECK(VIEW_IS(evs_projection_entries_key(e, 0, &len), "count/Shipped"));
    CHECK(VIEW_IS(evs_projection_entries_value(e, 0, &len), "2"));
    evs_projection_entries_destroy(e);
    EXPECT_MSG(EVS_NOT_FOUND, evs_projection_scan(store, STR("no-such"), NULL, 0, NULL, 0, 10, &e, &msg));
    CHECK(e == NULL);
  }

  CHECK(ReachesPhase(p, EVS_PROJECTION_LIVE));
  st = Status(p);
  CHECK(VIEW_IS(evs_projection_status_name(st, &len), "by-type"));
  CHECK(evs_projection_status_version(st) == 1);
  CHECK(evs_projection_status_position(st) == last + 1);
  CHECK(evs_projection_status_lag_events(st) == 0);
  CHECK(evs_projection_status_lag_ms(st) == 0);
  CHECK(evs_projection_status_events_per_s(st) >= 0);
  CHECK(evs_projection_status_events_handled(st) == 6);
  CHECK(evs_projection_status_retries(st) == 0);
  CHECK(VIEW_IS(evs_projection_status_last_error(st, &len), ""));
  CHECK(evs_projection_status_rebuilding(st) == 0);
  CHECK(evs_projection_status_rebuild_position(st) == 0);
  evs_projection_status_destroy(st);

  EXPECT_MSG(EVS_OK, evs_projection_info(store, STR("by-type"), &info, &msg));
  CHECK(VIEW_IS(evs_projection_info_name(info, &len), "by-type"));
  CHECK(evs_projection_info_version(info) == 1);
  CHECK(evs_projection_info_position(info) == last + 1);
  CHECK(evs_projection_info_events_handled(info) == 6);
  CHECK(evs_projection_info_updated_ms(info) > 0);
  CHECK(evs_projection_info_rebuilding(info) == 0);
  CHECK(evs_projection_info_rebuild_position(info) == 0);
  evs_projection_info_destroy(info);
  EXPECT_MSG(EVS_NOT_FOUND, evs_projection_info(store, STR("no-such"), &info, &msg));
  CHECK(info == NULL);

  /* Filters: one type, one stream, one category. */
  {
    World wt, ws, wc;
    evs_projection_t *pt, *ps, *pc;
    const char* types[2] = {"Shipped", "Refunded"};
    size_t lens[2] = {7, 8};
    evs_projection_options_t* ot = evs_projection_options_create();
    evs_projection_options_t* os = evs_projection_options_create();
    evs_projection_options_t* oc = evs_projection_options_create();
    InitWorld(&wt);
    InitWorld(&ws);
    InitWorld(&wc);
    EXPECT_MSG(EVS_OK, evs_projection_options_set_filter_types(ot, types, lens, 2, &msg));
    EXPECT_MSG(EVS_OK, evs_projection_options_set_filter_category(os, STR("order"), &msg));
    EXPECT_MSG(EVS_OK, evs_projection_options_set_filter_stream(os, STR("order-1"), &msg)); /* replaces */
    EXPECT_MSG(EVS_OK, evs_projection_options_set_filter_stream(oc, STR("order-1"), &msg));
    EXPECT_MSG(EVS_OK, evs_projection_options_set_filter_category(oc, STR("order"), &msg));
    Append(store, "refund-1", "Refunded", 1);
    last = Append(store, "other-1", "Placed", 1);
    pt = Run(store, "shipped", ot, Counting, &wt);
    ps = Run(store, "order-1-only", os, Counting, &ws);
    pc = Run(store, "orders", oc, Counting, &wc);
    CHECK(WaitFor(pt, last + 1) == EVS_OK);
    CHECK(WaitFor(ps, last + 1) == EVS_OK);
    CHECK(WaitFor(pc, last + 1) == EVS_OK);
    CHECK(strcmp(ScanAll(store, NULL, "shipped", "", 10, &pages), "count/Refunded=1 count/Shipped=2 ") == 0);
    CHECK(strcmp(ScanAll(store, NULL, "order-1-only", "", 10, &pages), "count/Placed=3 ") == 0);
    CHECK(strcmp(ScanAll(store, NULL, "orders", "", 10, &pages), "count/Placed=4 count/Shipped=2 ") == 0);
    /* Back to every event. */
    EXPECT_MSG(EVS_OK, evs_projection_options_set_filter_all(oc, &msg));
    evs_projection_destroy(pc);
    EXPECT_MSG(EVS_OK, evs_projection_delete(store, STR("orders"), &msg));
    pc = Run(store, "orders", oc, Counting, &wc);
    CHECK(WaitFor(pc, last + 1) == EVS_OK);
    CHECK(strcmp(ScanAll(store, NULL, "orders", "", 10, &pages),
                 "count/Placed=5 count/Refunded=1 count/Shipped=2 ") == 0);
    CHECK(atomic_load(&wt.context_ok) && atomic_load(&ws.context_ok) && atomic_load(&wc.context_ok));
    evs_projection_destroy(pt);
    evs_projection_destroy(ps);
    evs_projection_destroy(pc);
    evs_projection_options_destroy(ot);
    evs_projection_options_destroy(os);
    evs_projection_options_destroy(oc);
  }

  EXPECT_MSG(EVS_OK, evs_projection_list(store, &list, &msg));
  CHECK(evs_projection_list_size(list) == 4);
  CHECK(VIEW_IS(evs_projection_info_name(evs_projection_list_get(list, 0), &len), "by-type"));
  CHECK(VIEW_IS(evs_projection_info_name(evs_projection_list_get(list, 1), &len), "order-1-only"));
  CHECK(VIEW_IS(evs_projection_info_name(evs_projection_list_get(list, 3), &len), "shipped"));
  CHECK(evs_projection_info_position(evs_projection_list_get(list, 3)) == last + 1);
  CHECK(evs_projection_list_get(list, 4) == NULL);
  evs_projection_list_destroy(list);

  /* Running twice, or deleting while it runs, is EVS_BUSY. */
  {
    evs_projection_t* again = NULL;
    EXPECT_MSG(EVS_BUSY, evs_projection_run(store, STR("by-type"), NULL, Counting, &w, &again, &msg));
    CHECK(again == NULL);
    EXPECT_MSG(EVS_BUSY, evs_projection_delete(store, STR("by-type"), &msg));
  }
  CHECK(atomic_load(&w.context_ok));
  evs_projection_destroy(p);
  EXPECT_MSG(EVS_OK, evs_projection_delete(store, STR("by-type"), &msg));
  EXPECT_MSG(EVS_NOT_FOUND, evs_projection_delete(store, STR("by-type"), &msg));
  EXPECT_MSG(EVS_NOT_FOUND, evs_projection_info(store, STR("by-type"), &info, &msg));
  CHECK(GetNum(store, NULL, "by-type", "count/Placed") == -1);
  evs_projection_options_destroy(o);
}

/* wait_for(append position + 1) makes the append visible in the state at
 * once, every time. */
static void TestReadYourWrites(evs_store_t* store) {
  World w;
  evs_projection_t* p;
  evs_projection_options_t* o = evs_projection_options_create();
  int i;
  InitWorld(&w);
  EXPECT_MSG(EVS_OK, evs_projection_options_set_filter_stream(o, STR("ryw-1"), &msg));
  p = Run(store, "ryw", o, Counting, &w);
  for (i = 1; i <= 30; i++) {
    uint64_t last = Append(store, "ryw-1", "Typed", 1);
    CHECK(WaitFor(p, last + 1) == EVS_OK);
    CHECK(GetNum(store, NULL, "ryw", "count/Typed") == i);
  }
  EXPECT_MSG(EVS_TIMED_OUT, evs_projection_wait_for(p, NextPosition(store) + 5, 1, &msg));
  evs_projection_destroy(p);
  evs_projection_options_destroy(o);
}

/* A failing handler is retried with backoff, shows its error in the status
 * meanwhile and changes nothing; once it heals, the batch folds in. With
 * max_retries, the failures stop it in the failed state. */
static void TestFailures(evs_store_t* store) {
  World w;
  evs_projection_t* p;
  evs_projection_status_t* st;
  evs_projection_options_t* o = QuickRetries(0);
  size_t len;
  uint64_t first, last;
  int i;
  const char* err;
  InitWorld(&w);
  EXPECT_MSG(EVS_OK, evs_projection_options_set_filter_stream(o, STR("flaky-1"), &msg));
  first = Append(store, "flaky-1", "Typed", 3) - 2;
  atomic_store(&w.fail_position, (int)first + 1);
  atomic_store(&w.fail_code, EVS_IO_ERROR);
  atomic_store(&w.with_text, 1);
  p = Run(store, "flaky", o, Counting, &w);
  for (i = 0; i < WAIT_MS; i++) {
    st = Status(p);
    if (evs_projection_status_retries(st) >= 3) break;
    evs_projection_status_destroy(st);
    st = NULL;
    SleepMs(1);
  }
  CHECK(evs_projection_status_phase(st) == EVS_PROJECTION_RETRYING);
  err = evs_projection_status_last_error(st, &len);
  if (err == NULL || strstr(err, "downstream lookup failed") == NULL || strstr(err, "IOError") == NULL)
    fprintf(stderr, "last_error: %.*s\n", (int)len, err ? err : "");
  CHECK(err != NULL && strstr(err, "downstream lookup failed") != NULL);
  CHECK(err != NULL && strstr(err, "IOError") != NULL);
  CHECK(evs_projection_status_position(st) <= first); /* the failed batch changed nothing */
  evs_projection_status_destroy(st);
  CHECK(GetNum(store, NULL, "flaky", "count/Typed") == -1);
  atomic_store(&w.fail_position, -1);
  last = first + 2;
  CHECK(WaitFor(p, last + 1) == EVS_OK);
  CHECK(GetNum(store, NULL, "flaky", "count/Typed") == 3);
  st = Status(p);
  CHECK(evs_projection_status_retries(st) >= 3);
  evs_projection_status_destroy(st);
  evs_projection_destroy(p);
  evs_projection_options_destroy(o);

  /* Without text, and with max_retries: EVS_ABORTED from wait. */
  InitWorld(&w);
  o = QuickRetries(2);
  EXPECT_MSG(EVS_OK, evs_projection_options_set_filter_stream(o, STR("poison-1"), &msg));
  first = Append(store, "poison-1", "Typed", 2) - 1;
  atomic_store(&w.fail_position, (int)first);
  atomic_store(&w.fail_code, EVS_NOT_FOUND);
  p = Run(store, "poison", o, Counting, &w);
  {
    char* msg = NULL;
    CHECK(evs_projection_wait(p, &msg) == EVS_ABORTED);
    if (msg == NULL || strstr(msg, "handler returned 1 (not found)") == NULL)
      fprintf(stderr, "wait: %s\n", msg ? msg : "(none)");
    CHECK(msg != NULL && strstr(msg, "handler returned 1 (not found)") != NULL);
    evs_free(msg);
  }
  CHECK(atomic_load(&w.calls) == 2);
  CHECK(Phase(p) == EVS_PROJECTION_FAILED);
  EXPECT_MSG(EVS_ABORTED, evs_projection_wait_for(p, first + 1, 1, &msg));
  EXPECT_MSG(EVS_CLOSED, evs_projection_rebuild(p, &msg));
  st = Status(p);
  err = evs_projection_status_last_error(st, &len);
  CHECK(err != NULL && strstr(err, "not found") != NULL);
  evs_projection_status_destroy(st);
  {
    /* It no longer runs: the name is free again, and a healed handler folds. */
    World w2;
    evs_projection_t* again;
    InitWorld(&w2);
    again = Run(store, "poison", o, Counting, &w2);
    CHECK(WaitFor(again, first + 2) == EVS_OK);
    CHECK(GetNum(store, NULL, "poison", "count/Typed") == 2);
    evs_projection_destroy(again);
  }
  evs_projection_destroy(p);
  evs_projection_options_destroy(o);
}

/* stop() from inside the handler ends the projection after that batch; its
 * wait() from inside is EVS_BUSY. destroy() from inside returns at once, and
 * the handler is not called again (the batch is not committed). */
static void TestStopInside(evs_store_t* store) {
  World w;
  evs_projection_t* p;
  evs_projection_options_t* o = evs_projection_options_create();
  uint64_t first;
  int i, rc = EVS_BUSY;
  InitWorld(&w);
  EXPECT_MSG(EVS_OK, evs_projection_options_set_filter_stream(o, STR("stopper-1"), &msg));
  EXPECT_MSG(EVS_OK, evs_projection_options_set_max_batch(o, 2, &msg));
  first = Append(store, "stopper-1", "Typed", 10) - 9;
  atomic_store(&w.stop_inside, 1);
  p = Run(store, "stopper", o, Counting, &w);
  CHECK(ReachesPhase(p, EVS_PROJECTION_STOPPED)); /* rather than hang in wait if it never stops */
  if (Phase(p) == EVS_PROJECTION_STOPPED) EXPECT_MSG(EVS_OK, evs_projection_wait(p, &msg));
  CHECK(atomic_load(&w.wait_busy) == 1);
  CHECK(atomic_load(&w.calls) == 2); /* the batch in hand, then no more */
  CHECK(Phase(p) == EVS_PROJECTION_STOPPED);
  CHECK(InfoPosition(store, NULL, "stopper") == first + 2);
  CHECK(GetNum(store, NULL, "stopper", "count/Typed") == 2);
  EXPECT_MSG(EVS_OK, evs_projection_stop(p, &msg)); /* idempotent */
  EXPECT_MSG(EVS_CLOSED, evs_projection_wait_for(p, first + 10, 1, &msg));
  evs_projection_destroy(p);

  InitWorld(&w);
  atomic_store(&w.destroy_inside, 1);
  p = Run(store, "destroyer", o, Counting, &w);
  /* It has ended once the name is free again (the probe commits nothing). */
  for (i = 0; i < WAIT_MS && rc == EVS_BUSY; i++) {
    evs_projection_t* q = NULL;
    rc = evs_projection_run(store, STR("destroyer"), o, Refuse, NULL, &q, NULL);
    if (rc == EVS_BUSY) SleepMs(1);
    evs_projection_destroy(q);
  }
  CHECK(rc == EVS_OK);
  CHECK(atomic_load(&w.calls) == 1);
  CHECK(atomic_load(&w.self) == NULL);
  CHECK(atomic_load(&w.context_ok));
  CHECK(GetNum(store, NULL, "destroyer", "count/Typed") == -1); /* the batch was dropped */
  CHECK(InfoPosition(store, NULL, "destroyer") <= first);
  evs_projection_options_destroy(o);
}

/* rebuild() folds the log again and ends equal to the incremental state; a
 * new version rebuilds at start, serving the old state meanwhile. */
static void TestRebuild(evs_store_t* store) {
  World w;
  evs_projection_t* p;
  evs_projection_status_t* st;
  evs_projection_info_t* info = NULL;
  evs_projection_options_t* o = evs_projection_options_create();
  char before[2048];
  const char* types[5] = {"T0", "T1", "T2", "T3", "T4"};
  size_t lens[5] = {2, 2, 2, 2, 2};
  int i, n = 0, pages;
  uint64_t end;
  InitWorld(&w);
  EXPECT_MSG(EVS_OK, evs_projection_options_set_filter_types(o, types, lens, 5, &msg));
  EXPECT_MSG(EVS_OK, evs_projection_options_set_max_batch(o, 7, &msg));
  for (i = 0; i < 30; i++) {
    char stream[16];
    snprintf(stream, sizeof stream, "rb-%d", i % 4);
    Append(store, stream, types[i % 5], 1 + i % 3);
    n += 1 + i % 3;
  }
  end = NextPosition(store);
  p = Run(store, "inc", o, Counting, &w);
  CHECK(WaitFor(p, end) == EVS_OK);
  CHECK(atomic_load(&w.calls) == n);
  snprintf(before, sizeof before, "%s", ScanAll(store, NULL, "inc", "", 3, &pages));
  CHECK(SumCounts(store, NULL, "inc") == n);
  EXPECT_MSG(EVS_OK, evs_projection_rebuild(p, &msg));
  EXPECT_MSG(EVS_BUSY, evs_projection_rebuild(p, &msg));
  for (i = 0; i < WAIT_MS; i++) {
    int rebuilding;
    st = Status(p);
    rebuilding = evs_projection_status_rebuilding(st);
    evs_projection_status_destroy(st);
    if (atomic_load(&w.calls) >= 2 * n && !rebuilding) break;
    SleepMs(1);
  }
  CHECK(atomic_load(&w.calls) == 2 * n);
  CHECK(strcmp(ScanAll(store, NULL, "inc", "", 3, &pages), before) == 0);
  EXPECT_MSG(EVS_OK, evs_projection_info(store, STR("inc"), &info, &msg));
  CHECK(evs_projection_info_events_handled(info) == (uint64_t)n);
  CHECK(evs_projection_info_position(info) == end);
  CHECK(evs_projection_info_rebuilding(info) == 0);
  evs_projection_info_destroy(info);
  evs_projection_destroy(p);

  /* Version 2 counts under "v2/": a rebuild at start, then the swap. */
  InitWorld(&w);
  atomic_store(&w.version2, 1);
  EXPECT_MSG(EVS_OK, evs_projection_options_set_version(o, 2, &msg));
  p = Run(store, "inc", o, Counting, &w);
  for (i = 0; i < WAIT_MS; i++) {
    /* Info and state at one snapshot: the swap may come between two reads. */
    evs_snapshot_t* at = NULL;
    EXPECT_MSG(EVS_OK, evs_snapshot_create(store, &at, &msg));
    EXPECT_MSG(EVS_OK, evs_snapshot_projection_info(at, STR("inc"), &info, &msg));
    if (evs_projection_info_version(info) == 2) {
      evs_snapshot_destroy(at);
      break;
    }
    /* Until the swap, version 1's state serves. */
    CHECK(evs_projection_info_version(info) == 1 && SumCounts(store, at, "inc") == n);
    evs_snapshot_destroy(at);
    evs_projection_info_destroy(info);
    info = NULL;
    SleepMs(1);
  }
  CHECK(evs_projection_info_version(info) == 2);
  CHECK(evs_projection_info_position(info) == end);
  evs_projection_info_destroy(info);
  CHECK(strcmp(ScanAll(store, NULL, "inc", "", 10, &pages), "v2/T0=seen v2/T1=seen v2/T2=seen v2/T3=seen v2/T4=seen ") == 0);
  st = Status(p);
  CHECK(evs_projection_status_version(st) == 2);
  evs_projection_status_destroy(st);
  evs_projection_destroy(p);
  evs_projection_options_destroy(o);
}

typedef struct {
  evs_store_t* store;
  int n;
} Appender;

static int AppendMany(void* arg) {
  Appender* a = (Appender*)arg;
  static const char* const kTypes[3] = {"A", "B", "C"};
  int i;
  for (i = 0; i < a->n; i++) {
    char stream[16];
    snprintf(stream, sizeof stream, "snap-%d", i % 5);
    Append(a->store, stream, kTypes[i % 3], 1 + i % 2);
  }
  return 0;
}

/* Events of `type` below position `below` in the snapshot. */
static long long CountType(const evs_snapshot_t* snap, const char* type, uint64_t below) {
  evs_iter_t* it = NULL;
  long long n = 0;
  if (evs_snapshot_read_type(snap, type, strlen(type), 0, EVS_FORWARD, EVS_NO_LIMIT, &it, NULL) != EVS_OK)
    return -1;
  for (; evs_iter_valid(it) && evs_iter_position(it) < below; evs_iter_next(it)) n++;
  evs_iter_destroy(it);
  return n;
}

/* Snapshots taken while another thread appends, each read after more
 * events were appended and folded: each reads the log up to its position,
 * and every projection at its checkpoint then, which is the fold of that
 * log up to the checkpoint. */
static void TestSnapshots(evs_store_t* store) {
  World w;
  evs_projection_t* p;
  evs_projection_options_t* o = evs_projection_options_create();
  Appender a = {store, 300};
  thrd_t t;
  int round;
  uint64_t head_v = 0, head_p = 0;
  InitWorld(&w);
  EXPECT_MSG(EVS_OK, evs_projection_options_set_filter_category(o, STR("snap"), &msg));
  EXPECT_MSG(EVS_OK, evs_projection_options_set_max_batch(o, 3, &msg));
  Append(store, "snap-0", "A", 1);
  p = Run(store, "snap-counts", o, Counting, &w);
  CHECK(thrd_create(&t, AppendMany, &a) == thrd_success);
  for (round = 0; round < 25; round++) {
    evs_snapshot_t* s = NULL;
    evs_iter_t* it = NULL;
    uint64_t pos, at, n;
    long long sum;
    EXPECT_MSG(EVS_OK, evs_snapshot_create(store, &s, &msg));
    pos = evs_snapshot_position(s);
    at = InfoPosition(store, s, "snap-counts");
    CHECK(at <= pos);
    /* The log and the projection move on before the snapshot is read. */
    CHECK(WaitFor(p, Append(store, "snap-9", "B", 2) + 1) == EVS_OK);
    CHECK(InfoPosition(store, NULL, "snap-counts") > at);
    /* Every snap-* event before the checkpoint is folded in, none after. */
    EXPECT_MSG(EVS_OK, evs_snapshot_read_category(s, STR("snap"), 0, EVS_FORWARD, EVS_NO_LIMIT, &it, &msg));
    for (n = 0; evs_iter_valid(it) && evs_iter_position(it) < at; evs_iter_next(it)) n++;
    evs_iter_destroy(it);
    sum = SumCounts(store, s, "snap-counts");
    if (sum != (long long)n)
      fprintf(stderr, "snapshot at %" PRIu64 ": checkpoint %" PRIu64 ", %" PRIu64 " events, counts sum to %lld\n",
              pos, at, n, sum);
    CHECK(sum == (long long)n);
    CHECK(GetNum(store, s, "snap-counts", "count/B") == (CountType(s, "B", at) ? CountType(s, "B", at) : -1));
    /* The log as of the snapshot: exactly the positions before pos. */
    EXPECT_MSG(EVS_OK, evs_snapshot_read_all(s, 0, EVS_FORWARD, EVS_NO_LIMIT, &it, &msg));
    CHECK(CountEvents(it) == pos);
    evs_iter_destroy(it);
    EXPECT_MSG(EVS_OK, evs_snapshot_read_all(s, EVS_END, EVS_BACKWARD, 1, &it, &msg));
    CHECK(evs_iter_valid(it) && evs_iter_position(it) == pos - 1);
    evs_iter_destroy(it);
    EXPECT_MSG(EVS_OK, evs_snapshot_stream_head(s, STR("snap-0"), &head_v, &head_p, &msg));
    CHECK(head_p < pos);
    EXPECT_MSG(EVS_OK, evs_snapshot_read_stream(s, STR("snap-0"), 0, EVS_FORWARD, EVS_NO_LIMIT, &it, &msg));
    CHECK(CountEvents(it) == head_v + 1);
    evs_iter_destroy(it);
    evs_snapshot_destroy(s);
  }
  thrd_join(t, NULL);

  /* What the snapshot does not see: later streams, later events, later
   * state; its iterators outlive it; it keeps the store from closing. */
  {
    evs_snapshot_t* s = NULL;
    evs_iter_t* it = NULL;
    uint64_t end, pos, last;
    long long then;
    end = NextPosition(store);
    CHECK(WaitFor(p, end) == EVS_OK);
    EXPECT_MSG(EVS_OK, evs_snapshot_create(store, &s, &msg));
    pos = evs_snapshot_position(s);
    CHECK(pos == end);
    then = GetNum(store, s, "snap-counts", "count/A");
    CHECK(then > 0);
    CHECK(InfoPosition(store, s, "snap-counts") == end);
    last = Append(store, "snap-0", "A", 2);
    Append(store, "late-1", "A", 1); /* not selected */
    CHECK(WaitFor(p, last + 1) == EVS_OK);
    CHECK(GetNum(store, NULL, "snap-counts", "count/A") == then + 2);
    CHECK(GetNum(store, s, "snap-counts", "count/A") == then);
    CHECK(InfoPosition(store, s, "snap-counts") == end);
    EXPECT_MSG(EVS_NOT_FOUND, evs_snapshot_stream_head(s, STR("late-1"), NULL, NULL, &msg));
    EXPECT_MSG(EVS_OK, evs_stream_head(store, STR("late-1"), NULL, NULL, &msg));
    EXPECT_MSG(EVS_NOT_FOUND, evs_snapshot_read_stream(s, STR("late-1"), 0, EVS_FORWARD, 10, &it, &msg));
    CHECK(it == NULL);
    EXPECT_MSG(EVS_OK, evs_snapshot_stream_head(s, STR("snap-0"), &head_v, NULL, &msg));
    EXPECT_MSG(EVS_OK, evs_snapshot_read_type(s, STR("A"), 0, EVS_FORWARD, EVS_NO_LIMIT, &it, &msg));
    CHECK((long long)CountEvents(it) == then);
    evs_iter_destroy(it);
    {
      /* A projection created after the snapshot is not in it. */
      evs_projection_t* later = Run(store, "later", NULL, Nop, NULL);
      evs_projection_info_t* info = NULL;
      EXPECT_MSG(EVS_OK, evs_projection_info(store, STR("later"), &info, &msg));
      evs_projection_info_destroy(info);
      EXPECT_MSG(EVS_NOT_FOUND, evs_snapshot_projection_info(s, STR("later"), &info, &msg));
      CHECK(info == NULL);
      evs_projection_destroy(later);
    }
    EXPECT_MSG(EVS_OK, evs_snapshot_read_all(s, 0, EVS_FORWARD, EVS_NO_LIMIT, &it, &msg));
    EXPECT_MSG(EVS_BUSY, evs_store_close(store, &msg));
    evs_snapshot_destroy(s);
    CHECK(CountEvents(it) == pos); /* still reads after the snapshot is gone */
    EXPECT_MSG(EVS_OK, evs_iter_status(it, &msg));
    evs_iter_destroy(it);
  }
  CHECK(atomic_load(&w.context_ok));
  evs_projection_destroy(p);
  evs_projection_options_destroy(o);
}

/* Every function with NULL handles and out-pointers, and bad values. */
static void TestBadInput(evs_store_t* store) {
  World w;
  evs_projection_options_t* o = evs_projection_options_create();
  evs_projection_t* p = (evs_projection_t*)&w;
  evs_projection_status_t* st = (evs_projection_status_t*)&w;
  evs_projection_info_t* info = (evs_projection_info_t*)&w;
  evs_projection_list_t* list = (evs_projection_list_t*)&w;
  evs_projection_entries_t* e = (evs_projection_entries_t*)&w;
  evs_snapshot_t* s = (evs_snapshot_t*)&w;
  evs_iter_t* it = (evs_iter_t*)&w;
  void* v = &w;
  size_t len = 7;
  uint64_t u = 7;
  char big[2000];
  const char* types[2] = {"A", NULL};
  size_t lens[2] = {1, 1};
  int i;
  memset(big, 'k', sizeof big);
  InitWorld(&w);

  /* Options. */
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_projection_options_set_filter_all(NULL, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_projection_options_set_filter_stream(NULL, STR("s-1"), &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_projection_options_set_filter_stream(o, NULL, 3, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_projection_options_set_filter_category(NULL, STR("s"), &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_projection_options_set_filter_category(o, NULL, 1, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_projection_options_set_filter_types(NULL, types, lens, 1, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_projection_options_set_filter_types(o, NULL, lens, 1, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_projection_options_set_filter_types(o, types, NULL, 1, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_projection_options_set_filter_types(o, types, lens, 2, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_projection_options_set_version(NULL, 1, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_projection_options_set_max_batch(NULL, 1, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_projection_options_set_retry_backoff(NULL, 1, 1, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_projection_options_set_max_retries(NULL, 1, &msg));
  evs_projection_options_destroy(NULL);

  /* Values checked by run; nothing is created. */
  EXPECT_MSG(EVS_OK, evs_projection_options_set_filter_types(o, NULL, NULL, 0, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_projection_run(store, STR("bad"), o, Counting, &w, &p, &msg));
  CHECK(p == NULL);
  EXPECT_MSG(EVS_OK, evs_projection_options_set_filter_types(o, types, lens, 1, &msg));
  EXPECT_MSG(EVS_OK, evs_projection_options_set_max_batch(o, 0, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_projection_run(store, STR("bad"), o, Counting, &w, &p, &msg));
  EXPECT_MSG(EVS_OK, evs_projection_options_set_max_batch(o, 1, &msg));
  EXPECT_MSG(EVS_OK, evs_projection_options_set_retry_backoff(o, 0, 10, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_projection_run(store, STR("bad"), o, Counting, &w, &p, &msg));
  EXPECT_MSG(EVS_OK, evs_projection_options_set_retry_backoff(o, 10, 5, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_projection_run(store, STR("bad"), o, Counting, &w, &p, &msg));
  EXPECT_MSG(EVS_OK, evs_projection_options_set_retry_backoff(o, 1, UINT64_MAX, &msg)); /* clamped */
  EXPECT_MSG(EVS_OK, evs_projection_options_set_filter_stream(o, STR("x-y-"), &msg));
  EXPECT_MSG(EVS_OK, evs_projection_options_set_filter_category(o, STR("has-dash"), &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_projection_run(store, STR("bad"), o, Counting, &w, &p, &msg));
  EXPECT_MSG(EVS_OK, evs_projection_options_set_filter_stream(o, NULL, 0, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_projection_run(store, STR("bad"), o, Counting, &w, &p, &msg));
  EXPECT_MSG(EVS_OK, evs_projection_options_set_filter_all(o, &msg));

  /* run. */
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_projection_run(NULL, STR("bad"), o, Counting, &w, &p, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_projection_run(store, NULL, 3, o, Counting, &w, &p, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_projection_run(store, NULL, 0, o, Counting, &w, &p, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_projection_run(store, big, 300, o, Counting, &w, &p, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_projection_run(store, "a\0b", 3, o, Counting, &w, &p, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_projection_run(store, "\xff", 1, o, Counting, &w, &p, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_projection_run(store, STR("bad"), o, NULL, &w, &p, &msg));
  CHECK(p == NULL);
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_projection_run(store, STR("bad"), o, Counting, &w, NULL, &msg));
  EXPECT_MSG(EVS_NOT_FOUND, evs_projection_info(store, STR("bad"), &info, &msg)); /* never created */

  /* The projection handle. */
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_projection_wait_for(NULL, 1, 1, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_projection_rebuild(NULL, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_projection_stop(NULL, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_projection_wait(NULL, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_projection_status(NULL, &st, &msg));
  CHECK(st == NULL);
  evs_projection_destroy(NULL);
  p = Run(store, "probe", NULL, Nop, NULL);
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_projection_status(p, NULL, &msg));
  evs_projection_destroy(p);
  EXPECT_MSG(EVS_OK, evs_projection_delete(store, STR("probe"), &msg));

  /* Status, info, list, entries and event accessors with NULL. */
  CHECK(evs_projection_status_name(NULL, &len) == NULL && len == 0);
  CHECK(evs_projection_status_name(NULL, NULL) == NULL);
  CHECK(evs_projection_status_phase(NULL) == 0 && evs_projection_status_version(NULL) == 0);
  CHECK(evs_projection_status_position(NULL) == 0 && evs_projection_status_lag_events(NULL) == 0);
  CHECK(evs_projection_status_lag_ms(NULL) == 0 && evs_projection_status_events_per_s(NULL) == 0);
  CHECK(evs_projection_status_events_handled(NULL) == 0 && evs_projection_status_retries(NULL) == 0);
  len = 7;
  CHECK(evs_projection_status_last_error(NULL, &len) == NULL && len == 0);
  CHECK(evs_projection_status_rebuilding(NULL) == 0 && evs_projection_status_rebuild_position(NULL) == 0);
  evs_projection_status_destroy(NULL);
  len = 7;
  CHECK(evs_projection_info_name(NULL, &len) == NULL && len == 0);
  CHECK(evs_projection_info_version(NULL) == 0 && evs_projection_info_position(NULL) == 0);
  CHECK(evs_projection_info_events_handled(NULL) == 0 && evs_projection_info_updated_ms(NULL) == 0);
  CHECK(evs_projection_info_rebuilding(NULL) == 0 && evs_projection_info_rebuild_position(NULL) == 0);
  evs_projection_info_destroy(NULL);
  CHECK(evs_projection_list_size(NULL) == 0 && evs_projection_list_get(NULL, 0) == NULL);
  evs_projection_list_destroy(NULL);
  len = 7;
  CHECK(evs_projection_entries_count(NULL) == 0);
  CHECK(evs_projection_entries_key(NULL, 0, &len) == NULL && len == 0);
  len = 7;
  CHECK(evs_projection_entries_value(NULL, 0, &len) == NULL && len == 0);
  evs_projection_entries_destroy(NULL);
  len = 7;
  CHECK(evs_projection_event_id(NULL) == NULL);
  CHECK(evs_projection_event_stream(NULL, &len) == NULL && len == 0);
  CHECK(evs_projection_event_type(NULL, &len) == NULL && len == 0);
  CHECK(evs_projection_event_content_type(NULL, &len) == NULL && len == 0);
  CHECK(evs_projection_event_data(NULL, &len) == NULL && len == 0);
  CHECK(evs_projection_event_metadata(NULL, &len) == NULL && len == 0);
  CHECK(evs_projection_event_version(NULL) == 0 && evs_projection_event_position(NULL) == 0);
  CHECK(evs_projection_event_timestamp_ms(NULL) == 0);

  /* The state handle outside a handler is only ever NULL here. */
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_projection_state_get(NULL, STR("k"), &v, &len, &msg));
  CHECK(v == NULL && len == 0);
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_projection_state_put(NULL, STR("k"), STR("v"), &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_projection_state_erase(NULL, STR("k"), &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_projection_state_set_error(NULL, STR("why"), &msg));

  /* Queries. */
  v = &w;
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_projection_get(NULL, STR("n"), STR("k"), &v, &len, &msg));
  CHECK(v == NULL);
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_projection_get(store, NULL, 1, STR("k"), &v, &len, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_projection_get(store, STR("n"), NULL, 1, &v, &len, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_projection_get(store, STR("n"), STR("k"), NULL, &len, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_projection_get(store, STR("n"), NULL, 0, &v, &len, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_projection_get(store, STR("n"), big, sizeof big, &v, &len, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_projection_get(store, NULL, 0, STR("k"), &v, &len, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_projection_scan(NULL, STR("n"), NULL, 0, NULL, 0, 1, &e, &msg));
  CHECK(e == NULL);
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_projection_scan(store, NULL, 1, NULL, 0, NULL, 0, 1, &e, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_projection_scan(store, STR("n"), NULL, 1, NULL, 0, 1, &e, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_projection_scan(store, STR("n"), NULL, 0, NULL, 1, 1, &e, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_projection_scan(store, STR("n"), NULL, 0, NULL, 0, 1, NULL, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_projection_scan(store, STR("n"), big, sizeof big, NULL, 0, 1, &e, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_projection_scan(store, STR("n"), NULL, 0, big, sizeof big, 1, &e, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_projection_scan(store, NULL, 0, NULL, 0, NULL, 0, 1, &e, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_projection_info(NULL, STR("n"), &info, &msg));
  CHECK(info == NULL);
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_projection_info(store, NULL, 1, &info, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_projection_info(store, STR("n"), NULL, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_projection_info(store, big, 300, &info, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_projection_list(NULL, &list, &msg));
  CHECK(list == NULL);
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_projection_list(store, NULL, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_projection_delete(NULL, STR("n"), &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_projection_delete(store, NULL, 1, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_projection_delete(store, NULL, 0, &msg));

  /* Phase names. */
  for (i = -2; i <= 10; i++) {
    const char* name = evs_projection_phase_name(i);
    int known = i >= EVS_PROJECTION_STARTING && i <= EVS_PROJECTION_STOPPED;
    CHECK(name != NULL && (strcmp(name, "unknown") != 0) == known);
  }
  CHECK(strcmp(evs_projection_phase_name(EVS_PROJECTION_LIVE), "live") == 0);
  CHECK(strcmp(evs_projection_phase_name(EVS_PROJECTION_CATCHING_UP), "catching up") == 0);

  /* Snapshots. */
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_snapshot_create(NULL, &s, &msg));
  CHECK(s == NULL);
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_snapshot_create(store, NULL, &msg));
  evs_snapshot_destroy(NULL);
  CHECK(evs_snapshot_position(NULL) == 0);
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_snapshot_read_all(NULL, 0, EVS_FORWARD, 1, &it, &msg));
  CHECK(it == NULL);
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_snapshot_read_stream(NULL, STR("s-1"), 0, EVS_FORWARD, 1, &it, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_snapshot_read_category(NULL, STR("s"), 0, EVS_FORWARD, 1, &it, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_snapshot_read_type(NULL, STR("A"), 0, EVS_FORWARD, 1, &it, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_snapshot_stream_head(NULL, STR("s-1"), &u, &u, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_snapshot_projection_get(NULL, STR("n"), STR("k"), &v, &len, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_snapshot_projection_scan(NULL, STR("n"), NULL, 0, NULL, 0, 1, &e, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_snapshot_projection_info(NULL, STR("n"), &info, &msg));
  EXPECT_MSG(EVS_OK, evs_snapshot_create(store, &s, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_snapshot_read_all(s, 0, 2, 1, &it, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_snapshot_read_all(s, 0, EVS_FORWARD, 1, NULL, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_snapshot_read_stream(s, NULL, 3, 0, EVS_FORWARD, 1, &it, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_snapshot_read_stream(s, NULL, 0, 0, EVS_FORWARD, 1, &it, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_snapshot_read_stream(s, STR("s-1"), 0, -1, 1, &it, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_snapshot_read_category(s, NULL, 1, 0, EVS_FORWARD, 1, &it, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_snapshot_read_category(s, STR("s"), 0, 7, 1, &it, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_snapshot_read_type(s, NULL, 1, 0, EVS_FORWARD, 1, &it, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_snapshot_read_type(s, STR("A"), 0, EVS_FORWARD, 1, NULL, &msg));
  CHECK(it == NULL);
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_snapshot_stream_head(s, NULL, 1, &u, &u, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_snapshot_stream_head(s, NULL, 0, &u, &u, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_snapshot_projection_get(s, STR("n"), STR("k"), NULL, &len, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_snapshot_projection_get(s, STR("n"), NULL, 1, &v, &len, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_snapshot_projection_get(s, STR("n"), NULL, 0, &v, &len, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_snapshot_projection_scan(s, STR("n"), NULL, 0, NULL, 0, 1, NULL, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_snapshot_projection_scan(s, NULL, 2, NULL, 0, NULL, 0, 1, &e, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_snapshot_projection_info(s, STR("n"), NULL, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_snapshot_projection_info(s, NULL, 0, &info, &msg));
  EXPECT_MSG(EVS_NOT_FOUND, evs_snapshot_projection_info(s, STR("no-such"), &info, &msg));
  EXPECT_MSG(EVS_NOT_FOUND, evs_snapshot_projection_get(s, STR("no-such"), STR("k"), &v, &len, &msg));
  evs_snapshot_destroy(s);
  evs_projection_options_destroy(o);
}

/* The state API inside a handler: its NULL and bad arguments, its view of
 * the batch, and that a put failure the handler returns is a failure. */
typedef struct {
  atomic_int done;
  atomic_int ok;
} Probe;

static int StateProbe(void* user, const evs_projection_event_t* ev, evs_projection_state_t* st) {
  Probe* pr = (Probe*)user;
  char big[1100];
  void* v = &big;
  size_t len = 7;
  int ok = 1;
  (void)ev;
  if (atomic_load(&pr->done)) return EVS_OK;
  memset(big, 'k', sizeof big);
  ok &= evs_projection_state_get(st, STR("k"), NULL, &len, NULL) == EVS_INVALID_ARGUMENT;
  ok &= evs_projection_state_get(st, NULL, 1, &v, &len, NULL) == EVS_INVALID_ARGUMENT;
  ok &= evs_projection_state_get(st, NULL, 0, &v, &len, NULL) == EVS_INVALID_ARGUMENT;
  ok &= v == NULL && len == 0;
  ok &= evs_projection_state_get(st, big, sizeof big, &v, NULL, NULL) == EVS_INVALID_ARGUMENT;
  ok &= evs_projection_state_put(st, NULL, 1, STR("v"), NULL) == EVS_INVALID_ARGUMENT;
  ok &= evs_projection_state_put(st, STR("k"), NULL, 1, NULL) == EVS_INVALID_ARGUMENT;
  ok &= evs_projection_state_put(st, big, sizeof big, STR("v"), NULL) == EVS_INVALID_ARGUMENT;
  ok &= evs_projection_state_put(st, NULL, 0, STR("v"), NULL) == EVS_INVALID_ARGUMENT;
  ok &= evs_projection_state_erase(st, NULL, 1, NULL) == EVS_INVALID_ARGUMENT;
  ok &= evs_projection_state_erase(st, NULL, 0, NULL) == EVS_INVALID_ARGUMENT;
  ok &= evs_projection_state_set_error(st, NULL, 1, NULL) == EVS_INVALID_ARGUMENT;
  {
    char* msg = NULL;
    ok &= evs_projection_state_get(st, STR("k"), &v, &len, &msg) == EVS_NOT_FOUND && msg != NULL;
    evs_free(msg);
  }
  /* The batch's own changes, empty values included. */
  ok &= evs_projection_state_put(st, STR("k"), NULL, 0, NULL) == EVS_OK;
  ok &= evs_projection_state_get(st, STR("k"), &v, &len, NULL) == EVS_OK && v != NULL && len == 0;
  evs_free(v);
  ok &= evs_projection_state_put(st, STR("k"), STR("two"), NULL) == EVS_OK;
  ok &= evs_projection_state_get(st, STR("k"), &v, NULL, NULL) == EVS_OK && v != NULL && memcmp(v, "two", 3) == 0;
  evs_free(v);
  ok &= evs_projection_state_put(st, STR("gone"), STR("x"), NULL) == EVS_OK;
  ok &= evs_projection_state_erase(st, STR("gone"), NULL) == EVS_OK;
  ok &= evs_projection_state_get(st, STR("gone"), &v, &len, NULL) == EVS_NOT_FOUND && v == NULL;
  ok &= evs_projection_state_set_error(st, NULL, 0, NULL) == EVS_OK;
  atomic_store(&pr->ok, ok);
  atomic_store(&pr->done, 1);
  return EVS_OK;
}

static void TestStateInHandler(evs_store_t* store) {
  Probe pr;
  evs_projection_t* p;
  void* v = NULL;
  size_t len = 7;
  uint64_t last;
  atomic_init(&pr.done, 0);
  atomic_init(&pr.ok, 0);
  last = Append(store, "probe-1", "Typed", 1);
  EXPECT_MSG(EVS_OK, evs_projection_run(store, STR("state-probe"), NULL, StateProbe, &pr, &p, &msg));
  CHECK(WaitFor(p, last + 1) == EVS_OK);
  CHECK(atomic_load(&pr.ok) == 1);
  EXPECT_MSG(EVS_OK, evs_projection_get(store, STR("state-probe"), STR("k"), &v, &len, &msg));
  CHECK(BytesEq(v, len, "two"));
  evs_free(v);
  EXPECT_MSG(EVS_NOT_FOUND, evs_projection_get(store, STR("state-probe"), STR("gone"), &v, &len, &msg));
  evs_projection_destroy(p);
}

/* A read-only store cannot run projections but answers queries. */
static void TestReadOnly(const char* dir) {
  evs_options_t* o = evs_options_create();
  evs_store_t* ro;
  evs_projection_t* p = NULL;
  evs_projection_list_t* list = NULL;
  evs_options_set_read_only(o, 1, NULL);
  ro = Open(dir, o);
  evs_options_destroy(o);
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_projection_run(ro, STR("ro"), NULL, Nop, NULL, &p, &msg));
  CHECK(p == NULL);
  EXPECT_MSG(EVS_OK, evs_projection_list(ro, &list, &msg));
  CHECK(evs_projection_list_size(list) > 0);
  evs_projection_list_destroy(list);
  CHECK(GetNum(ro, NULL, "snap-counts", "count/A") > 0);
  evs_store_destroy(ro);
}

/* Closing the store stops running projections (EVS_CLOSED); afterwards
 * every call that needs the store returns EVS_CLOSED, and the handles stay
 * safe to query and destroy. */
static void TestAfterClose(const char* dir) {
  evs_store_t* store = Open(dir, NULL);
  World w;
  evs_projection_t* p;
  evs_projection_t* q = NULL;
  evs_projection_status_t* st;
  evs_projection_info_t* info = NULL;
  evs_projection_list_t* list = NULL;
  evs_projection_entries_t* e = NULL;
  evs_snapshot_t* s = NULL;
  void* v = NULL;
  size_t len;
  uint64_t last;
  InitWorld(&w);
  last = Append(store, "close-1", "Typed", 2);
  p = Run(store, "closing", NULL, Counting, &w);
  CHECK(WaitFor(p, last + 1) == EVS_OK);
  EXPECT_MSG(EVS_OK, evs_store_close(store, &msg));
  EXPECT_MSG(EVS_CLOSED, evs_projection_wait(p, &msg));
  CHECK(Phase(p) == EVS_PROJECTION_STOPPED);
  st = Status(p);
  CHECK(evs_projection_status_position(st) == last + 1);
  evs_projection_status_destroy(st);
  EXPECT_MSG(EVS_CLOSED, evs_projection_wait_for(p, last + 2, 1, &msg));
  EXPECT_MSG(EVS_OK, evs_projection_wait_for(p, last + 1, 1, &msg)); /* already there */
  EXPECT_MSG(EVS_CLOSED, evs_projection_rebuild(p, &msg));
  EXPECT_MSG(EVS_OK, evs_projection_stop(p, &msg));
  EXPECT_MSG(EVS_CLOSED, evs_projection_run(store, STR("closing"), NULL, Counting, &w, &q, &msg));
  CHECK(q == NULL);
  EXPECT_MSG(EVS_CLOSED, evs_projection_run(store, STR("other"), NULL, Counting, &w, &q, &msg));
  EXPECT_MSG(EVS_CLOSED, evs_projection_get(store, STR("closing"), STR("count/Typed"), &v, &len, &msg));
  CHECK(v == NULL);
  EXPECT_MSG(EVS_CLOSED, evs_projection_scan(store, STR("closing"), NULL, 0, NULL, 0, 10, &e, &msg));
  CHECK(e == NULL);
  EXPECT_MSG(EVS_CLOSED, evs_projection_info(store, STR("closing"), &info, &msg));
  CHECK(info == NULL);
  EXPECT_MSG(EVS_CLOSED, evs_projection_list(store, &list, &msg));
  CHECK(list == NULL);
  EXPECT_MSG(EVS_CLOSED, evs_projection_delete(store, STR("closing"), &msg));
  EXPECT_MSG(EVS_CLOSED, evs_snapshot_create(store, &s, &msg));
  CHECK(s == NULL);
  evs_projection_destroy(p);
  evs_store_destroy(store);

  /* Nothing was lost or changed: the state is there after reopening. */
  store = Open(dir, NULL);
  CHECK(GetNum(store, NULL, "closing", "count/Typed") == 2);
  CHECK(InfoPosition(store, NULL, "closing") == last + 1);
  evs_store_destroy(store);
}

/* The usage shown in docs/c-api.md, run as shown. */
static void TestDocExample(const char* dir) {
  evs_store_t* store = Open(dir, NULL);
  int rc = EVS_OK;
  char* msg = NULL;
  /* ---- docs/c-api.md: usage ---- */
  evs_projection_t* proj = NULL;
  evs_event_t placed = {0};
  evs_append_result_t result;
  void* value = NULL;
  size_t len = 0;
  placed.type = "OrderPlaced";
  placed.type_len = 11;
  rc = evs_projection_run(store, "by-type", 7, NULL, count_by_type, NULL, &proj, &msg);
  if (rc == EVS_OK) rc = evs_append(store, "order-1", 7, EVS_EXPECT_ANY, &placed, 1, &result, &msg);
  if (rc == EVS_OK) /* read your own write */
    rc = evs_projection_wait_for(proj, result.last_position + 1, 5000, &msg);
  if (rc == EVS_OK) rc = evs_projection_get(store, "by-type", 7, "count/OrderPlaced", 17, &value, &len, &msg);
  if (rc == EVS_OK) printf("%.*s order(s) placed\n", (int)len, (const char*)value);
  evs_free(value);

  /* Every count, 100 keys a page. */
  evs_projection_entries_t* page = NULL;
  char after[1024];
  size_t after_len = 0;
  while (rc == EVS_OK) {
    rc = evs_projection_scan(store, "by-type", 7, "count/", 6, after, after_len, 100, &page, &msg);
    size_t n = evs_projection_entries_count(page);
    for (size_t i = 0; i < n; i++) {
      size_t klen, vlen;
      const char* k = evs_projection_entries_key(page, i, &klen);
      const char* v = evs_projection_entries_value(page, i, &vlen);
      printf("%.*s = %.*s\n", (int)klen, k, (int)vlen, v);
      if (i + 1 == n) memcpy(after, k, after_len = klen);
    }
    evs_projection_entries_destroy(page);
    if (n == 0) break;
  }

  /* A read model and the events it has not folded in yet, at one point. */
  evs_snapshot_t* snap = NULL;
  evs_projection_info_t* info = NULL;
  evs_iter_t* newer = NULL;
  if (rc == EVS_OK) rc = evs_snapshot_create(store, &snap, &msg);
  if (rc == EVS_OK) rc = evs_snapshot_projection_info(snap, "by-type", 7, &info, &msg);
  if (rc == EVS_OK)
    rc = evs_snapshot_read_all(snap, evs_projection_info_position(info), EVS_FORWARD, EVS_NO_LIMIT,
                               &newer, &msg);
  /* ... evs_snapshot_projection_get(snap, ...) and the events in `newer` agree ... */
  evs_iter_destroy(newer);
  evs_projection_info_destroy(info);
  evs_snapshot_destroy(snap);
  evs_projection_destroy(proj); /* stops it and joins its thread */
  if (rc != EVS_OK) fprintf(stderr, "projection: %s\n", msg ? msg : evs_errstr(rc));
  evs_free(msg);
  /* ---- end of usage ---- */
  CHECK(rc == EVS_OK);
  CHECK(after_len == 17 && memcmp(after, "count/OrderPlaced", 17) == 0);
  evs_store_destroy(store);
}

int main(void) {
  evs_store_t* store;
  evs_options_t* o = evs_options_create();
  MakeRoot();
  evs_options_set_sync(o, 0, NULL);
  store = Open(Sub("projections"), o);
  evs_options_destroy(o);
  TestBadInput(store);
  TestCountAndQuery(store);
  TestReadYourWrites(store);
  TestFailures(store);
  TestStopInside(store);
  TestStateInHandler(store);
  TestRebuild(store);
  TestSnapshots(store);
  TestReadOnly(Sub("projections"));
  EXPECT_MSG(EVS_OK, evs_store_close(store, &msg));
  evs_store_destroy(store);
  TestAfterClose(Sub("closing"));
  TestDocExample(Sub("example"));
  RemoveRoot();
  printf("%d checks, %d failed\n", g_checks, g_failures);
  return g_failures ? 1 : 0;
}
