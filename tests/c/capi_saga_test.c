/* Sagas through the C API from C11: definitions with C handlers, start,
 * wait, get, list pages, retry and resolve of stuck sagas, callbacks that
 * call back into the API, retention, attempts given up at shutdown, damaged
 * records, bad input, and use after shutdown. Linked against the shared
 * library. Exits 0 when every check holds. */
#include "check.h"

#include <dlfcn.h>
#include <rocksdb/c.h>

#define WAIT_MS 60000

/* VIEW_IS(call using &len, "text"): the call runs before len is read. */
static const char* g_view;
#define VIEW_IS(call, want) (g_view = (call), BytesEq(g_view, len, (want)))

/* What the handlers did, in order: "a1", "c1", ... per test. */
typedef struct {
  mtx_t mu;
  char log[512];
} Effects;

static void Record(Effects* fx, const evs_saga_step_t* step) {
  char e[16];
  snprintf(e, sizeof e, "%s%u ", evs_saga_step_compensating(step) ? "c" : "a",
           (unsigned)evs_saga_step_index(step) + 1);
  mtx_lock(&fx->mu);
  if (strlen(fx->log) + strlen(e) < sizeof fx->log) strcat(fx->log, e);
  mtx_unlock(&fx->mu);
}

static int LogIs(Effects* fx, const char* want) {
  int same;
  mtx_lock(&fx->mu);
  same = strcmp(fx->log, want) == 0;
  if (!same) fprintf(stderr, "effects: '%s', expected '%s'\n", fx->log, want);
  mtx_unlock(&fx->mu);
  return same;
}

/* Shared by the handlers of one test. */
typedef struct {
  Effects fx;
  evs_store_t* store;
  evs_saga_engine_t* engine;
  atomic_int fail_step;        /* 1-based action that fails for good; 0: none */
  atomic_int retry_once_step;  /* 1-based action that asks for one retry */
  atomic_int comp_fails;       /* compensations fail (retryably) while set */
  atomic_int reentry_ok;       /* set by the re-entrant handler */
  atomic_int context_ok;       /* every context check held */
  atomic_int finished;         /* on_finished calls */
  atomic_int finished_get_ok;  /* on_finished could query the engine */
  atomic_int stuck;            /* on_stuck calls */
  atomic_int stuck_list_ok;    /* on_stuck could list stuck sagas */
} World;

static void ContextFail(World* w, const char* what) {
  fprintf(stderr, "handler context check failed: %s\n", what);
  atomic_store(&w->context_ok, 0);
}

static void Action(void* user, const evs_saga_step_t* step, evs_saga_result_t* result) {
  World* w = (World*)user;
  uint32_t n = evs_saga_step_index(step) + 1;
  size_t len, klen;
  const char* key = evs_saga_step_idempotency_key(step, &klen);
  const char* id = evs_saga_step_saga_id(step, &len);
  char out[32];

  if (evs_saga_step_compensating(step)) ContextFail(w, "compensating in an action");
  if (klen <= len || memcmp(key, id, len) != 0 || key[len] != '/') ContextFail(w, "idempotency key");
  evs_saga_step_name(step, &len);
  if (len != 2) ContextFail(w, "step name");
  evs_saga_step_definition(step, &len);
  if (len == 0) ContextFail(w, "definition");
  if (evs_saga_step_remaining_ms(step) <= 0) ContextFail(w, "remaining time");
  if (evs_saga_step_cancelled(step)) ContextFail(w, "cancelled");
  if (n == 2) {
    const char* prev = evs_saga_step_output_of(step, STR("s1"), &len);
    const char* in = evs_saga_step_input(step, &klen);
    if (!BytesEq(prev, len, "s1-out")) ContextFail(w, "output of s1");
    if (klen == 0 || in == NULL) ContextFail(w, "input");
    evs_saga_step_output_of(step, STR("nope"), &len);
    if (len != 0) ContextFail(w, "output of an unknown step");
  }
  if ((int)n == atomic_load(&w->retry_once_step) && evs_saga_step_attempt(step) == 1) {
    evs_saga_result_retry(result, STR("busy, try again"), 0, NULL);
    return;
  }
  if ((int)n == atomic_load(&w->fail_step)) {
    evs_saga_result_fail(result, STR("out of stock"), 0, NULL);
    return;
  }
  Record(&w->fx, step);
  snprintf(out, sizeof out, "s%u-out", (unsigned)n);
  evs_saga_result_success(result, out, strlen(out), NULL);
  if (n == 3) {
    /* The last step emits an event in the same commit, with a stable id. */
    evs_event_t e = Ev("Shipped", "{}");
    char stream[64];
    const char* sid = evs_saga_step_saga_id(step, &len);
    evs_saga_step_event_id(step, 0, e.id, NULL);
    snprintf(stream, sizeof stream, "shipment-%.*s", (int)len, sid);
    if (evs_saga_result_add_events(result, STR(stream), EVS_EXPECT_ANY, &e, 1, NULL) != EVS_OK)
      ContextFail(w, "add events");
  }
}

static void Compensate(void* user, const evs_saga_step_t* step, evs_saga_result_t* result) {
  World* w = (World*)user;
  size_t len;
  const char* key = evs_saga_step_idempotency_key(step, &len);
  const char* why = evs_saga_step_failure(step, &len);
  if (!evs_saga_step_compensating(step)) ContextFail(w, "not compensating");
  if (len == 0 || why == NULL) ContextFail(w, "failure text");
  evs_saga_step_idempotency_key(step, &len);
  if (len < 11 || memcmp(key + len - 11, "/compensate", 11) != 0) ContextFail(w, "compensation key");
  if (atomic_load(&w->comp_fails)) {
    evs_saga_result_retry(result, STR("refund service down"), 0, NULL);
    return;
  }
  Record(&w->fx, step);
  evs_saga_result_success(result, NULL, 0, NULL);
}

/* An action that uses the API from inside: its own saga, another saga, the store. */
static void Reentrant(void* user, const evs_saga_step_t* step, evs_saga_result_t* result) {
  World* w = (World*)user;
  evs_saga_info_t* self = NULL;
  size_t len;
  const char* id = evs_saga_step_saga_id(step, &len);
  evs_event_t e = Ev("Noted", "{}");
  int created = 0, ok = 1;
  ok &= evs_saga_get(w->engine, id, len, &self, NULL) == EVS_OK;
  ok &= evs_saga_info_state(self) == EVS_SAGA_PENDING || evs_saga_info_state(self) == EVS_SAGA_RUNNING;
  evs_saga_info_destroy(self);
  ok &= evs_saga_start(w->engine, STR("order"), STR("child-of-reentrant"), STR("{}"), &created, NULL) ==
        EVS_OK;
  ok &= created == 1;
  ok &= evs_append(w->store, STR("notes-1"), EVS_EXPECT_ANY, &e, 1, NULL, NULL) == EVS_OK;
  atomic_store(&w->reentry_ok, ok);
  evs_saga_result_success(result, NULL, 0, NULL);
}

static void OnFinished(void* user, const evs_saga_info_t* saga) {
  World* w = (World*)user;
  evs_saga_info_t* again = NULL;
  size_t len;
  const char* id = evs_saga_info_id(saga, &len);
  atomic_fetch_add(&w->finished, 1);
  if (evs_saga_get(w->engine, id, len, &again, NULL) == EVS_OK) atomic_store(&w->finished_get_ok, 1);
  evs_saga_info_destroy(again);
}

static void OnStuck(void* user, const evs_saga_info_t* saga) {
  World* w = (World*)user;
  evs_saga_list_t* list = NULL;
  atomic_fetch_add(&w->stuck, 1);
  if (evs_saga_info_state(saga) == EVS_SAGA_STUCK &&
      evs_saga_list(w->engine, EVS_SAGA_STUCK, NULL, 0, EVS_NO_LIMIT, &list, NULL) == EVS_OK &&
      evs_saga_list_size(list) >= 1)
    atomic_store(&w->stuck_list_ok, 1);
  evs_saga_list_destroy(list);
}

static void InitWorld(World* w, evs_store_t* store) {
  memset(w, 0, sizeof *w);
  mtx_init(&w->fx.mu, mtx_plain);
  w->store = store;
  atomic_init(&w->fail_step, 0);
  atomic_init(&w->retry_once_step, 0);
  atomic_init(&w->comp_fails, 0);
  atomic_init(&w->reentry_ok, 0);
  atomic_init(&w->context_ok, 1);
  atomic_init(&w->finished, 0);
  atomic_init(&w->finished_get_ok, 0);
  atomic_init(&w->stuck, 0);
  atomic_init(&w->stuck_list_ok, 0);
}

/* "order": three steps with compensations and quick retries. */
static evs_saga_def_t* OrderDef(World* w) {
  evs_saga_def_t* d = NULL;
  size_t i;
  EXPECT_MSG(EVS_OK, evs_saga_def_create(STR("order"), 1, &d, &msg));
  EXPECT_MSG(EVS_OK, evs_saga_def_add_step(d, STR("s1"), Action, Compensate, w, 0, &msg));
  EXPECT_MSG(EVS_OK, evs_saga_def_add_step(d, STR("s2"), Action, Compensate, w, 10000, &msg));
  EXPECT_MSG(EVS_OK, evs_saga_def_add_step(d, STR("s3"), Action, NULL, w, 0, &msg));
  for (i = 0; i < 3; i++) {
    EXPECT_MSG(EVS_OK, evs_saga_def_set_retry(d, i, 0, 3, 1, 2.0, 4, 0.5, &msg));
    EXPECT_MSG(EVS_OK, evs_saga_def_set_retry(d, i, 1, 2, 1, 2.0, 4, 0.5, &msg));
  }
  return d;
}

/* Callbacks may run just after a waiter wakes: poll for their effect. */
static int Reaches(atomic_int* v, int at_least) {
  int i;
  for (i = 0; i < 2000 && atomic_load(v) < at_least; i++) SleepMs(5);
  return atomic_load(v) >= at_least;
}

static evs_saga_info_t* WaitFor(evs_saga_engine_t* e, const char* id) {
  evs_saga_info_t* info = NULL;
  char* msg = NULL;
  int rc = evs_saga_wait(e, id, strlen(id), WAIT_MS, &info, &msg);
  if (rc != EVS_OK) {
    fprintf(stderr, "wait %s: %s\n", id, msg ? msg : evs_errstr(rc));
    evs_free(msg);
  }
  return info;
}

/* Pages through the sagas in `state`, `limit` at a time, and returns their
 * ids ("a b ") and, in *damaged, the damaged ids the pages named (static
 * buffers). */
static const char* ListAll(evs_saga_engine_t* e, int state, uint64_t limit, const char** damaged) {
  static char ids[512], bad[512];
  evs_saga_list_t* page = NULL;
  const char* after = NULL;
  size_t after_len = 0, i, len;
  int pages = 0;
  ids[0] = bad[0] = '\0';
  do {
    evs_saga_list_t* next = NULL;
    char* msg = NULL;
    int rc = evs_saga_list(e, state, after, after_len, limit, &next, &msg);
    evs_saga_list_destroy(page); /* after the call: `after` points into it */
    page = next;
    if (rc != EVS_OK) {
      fprintf(stderr, "list: %s\n", msg ? msg : evs_errstr(rc));
      evs_free(msg);
      strcpy(ids, "(failed)");
      break;
    }
    CHECK(evs_saga_list_size(page) <= limit);
    for (i = 0; i < evs_saga_list_size(page); i++) {
      const char* id = evs_saga_info_id(evs_saga_list_get(page, i), &len);
      CHECK(evs_saga_info_state(evs_saga_list_get(page, i)) == state);
      snprintf(ids + strlen(ids), sizeof ids - strlen(ids), "%.*s ", (int)len, id);
    }
    for (i = 0; i < evs_saga_list_damaged_count(page); i++) {
      const char* id = evs_saga_list_damaged_id(page, i, &len);
      snprintf(bad + strlen(bad), sizeof bad - strlen(bad), "%.*s ", (int)len, id);
    }
    CHECK(evs_saga_list_damaged_id(page, i, &len) == NULL && len == 0);
    after = evs_saga_list_next_after(page, &after_len);
  } while (after_len > 0 && ++pages < 100);
  evs_saga_list_destroy(page);
  if (damaged) *damaged = bad;
  return ids;
}

static int HasEvent(const evs_saga_info_t* s, int event) {
  size_t i;
  int ev;
  for (i = 0; i < evs_saga_info_history_count(s); i++)
    if (evs_saga_info_history(s, i, &ev, NULL, NULL, NULL, NULL, NULL, NULL, NULL) == EVS_OK &&
        ev == event)
      return 1;
  return 0;
}

/* Every state and event the engine can write has a distinct name; nothing
 * else has one. 13 and 14 (interrupted attempts) once read "unknown". */
static void TestNames(void) {
  const char* seen[EVS_SAGA_EVENT_COMPENSATION_INTERRUPTED + 1];
  int i, j;
  for (i = -2; i <= 300; i++) {
    const char* name = evs_saga_state_name(i);
    int known = i >= EVS_SAGA_PENDING && i <= EVS_SAGA_STUCK;
    CHECK(name != NULL && (strcmp(name, "unknown") != 0) == known);
    if (known)
      for (j = 0; j < i; j++) CHECK(strcmp(name, evs_saga_state_name(j)) != 0);
  }
  CHECK(strcmp(evs_saga_state_name(EVS_SAGA_PENDING), "pending") == 0);
  CHECK(strcmp(evs_saga_state_name(EVS_SAGA_STUCK), "stuck") == 0);
  for (i = -2; i <= 300; i++) {
    const char* name = evs_saga_event_name(i);
    int known = i >= EVS_SAGA_EVENT_STARTED && i <= EVS_SAGA_EVENT_COMPENSATION_INTERRUPTED;
    if (name == NULL || (strcmp(name, "unknown") != 0) != known)
      fprintf(stderr, "event %d is named \"%s\"\n", i, name ? name : "(null)");
    CHECK(name != NULL && (strcmp(name, "unknown") != 0) == known);
    if (!known) continue;
    seen[i] = name;
    for (j = 0; j < i; j++) CHECK(strcmp(name, seen[j]) != 0);
  }
  CHECK(EVS_SAGA_EVENT_STEP_INTERRUPTED == 13 && EVS_SAGA_EVENT_COMPENSATION_INTERRUPTED == 14);
  CHECK(strcmp(evs_saga_event_name(EVS_SAGA_EVENT_STEP_INTERRUPTED), "step interrupted") == 0);
  CHECK(strcmp(evs_saga_event_name(EVS_SAGA_EVENT_COMPENSATION_INTERRUPTED),
               "compensation interrupted") == 0);
}

static void TestBadInput(evs_store_t* store, World* w) {
  evs_saga_def_t* d = NULL;
  evs_saga_def_t* good = OrderDef(w);
  evs_saga_engine_t* e = NULL;
  evs_saga_options_t* o = evs_saga_options_create();
  const evs_saga_def_t* defs[2];

  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_saga_def_create(NULL, 3, 1, &d, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_saga_def_create(STR("x"), 1, NULL, &msg));
  EXPECT_MSG(EVS_OK, evs_saga_def_create(STR("bad"), 1, &d, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_saga_def_add_step(NULL, STR("s1"), Action, NULL, w, 0, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_saga_def_add_step(d, NULL, 2, Action, NULL, w, 0, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_saga_def_add_step(d, STR("s1"), NULL, NULL, w, 0, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_saga_def_set_retry(d, 0, 0, 1, 1, 2.0, 1, 0, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_saga_def_set_retry(NULL, 0, 0, 1, 1, 2.0, 1, 0, &msg));
  EXPECT_MSG(EVS_OK, evs_saga_def_add_step(d, STR("s1"), Action, NULL, w, 0, &msg));
  EXPECT_MSG(EVS_OK, evs_saga_def_add_step(d, STR("s1"), Action, NULL, w, 0, &msg));

  /* Definitions and options are checked at open. */
  defs[0] = d;
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_saga_engine_open(store, defs, 1, NULL, &e, &msg)); /* duplicate step */
  CHECK(e == NULL);
  evs_saga_def_destroy(d);
  EXPECT_MSG(EVS_OK, evs_saga_def_create(STR("bad"), 1, &d, &msg));
  EXPECT_MSG(EVS_OK, evs_saga_def_add_step(d, STR("s1"), Action, NULL, w, 0, &msg));
  EXPECT_MSG(EVS_OK, evs_saga_def_set_retry(d, 0, 0, 0, 1, 2.0, 1, 0, &msg)); /* 0 attempts */
  defs[0] = d;
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_saga_engine_open(store, defs, 1, NULL, &e, &msg));
  defs[0] = good;
  defs[1] = good; /* the same name and version twice */
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_saga_engine_open(store, defs, 2, NULL, &e, &msg));
  defs[1] = NULL;
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_saga_engine_open(store, defs, 2, NULL, &e, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_saga_engine_open(store, defs, 0, NULL, &e, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_saga_engine_open(store, NULL, 1, NULL, &e, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_saga_engine_open(NULL, defs, 1, NULL, &e, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_saga_engine_open(store, defs, 1, NULL, NULL, &msg));
  EXPECT_MSG(EVS_OK, evs_saga_options_set_threads(o, 0, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_saga_engine_open(store, defs, 1, o, &e, &msg));
  CHECK(e == NULL);

  EXPECT_MSG(EVS_OK, evs_saga_options_set_threads(o, 2, &msg));
  EXPECT_MSG(EVS_OK, evs_saga_options_set_retention_interval_ms(o, 0, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_saga_engine_open(store, defs, 1, o, &e, &msg));
  CHECK(e == NULL);

  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_saga_options_set_threads(NULL, 1, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_saga_options_set_max_history(NULL, 1, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_saga_options_set_keep_finished_ms(NULL, 1, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_saga_options_set_max_finished(NULL, 1, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_saga_options_set_retention_interval_ms(NULL, 1, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_saga_options_set_shutdown_timeout_ms(NULL, 1, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_saga_options_set_max_abandoned_threads(NULL, 1, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_saga_options_set_on_damaged(NULL, NULL, NULL, &msg));
  EXPECT_MSG(EVS_OK, evs_saga_options_set_on_damaged(o, NULL, NULL, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_saga_options_set_on_stuck(NULL, OnStuck, w, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_saga_options_set_on_finished(NULL, OnFinished, w, &msg));
  EXPECT_MSG(EVS_OK, evs_saga_options_set_on_stuck(o, NULL, NULL, &msg));
  EXPECT_MSG(EVS_OK, evs_saga_options_set_on_finished(o, NULL, NULL, &msg));

  /* Accessors and setters on NULL never crash. */
  {
    size_t len = 9;
    uint8_t id[16];
    CHECK(evs_saga_step_saga_id(NULL, &len) == NULL && len == 0);
    CHECK(evs_saga_step_definition(NULL, NULL) == NULL);
    CHECK(evs_saga_step_name(NULL, NULL) == NULL);
    CHECK(evs_saga_step_idempotency_key(NULL, NULL) == NULL);
    CHECK(evs_saga_step_input(NULL, NULL) == NULL);
    CHECK(evs_saga_step_output_of(NULL, STR("s1"), NULL) == NULL);
    CHECK(evs_saga_step_failure(NULL, NULL) == NULL);
    CHECK(evs_saga_step_index(NULL) == 0 && evs_saga_step_attempt(NULL) == 0);
    CHECK(evs_saga_step_compensating(NULL) == 0 && evs_saga_step_cancelled(NULL) == 0);
    CHECK(evs_saga_step_remaining_ms(NULL) == 0);
    EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_saga_step_event_id(NULL, 0, id, &msg));
    EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_saga_result_success(NULL, STR("x"), &msg));
    EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_saga_result_retry(NULL, STR("x"), 0, &msg));
    EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_saga_result_fail(NULL, STR("x"), 1, &msg));
    EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_saga_result_add_events(NULL, STR("s-1"), EVS_EXPECT_ANY, NULL, 0, &msg));
    CHECK(evs_saga_info_id(NULL, &len) == NULL && len == 0);
    CHECK(evs_saga_info_definition(NULL, NULL) == NULL && evs_saga_info_input(NULL, NULL) == NULL);
    CHECK(evs_saga_info_error(NULL, NULL) == NULL && evs_saga_info_output(NULL, 0, NULL) == NULL);
    CHECK(evs_saga_info_version(NULL) == 0 && evs_saga_info_state(NULL) == 0);
    CHECK(evs_saga_info_stuck_in(NULL) == 0 && evs_saga_info_step(NULL) == 0);
    CHECK(evs_saga_info_attempt(NULL) == 0 && evs_saga_info_output_count(NULL) == 0);
    CHECK(evs_saga_info_created_ms(NULL) == 0 && evs_saga_info_updated_ms(NULL) == 0);
    CHECK(evs_saga_info_resolved_by_hand(NULL) == 0 && evs_saga_info_history_count(NULL) == 0);
    CHECK(evs_saga_info_history_dropped(NULL) == 0 && evs_saga_info_attempts_started(NULL) == 0);
    EXPECT_MSG(EVS_INVALID_ARGUMENT,
               evs_saga_info_history(NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, &msg));
    CHECK(evs_saga_list_size(NULL) == 0 && evs_saga_list_get(NULL, 0) == NULL);
    len = 9;
    CHECK(evs_saga_list_next_after(NULL, &len) == NULL && len == 0);
    len = 9;
    CHECK(evs_saga_list_damaged_count(NULL) == 0);
    CHECK(evs_saga_list_damaged_id(NULL, 0, &len) == NULL && len == 0);
    evs_saga_list_destroy(NULL);
    CHECK(evs_saga_damaged_count(NULL) == 0);
    EXPECT_MSG(EVS_INVALID_ARGUMENT,
               evs_saga_damaged_get(NULL, 0, NULL, NULL, NULL, NULL, &msg));
    evs_saga_damaged_destroy(NULL);
    {
      evs_saga_damaged_t* dmg = (evs_saga_damaged_t*)&g_checks;
      uint64_t deleted = 7;
      EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_saga_engine_damaged(NULL, &dmg, &msg));
      CHECK(dmg == NULL);
      EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_saga_engine_purge_finished(NULL, &deleted, &msg));
      CHECK(deleted == 0);
    }
    evs_saga_info_destroy(NULL);
    evs_saga_engine_destroy(NULL);
    evs_saga_options_destroy(NULL);
    evs_saga_def_destroy(NULL);
    EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_saga_engine_shutdown(NULL, &msg));
    EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_saga_engine_status(NULL, &msg));
  }
  evs_saga_options_destroy(o);
  evs_saga_def_destroy(d);
  evs_saga_def_destroy(good);
}

static void TestEngine(evs_store_t* store) {
  World w;
  evs_saga_def_t* defs[2];
  evs_saga_def_t* re = NULL;
  evs_saga_options_t* o = evs_saga_options_create();
  evs_saga_engine_t* e = NULL;
  evs_saga_info_t* s;
  evs_saga_stats_t st;
  size_t len;
  int created = -1;

  InitWorld(&w, store);
  defs[0] = OrderDef(&w);
  EXPECT_MSG(EVS_OK, evs_saga_def_create(STR("reentrant"), 1, &re, &msg));
  EXPECT_MSG(EVS_OK, evs_saga_def_add_step(re, STR("r1"), Reentrant, NULL, &w, 0, &msg));
  defs[1] = re;
  EXPECT_MSG(EVS_OK, evs_saga_options_set_threads(o, 3, &msg));
  EXPECT_MSG(EVS_OK, evs_saga_options_set_max_history(o, 32, &msg));
  EXPECT_MSG(EVS_OK, evs_saga_options_set_on_finished(o, OnFinished, &w, &msg));
  EXPECT_MSG(EVS_OK, evs_saga_options_set_on_stuck(o, OnStuck, &w, &msg));
  EXPECT_MSG(EVS_OK, evs_saga_engine_open(store, (const evs_saga_def_t* const*)defs, 2, o, &e, &msg));
  w.engine = e;
  /* The engine keeps copies. */
  evs_saga_def_destroy(defs[0]);
  evs_saga_def_destroy(re);
  evs_saga_options_destroy(o);
  EXPECT_MSG(EVS_OK, evs_saga_engine_status(e, &msg));

  /* A saga whose actions succeed completes, passes outputs on and emits an event. */
  EXPECT_MSG(EVS_OK, evs_saga_start(e, STR("order"), STR("o1"), STR("{\"sku\":\"tea\"}"), &created, &msg));
  CHECK(created == 1);
  EXPECT_MSG(EVS_OK, evs_saga_start(e, STR("order"), STR("o1"), STR("{\"sku\":\"tea\"}"), &created, &msg));
  CHECK(created == 0); /* idempotent start */
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_saga_start(e, STR("order"), STR("o1"), STR("{}"), &created, &msg));
  s = WaitFor(e, "o1");
  CHECK(evs_saga_info_state(s) == EVS_SAGA_COMPLETED);
  CHECK(VIEW_IS(evs_saga_info_id(s, &len), "o1"));
  CHECK(VIEW_IS(evs_saga_info_definition(s, &len), "order"));
  CHECK(evs_saga_info_version(s) == 1);
  CHECK(VIEW_IS(evs_saga_info_input(s, &len), "{\"sku\":\"tea\"}"));
  CHECK(evs_saga_info_output_count(s) == 3);
  CHECK(VIEW_IS(evs_saga_info_output(s, 0, &len), "s1-out"));
  CHECK(VIEW_IS(evs_saga_info_output(s, 2, &len), "s3-out"));
  CHECK(evs_saga_info_output(s, 3, &len) == NULL && len == 0);
  CHECK(evs_saga_info_created_ms(s) > 0 && evs_saga_info_updated_ms(s) >= evs_saga_info_created_ms(s));
  CHECK(evs_saga_info_resolved_by_hand(s) == 0 && evs_saga_info_history_dropped(s) == 0);
  {
    int ev = -1, state = -1;
    int32_t step = 7;
    uint32_t attempt = 7;
    int64_t t = 0;
    const char* text = NULL;
    size_t n = evs_saga_info_history_count(s);
    CHECK(n >= 5);
    EXPECT_MSG(EVS_OK,
               evs_saga_info_history(s, 0, &ev, &state, &step, &attempt, &t, &text, &len, &msg));
    CHECK(ev == EVS_SAGA_EVENT_STARTED && step == -1 && t > 0 && text != NULL);
    EXPECT_MSG(EVS_OK,
               evs_saga_info_history(s, n - 1, &ev, &state, NULL, NULL, NULL, NULL, &len, &msg));
    CHECK(ev == EVS_SAGA_EVENT_COMPLETED && state == EVS_SAGA_COMPLETED);
    EXPECT_MSG(EVS_INVALID_ARGUMENT,
               evs_saga_info_history(s, n, &ev, NULL, NULL, NULL, NULL, NULL, NULL, &msg));
  }
  evs_saga_info_destroy(s);
  CHECK(LogIs(&w.fx, "a1 a2 a3 "));
  {
    evs_iter_t* it = NULL;
    EXPECT_MSG(EVS_OK, evs_read_stream(store, STR("shipment-o1"), 0, EVS_FORWARD, EVS_NO_LIMIT, &it, &msg));
    CHECK(CountEvents(it) == 1);
    evs_iter_destroy(it);
  }

  /* A step retried once, then success. */
  w.fx.log[0] = '\0';
  atomic_store(&w.retry_once_step, 2);
  EXPECT_MSG(EVS_OK, evs_saga_start(e, STR("order"), STR("o2"), STR("{}"), NULL, &msg));
  s = WaitFor(e, "o2");
  CHECK(evs_saga_info_state(s) == EVS_SAGA_COMPLETED);
  CHECK(HasEvent(s, EVS_SAGA_EVENT_STEP_FAILED));
  evs_saga_info_destroy(s);
  atomic_store(&w.retry_once_step, 0);

  /* A permanent failure at step 3 compensates steps 2 and 1, in reverse. */
  w.fx.log[0] = '\0';
  atomic_store(&w.fail_step, 3);
  EXPECT_MSG(EVS_OK, evs_saga_start(e, STR("order"), STR("o3"), STR("{}"), NULL, &msg));
  s = WaitFor(e, "o3");
  CHECK(evs_saga_info_state(s) == EVS_SAGA_COMPENSATED);
  evs_saga_info_error(s, &len);
  CHECK(len > 0);
  evs_saga_info_destroy(s);
  CHECK(LogIs(&w.fx, "a1 a2 c2 c1 "));

  /* A compensation that keeps failing: stuck, reported, retried by hand. */
  w.fx.log[0] = '\0';
  atomic_store(&w.comp_fails, 1);
  EXPECT_MSG(EVS_OK, evs_saga_start(e, STR("order"), STR("o4"), STR("{}"), NULL, &msg));
  EXPECT_MSG(EVS_OK, evs_saga_start(e, STR("order"), STR("o5"), STR("{}"), NULL, &msg));
  s = WaitFor(e, "o4");
  CHECK(evs_saga_info_state(s) == EVS_SAGA_STUCK);
  CHECK(evs_saga_info_stuck_in(s) == EVS_SAGA_COMPENSATING);
  CHECK(evs_saga_info_step(s) == 1);
  evs_saga_info_destroy(s);
  s = WaitFor(e, "o5");
  CHECK(evs_saga_info_state(s) == EVS_SAGA_STUCK);
  evs_saga_info_destroy(s);
  CHECK(Reaches(&w.stuck, 2) && atomic_load(&w.stuck) == 2);
  CHECK(atomic_load(&w.stuck_list_ok) == 1);
  {
    evs_saga_list_t* list = NULL;
    const evs_saga_info_t* first;
    EXPECT_MSG(EVS_OK, evs_saga_list(e, EVS_SAGA_STUCK, NULL, 0, EVS_NO_LIMIT, &list, &msg));
    CHECK(evs_saga_list_size(list) == 2);
    first = evs_saga_list_get(list, 0);
    CHECK(VIEW_IS(evs_saga_info_id(first, &len), "o4"));
    CHECK(evs_saga_list_get(list, 2) == NULL);
    len = 9;
    CHECK(evs_saga_list_next_after(list, &len) == NULL && len == 0); /* the only page */
    CHECK(evs_saga_list_damaged_count(list) == 0);
    evs_saga_list_destroy(list);
    EXPECT_MSG(EVS_OK, evs_saga_list(e, EVS_SAGA_STUCK, NULL, 0, 1, &list, &msg));
    CHECK(evs_saga_list_size(list) == 1);
    evs_saga_list_destroy(list);
    EXPECT_MSG(EVS_OK, evs_saga_list(e, EVS_SAGA_COMPLETED, NULL, 0, EVS_NO_LIMIT, &list, &msg));
    CHECK(evs_saga_list_size(list) == 2); /* o1, o2 */
    evs_saga_list_destroy(list);
    EXPECT_MSG(EVS_OK, evs_saga_list(e, EVS_SAGA_COMPLETED, NULL, 0, 0, &list, &msg));
    CHECK(evs_saga_list_size(list) == 0 && evs_saga_list_next_after(list, &len) == NULL);
    evs_saga_list_destroy(list);
    /* Unfinished states page through the index, final ones through the records. */
    CHECK(strcmp(ListAll(e, EVS_SAGA_STUCK, 1, NULL), "o4 o5 ") == 0);
    CHECK(strcmp(ListAll(e, EVS_SAGA_COMPLETED, 1, NULL), "o1 o2 ") == 0);
    CHECK(strcmp(ListAll(e, EVS_SAGA_STUCK, 2, NULL), "o4 o5 ") == 0);
    EXPECT_MSG(EVS_OK, evs_saga_list(e, EVS_SAGA_STUCK, STR("o4"), EVS_NO_LIMIT, &list, &msg));
    CHECK(evs_saga_list_size(list) == 1);
    CHECK(VIEW_IS(evs_saga_info_id(evs_saga_list_get(list, 0), &len), "o5"));
    evs_saga_list_destroy(list);
    EXPECT_MSG(EVS_OK, evs_saga_list(e, EVS_SAGA_STUCK, STR("o5"), EVS_NO_LIMIT, &list, &msg));
    CHECK(evs_saga_list_size(list) == 0);
    evs_saga_list_destroy(list);
    EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_saga_list(e, 9, NULL, 0, EVS_NO_LIMIT, &list, &msg));
    EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_saga_list(e, -1, NULL, 0, EVS_NO_LIMIT, &list, &msg));
    EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_saga_list(e, EVS_SAGA_STUCK, NULL, 0, EVS_NO_LIMIT, NULL, &msg));
    EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_saga_list(NULL, EVS_SAGA_STUCK, NULL, 0, EVS_NO_LIMIT, &list, &msg));
    list = (evs_saga_list_t*)&g_checks;
    EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_saga_list(e, EVS_SAGA_STUCK, NULL, 2, EVS_NO_LIMIT, &list, &msg));
    CHECK(list == NULL);
  }
  atomic_store(&w.comp_fails, 0);
  EXPECT_MSG(EVS_OK, evs_saga_retry(e, STR("o4"), &msg));
  s = WaitFor(e, "o4");
  CHECK(evs_saga_info_state(s) == EVS_SAGA_COMPENSATED);
  CHECK(HasEvent(s, EVS_SAGA_EVENT_RETRIED));
  evs_saga_info_destroy(s);
  EXPECT_MSG(EVS_OK, evs_saga_resolve(e, STR("o5"), STR("refunded by hand"), &msg));
  EXPECT_MSG(EVS_OK, evs_saga_get(e, STR("o5"), &s, &msg));
  CHECK(evs_saga_info_state(s) == EVS_SAGA_COMPENSATED && evs_saga_info_resolved_by_hand(s) == 1);
  {
    const char* note = NULL;
    int ev = -1;
    size_t n = evs_saga_info_history_count(s);
    EXPECT_MSG(EVS_OK,
               evs_saga_info_history(s, n - 1, &ev, NULL, NULL, NULL, NULL, &note, &len, &msg));
    CHECK(ev == EVS_SAGA_EVENT_RESOLVED && BytesEq(note, len, "refunded by hand"));
  }
  evs_saga_info_destroy(s);
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_saga_retry(e, STR("o5"), &msg)); /* not stuck */
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_saga_resolve(e, STR("o1"), STR("x"), &msg));
  EXPECT_MSG(EVS_NOT_FOUND, evs_saga_retry(e, STR("nobody"), &msg));
  EXPECT_MSG(EVS_NOT_FOUND, evs_saga_resolve(e, STR("nobody"), NULL, 0, &msg));
  atomic_store(&w.fail_step, 0);

  /* A handler calls back into the engine and the store. */
  EXPECT_MSG(EVS_OK, evs_saga_start(e, STR("reentrant"), STR("r1"), NULL, 0, NULL, &msg));
  s = WaitFor(e, "r1");
  CHECK(evs_saga_info_state(s) == EVS_SAGA_COMPLETED);
  CHECK(evs_saga_info_output_count(s) == 1 && VIEW_IS(evs_saga_info_output(s, 0, &len), ""));
  evs_saga_info_destroy(s);
  CHECK(atomic_load(&w.reentry_ok) == 1);
  EXPECT_MSG(EVS_OK, evs_saga_wait_idle(e, WAIT_MS, &msg));
  EXPECT_MSG(EVS_OK, evs_saga_get(e, STR("child-of-reentrant"), &s, &msg));
  CHECK(evs_saga_info_state(s) == EVS_SAGA_COMPLETED);
  evs_saga_info_destroy(s);

  CHECK(atomic_load(&w.context_ok) == 1);
  CHECK(Reaches(&w.finished, 7) && atomic_load(&w.finished_get_ok) == 1);
  EXPECT_MSG(EVS_OK, evs_saga_engine_stats(e, &st, &msg));
  CHECK(st.started == 7 && st.completed == 4 && st.compensated == 3 && st.stuck == 2);
  CHECK(st.step_retries >= 1 && st.active == 0 && st.step_count > 0 && st.step_max_us >= st.step_p50_us);
  CHECK(st.interrupted == 0 && st.purged == 0 && st.abandoned_threads == 0 && st.damaged == 0);
  CHECK(st.in_flight == 0 && st.resumed == 0 && st.timeouts == 0);
  {
    /* Finished a moment ago: the default retention (7 days) keeps them. */
    uint64_t deleted = 7;
    evs_saga_damaged_t* dmg = NULL;
    EXPECT_MSG(EVS_OK, evs_saga_engine_purge_finished(e, &deleted, &msg));
    CHECK(deleted == 0);
    EXPECT_MSG(EVS_OK, evs_saga_engine_purge_finished(e, NULL, &msg));
    EXPECT_MSG(EVS_OK, evs_saga_get(e, STR("o1"), &s, &msg));
    evs_saga_info_destroy(s);
    EXPECT_MSG(EVS_OK, evs_saga_engine_damaged(e, &dmg, &msg));
    CHECK(dmg != NULL && evs_saga_damaged_count(dmg) == 0);
    EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_saga_damaged_get(dmg, 0, NULL, NULL, NULL, NULL, &msg));
    evs_saga_damaged_destroy(dmg);
    EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_saga_engine_damaged(e, NULL, &msg));
  }

  /* Query errors. */
  s = (evs_saga_info_t*)&g_checks;
  EXPECT_MSG(EVS_NOT_FOUND, evs_saga_get(e, STR("nobody"), &s, &msg));
  CHECK(s == NULL);
  EXPECT_MSG(EVS_NOT_FOUND, evs_saga_wait(e, STR("nobody"), 10, NULL, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_saga_get(e, STR("o1"), NULL, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_saga_get(NULL, STR("o1"), &s, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_saga_get(e, NULL, 2, &s, &msg));
  EXPECT_MSG(EVS_OK, evs_saga_wait(e, STR("o1"), 10, NULL, &msg)); /* result not wanted */
  EXPECT_MSG(EVS_OK, evs_saga_wait(e, STR("o1"), UINT64_MAX, NULL, &msg)); /* clamped, no overflow */
  EXPECT_MSG(EVS_OK, evs_saga_wait_idle(e, UINT64_MAX, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_saga_wait(NULL, STR("o1"), 10, NULL, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_saga_wait_idle(NULL, 10, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_saga_start(e, STR("no-such-def"), STR("x1"), NULL, 0, NULL, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_saga_start(e, STR("order"), NULL, 0, NULL, 0, NULL, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_saga_start(e, STR("order"), "\xff", 1, NULL, 0, NULL, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_saga_start(e, STR("order"), STR("x1"), NULL, 4, NULL, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_saga_start(NULL, STR("order"), STR("x1"), NULL, 0, NULL, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_saga_retry(NULL, STR("o4"), &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_saga_resolve(e, STR("o4"), NULL, 3, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_saga_engine_stats(e, NULL, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_saga_engine_stats(NULL, &st, &msg));

  /* After shutdown every call is EVS_CLOSED. */
  EXPECT_MSG(EVS_OK, evs_saga_engine_shutdown(e, &msg));
  EXPECT_MSG(EVS_OK, evs_saga_engine_shutdown(e, &msg));
  EXPECT_MSG(EVS_CLOSED, evs_saga_engine_status(e, &msg));
  EXPECT_MSG(EVS_CLOSED, evs_saga_start(e, STR("order"), STR("late"), NULL, 0, NULL, &msg));
  EXPECT_MSG(EVS_CLOSED, evs_saga_get(e, STR("o1"), &s, &msg));
  EXPECT_MSG(EVS_CLOSED, evs_saga_retry(e, STR("o1"), &msg));
  {
    evs_saga_list_t* list = NULL;
    evs_saga_damaged_t* dmg = NULL;
    uint64_t deleted = 7;
    EXPECT_MSG(EVS_CLOSED, evs_saga_list(e, EVS_SAGA_STUCK, NULL, 0, EVS_NO_LIMIT, &list, &msg));
    CHECK(list == NULL);
    EXPECT_MSG(EVS_CLOSED, evs_saga_engine_purge_finished(e, &deleted, &msg));
    CHECK(deleted == 0);
    /* The last figures stay readable. */
    EXPECT_MSG(EVS_OK, evs_saga_engine_stats(e, &st, &msg));
    CHECK(st.started == 7 && st.completed == 4);
    EXPECT_MSG(EVS_OK, evs_saga_engine_damaged(e, &dmg, &msg));
    CHECK(evs_saga_damaged_count(dmg) == 0);
    evs_saga_damaged_destroy(dmg);
  }
  evs_saga_engine_destroy(e);
  mtx_destroy(&w.fx.mu);
}

/* A slow step times out: the handler sees cancellation, the saga compensates. */
static void Slow(void* user, const evs_saga_step_t* step, evs_saga_result_t* result) {
  atomic_int* saw_cancel = (atomic_int*)user;
  int i;
  for (i = 0; i < 400 && !evs_saga_step_cancelled(step); i++) SleepMs(5);
  if (evs_saga_step_cancelled(step)) atomic_store(saw_cancel, 1);
  evs_saga_result_success(result, NULL, 0, NULL); /* discarded: the attempt timed out */
}

static void Nop(void* user, const evs_saga_step_t* step, evs_saga_result_t* result) {
  (void)user;
  (void)step;
  evs_saga_result_success(result, NULL, 0, NULL);
}

/* Handlers that return without a result, counting their calls. */
typedef struct {
  Effects fx;
  atomic_int silent_calls;
} Forgetful;

static void Silent(void* user, const evs_saga_step_t* step, evs_saga_result_t* result) {
  Forgetful* f = (Forgetful*)user;
  (void)step;
  (void)result;
  atomic_fetch_add(&f->silent_calls, 1);
}

/* Only events, no result: the events alone do not make a success. */
static void OnlyEvents(void* user, const evs_saga_step_t* step, evs_saga_result_t* result) {
  evs_event_t e = Ev("Forgotten", "{}");
  evs_saga_step_event_id(step, 0, e.id, NULL);
  Silent(user, step, result);
  evs_saga_result_add_events(result, STR("forgotten-1"), EVS_EXPECT_ANY, &e, 1, NULL);
}

static void Undo(void* user, const evs_saga_step_t* step, evs_saga_result_t* result) {
  Record(&((Forgetful*)user)->fx, step);
  evs_saga_result_success(result, NULL, 0, NULL);
}

static void Done(void* user, const evs_saga_step_t* step, evs_saga_result_t* result) {
  Record(&((Forgetful*)user)->fx, step);
  evs_saga_result_success(result, STR("done"), NULL);
}

static void Refuse(void* user, const evs_saga_step_t* step, evs_saga_result_t* result) {
  (void)user;
  (void)step;
  evs_saga_result_fail(result, STR("card declined"), 0, NULL);
}

/* Whether p[0..len-1] contains the text `want`. */
static int Contains(const char* p, size_t len, const char* want) {
  size_t n = strlen(want), i;
  for (i = 0; p != NULL && i + n <= len; i++)
    if (memcmp(p + i, want, n) == 0) return 1;
  return 0;
}

/* A history entry of `event` for step `step` whose text contains `text`. */
static int HasEntry(const evs_saga_info_t* s, int event, int32_t step, const char* text) {
  size_t i, len;
  int ev;
  int32_t st;
  const char* t;
  for (i = 0; i < evs_saga_info_history_count(s); i++) {
    if (evs_saga_info_history(s, i, &ev, NULL, &st, NULL, NULL, &t, &len, NULL) != EVS_OK) continue;
    if (ev != event || st != step) continue;
    if (Contains(t, len, text)) return 1;
  }
  return 0;
}

/* A handler that never sets a result has failed (retryably, with its
 * effects unknown), not succeeded: an action that keeps forgetting runs out
 * of attempts and the saga compensates, this step included; a compensation
 * that keeps forgetting makes the saga stuck. */
static void TestNoResult(evs_store_t* store) {
  static const char kWhy[] = "handler returned without setting a result";
  Forgetful f;
  evs_saga_def_t* defs[2];
  evs_saga_engine_t* e = NULL;
  evs_saga_info_t* s;
  evs_iter_t* it = NULL;
  size_t len;
  memset(&f, 0, sizeof f);
  mtx_init(&f.fx.mu, mtx_plain);
  atomic_init(&f.silent_calls, 0);

  EXPECT_MSG(EVS_OK, evs_saga_def_create(STR("forgetful"), 1, &defs[0], &msg));
  EXPECT_MSG(EVS_OK, evs_saga_def_add_step(defs[0], STR("n1"), Done, Undo, &f, 0, &msg));
  EXPECT_MSG(EVS_OK, evs_saga_def_add_step(defs[0], STR("n2"), OnlyEvents, Undo, &f, 0, &msg));
  EXPECT_MSG(EVS_OK, evs_saga_def_add_step(defs[0], STR("n3"), Done, NULL, &f, 0, &msg));
  EXPECT_MSG(EVS_OK, evs_saga_def_set_retry(defs[0], 1, 0, 2, 1, 1.0, 1, 0, &msg));
  EXPECT_MSG(EVS_OK, evs_saga_def_create(STR("forgetful-undo"), 1, &defs[1], &msg));
  EXPECT_MSG(EVS_OK, evs_saga_def_add_step(defs[1], STR("m1"), Done, Silent, &f, 0, &msg));
  EXPECT_MSG(EVS_OK, evs_saga_def_add_step(defs[1], STR("m2"), Refuse, NULL, &f, 0, &msg));
  EXPECT_MSG(EVS_OK, evs_saga_def_set_retry(defs[1], 0, 1, 2, 1, 1.0, 1, 0, &msg));
  EXPECT_MSG(EVS_OK,
             evs_saga_engine_open(store, (const evs_saga_def_t* const*)defs, 2, NULL, &e, &msg));
  evs_saga_def_destroy(defs[0]);
  evs_saga_def_destroy(defs[1]);

  EXPECT_MSG(EVS_OK, evs_saga_start(e, STR("forgetful"), STR("n"), NULL, 0, NULL, &msg));
  s = WaitFor(e, "n");
  CHECK(evs_saga_info_state(s) == EVS_SAGA_COMPENSATED);
  CHECK(atomic_load(&f.silent_calls) == 2); /* both attempts */
  CHECK(HasEntry(s, EVS_SAGA_EVENT_STEP_FAILED, 1, kWhy));
  CHECK(HasEntry(s, EVS_SAGA_EVENT_COMPENSATION_STARTED, 1, kWhy));
  CHECK(evs_saga_info_output_count(s) == 1); /* n1 only */
  {
    const char* err = evs_saga_info_error(s, &len);
    CHECK(Contains(err, len, kWhy));
  }
  evs_saga_info_destroy(s);
  CHECK(LogIs(&f.fx, "a1 c2 c1 ")); /* n2's effects are unknown: it is undone too */
  it = (evs_iter_t*)&g_checks;
  /* The events the silent action added were not committed. */
  EXPECT_MSG(EVS_NOT_FOUND,
             evs_read_stream(store, STR("forgotten-1"), 0, EVS_FORWARD, EVS_NO_LIMIT, &it, &msg));

  f.fx.log[0] = '\0';
  atomic_store(&f.silent_calls, 0);
  EXPECT_MSG(EVS_OK, evs_saga_start(e, STR("forgetful-undo"), STR("m"), NULL, 0, NULL, &msg));
  s = WaitFor(e, "m");
  CHECK(evs_saga_info_state(s) == EVS_SAGA_STUCK);
  CHECK(evs_saga_info_stuck_in(s) == EVS_SAGA_COMPENSATING && evs_saga_info_step(s) == 0);
  CHECK(atomic_load(&f.silent_calls) == 2);
  CHECK(HasEntry(s, EVS_SAGA_EVENT_COMPENSATION_FAILED, 0, kWhy));
  CHECK(HasEntry(s, EVS_SAGA_EVENT_STUCK, 0, kWhy));
  evs_saga_info_destroy(s);
  CHECK(LogIs(&f.fx, "a1 "));
  EXPECT_MSG(EVS_OK, evs_saga_resolve(e, STR("m"), STR("checked by hand"), &msg));

  evs_saga_engine_destroy(e);
  mtx_destroy(&f.fx.mu);
}

static void TestTimeout(evs_store_t* store) {
  atomic_int saw_cancel;
  evs_saga_def_t* d = NULL;
  evs_saga_engine_t* e = NULL;
  evs_saga_info_t* s;
  evs_saga_stats_t st;
  atomic_init(&saw_cancel, 0);
  EXPECT_MSG(EVS_OK, evs_saga_def_create(STR("slow"), 1, &d, &msg));
  EXPECT_MSG(EVS_OK, evs_saga_def_add_step(d, STR("t1"), Nop, Nop, &saw_cancel, 0, &msg));
  EXPECT_MSG(EVS_OK, evs_saga_def_add_step(d, STR("t2"), Slow, NULL, &saw_cancel, 50, &msg));
  EXPECT_MSG(EVS_OK, evs_saga_def_set_retry(d, 1, 0, 2, 1, 1.0, 1, 0, &msg));
  EXPECT_MSG(EVS_OK, evs_saga_engine_open(store, (const evs_saga_def_t* const*)&d, 1, NULL, &e, &msg));
  evs_saga_def_destroy(d);
  EXPECT_MSG(EVS_OK, evs_saga_start(e, STR("slow"), STR("t"), NULL, 0, NULL, &msg));
  s = NULL;
  EXPECT_MSG(EVS_TIMED_OUT, evs_saga_wait(e, STR("t"), 1, &s, &msg));
  CHECK(s == NULL);
  s = WaitFor(e, "t");
  CHECK(evs_saga_info_state(s) == EVS_SAGA_COMPENSATED);
  CHECK(HasEvent(s, EVS_SAGA_EVENT_STEP_TIMED_OUT));
  evs_saga_info_destroy(s);
  EXPECT_MSG(EVS_OK, evs_saga_engine_stats(e, &st, &msg));
  CHECK(st.timeouts == 2);
  evs_saga_engine_destroy(e); /* shuts down, waiting for the abandoned attempt */
  CHECK(atomic_load(&saw_cancel) == 1);
}

static void TestReadOnly(const char* dir) {
  evs_options_t* o = evs_options_create();
  evs_store_t* ro;
  evs_saga_def_t* d = NULL;
  evs_saga_engine_t* e = NULL;
  evs_options_set_read_only(o, 1, NULL);
  ro = Open(dir, o);
  evs_options_destroy(o);
  EXPECT_MSG(EVS_OK, evs_saga_def_create(STR("ro"), 1, &d, &msg));
  EXPECT_MSG(EVS_OK, evs_saga_def_add_step(d, STR("x1"), Nop, NULL, NULL, 0, &msg));
  EXPECT_MSG(EVS_NOT_SUPPORTED, evs_saga_engine_open(ro, (const evs_saga_def_t* const*)&d, 1, NULL, &e, &msg));
  CHECK(e == NULL);
  evs_saga_def_destroy(d);
  evs_store_destroy(ro);
}

/* Retention: finished sagas older than keep_finished_ms, and the oldest
 * beyond max_finished, are deleted by evs_saga_engine_purge_finished (the
 * background pass is an hour away); a deleted id starts a new saga. */
static void TestRetention(const char* dir) {
  evs_store_t* store = Open(dir, NULL);
  evs_saga_def_t* d = NULL;
  evs_saga_options_t* o = evs_saga_options_create();
  evs_saga_engine_t* e = NULL;
  evs_saga_info_t* s = NULL;
  evs_saga_stats_t st;
  uint64_t deleted = 0;
  int created = 0;
  const char* ids[] = {"x1", "x2", "x3"};
  size_t i;

  EXPECT_MSG(EVS_OK, evs_saga_def_create(STR("one"), 1, &d, &msg));
  EXPECT_MSG(EVS_OK, evs_saga_def_add_step(d, STR("z1"), Nop, NULL, NULL, 0, &msg));
  EXPECT_MSG(EVS_OK, evs_saga_options_set_keep_finished_ms(o, 0, &msg));
  EXPECT_MSG(EVS_OK, evs_saga_options_set_retention_interval_ms(o, 3600 * 1000, &msg));
  EXPECT_MSG(EVS_OK, evs_saga_engine_open(store, (const evs_saga_def_t* const*)&d, 1, o, &e, &msg));
  for (i = 0; i < 3; i++) {
    EXPECT_MSG(EVS_OK, evs_saga_start(e, STR("one"), STR(ids[i]), NULL, 0, NULL, &msg));
    s = WaitFor(e, ids[i]);
    CHECK(evs_saga_info_state(s) == EVS_SAGA_COMPLETED);
    evs_saga_info_destroy(s);
  }
  EXPECT_MSG(EVS_OK, evs_saga_engine_purge_finished(e, &deleted, &msg));
  CHECK(deleted == 3);
  s = (evs_saga_info_t*)&g_checks;
  EXPECT_MSG(EVS_NOT_FOUND, evs_saga_get(e, STR("x2"), &s, &msg));
  CHECK(s == NULL);
  EXPECT_MSG(EVS_OK, evs_saga_engine_stats(e, &st, &msg));
  CHECK(st.purged == 3 && st.completed == 3);
  EXPECT_MSG(EVS_OK, evs_saga_start(e, STR("one"), STR("x1"), NULL, 0, &created, &msg));
  CHECK(created == 1); /* gone: the same id is a new saga */
  s = WaitFor(e, "x1");
  CHECK(evs_saga_info_state(s) == EVS_SAGA_COMPLETED);
  evs_saga_info_destroy(s);
  EXPECT_MSG(EVS_OK, evs_saga_engine_shutdown(e, &msg));
  evs_saga_engine_destroy(e);

  /* Kept as good as forever, but at most one: the oldest go. */
  EXPECT_MSG(EVS_OK, evs_saga_options_set_keep_finished_ms(o, UINT64_MAX, &msg));
  EXPECT_MSG(EVS_OK, evs_saga_options_set_max_finished(o, 1, &msg));
  EXPECT_MSG(EVS_OK, evs_saga_engine_open(store, (const evs_saga_def_t* const*)&d, 1, o, &e, &msg));
  EXPECT_MSG(EVS_OK, evs_saga_start(e, STR("one"), STR("y1"), NULL, 0, NULL, &msg));
  evs_saga_info_destroy(WaitFor(e, "y1"));
  EXPECT_MSG(EVS_OK, evs_saga_start(e, STR("one"), STR("y2"), NULL, 0, NULL, &msg));
  evs_saga_info_destroy(WaitFor(e, "y2"));
  EXPECT_MSG(EVS_OK, evs_saga_engine_purge_finished(e, &deleted, &msg));
  CHECK(deleted == 2); /* x1 and y1 */
  EXPECT_MSG(EVS_NOT_FOUND, evs_saga_get(e, STR("y1"), &s, &msg));
  EXPECT_MSG(EVS_OK, evs_saga_get(e, STR("y2"), &s, &msg));
  evs_saga_info_destroy(s);
  EXPECT_MSG(EVS_OK, evs_saga_engine_purge_finished(e, &deleted, &msg));
  CHECK(deleted == 0);
  evs_saga_engine_destroy(e);
  evs_saga_options_destroy(o);
  evs_saga_def_destroy(d);
  evs_store_destroy(store);
}

/* A handler that waits for the test to open the gate, ignoring
 * cancellation, so that shutdown gives it up. Static: a given-up handler
 * outlives the engine and the test function. */
static struct {
  mtx_t mu;
  cnd_t cv;
  int open;
  atomic_int entered;
  atomic_int left;
} g_gate;

static void Hang(void* user, const evs_saga_step_t* step, evs_saga_result_t* result) {
  (void)user;
  (void)step;
  atomic_fetch_add(&g_gate.entered, 1);
  mtx_lock(&g_gate.mu);
  while (!g_gate.open) cnd_wait(&g_gate.cv, &g_gate.mu);
  mtx_unlock(&g_gate.mu);
  evs_saga_result_success(result, STR("late"), NULL); /* discarded */
  atomic_fetch_add(&g_gate.left, 1);
}

static void AttemptTwo(void* user, const evs_saga_step_t* step, evs_saga_result_t* result) {
  atomic_int* ok = (atomic_int*)user;
  if (evs_saga_step_attempt(step) == 2) atomic_fetch_add(ok, 1);
  evs_saga_result_success(result, NULL, 0, NULL);
}

/* "hang": its action hangs. "hang-undo": step 2 fails, and step 1's
 * compensation hangs. With hang = 0 the same definitions (same
 * fingerprints) with handlers that return. */
static void HangDefs(evs_saga_def_t* defs[2], int hang, atomic_int* second_attempts) {
  evs_saga_handler_fn h = hang ? Hang : AttemptTwo;
  EXPECT_MSG(EVS_OK, evs_saga_def_create(STR("hang"), 1, &defs[0], &msg));
  EXPECT_MSG(EVS_OK, evs_saga_def_add_step(defs[0], STR("h1"), h, NULL, second_attempts, 0, &msg));
  EXPECT_MSG(EVS_OK, evs_saga_def_create(STR("hang-undo"), 1, &defs[1], &msg));
  EXPECT_MSG(EVS_OK, evs_saga_def_add_step(defs[1], STR("k1"), Nop, h, second_attempts, 0, &msg));
  EXPECT_MSG(EVS_OK, evs_saga_def_add_step(defs[1], STR("k2"), Refuse, NULL, NULL, 0, &msg));
  EXPECT_MSG(EVS_OK, evs_saga_def_set_retry(defs[1], 0, 1, 3, 1, 1.0, 1, 0, &msg));
}

/* At most one engine per store (EVS_BUSY); a shutdown that gives up running
 * handlers returns EVS_TIMED_OUT, and the next engine records their
 * attempts as interrupted, action and compensation alike, and runs them
 * again as attempt 2. */
static void TestGivenUp(evs_store_t* store) {
  evs_saga_def_t* defs[2];
  evs_saga_options_t* o = evs_saga_options_create();
  evs_saga_engine_t* e = NULL;
  evs_saga_engine_t* other = NULL;
  evs_saga_info_t* s = NULL;
  evs_saga_stats_t st;
  atomic_int second_attempts;
  char* why = NULL;
  atomic_init(&second_attempts, 0);
  mtx_init(&g_gate.mu, mtx_plain);
  cnd_init(&g_gate.cv);
  atomic_init(&g_gate.entered, 0);
  atomic_init(&g_gate.left, 0);

  HangDefs(defs, 1, NULL);
  EXPECT_MSG(EVS_OK, evs_saga_options_set_shutdown_timeout_ms(o, 0, &msg));
  EXPECT_MSG(EVS_OK, evs_saga_options_set_max_abandoned_threads(o, 4, &msg));
  EXPECT_MSG(EVS_OK, evs_saga_engine_open(store, (const evs_saga_def_t* const*)defs, 2, o, &e, &msg));
  evs_saga_def_destroy(defs[0]);
  evs_saga_def_destroy(defs[1]);
  EXPECT_MSG(EVS_OK, evs_saga_start(e, STR("hang"), STR("h"), NULL, 0, NULL, &msg));
  EXPECT_MSG(EVS_OK, evs_saga_start(e, STR("hang-undo"), STR("k"), NULL, 0, NULL, &msg));
  CHECK(Reaches(&g_gate.entered, 2));
  EXPECT_MSG(EVS_OK, evs_saga_get(e, STR("h"), &s, &msg));
  CHECK(evs_saga_info_attempt(s) == 0 && evs_saga_info_attempts_started(s) == 1);
  evs_saga_info_destroy(s);
  EXPECT_MSG(EVS_OK, evs_saga_get(e, STR("k"), &s, &msg));
  CHECK(evs_saga_info_state(s) == EVS_SAGA_COMPENSATING && evs_saga_info_step(s) == 0);
  CHECK(evs_saga_info_attempt(s) == 0 && evs_saga_info_attempts_started(s) == 1);
  evs_saga_info_destroy(s);

  /* A second engine on the store is refused while this one runs. */
  HangDefs(defs, 0, &second_attempts);
  other = (evs_saga_engine_t*)&g_checks;
  EXPECT_MSG(EVS_BUSY, evs_saga_engine_open(store, (const evs_saga_def_t* const*)defs, 2, NULL, &other, &msg));
  CHECK(other == NULL);

  CHECK(evs_saga_engine_shutdown(e, &why) == EVS_TIMED_OUT);
  CHECK(why != NULL && strstr(why, "2 handler") != NULL && strstr(why, "abandoned") != NULL);
  evs_free(why);
  EXPECT_MSG(EVS_CLOSED, evs_saga_engine_status(e, &msg));
  EXPECT_MSG(EVS_OK, evs_saga_engine_shutdown(e, &msg)); /* idempotent */
  evs_saga_engine_destroy(e);

  /* The handlers still hang, yet the store is free for the next engine. */
  EXPECT_MSG(EVS_OK, evs_saga_engine_open(store, (const evs_saga_def_t* const*)defs, 2, NULL, &e, &msg));
  evs_saga_def_destroy(defs[0]);
  evs_saga_def_destroy(defs[1]);
  s = WaitFor(e, "h");
  CHECK(evs_saga_info_state(s) == EVS_SAGA_COMPLETED);
  CHECK(HasEntry(s, EVS_SAGA_EVENT_STEP_INTERRUPTED, 0, ""));
  evs_saga_info_destroy(s);
  s = WaitFor(e, "k");
  CHECK(evs_saga_info_state(s) == EVS_SAGA_COMPENSATED);
  CHECK(HasEntry(s, EVS_SAGA_EVENT_COMPENSATION_INTERRUPTED, 0, ""));
  CHECK(!HasEvent(s, EVS_SAGA_EVENT_STEP_INTERRUPTED));
  evs_saga_info_destroy(s);
  CHECK(atomic_load(&second_attempts) == 2);
  EXPECT_MSG(EVS_OK, evs_saga_engine_stats(e, &st, &msg));
  CHECK(st.interrupted == 2 && st.resumed == 2);
  evs_saga_engine_destroy(e);

  mtx_lock(&g_gate.mu);
  g_gate.open = 1;
  cnd_broadcast(&g_gate.cv);
  mtx_unlock(&g_gate.mu);
  CHECK(Reaches(&g_gate.left, 2));
  evs_saga_options_destroy(o);
}

/* RocksDB's own C API, found at run time in the librocksdb that libevstore
 * loaded (so that this client links against evstore alone), to damage a
 * saga record on disk as a fault would. */
typedef struct {
  rocksdb_options_t* (*options_create)(void);
  void (*options_destroy)(rocksdb_options_t*);
  char** (*list_cfs)(const rocksdb_options_t*, const char*, size_t*, char**);
  void (*list_cfs_destroy)(char**, size_t);
  rocksdb_t* (*open_cfs)(const rocksdb_options_t*, const char*, int, const char* const*,
                         const rocksdb_options_t* const*, rocksdb_column_family_handle_t**, char**);
  void (*cf_destroy)(rocksdb_column_family_handle_t*);
  void (*close)(rocksdb_t*);
  rocksdb_readoptions_t* (*readoptions_create)(void);
  void (*readoptions_destroy)(rocksdb_readoptions_t*);
  rocksdb_writeoptions_t* (*writeoptions_create)(void);
  void (*writeoptions_destroy)(rocksdb_writeoptions_t*);
  char* (*get_cf)(rocksdb_t*, const rocksdb_readoptions_t*, rocksdb_column_family_handle_t*,
                  const char*, size_t, size_t*, char**);
  void (*put_cf)(rocksdb_t*, const rocksdb_writeoptions_t*, rocksdb_column_family_handle_t*,
                 const char*, size_t, const char*, size_t, char**);
  void (*free)(void*);
} Rocks;

/* Stores dlsym's result in the function pointer at fn (POSIX: a function
 * pointer and a void* share their representation). */
static void RocksSym(void* self, void* fn, size_t size, const char* name) {
  void* p = dlsym(self, name);
  if (p == NULL || size != sizeof p) {
    fprintf(stderr, "RocksDB's C API: no %s\n", name);
    exit(2);
  }
  memcpy(fn, &p, size);
}
#define ROCKS_SYM(r, self, field, name) RocksSym((self), &(r).field, sizeof (r).field, (name))

static void RocksCheck(char* err, const char* what) {
  if (err == NULL) return;
  fprintf(stderr, "RocksDB %s: %s\n", what, err);
  exit(2);
}

/* Flips a bit in the middle of the stored record of saga `id` in the store
 * at `dir`. REQUIRES: the store is closed. */
static void DamageSagaRecord(const char* dir, const char* id) {
  Rocks r;
  void* self = dlopen(NULL, RTLD_NOW);
  rocksdb_options_t* opts;
  rocksdb_column_family_handle_t* handles[16];
  const rocksdb_options_t* cf_opts[16];
  rocksdb_readoptions_t* ro;
  rocksdb_writeoptions_t* wo;
  rocksdb_t* db;
  char** names;
  char* err = NULL;
  char* value;
  size_t n = 0, len = 0, i, sagas = 16;
  if (self == NULL) {
    fprintf(stderr, "dlopen: %s\n", dlerror());
    exit(2);
  }
  ROCKS_SYM(r, self, options_create, "rocksdb_options_create");
  ROCKS_SYM(r, self, options_destroy, "rocksdb_options_destroy");
  ROCKS_SYM(r, self, list_cfs, "rocksdb_list_column_families");
  ROCKS_SYM(r, self, list_cfs_destroy, "rocksdb_list_column_families_destroy");
  ROCKS_SYM(r, self, open_cfs, "rocksdb_open_column_families");
  ROCKS_SYM(r, self, cf_destroy, "rocksdb_column_family_handle_destroy");
  ROCKS_SYM(r, self, close, "rocksdb_close");
  ROCKS_SYM(r, self, readoptions_create, "rocksdb_readoptions_create");
  ROCKS_SYM(r, self, readoptions_destroy, "rocksdb_readoptions_destroy");
  ROCKS_SYM(r, self, writeoptions_create, "rocksdb_writeoptions_create");
  ROCKS_SYM(r, self, writeoptions_destroy, "rocksdb_writeoptions_destroy");
  ROCKS_SYM(r, self, get_cf, "rocksdb_get_cf");
  ROCKS_SYM(r, self, put_cf, "rocksdb_put_cf");
  ROCKS_SYM(r, self, free, "rocksdb_free");

  opts = r.options_create();
  names = r.list_cfs(opts, dir, &n, &err);
  RocksCheck(err, "list column families");
  if (n > 16) {
    fprintf(stderr, "too many column families: %zu\n", n);
    exit(2);
  }
  for (i = 0; i < n; i++) {
    cf_opts[i] = opts;
    if (strcmp(names[i], "sagas") == 0) sagas = i;
  }
  if (sagas == 16) {
    fprintf(stderr, "no sagas column family in %s\n", dir);
    exit(2);
  }
  db = r.open_cfs(opts, dir, (int)n, (const char* const*)names, cf_opts, handles, &err);
  RocksCheck(err, "open");
  ro = r.readoptions_create();
  wo = r.writeoptions_create();
  value = r.get_cf(db, ro, handles[sagas], id, strlen(id), &len, &err);
  RocksCheck(err, "get");
  if (value == NULL || len < 16) {
    fprintf(stderr, "no record of saga %s\n", id);
    exit(2);
  }
  value[len / 2] ^= 0x10;
  r.put_cf(db, wo, handles[sagas], id, strlen(id), value, len, &err);
  RocksCheck(err, "put");
  r.free(value);
  r.writeoptions_destroy(wo);
  r.readoptions_destroy(ro);
  for (i = 0; i < n; i++) r.cf_destroy(handles[i]);
  r.close(db);
  r.list_cfs_destroy(names, n);
  r.options_destroy(opts);
  dlclose(self);
}

/* What on_damaged was told. */
typedef struct {
  atomic_int calls;
  char id[64];
  int code;
  char message[512];
} DamageReport;

static void OnDamaged(void* user, const char* id, size_t id_len, int code, const char* message) {
  DamageReport* d = (DamageReport*)user;
  atomic_fetch_add(&d->calls, 1);
  snprintf(d->id, sizeof d->id, "%.*s", (int)id_len, id);
  d->code = code;
  snprintf(d->message, sizeof d->message, "%s", message ? message : "(null)");
}

/* An unfinished saga whose record is damaged is not run: it is reported at
 * open (on_damaged, evs_saga_engine_damaged, stats), named by the list pages
 * that meet it, and refused by evs_saga_get; the other sagas go on. */
static void TestDamaged(const char* dir) {
  evs_store_t* store = Open(dir, NULL);
  evs_saga_def_t* d = NULL;
  evs_saga_options_t* o = evs_saga_options_create();
  evs_saga_engine_t* e = NULL;
  evs_saga_info_t* s = NULL;
  evs_saga_damaged_t* dmg = NULL;
  evs_saga_stats_t st;
  DamageReport report;
  const char* ids[] = {"d1", "d2", "d3"};
  const char* bad = NULL;
  size_t i;
  memset(&report, 0, sizeof report);
  atomic_init(&report.calls, 0);

  /* Three stuck sagas: step 2 fails, step 1's compensation fails for good. */
  EXPECT_MSG(EVS_OK, evs_saga_def_create(STR("fragile"), 1, &d, &msg));
  EXPECT_MSG(EVS_OK, evs_saga_def_add_step(d, STR("f1"), Nop, Refuse, NULL, 0, &msg));
  EXPECT_MSG(EVS_OK, evs_saga_def_add_step(d, STR("f2"), Refuse, NULL, NULL, 0, &msg));
  EXPECT_MSG(EVS_OK, evs_saga_engine_open(store, (const evs_saga_def_t* const*)&d, 1, NULL, &e, &msg));
  for (i = 0; i < 3; i++) {
    EXPECT_MSG(EVS_OK, evs_saga_start(e, STR("fragile"), STR(ids[i]), NULL, 0, NULL, &msg));
    s = WaitFor(e, ids[i]);
    CHECK(evs_saga_info_state(s) == EVS_SAGA_STUCK);
    evs_saga_info_destroy(s);
  }
  evs_saga_engine_destroy(e);
  evs_store_destroy(store);

  DamageSagaRecord(dir, "d2");

  store = Open(dir, NULL);
  EXPECT_MSG(EVS_OK, evs_saga_options_set_on_damaged(o, OnDamaged, &report, &msg));
  EXPECT_MSG(EVS_OK, evs_saga_engine_open(store, (const evs_saga_def_t* const*)&d, 1, o, &e, &msg));
  CHECK(atomic_load(&report.calls) == 1);
  CHECK(strcmp(report.id, "d2") == 0 && report.code == EVS_CORRUPTION);
  CHECK(strstr(report.message, "Corruption") == report.message && strstr(report.message, "d2") != NULL);

  EXPECT_MSG(EVS_OK, evs_saga_engine_damaged(e, &dmg, &msg));
  CHECK(evs_saga_damaged_count(dmg) == 1);
  {
    const char* id = NULL;
    const char* text = NULL;
    size_t len = 0;
    int code = 0;
    EXPECT_MSG(EVS_OK, evs_saga_damaged_get(dmg, 0, &id, &len, &code, &text, &msg));
    CHECK(BytesEq(id, len, "d2") && code == EVS_CORRUPTION);
    CHECK(text != NULL && strcmp(text, report.message) == 0);
    len = 0;
    EXPECT_MSG(EVS_OK, evs_saga_damaged_get(dmg, 0, NULL, &len, NULL, NULL, &msg));
    CHECK(len == 2);
    EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_saga_damaged_get(dmg, 1, &id, &len, &code, &text, &msg));
  }
  evs_saga_damaged_destroy(dmg);
  EXPECT_MSG(EVS_OK, evs_saga_engine_stats(e, &st, &msg));
  CHECK(st.damaged == 1);

  CHECK(strcmp(ListAll(e, EVS_SAGA_STUCK, EVS_NO_LIMIT, &bad), "d1 d3 ") == 0);
  CHECK(strcmp(bad, "d2 ") == 0);
  CHECK(strcmp(ListAll(e, EVS_SAGA_STUCK, 1, &bad), "d1 d3 ") == 0);
  CHECK(strcmp(bad, "d2 ") == 0);
  /* Final states scan the records: the damaged one is met there too. */
  CHECK(strcmp(ListAll(e, EVS_SAGA_COMPENSATED, EVS_NO_LIMIT, &bad), "") == 0);
  CHECK(strcmp(bad, "d2 ") == 0);
  EXPECT_MSG(EVS_CORRUPTION, evs_saga_get(e, STR("d2"), &s, &msg));
  EXPECT_MSG(EVS_OK, evs_saga_resolve(e, STR("d3"), STR("done by hand"), &msg));
  EXPECT_MSG(EVS_OK, evs_saga_get(e, STR("d3"), &s, &msg));
  CHECK(evs_saga_info_state(s) == EVS_SAGA_COMPENSATED);
  evs_saga_info_destroy(s);
  evs_saga_engine_destroy(e);
  evs_saga_options_destroy(o);
  evs_saga_def_destroy(d);
  evs_store_destroy(store);
}

int main(void) {
  evs_store_t* store;
  evs_options_t* o = evs_options_create();
  MakeRoot();
  evs_options_set_sync(o, 0, NULL);
  store = Open(Sub("sagas"), o);
  evs_options_destroy(o);
  TestNames();
  {
    World w;
    InitWorld(&w, store);
    TestBadInput(store, &w);
  }
  TestEngine(store);
  TestTimeout(store);
  TestNoResult(store);
  TestGivenUp(store);
  TestReadOnly(Sub("sagas"));
  TestRetention(Sub("retention"));
  TestDamaged(Sub("damaged"));
  evs_store_destroy(store);
  RemoveRoot();
  printf("%d checks, %d failed\n", g_checks, g_failures);
  return g_failures ? 1 : 0;
}
