/* Sagas through the C API from C11: definitions with C handlers, start,
 * wait, get, list, retry and resolve of stuck sagas, callbacks that call
 * back into the API, bad input, and use after shutdown. Linked against the
 * shared library. Exits 0 when every check holds. */
#include "check.h"

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
      evs_saga_list(w->engine, EVS_SAGA_STUCK, EVS_NO_LIMIT, &list, NULL) == EVS_OK &&
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

static int HasEvent(const evs_saga_info_t* s, int event) {
  size_t i;
  int ev;
  for (i = 0; i < evs_saga_info_history_count(s); i++)
    if (evs_saga_info_history(s, i, &ev, NULL, NULL, NULL, NULL, NULL, NULL, NULL) == EVS_OK &&
        ev == event)
      return 1;
  return 0;
}

static void TestNames(void) {
  int i;
  CHECK(strcmp(evs_saga_state_name(EVS_SAGA_PENDING), "pending") == 0);
  CHECK(strcmp(evs_saga_state_name(EVS_SAGA_STUCK), "stuck") == 0);
  CHECK(strcmp(evs_saga_state_name(6), "unknown") == 0);
  CHECK(strcmp(evs_saga_state_name(-1), "unknown") == 0);
  for (i = EVS_SAGA_EVENT_STARTED; i <= EVS_SAGA_EVENT_RESOLVED; i++)
    CHECK(strcmp(evs_saga_event_name(i), "unknown") != 0);
  CHECK(strcmp(evs_saga_event_name(13), "unknown") == 0);
  CHECK(strcmp(evs_saga_event_name(-1), "unknown") == 0);
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

  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_saga_options_set_threads(NULL, 1, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_saga_options_set_max_history(NULL, 1, &msg));
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
    CHECK(evs_saga_info_history_dropped(NULL) == 0);
    EXPECT_MSG(EVS_INVALID_ARGUMENT,
               evs_saga_info_history(NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, &msg));
    CHECK(evs_saga_list_size(NULL) == 0 && evs_saga_list_get(NULL, 0) == NULL);
    evs_saga_list_destroy(NULL);
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
    EXPECT_MSG(EVS_OK, evs_saga_list(e, EVS_SAGA_STUCK, EVS_NO_LIMIT, &list, &msg));
    CHECK(evs_saga_list_size(list) == 2);
    first = evs_saga_list_get(list, 0);
    CHECK(VIEW_IS(evs_saga_info_id(first, &len), "o4"));
    CHECK(evs_saga_list_get(list, 2) == NULL);
    evs_saga_list_destroy(list);
    EXPECT_MSG(EVS_OK, evs_saga_list(e, EVS_SAGA_STUCK, 1, &list, &msg));
    CHECK(evs_saga_list_size(list) == 1);
    evs_saga_list_destroy(list);
    EXPECT_MSG(EVS_OK, evs_saga_list(e, EVS_SAGA_COMPLETED, EVS_NO_LIMIT, &list, &msg));
    CHECK(evs_saga_list_size(list) == 2); /* o1, o2 */
    evs_saga_list_destroy(list);
    EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_saga_list(e, 9, EVS_NO_LIMIT, &list, &msg));
    EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_saga_list(e, EVS_SAGA_STUCK, EVS_NO_LIMIT, NULL, &msg));
    EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_saga_list(NULL, EVS_SAGA_STUCK, EVS_NO_LIMIT, &list, &msg));
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
  TestReadOnly(Sub("sagas"));
  evs_store_destroy(store);
  RemoveRoot();
  printf("%d checks, %d failed\n", g_checks, g_failures);
  return g_failures ? 1 : 0;
}
