/* Subscriptions and checkpoints through the C API from C11: catch-up then
 * live delivery (also under concurrent appenders), filters, falling
 * behind, checkpoints across a reopen, push callbacks that fail, stop, wait
 * or destroy their own subscription, NULL pointers and bad input, and use
 * after the store is closed. Linked against the shared library. Exits 0
 * when every check holds. */
#include "check.h"

/* Only a hang reaches this: a liveness bound, not a timing expectation. */
#define HANG_MS 60000
#define MAX_GOT 4096

/* VIEW_IS(call using &len, "text"): the call runs before len is read. */
static const void* g_view;
#define VIEW_IS(call, want) (g_view = (call), BytesEq(g_view, len, (want)))

/* What a pull loop saw: the events' positions and the deliveries' kinds. */
typedef struct {
  uint64_t positions[MAX_GOT];
  size_t count;
  int kinds[MAX_GOT];
  size_t deliveries;
} Got;

static void Append(evs_store_t* store, const char* stream, size_t n, const char* type) {
  evs_event_t evs[64];
  size_t i;
  for (i = 0; i < n && i < 64; i++) evs[i] = Ev(type, "{}");
  EXPECT_MSG(EVS_OK, evs_append(store, STR(stream), EVS_EXPECT_ANY, evs, i, NULL, &msg));
}

static void Collect(const evs_delivery_t* d, Got* got) {
  size_t i, n = evs_delivery_event_count(d);
  if (got->deliveries < MAX_GOT) got->kinds[got->deliveries++] = evs_delivery_kind(d);
  for (i = 0; i < n && got->count < MAX_GOT; i++)
    got->positions[got->count++] = evs_delivery_event_position(d, i);
}

/* Pulls until `want` events were delivered (want 0: until caught up). */
static void Pull(evs_subscription_t* sub, size_t want, Got* got) {
  time_t deadline = time(NULL) + HANG_MS / 1000;
  while (time(NULL) < deadline) {
    const evs_delivery_t* d = NULL;
    char* msg = NULL;
    int rc = evs_subscription_next(sub, 1000, &d, &msg);
    if (rc != EVS_OK) {
      fprintf(stderr, "next: %s\n", msg ? msg : evs_errstr(rc));
      evs_free(msg);
      CHECK(rc == EVS_OK);
      return;
    }
    Collect(d, got);
    if (want == 0 ? evs_delivery_kind(d) == EVS_DELIVERY_CAUGHT_UP : got->count >= want) return;
  }
  CHECK(!"the subscription did not deliver in time");
}

/* positions == {from, from + step, ...} (count of them). */
static int PositionsAre(const Got* got, const uint64_t* want, size_t n) {
  size_t i;
  if (got->count != n) {
    fprintf(stderr, "got %zu events, expected %zu\n", got->count, n);
    return 0;
  }
  for (i = 0; i < n; i++)
    if (got->positions[i] != want[i]) {
      fprintf(stderr, "event %zu at position %llu, expected %llu\n", i,
              (unsigned long long)got->positions[i], (unsigned long long)want[i]);
      return 0;
    }
  return 1;
}

static evs_subscription_t* Subscribe(evs_store_t* store, const evs_subscribe_options_t* o) {
  evs_subscription_t* sub = NULL;
  EXPECT_MSG(EVS_OK, evs_subscribe(store, o, &sub, &msg));
  return sub;
}

/* ---- catch-up, then live ---- */

typedef struct {
  evs_store_t* store;
  int writer;
  int appends;
  atomic_int failures;
} Appender;

static int AppendLoop(void* arg) {
  Appender* a = arg;
  int i;
  for (i = 0; i < a->appends; i++) {
    char stream[32];
    evs_event_t evs[3];
    size_t n = 1 + (size_t)(i % 3), j;
    for (j = 0; j < n; j++) evs[j] = Ev("Happened", "{}");
    snprintf(stream, sizeof stream, "w%d-%d", a->writer, i % 5);
    if (evs_append(a->store, STR(stream), EVS_EXPECT_ANY, evs, n, NULL, NULL) != EVS_OK)
      atomic_fetch_add(&a->failures, 1);
  }
  return 0;
}

static void TestCatchUpThenLive(const char* dir) {
  evs_store_t* store = Open(dir, NULL);
  evs_subscribe_options_t* o = evs_subscribe_options_create();
  evs_subscription_t* sub;
  const evs_delivery_t* d = NULL;
  static Got got;
  size_t len;
  uint64_t want[5] = {0, 1, 2, 3, 4};
  evs_event_t e = Ev("Shipped", "{\"n\":5}");

  Append(store, "order-1", 5, "Placed");
  EXPECT_MSG(EVS_OK, evs_subscribe_options_set_max_batch(o, 2, &msg));
  sub = Subscribe(store, o);
  memset(&got, 0, sizeof got);
  Pull(sub, 0, &got);
  CHECK(PositionsAre(&got, want, 5));
  CHECK(got.deliveries == 4);
  CHECK(got.kinds[0] == EVS_DELIVERY_EVENTS && got.kinds[1] == EVS_DELIVERY_EVENTS &&
        got.kinds[2] == EVS_DELIVERY_EVENTS && got.kinds[3] == EVS_DELIVERY_CAUGHT_UP);
  CHECK(evs_subscription_position(sub) == 5);

  /* Caught up: nothing new within the timeout. */
  EXPECT_MSG(EVS_OK, evs_subscription_next(sub, 10, &d, &msg));
  CHECK(evs_delivery_kind(d) == EVS_DELIVERY_TIMED_OUT);
  CHECK(evs_delivery_position(d) == 5);
  CHECK(evs_delivery_event_count(d) == 0);

  /* Live: a commit is delivered with everything the event holds. */
  evs_uuid_generate(e.id, NULL);
  EXPECT_MSG(EVS_OK, evs_append(store, STR("order-2"), EVS_EXPECT_NO_STREAM, &e, 1, NULL, &msg));
  EXPECT_MSG(EVS_OK, evs_subscription_next(sub, HANG_MS, &d, &msg));
  CHECK(evs_delivery_kind(d) == EVS_DELIVERY_EVENTS);
  CHECK(evs_delivery_event_count(d) == 1);
  CHECK(evs_delivery_position(d) == 6);
  CHECK(memcmp(evs_delivery_event_id(d, 0), e.id, 16) == 0);
  CHECK(VIEW_IS(evs_delivery_event_stream(d, 0, &len), "order-2"));
  CHECK(VIEW_IS(evs_delivery_event_type(d, 0, &len), "Shipped"));
  CHECK(VIEW_IS(evs_delivery_event_content_type(d, 0, &len), "application/json"));
  CHECK(VIEW_IS(evs_delivery_event_data(d, 0, &len), "{\"n\":5}"));
  CHECK(VIEW_IS(evs_delivery_event_metadata(d, 0, &len), ""));
  CHECK(evs_delivery_event_metadata(d, 0, NULL) != NULL); /* empty, not missing */
  CHECK(evs_delivery_event_version(d, 0) == 0);
  CHECK(evs_delivery_event_position(d, 0) == 5);
  CHECK(evs_delivery_event_timestamp_ms(d, 0) > 0);
  /* Past the last event: nothing, never a crash. */
  CHECK(evs_delivery_event_id(d, 1) == NULL);
  len = 99;
  CHECK(evs_delivery_event_stream(d, 1, &len) == NULL && len == 0);
  CHECK(evs_delivery_event_data(d, 7, NULL) == NULL);
  CHECK(evs_delivery_event_position(d, 1) == 0);
  evs_subscription_destroy(sub);

  /* Catch-up into live under four appenders: every event once, in order. */
  {
    Appender a[4];
    thrd_t t[4];
    int i;
    size_t total = 6, k;
    evs_subscribe_options_set_max_batch(o, 7, NULL);
    sub = Subscribe(store, o);
    for (i = 0; i < 4; i++) {
      a[i].store = store;
      a[i].writer = i;
      a[i].appends = 60;
      atomic_init(&a[i].failures, 0);
      for (k = 0; k < 60; k++) total += 1 + k % 3;
    }
    for (i = 0; i < 4; i++) CHECK(thrd_create(&t[i], AppendLoop, &a[i]) == thrd_success);
    memset(&got, 0, sizeof got);
    Pull(sub, total, &got);
    for (i = 0; i < 4; i++) {
      thrd_join(t[i], NULL);
      CHECK(atomic_load(&a[i].failures) == 0);
    }
    CHECK(got.count == total);
    for (k = 0; k < got.count; k++)
      if (got.positions[k] != k) {
        CHECK(got.positions[k] == k);
        break;
      }
    EXPECT_MSG(EVS_OK, evs_subscription_next(sub, 10, &d, &msg));
    CHECK(evs_delivery_event_count(d) == 0);
    evs_subscription_destroy(sub);
  }
  evs_subscribe_options_destroy(o);
  evs_store_destroy(store);
}

/* ---- filters, from, falling behind ---- */

static void CheckFilter(evs_store_t* store, evs_subscribe_options_t* o, const uint64_t* want,
                        size_t n) {
  static Got got;
  evs_subscription_t* sub = Subscribe(store, o);
  memset(&got, 0, sizeof got);
  Pull(sub, 0, &got);
  CHECK(PositionsAre(&got, want, n));
  evs_subscription_destroy(sub);
}

static void TestFilters(const char* dir) {
  evs_store_t* store = Open(dir, NULL);
  evs_subscribe_options_t* o = evs_subscribe_options_create();
  const char* types[2] = {"Shipped", "Added"};
  size_t lens[2] = {7, 5};
  uint64_t stream[] = {0, 1, 5}, category[] = {0, 1, 4, 5}, shipped[] = {4, 5},
           two[] = {2, 3, 4, 5}, all[] = {0, 1, 2, 3, 4, 5}, from_now[] = {6};

  Append(store, "order-1", 2, "Placed");
  Append(store, "cart-1", 2, "Added");
  Append(store, "order-2", 1, "Shipped");
  Append(store, "order-1", 1, "Shipped");
  evs_subscribe_options_set_max_batch(o, 1, NULL);

  EXPECT_MSG(EVS_OK, evs_subscribe_options_set_filter_stream(o, STR("order-1"), &msg));
  CheckFilter(store, o, stream, 3);
  EXPECT_MSG(EVS_OK, evs_subscribe_options_set_filter_stream(o, STR("order-9"), &msg));
  CheckFilter(store, o, NULL, 0);
  EXPECT_MSG(EVS_OK, evs_subscribe_options_set_filter_category(o, STR("order"), &msg));
  CheckFilter(store, o, category, 4);
  EXPECT_MSG(EVS_OK, evs_subscribe_options_set_filter_types(o, types, lens, 1, &msg));
  CheckFilter(store, o, shipped, 2);
  EXPECT_MSG(EVS_OK, evs_subscribe_options_set_filter_types(o, types, lens, 2, &msg));
  CheckFilter(store, o, two, 4);
  /* The last filter set wins. */
  EXPECT_MSG(EVS_OK, evs_subscribe_options_set_filter_all(o, &msg));
  CheckFilter(store, o, all, 6);

  /* From a position, and from now. */
  EXPECT_MSG(EVS_OK, evs_subscribe_options_set_from(o, 4, &msg));
  CheckFilter(store, o, all + 4, 2);
  EXPECT_MSG(EVS_OK, evs_subscribe_options_set_from(o, EVS_FROM_NOW, &msg));
  {
    static Got got;
    evs_subscription_t* sub = Subscribe(store, o);
    memset(&got, 0, sizeof got);
    Pull(sub, 0, &got);
    CHECK(got.count == 0);
    Append(store, "order-3", 1, "Placed");
    Pull(sub, 1, &got);
    CHECK(PositionsAre(&got, from_now, 1));
    evs_subscription_destroy(sub);
  }

  /* A live subscriber far behind the log is told so, then catches up. */
  {
    static Got got;
    evs_subscription_t* sub;
    const evs_delivery_t* d = NULL;
    evs_subscribe_options_set_from(o, EVS_FROM_NOW, NULL);
    evs_subscribe_options_set_max_batch(o, 4, NULL);
    EXPECT_MSG(EVS_OK, evs_subscribe_options_set_behind_after(o, 10, &msg));
    sub = Subscribe(store, o);
    memset(&got, 0, sizeof got);
    Pull(sub, 0, &got); /* caught up at 7 */
    Append(store, "x-1", 5, "Tick");
    EXPECT_MSG(EVS_OK, evs_subscription_next(sub, HANG_MS, &d, &msg));
    CHECK(evs_delivery_kind(d) == EVS_DELIVERY_EVENTS); /* 5 behind: still live */
    Append(store, "x-1", 30, "Tick");
    EXPECT_MSG(EVS_OK, evs_subscription_next(sub, HANG_MS, &d, &msg));
    CHECK(evs_delivery_kind(d) == EVS_DELIVERY_FELL_BEHIND);
    CHECK(evs_delivery_position(d) == 11);
    memset(&got, 0, sizeof got);
    Pull(sub, 0, &got);
    CHECK(got.count == 31);
    CHECK(got.count > 0 && got.positions[0] == 11);
    CHECK(got.deliveries > 0 && got.kinds[got.deliveries - 1] == EVS_DELIVERY_CAUGHT_UP);
    evs_subscription_destroy(sub);
  }
  evs_subscribe_options_destroy(o);
  evs_store_destroy(store);
}

/* ---- checkpoints ---- */

static void TestCheckpoints(const char* dir) {
  evs_store_t* store = Open(dir, NULL);
  evs_subscribe_options_t* o = evs_subscribe_options_create();
  evs_subscription_t* sub;
  const evs_delivery_t* d = NULL;
  evs_checkpoint_list_t* list = NULL;
  static Got got;
  uint64_t position = 0, resumed[] = {4, 5, 6, 7, 8, 9};
  int64_t updated = 0;
  const char* name;
  size_t len;

  Append(store, "x-1", 10, "Tick");
  EXPECT_MSG(EVS_OK, evs_subscribe_options_set_checkpoint(o, STR("reader"), &msg));
  evs_subscribe_options_set_max_batch(o, 4, NULL);
  sub = Subscribe(store, o);
  EXPECT_MSG(EVS_OK, evs_subscription_next(sub, HANG_MS, &d, &msg));
  CHECK(evs_delivery_position(d) == 4);
  /* Not beyond what was delivered. */
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_subscription_checkpoint_at(sub, 5, &msg));
  EXPECT_MSG(EVS_NOT_FOUND, evs_checkpoint_get(store, STR("reader"), &position, NULL, &msg));
  EXPECT_MSG(EVS_OK, evs_subscription_checkpoint_at(sub, 2, &msg));
  EXPECT_MSG(EVS_OK, evs_checkpoint_get(store, STR("reader"), &position, NULL, &msg));
  CHECK(position == 2);
  EXPECT_MSG(EVS_OK, evs_subscription_checkpoint(sub, &msg));
  EXPECT_MSG(EVS_OK, evs_checkpoint_get(store, STR("reader"), &position, &updated, &msg));
  CHECK(position == 4);
  CHECK(updated > 0);
  evs_subscription_destroy(sub);
  EXPECT_MSG(EVS_OK, evs_store_close(store, &msg));
  evs_store_destroy(store);

  /* After a reopen, delivery resumes at the checkpoint; `from` is ignored. */
  store = Open(dir, NULL);
  evs_subscribe_options_set_from(o, 0, NULL);
  sub = Subscribe(store, o);
  memset(&got, 0, sizeof got);
  Pull(sub, 0, &got);
  CHECK(PositionsAre(&got, resumed, 6));
  EXPECT_MSG(EVS_OK, evs_subscription_checkpoint(sub, &msg));
  evs_subscription_destroy(sub);

  EXPECT_MSG(EVS_OK, evs_checkpoint_set(store, STR("other"), 2, &msg));
  EXPECT_MSG(EVS_OK, evs_checkpoint_list(store, &list, &msg));
  CHECK(evs_checkpoint_list_size(list) == 2);
  EXPECT_MSG(EVS_OK, evs_checkpoint_list_get(list, 0, &name, &len, &position, &updated, &msg));
  CHECK(BytesEq(name, len, "other") && position == 2 && updated > 0);
  EXPECT_MSG(EVS_OK, evs_checkpoint_list_get(list, 1, &name, &len, &position, NULL, &msg));
  CHECK(BytesEq(name, len, "reader") && position == 10);
  len = 0;
  EXPECT_MSG(EVS_OK, evs_checkpoint_list_get(list, 1, NULL, &len, NULL, NULL, &msg));
  CHECK(len == 6);
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_checkpoint_list_get(list, 2, &name, &len, NULL, NULL, &msg));
  evs_checkpoint_list_destroy(list);

  /* A checkpoint set by hand is where a subscription of that name starts. */
  evs_subscribe_options_set_checkpoint(o, STR("other"), NULL);
  sub = Subscribe(store, o);
  memset(&got, 0, sizeof got);
  Pull(sub, 0, &got);
  CHECK(got.count == 8 && got.positions[0] == 2);
  evs_subscription_destroy(sub);

  /* Deleted: a subscription of that name starts from its `from` again. */
  EXPECT_MSG(EVS_OK, evs_checkpoint_delete(store, STR("reader"), &msg));
  EXPECT_MSG(EVS_OK, evs_checkpoint_delete(store, STR("reader"), &msg)); /* gone: still OK */
  EXPECT_MSG(EVS_NOT_FOUND, evs_checkpoint_get(store, STR("reader"), NULL, NULL, &msg));
  evs_subscribe_options_set_checkpoint(o, STR("reader"), NULL);
  sub = Subscribe(store, o);
  memset(&got, 0, sizeof got);
  Pull(sub, 0, &got);
  CHECK(got.count == 10);
  evs_subscription_destroy(sub);

  /* A read-only store refuses checkpoint writes and keeps the old ones. */
  EXPECT_MSG(EVS_OK, evs_store_close(store, &msg));
  evs_store_destroy(store);
  {
    evs_options_t* ro = evs_options_create();
    evs_options_set_read_only(ro, 1, NULL);
    store = Open(dir, ro);
    evs_options_destroy(ro);
    EXPECT_MSG(EVS_NOT_SUPPORTED, evs_checkpoint_set(store, STR("other"), 7, &msg));
    EXPECT_MSG(EVS_OK, evs_checkpoint_get(store, STR("other"), &position, NULL, &msg));
    CHECK(position == 2);
    evs_store_destroy(store);
  }
  evs_subscribe_options_destroy(o);
}

/* ---- push ---- */

typedef struct {
  evs_store_t* store;
  atomic_int calls;
  atomic_int events;
  atomic_int caught_up;
  atomic_int bad_kind;        /* a delivery of EVS_DELIVERY_TIMED_OUT */
  atomic_int code;            /* what the callback returns */
  atomic_int self_wait_rc;    /* evs_push_subscription_wait from the callback */
  atomic_int self_wait_msg;   /* ... gave a message */
  atomic_int stop_self;       /* the callback stops its subscription */
  atomic_int destroy_self;    /* the callback destroys its subscription */
  atomic_int echo;            /* the callback appends to the store */
  atomic_int echo_failures;
  uint64_t positions[64];     /* written by the callback, read after wait */
} Push;

static void InitPush(Push* p, evs_store_t* store) {
  memset(p, 0, sizeof *p);
  p->store = store;
  atomic_init(&p->calls, 0);
  atomic_init(&p->events, 0);
  atomic_init(&p->caught_up, 0);
  atomic_init(&p->bad_kind, 0);
  atomic_init(&p->code, EVS_OK);
  atomic_init(&p->self_wait_rc, -1);
  atomic_init(&p->self_wait_msg, 0);
  atomic_init(&p->stop_self, 0);
  atomic_init(&p->destroy_self, 0);
  atomic_init(&p->echo, 0);
  atomic_init(&p->echo_failures, 0);
}

static int OnDelivery(void* user_data, const evs_delivery_t* d, evs_push_subscription_t* sub) {
  Push* p = user_data;
  size_t i, n = evs_delivery_event_count(d);
  atomic_fetch_add(&p->calls, 1);
  if (evs_delivery_kind(d) == EVS_DELIVERY_TIMED_OUT) atomic_store(&p->bad_kind, 1);
  for (i = 0; i < n; i++) {
    int k = atomic_load(&p->events);
    if (k < 64) p->positions[k] = evs_delivery_event_position(d, i);
    atomic_store(&p->events, k + 1);
    if (atomic_load(&p->echo)) {
      size_t len;
      const void* data = evs_delivery_event_data(d, i, &len);
      evs_event_t e = Ev("Echoed", "");
      e.data = data;
      e.data_len = len;
      if (evs_append(p->store, STR("echo-1"), EVS_EXPECT_ANY, &e, 1, NULL, NULL) != EVS_OK)
        atomic_fetch_add(&p->echo_failures, 1);
    }
  }
  if (evs_delivery_kind(d) == EVS_DELIVERY_CAUGHT_UP) atomic_store(&p->caught_up, 1);
  if (atomic_load(&p->self_wait_rc) == -2) {
    char* msg = NULL;
    atomic_store(&p->self_wait_rc, evs_push_subscription_wait(sub, &msg));
    atomic_store(&p->self_wait_msg, msg != NULL && msg[0] != '\0');
    evs_free(msg);
  }
  if (atomic_load(&p->stop_self)) evs_push_subscription_stop(sub, NULL);
  if (atomic_load(&p->destroy_self)) evs_push_subscription_destroy(sub);
  return atomic_load(&p->code);
}

static int WaitFor(atomic_int* flag, int value) {
  time_t deadline = time(NULL) + HANG_MS / 1000;
  while (atomic_load(flag) < value) {
    if (time(NULL) >= deadline) return 0;
    SleepMs(1);
  }
  return 1;
}

static evs_push_subscription_t* SubscribePush(evs_store_t* store,
                                              const evs_subscribe_options_t* o, Push* p) {
  evs_push_subscription_t* sub = NULL;
  EXPECT_MSG(EVS_OK, evs_subscribe_push(store, o, OnDelivery, p, &sub, &msg));
  return sub;
}

/* The subscription ends by itself, and wait() returns `code` with a message
 * containing `text`. */
static void ExpectEnd(evs_push_subscription_t* sub, int code, const char* text) {
  char* msg = NULL;
  int rc;
  time_t deadline = time(NULL) + HANG_MS / 1000;
  while (!evs_push_subscription_done(sub) && time(NULL) < deadline) SleepMs(1);
  if (!evs_push_subscription_done(sub)) {
    CHECK(!"the subscription did not end in time");
    evs_push_subscription_stop(sub, NULL); /* so that wait() returns */
  }
  rc = evs_push_subscription_wait(sub, &msg);
  CHECK(rc == code);
  if (code == EVS_OK) {
    CHECK(msg == NULL);
  } else {
    CHECK(msg != NULL && strstr(msg, text) != NULL);
    if (rc != code || !msg || !strstr(msg, text))
      fprintf(stderr, "wait: %d %s, expected %d with '%s'\n", rc, msg ? msg : "(none)", code, text);
  }
  evs_free(msg);
  CHECK(evs_push_subscription_done(sub) == 1);
}

static void TestPush(const char* dir) {
  evs_store_t* store = Open(dir, NULL);
  evs_subscribe_options_t* o = evs_subscribe_options_create();
  evs_push_subscription_t* sub;
  Push p;
  int i;

  Append(store, "x-1", 3, "Tick");

  /* Every event once, then a stop from outside. */
  InitPush(&p, store);
  evs_subscribe_options_set_max_batch(o, 2, NULL);
  sub = SubscribePush(store, o, &p);
  Append(store, "x-1", 2, "Tick");
  CHECK(WaitFor(&p.events, 5));
  CHECK(WaitFor(&p.caught_up, 1));
  CHECK(evs_push_subscription_done(sub) == 0);
  EXPECT_MSG(EVS_OK, evs_push_subscription_stop(sub, &msg));
  ExpectEnd(sub, EVS_OK, "");
  EXPECT_MSG(EVS_OK, evs_push_subscription_stop(sub, &msg)); /* idempotent */
  CHECK(evs_push_subscription_position(sub) == 5);
  CHECK(atomic_load(&p.events) == 5);
  for (i = 0; i < 5; i++) CHECK(p.positions[i] == (uint64_t)i);
  CHECK(atomic_load(&p.bad_kind) == 0);
  evs_push_subscription_destroy(sub);

  /* A callback's error code ends the subscription with that code. */
  {
    int codes[3] = {EVS_IO_ERROR, EVS_NO_MEMORY, 12345};
    int want[3] = {EVS_IO_ERROR, EVS_NO_MEMORY, EVS_ABORTED};
    for (i = 0; i < 3; i++) {
      InitPush(&p, store);
      atomic_store(&p.code, codes[i]);
      sub = SubscribePush(store, NULL, &p);
      ExpectEnd(sub, want[i], "subscription callback returned");
      CHECK(atomic_load(&p.calls) == 1);
      evs_push_subscription_destroy(sub);
    }
  }

  /* The callback stops its own subscription: no further call. */
  InitPush(&p, store);
  atomic_store(&p.stop_self, 1);
  sub = SubscribePush(store, NULL, &p);
  ExpectEnd(sub, EVS_OK, "");
  CHECK(atomic_load(&p.calls) == 1);
  evs_push_subscription_destroy(sub);

  /* wait() from the callback is EVS_BUSY, not a deadlock. */
  InitPush(&p, store);
  atomic_store(&p.self_wait_rc, -2);
  atomic_store(&p.stop_self, 1);
  sub = SubscribePush(store, NULL, &p);
  ExpectEnd(sub, EVS_OK, "");
  CHECK(atomic_load(&p.self_wait_rc) == EVS_BUSY);
  CHECK(atomic_load(&p.self_wait_msg) == 1);
  evs_push_subscription_destroy(sub);

  /* The callback may append to the store it reads. */
  InitPush(&p, store);
  atomic_store(&p.echo, 1);
  evs_subscribe_options_set_filter_stream(o, STR("x-1"), NULL);
  sub = SubscribePush(store, o, &p);
  CHECK(WaitFor(&p.caught_up, 1));
  evs_push_subscription_destroy(sub); /* stops and waits */
  CHECK(atomic_load(&p.echo_failures) == 0);
  {
    evs_iter_t* it = NULL;
    EXPECT_MSG(EVS_OK, evs_read_stream(store, STR("echo-1"), 0, EVS_FORWARD, EVS_NO_LIMIT, &it, &msg));
    CHECK(CountEvents(it) == 5);
    evs_iter_destroy(it);
  }

  /* Closing the store ends a push subscription with EVS_CLOSED. */
  InitPush(&p, store);
  sub = SubscribePush(store, NULL, &p);
  CHECK(WaitFor(&p.caught_up, 1));
  EXPECT_MSG(EVS_OK, evs_store_close(store, &msg));
  ExpectEnd(sub, EVS_CLOSED, "closed");
  evs_push_subscription_destroy(sub);
  evs_store_destroy(store);

  /* The callback destroys its own subscription: it ends, and lets go of the
   * store (which a reopen shows: the directory is locked until then). */
  store = Open(dir, NULL);
  InitPush(&p, store);
  atomic_store(&p.destroy_self, 1);
  sub = SubscribePush(store, NULL, &p);
  CHECK(WaitFor(&p.calls, 1));
  evs_store_destroy(store);
  {
    time_t deadline = time(NULL) + HANG_MS / 1000;
    store = NULL;
    while (store == NULL && time(NULL) < deadline) {
      if (evs_store_open(dir, NULL, &store, NULL) != EVS_OK) SleepMs(1);
    }
    CHECK(store != NULL);
    CHECK(atomic_load(&p.calls) == 1);
    evs_store_destroy(store);
  }
  evs_subscribe_options_destroy(o);
}

/* ---- NULL pointers and bad input ---- */

static int Ok(void* user_data, const evs_delivery_t* d, evs_push_subscription_t* sub) {
  (void)user_data;
  (void)d;
  (void)sub;
  return EVS_OK;
}

static void ExpectRejected(evs_store_t* store, const evs_subscribe_options_t* o) {
  evs_subscription_t* sub = (evs_subscription_t*)&sub;
  evs_push_subscription_t* push = (evs_push_subscription_t*)&push;
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_subscribe(store, o, &sub, &msg));
  CHECK(sub == NULL);
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_subscribe_push(store, o, Ok, NULL, &push, &msg));
  CHECK(push == NULL);
}

static void TestBadInput(const char* dir) {
  evs_store_t* store = Open(dir, NULL);
  evs_subscribe_options_t* o = evs_subscribe_options_create();
  evs_subscription_t* sub = NULL;
  evs_push_subscription_t* push = NULL;
  const evs_delivery_t* d = (const evs_delivery_t*)&d;
  evs_checkpoint_list_t* list = NULL;
  const char* types[2] = {"ok", NULL};
  size_t lens[2] = {2, 0};
  char big[1100];
  size_t len = 5;
  memset(big, 'c', sizeof big);

  Append(store, "x-1", 2, "Tick");

  /* Setters: NULL options, NULL buffers with a length. */
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_subscribe_options_set_filter_all(NULL, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_subscribe_options_set_filter_stream(NULL, STR("a"), &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_subscribe_options_set_filter_stream(o, NULL, 3, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_subscribe_options_set_filter_category(o, NULL, 3, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_subscribe_options_set_filter_types(NULL, types, lens, 1, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_subscribe_options_set_filter_types(o, NULL, lens, 1, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_subscribe_options_set_filter_types(o, types, NULL, 1, &msg));
  lens[1] = 4;
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_subscribe_options_set_filter_types(o, types, lens, 2, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_subscribe_options_set_from(NULL, 0, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_subscribe_options_set_checkpoint(NULL, STR("a"), &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_subscribe_options_set_checkpoint(o, NULL, 1, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_subscribe_options_set_max_batch(NULL, 1, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_subscribe_options_set_behind_after(NULL, 1, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_subscribe_options_set_min_wake_interval(NULL, 1, &msg));
  /* The failed setters left the defaults: every event. */
  sub = Subscribe(store, o);
  EXPECT_MSG(EVS_OK, evs_subscription_next(sub, 0, &d, &msg));
  CHECK(evs_delivery_event_count(d) == 2);
  evs_subscription_destroy(sub);
  evs_subscribe_options_destroy(NULL);

  /* Values evs_subscribe rejects, pull and push alike. */
  EXPECT_MSG(EVS_OK, evs_subscribe_options_set_filter_stream(o, NULL, 0, &msg));
  ExpectRejected(store, o); /* empty stream */
  evs_subscribe_options_set_filter_stream(o, big, sizeof big, NULL);
  ExpectRejected(store, o); /* longer than max_stream_name_bytes (1024) */
  evs_subscribe_options_set_filter_stream(o, "bad\xff", 4, NULL);
  ExpectRejected(store, o); /* not UTF-8 */
  evs_subscribe_options_set_filter_category(o, STR("order-x"), NULL);
  ExpectRejected(store, o); /* a category never holds '-' */
  EXPECT_MSG(EVS_OK, evs_subscribe_options_set_filter_types(o, NULL, NULL, 0, &msg));
  ExpectRejected(store, o); /* no types */
  lens[1] = 0;
  EXPECT_MSG(EVS_OK, evs_subscribe_options_set_filter_types(o, types, lens, 2, &msg));
  ExpectRejected(store, o); /* an empty type */
  evs_subscribe_options_set_filter_all(o, NULL);
  evs_subscribe_options_set_max_batch(o, 0, NULL);
  ExpectRejected(store, o);
  evs_subscribe_options_set_max_batch(o, 10, NULL);
  evs_subscribe_options_set_behind_after(o, 0, NULL);
  ExpectRejected(store, o);
  evs_subscribe_options_set_behind_after(o, 10, NULL);
  EXPECT_MSG(EVS_OK, evs_subscribe_options_set_min_wake_interval(o, 1000001, &msg));
  ExpectRejected(store, o); /* over 1 s */
  evs_subscribe_options_set_min_wake_interval(o, UINT64_MAX, NULL);
  ExpectRejected(store, o);
  EXPECT_MSG(EVS_OK, evs_subscribe_options_set_min_wake_interval(o, 1000000, &msg));
  sub = Subscribe(store, o); /* 1 s is allowed, and delivers what is there at once */
  EXPECT_MSG(EVS_OK, evs_subscription_next(sub, 0, &d, &msg));
  CHECK(evs_delivery_event_count(d) == 2);
  evs_subscription_destroy(sub);
  evs_subscribe_options_set_min_wake_interval(o, 0, NULL);
  evs_subscribe_options_set_checkpoint(o, big, 257, NULL);
  ExpectRejected(store, o);
  evs_subscribe_options_set_checkpoint(o, "bad\xff", 4, NULL);
  ExpectRejected(store, o);
  evs_subscribe_options_set_checkpoint(o, "nul\0x", 5, NULL);
  ExpectRejected(store, o);
  evs_subscribe_options_set_checkpoint(o, NULL, 0, NULL); /* none again */
  sub = Subscribe(store, o);
  CHECK(sub != NULL);
  evs_subscription_destroy(sub);

  /* NULL handles and out-pointers. */
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_subscribe(NULL, o, &sub, &msg));
  CHECK(sub == NULL);
  sub = Subscribe(store, NULL);
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_subscribe(store, o, NULL, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_subscribe_push(NULL, o, Ok, NULL, &push, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_subscribe_push(store, o, NULL, NULL, &push, &msg));
  CHECK(push == NULL);
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_subscribe_push(store, o, Ok, NULL, NULL, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_subscription_next(NULL, 0, &d, &msg));
  CHECK(d == NULL);
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_subscription_next(sub, 0, NULL, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_subscription_checkpoint(NULL, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_subscription_checkpoint_at(NULL, 0, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_subscription_stop(NULL, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_push_subscription_stop(NULL, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_push_subscription_wait(NULL, &msg));
  CHECK(evs_subscription_position(NULL) == 0);
  CHECK(evs_push_subscription_done(NULL) == 0);
  CHECK(evs_push_subscription_position(NULL) == 0);
  evs_subscription_destroy(NULL);
  evs_push_subscription_destroy(NULL);
  CHECK(evs_delivery_kind(NULL) == 0);
  CHECK(evs_delivery_position(NULL) == 0);
  CHECK(evs_delivery_event_count(NULL) == 0);
  CHECK(evs_delivery_event_id(NULL, 0) == NULL);
  CHECK(evs_delivery_event_type(NULL, 0, &len) == NULL && len == 0);
  CHECK(evs_delivery_event_content_type(NULL, 0, NULL) == NULL);
  CHECK(evs_delivery_event_metadata(NULL, 0, NULL) == NULL);
  CHECK(evs_delivery_event_version(NULL, 0) == 0);
  CHECK(evs_delivery_event_timestamp_ms(NULL, 0) == 0);

  /* A subscription without a checkpoint name cannot checkpoint. */
  EXPECT_MSG(EVS_OK, evs_subscription_next(sub, 0, &d, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_subscription_checkpoint(sub, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_subscription_checkpoint_at(sub, 0, &msg));
  evs_subscription_destroy(sub);

  /* Checkpoints by hand: names and pointers. */
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_checkpoint_set(store, NULL, 0, 1, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_checkpoint_set(store, NULL, 4, 1, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_checkpoint_set(store, big, 257, 1, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_checkpoint_set(store, "bad\xff", 4, 1, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_checkpoint_set(NULL, STR("a"), 1, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_checkpoint_get(store, big, 300, NULL, NULL, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_checkpoint_get(NULL, STR("a"), NULL, NULL, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_checkpoint_delete(store, NULL, 0, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_checkpoint_delete(NULL, STR("a"), &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_checkpoint_list(NULL, &list, &msg));
  CHECK(list == NULL);
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_checkpoint_list(store, NULL, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_checkpoint_list_get(NULL, 0, NULL, NULL, NULL, NULL, &msg));
  CHECK(evs_checkpoint_list_size(NULL) == 0);
  evs_checkpoint_list_destroy(NULL);
  /* Nothing of that was stored. */
  EXPECT_MSG(EVS_OK, evs_checkpoint_list(store, &list, &msg));
  CHECK(evs_checkpoint_list_size(list) == 0);
  evs_checkpoint_list_destroy(list);

  evs_subscribe_options_destroy(o);
  evs_store_destroy(store);
}

/* ---- use after close ---- */

typedef struct {
  evs_subscription_t* sub;
  atomic_int rc;
} Waiter;

static int WaitNext(void* arg) {
  Waiter* w = arg;
  const evs_delivery_t* d = NULL;
  atomic_store(&w->rc, evs_subscription_next(w->sub, HANG_MS * 10, &d, NULL));
  return 0;
}

/* A next() waiting on another thread returns EVS_CLOSED once `end` runs. */
static void CheckWokenBy(evs_subscription_t* sub, void (*end)(void*), void* arg) {
  Waiter w;
  thrd_t t;
  w.sub = sub;
  atomic_init(&w.rc, -1);
  CHECK(thrd_create(&t, WaitNext, &w) == thrd_success);
  SleepMs(20); /* lets next() start waiting; not needed for correctness */
  end(arg);
  thrd_join(t, NULL);
  CHECK(atomic_load(&w.rc) == EVS_CLOSED);
}

static void StopSub(void* sub) { EXPECT_MSG(EVS_OK, evs_subscription_stop(sub, &msg)); }
static void CloseStore(void* store) { EXPECT_MSG(EVS_OK, evs_store_close(store, &msg)); }

static void TestAfterClose(const char* dir) {
  evs_store_t* store = Open(dir, NULL);
  evs_subscribe_options_t* o = evs_subscribe_options_create();
  evs_subscription_t* sub;
  evs_subscription_t* named;
  evs_push_subscription_t* push = NULL;
  const evs_delivery_t* d = NULL;
  evs_checkpoint_list_t* list = NULL;
  static Got got;

  Append(store, "x-1", 3, "Tick");
  /* stop() from another thread wakes a waiting next(). */
  sub = Subscribe(store, NULL);
  memset(&got, 0, sizeof got);
  Pull(sub, 0, &got);
  CheckWokenBy(sub, StopSub, sub);
  EXPECT_MSG(EVS_CLOSED, evs_subscription_next(sub, 0, &d, &msg));
  CHECK(d == NULL);
  EXPECT_MSG(EVS_OK, evs_subscription_stop(sub, &msg)); /* idempotent */
  evs_subscription_destroy(sub);

  /* So does closing the store; then everything says EVS_CLOSED. */
  sub = Subscribe(store, NULL);
  evs_subscribe_options_set_checkpoint(o, STR("named"), NULL);
  named = Subscribe(store, o);
  EXPECT_MSG(EVS_OK, evs_subscription_next(named, 0, &d, &msg));
  memset(&got, 0, sizeof got);
  Pull(sub, 0, &got);
  CheckWokenBy(sub, CloseStore, store);
  EXPECT_MSG(EVS_CLOSED, evs_subscription_next(sub, 0, &d, &msg));
  EXPECT_MSG(EVS_CLOSED, evs_subscription_checkpoint(named, &msg));
  evs_subscription_destroy(sub);
  EXPECT_MSG(EVS_CLOSED, evs_subscribe(store, NULL, &sub, &msg));
  CHECK(sub == NULL);
  EXPECT_MSG(EVS_CLOSED, evs_subscribe(store, o, &sub, &msg)); /* with a checkpoint name */
  EXPECT_MSG(EVS_CLOSED, evs_subscribe_push(store, NULL, Ok, NULL, &push, &msg));
  CHECK(push == NULL);
  EXPECT_MSG(EVS_CLOSED, evs_checkpoint_set(store, STR("a"), 1, &msg));
  EXPECT_MSG(EVS_CLOSED, evs_checkpoint_get(store, STR("a"), NULL, NULL, &msg));
  EXPECT_MSG(EVS_CLOSED, evs_checkpoint_delete(store, STR("a"), &msg));
  EXPECT_MSG(EVS_CLOSED, evs_checkpoint_list(store, &list, &msg));
  CHECK(list == NULL);
  /* The subscriptions outlive the store handle. */
  evs_store_destroy(store);
  EXPECT_MSG(EVS_CLOSED, evs_subscription_next(named, 0, &d, &msg));
  evs_subscription_destroy(named);
  evs_subscribe_options_destroy(o);

  /* The checkpoint was not written after the close. */
  store = Open(dir, NULL);
  EXPECT_MSG(EVS_NOT_FOUND, evs_checkpoint_get(store, STR("named"), NULL, NULL, &msg));
  evs_store_destroy(store);
}

int main(void) {
  /* The numbers are part of the ABI. */
  CHECK(EVS_DELIVERY_EVENTS == 0 && EVS_DELIVERY_CAUGHT_UP == 1 && EVS_DELIVERY_FELL_BEHIND == 2 &&
        EVS_DELIVERY_TIMED_OUT == 3);
  CHECK(EVS_FROM_NOW == UINT64_MAX);
  MakeRoot();
  TestCatchUpThenLive(Sub("live"));
  TestFilters(Sub("filters"));
  TestCheckpoints(Sub("checkpoints"));
  TestPush(Sub("push"));
  TestBadInput(Sub("bad"));
  TestAfterClose(Sub("closed"));
  RemoveRoot();
  printf("%d checks, %d failed\n", g_checks, g_failures);
  return g_failures ? 1 : 0;
}
