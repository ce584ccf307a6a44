/* Event sourcing through the C API from C11 (evstore/command.h): an account
 * aggregate with C state callbacks and a codec, commands with C decide
 * callbacks (domain errors, repeated ids, 8 concurrent senders without a
 * lost update), snapshots and codec errors, failing callbacks, the command
 * bus and retention, upcasters for aggregates and projections, the
 * provenance readers, bad input and use after close. Linked against the
 * shared library. Exits 0 when every check holds. */
#include "check.h"

#include <evstore/command.h>
#include <inttypes.h>

#define WAIT_MS 60000

/* VIEW_IS(call using &len, "text"): the call runs before len is read. */
static const void* g_view;
#define VIEW_IS(call, want) (g_view = (call), BytesEq(g_view, len, (want)))

/* ---- An account: balance and events folded, malloc'd ---- */

typedef struct {
  long long balance;
  long long events;
} Account;

typedef struct {
  atomic_int evolve_fail_at;  /* fail evolve at this version; -1: never */
  atomic_int encode_code;     /* what encode returns */
  atomic_int frees;           /* states freed */
  atomic_int made;            /* states made (init, clone, decode) */
  atomic_int old_layouts;     /* events evolve saw below schema 2 */
} World;

static World g_world;

static void* AccountInit(void* user) {
  World* w = user;
  Account* a = calloc(1, sizeof *a);
  if (a) atomic_fetch_add(&w->made, 1);
  return a;
}

static void* AccountClone(void* user, const void* state) {
  World* w = user;
  Account* a = malloc(sizeof *a);
  if (!a) return NULL;
  *a = *(const Account*)state;
  atomic_fetch_add(&w->made, 1);
  return a;
}

static void AccountFree(void* user, void* state) {
  World* w = user;
  atomic_fetch_add(&w->frees, 1);
  free(state);
}

static long long Amount(const void* data, size_t len) {
  char buf[32];
  if (len >= sizeof buf) len = sizeof buf - 1;
  memcpy(buf, data, len);
  buf[len] = '\0';
  return strtoll(buf, NULL, 10);
}

static int AccountEvolve(void* user, void* state, const evs_event_view_t* event) {
  World* w = user;
  Account* a = state;
  size_t type_len, data_len;
  const char* type = evs_event_view_type(event, &type_len);
  const void* data = evs_event_view_data(event, &data_len);
  if ((int)evs_event_view_version(event) == atomic_load(&w->evolve_fail_at)) return EVS_CORRUPTION;
  if (evs_event_view_schema_version(event) < 2) atomic_fetch_add(&w->old_layouts, 1);
  if (BytesEq(type, type_len, "Deposited")) a->balance += Amount(data, data_len);
  if (BytesEq(type, type_len, "Withdrawn")) a->balance -= Amount(data, data_len);
  a->events++;
  return EVS_OK;
}

static int AccountEncode(void* user, const void* state, evs_buffer_t* out) {
  World* w = user;
  const Account* a = state;
  char buf[64];
  int code = atomic_load(&w->encode_code);
  if (code != EVS_OK) return code;
  snprintf(buf, sizeof buf, "%lld %lld", a->balance, a->events);
  return evs_buffer_set(out, buf, strlen(buf), NULL);
}

static int AccountDecode(void* user, const void* bytes, size_t len, void** state) {
  World* w = user;
  char buf[64];
  Account* a;
  if (len >= sizeof buf) return EVS_CORRUPTION;
  memcpy(buf, bytes, len);
  buf[len] = '\0';
  a = malloc(sizeof *a);
  if (!a) return EVS_NO_MEMORY;
  if (sscanf(buf, "%lld %lld", &a->balance, &a->events) != 2) {
    free(a);
    return EVS_CORRUPTION;
  }
  atomic_fetch_add(&w->made, 1);
  *state = a;
  return EVS_OK;
}

static evs_aggregate_def_t* AccountDef(const char* name, int codec) {
  evs_aggregate_def_t* def = NULL;
  EXPECT_MSG(EVS_OK, evs_aggregate_def_create(STR(name), &def, &msg));
  EXPECT_MSG(EVS_OK, evs_aggregate_def_set_state(def, AccountInit, AccountClone, AccountFree,
                                                 AccountEvolve, &g_world, &msg));
  if (codec) EXPECT_MSG(EVS_OK, evs_aggregate_def_set_codec(def, AccountEncode, AccountDecode, &msg));
  return def;
}

static evs_aggregate_t* OpenAccount(evs_store_t* store, const evs_aggregate_def_t* def) {
  evs_aggregate_t* agg = NULL;
  EXPECT_MSG(EVS_OK, evs_aggregate_open(store, def, &agg, &msg));
  return agg;
}

/* The balance and version of `stream` (loads through the aggregate). */
static long long Balance(evs_aggregate_t* agg, const char* stream, int64_t* version, int* source) {
  evs_loaded_t* l = NULL;
  long long b = -999999;
  EXPECT_MSG(EVS_OK, evs_aggregate_load(agg, STR(stream), &l, &msg));
  if (l) {
    b = ((const Account*)evs_loaded_state(l))->balance;
    if (version) *version = evs_loaded_version(l);
    if (source) *source = evs_loaded_source(l);
  }
  evs_loaded_destroy(l);
  return b;
}

/* ---- Decide: "Deposit"/"Withdraw" with the amount as payload ---- */

static int Decide(void* user, const void* state, const evs_command_desc_t* command,
                  evs_decision_t* decision) {
  const Account* a = state;
  long long amount = Amount(command->payload, command->payload_len);
  int withdraw = BytesEq(command->type, command->type_len, "Withdraw");
  char text[32];
  evs_event_t e;
  (void)user;
  if (amount < 0) return EVS_INVALID_ARGUMENT; /* a failing decide */
  if (withdraw && a->balance < amount) {
    snprintf(text, sizeof text, "balance %lld", a->balance);
    return evs_decision_reject(decision, STR("insufficient_funds"), STR(text), NULL);
  }
  snprintf(text, sizeof text, "%lld", amount);
  e = Ev(withdraw ? "Withdrawn" : "Deposited", text);
  return evs_decision_add_event(decision, &e, 2, NULL);
}

static evs_command_desc_t Cmd(const char* type, const char* stream, const char* amount,
                              const char* id) {
  evs_command_desc_t c;
  memset(&c, 0, sizeof c);
  c.type = type;
  c.type_len = strlen(type);
  c.stream = stream;
  c.stream_len = strlen(stream);
  c.payload = amount;
  c.payload_len = strlen(amount);
  if (id) {
    c.id = id;
    c.id_len = strlen(id);
  }
  return c;
}

static evs_command_result_t* Handle(evs_aggregate_t* agg, evs_command_desc_t c) {
  evs_command_result_t* r = NULL;
  EXPECT_MSG(EVS_OK, evs_command_handle(agg, &c, Decide, NULL, NULL, &r, &msg));
  return r;
}

/* ---- Tests ---- */

static void TestCommands(evs_store_t* store) {
  evs_aggregate_def_t* def = AccountDef("account", 0);
  evs_aggregate_t* agg = OpenAccount(store, def);
  evs_command_result_t *r, *again;
  evs_append_result_t ar;
  evs_iter_t* it = NULL;
  size_t len;
  int64_t version = 0;
  evs_command_desc_t c;
  evs_aggregate_def_destroy(def);

  r = Handle(agg, Cmd("Deposit", "account-1", "100", "dep-1"));
  CHECK(evs_command_result_accepted(r) == 1);
  CHECK(evs_command_result_events(r) == 1);
  CHECK(evs_command_result_tries(r) == 1);
  CHECK(evs_command_result_from_log(r) == 0);
  CHECK(evs_command_result_handled_ms(r) > 0);
  EXPECT_MSG(EVS_OK, evs_command_result_append(r, &ar, &msg));
  CHECK(ar.first_version == 0);
  CHECK(evs_command_result_error_code(r, &len) == NULL && len == 0);
  evs_command_result_destroy(r);

  /* A domain error: a result, nothing appended. */
  r = Handle(agg, Cmd("Withdraw", "account-1", "500", "wd-1"));
  CHECK(evs_command_result_accepted(r) == 0);
  CHECK(evs_command_result_events(r) == 0);
  CHECK(VIEW_IS(evs_command_result_error_code(r, &len), "insufficient_funds"));
  CHECK(VIEW_IS(evs_command_result_error_message(r, &len), "balance 100"));
  evs_command_result_destroy(r);
  CHECK(Balance(agg, "account-1", &version, NULL) == 100);
  CHECK(version == 0);

  /* Repeated ids: the original outcome, nothing appended. */
  again = Handle(agg, Cmd("Deposit", "account-1", "100", "dep-1"));
  CHECK(evs_command_result_from_log(again) == 1);
  CHECK(evs_command_result_tries(again) == 0);
  EXPECT_MSG(EVS_OK, evs_command_result_append(again, &ar, &msg));
  CHECK(ar.first_version == 0);
  evs_command_result_destroy(again);
  r = Handle(agg, Cmd("Deposit", "account-1", "1000", NULL)); /* balance 1100 now */
  evs_command_result_destroy(r);
  again = Handle(agg, Cmd("Withdraw", "account-1", "500", "wd-1"));
  CHECK(evs_command_result_from_log(again) == 1);
  CHECK(evs_command_result_accepted(again) == 0); /* still refused */
  evs_command_result_destroy(again);
  c = Cmd("Deposit", "account-1", "7", "dep-1"); /* another command under a used id */
  r = NULL;
  EXPECT_MSG(EVS_DUPLICATE_EVENT, evs_command_handle(agg, &c, Decide, NULL, NULL, &r, &msg));
  CHECK(r == NULL);
  CHECK(Balance(agg, "account-1", &version, NULL) == 1100);
  CHECK(version == 1);

  EXPECT_MSG(EVS_OK, evs_command_lookup(store, STR("wd-1"), &r, &msg));
  CHECK(evs_command_result_accepted(r) == 0);
  evs_command_result_destroy(r);
  EXPECT_MSG(EVS_NOT_FOUND, evs_command_lookup(store, STR("never"), &r, &msg));

  /* The events carry the command's correlation and causation, and the
   * schema version decide gave. */
  SleepMs(2); /* retention goes by handled_ms: this one is the newest */
  c = Cmd("Deposit", "account-2", "5", "dep-9");
  c.correlation_id = "onboarding-3";
  c.correlation_id_len = strlen(c.correlation_id);
  EXPECT_MSG(EVS_OK, evs_command_handle(agg, &c, Decide, NULL, NULL, &r, &msg));
  evs_command_result_destroy(r);
  EXPECT_MSG(EVS_OK, evs_read_stream(store, STR("account-2"), 0, EVS_FORWARD, EVS_NO_LIMIT, &it, &msg));
  CHECK(evs_iter_valid(it));
  CHECK(VIEW_IS(evs_iter_correlation_id(it, &len), "onboarding-3"));
  CHECK(VIEW_IS(evs_iter_causation_id(it, &len), "dep-9"));
  CHECK(evs_iter_schema_version(it) == 2);
  evs_iter_destroy(it);

  /* Retention. */
  {
    uint64_t deleted = 99;
    EXPECT_MSG(EVS_OK, evs_command_log_prune(store, 0, 1, &deleted, &msg));
    CHECK(deleted == 2);
    EXPECT_MSG(EVS_NOT_FOUND, evs_command_lookup(store, STR("dep-1"), &r, &msg));
    EXPECT_MSG(EVS_OK, evs_command_lookup(store, STR("dep-9"), &r, &msg));
    evs_command_result_destroy(r);
  }
  evs_aggregate_destroy(agg);
}

/* 8 senders deposit on one account: every deposit counts. */
typedef struct {
  evs_aggregate_t* agg;
  atomic_int failures;
} Senders;

static int Sender(void* arg) {
  Senders* s = arg;
  evs_command_options_t o = {1000, 50, 2000, 0.5};
  int i;
  for (i = 0; i < 25; i++) {
    evs_command_desc_t c = Cmd("Deposit", "account-race", "1", NULL);
    evs_command_result_t* r = NULL;
    if (evs_command_handle(s->agg, &c, Decide, NULL, &o, &r, NULL) != EVS_OK ||
        !evs_command_result_accepted(r))
      atomic_fetch_add(&s->failures, 1);
    evs_command_result_destroy(r);
  }
  return 0;
}

static void TestConcurrentSenders(evs_store_t* store) {
  evs_aggregate_def_t* def = AccountDef("account-race", 0);
  Senders s;
  thrd_t t[8];
  int i;
  s.agg = OpenAccount(store, def);
  atomic_init(&s.failures, 0);
  evs_aggregate_def_destroy(def);
  for (i = 0; i < 8; i++) CHECK(thrd_create(&t[i], Sender, &s) == thrd_success);
  for (i = 0; i < 8; i++) thrd_join(t[i], NULL);
  CHECK(atomic_load(&s.failures) == 0);
  CHECK(Balance(s.agg, "account-race", NULL, NULL) == 200);
  evs_aggregate_destroy(s.agg);
}

static void TestSnapshotsAndErrors(evs_store_t* store) {
  evs_aggregate_def_t* def = AccountDef("account-snap", 1);
  evs_aggregate_t* agg;
  evs_aggregate_stats_t st;
  char* last = NULL;
  int source = -1, i;
  evs_loaded_t* l = NULL;
  EXPECT_MSG(EVS_OK, evs_aggregate_def_set_snapshots(def, 5, 0, 1, &msg));
  EXPECT_MSG(EVS_OK, evs_aggregate_def_set_cache(def, 0, 0, &msg));
  agg = OpenAccount(store, def);
  for (i = 0; i < 12; i++) evs_command_result_destroy(Handle(agg, Cmd("Deposit", "account-s", "3", NULL)));
  EXPECT_MSG(EVS_OK, evs_aggregate_flush_snapshots(agg, &msg));
  CHECK(Balance(agg, "account-s", NULL, &source) == 36);
  CHECK(source == EVS_LOAD_SNAPSHOT);
  EXPECT_MSG(EVS_OK, evs_aggregate_stats(agg, &st, &last, &msg));
  CHECK(st.snapshots_written >= 1);
  CHECK(st.from_snapshot >= 1);
  CHECK(last == NULL);
  EXPECT_MSG(EVS_OK, evs_aggregate_save_snapshot(agg, STR("account-s"), &msg));

  /* An encode that fails is reported, and loads stay right. */
  atomic_store(&g_world.encode_code, EVS_IO_ERROR);
  EXPECT_MSG(EVS_ABORTED, evs_aggregate_save_snapshot(agg, STR("account-s"), &msg));
  evs_command_result_destroy(Handle(agg, Cmd("Deposit", "account-s", "4", NULL)));
  EXPECT_MSG(EVS_OK, evs_aggregate_stats(agg, &st, &last, &msg));
  CHECK(st.snapshot_errors >= 1);
  CHECK(last != NULL && strstr(last, "encode callback returned 5") != NULL);
  evs_free(last);
  atomic_store(&g_world.encode_code, EVS_OK);
  CHECK(Balance(agg, "account-s", NULL, NULL) == 40);

  /* An evolve that fails fails the load, naming the stream and version
   * (version 13 is new: no snapshot or cached state covers it yet). */
  atomic_store(&g_world.evolve_fail_at, 13);
  evs_command_result_destroy(Handle(agg, Cmd("Deposit", "account-s", "2", NULL)));
  {
    char* msg = NULL;
    CHECK(evs_aggregate_load(agg, STR("account-s"), &l, &msg) == EVS_ABORTED);
    CHECK(l == NULL);
    CHECK(msg != NULL && strstr(msg, "account-s") && strstr(msg, "version 13") &&
          strstr(msg, "evolve callback returned 2"));
    evs_free(msg);
  }
  atomic_store(&g_world.evolve_fail_at, -1);
  CHECK(Balance(agg, "account-s", NULL, NULL) == 42);

  /* A decide that fails appends nothing. */
  {
    evs_command_desc_t c = Cmd("Deposit", "account-s", "-1", NULL);
    evs_command_result_t* r = NULL;
    char* msg = NULL;
    CHECK(evs_command_handle(agg, &c, Decide, NULL, NULL, &r, &msg) == EVS_ABORTED);
    CHECK(msg != NULL && strstr(msg, "decide callback returned 4") != NULL);
    evs_free(msg);
    CHECK(r == NULL);
  }
  CHECK(Balance(agg, "account-s", NULL, NULL) == 42);
  EXPECT_MSG(EVS_OK, evs_aggregate_clear_cache(agg, &msg));
  evs_aggregate_destroy(agg);
  evs_aggregate_def_destroy(def);
}

/* Upcasters: v1 "Deposited" data was in cents ("1234"); v2 is whole units. */
static int CentsToUnits(void* user, evs_upcast_event_t* event) {
  size_t len;
  const void* data = evs_upcast_event_data(event, &len);
  char text[32];
  (void)user;
  snprintf(text, sizeof text, "%lld", Amount(data, len) / 100);
  return evs_upcast_event_set_data(event, text, strlen(text), NULL);
}

static int SumDeposits(void* user, const evs_projection_event_t* event, evs_projection_state_t* state) {
  atomic_int* old = user;
  size_t len;
  const void* data = evs_projection_event_data(event, &len);
  char text[32];
  if (evs_projection_event_schema_version(event) != 2) atomic_fetch_add(old, 1);
  snprintf(text, sizeof text, "%lld", Amount(data, len));
  return evs_projection_state_put(state, STR("last"), text, strlen(text), NULL);
}

static void TestUpcasters(evs_store_t* store) {
  evs_upcasters_t* up = evs_upcasters_create();
  evs_aggregate_def_t* def = AccountDef("account-up", 0);
  evs_aggregate_t* agg;
  evs_event_t e = Ev("Deposited", "12300");
  evs_projection_options_t* po = evs_projection_options_create();
  evs_projection_t* p = NULL;
  evs_append_result_t ar;
  atomic_int old;
  void* value = NULL;
  size_t len = 0;
  CHECK(up != NULL && po != NULL);
  EXPECT_MSG(EVS_OK, evs_upcasters_add(up, STR("Deposited"), 1, 2, CentsToUnits, NULL, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_upcasters_add(up, STR("Deposited"), 1, 3, CentsToUnits, NULL, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_upcasters_add(up, STR("Deposited"), 2, 2, CentsToUnits, NULL, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_upcasters_add(up, STR("Deposited"), 2, 3, NULL, NULL, &msg));
  /* A v1 event (appended as format 1 stores hold them) and a v2 one. */
  EXPECT_MSG(EVS_OK, evs_append_traced(store, STR("account-up"), EVS_EXPECT_ANY, &e, 1, STR("corr-1"),
                                       STR("cause-1"), 1, &ar, &msg));
  e = Ev("Deposited", "7");
  EXPECT_MSG(EVS_OK, evs_append_traced(store, STR("account-up"), EVS_EXPECT_ANY, &e, 1, NULL, 0,
                                       NULL, 0, 2, &ar, &msg));
  {
    evs_append_result_t refused;
    EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_append_traced(store, STR("account-up"), EVS_EXPECT_ANY, &e, 1,
                                                       NULL, 0, NULL, 0, 0, &refused, &msg));
  }
  EXPECT_MSG(EVS_OK, evs_aggregate_def_set_upcasters(def, up, &msg));
  agg = OpenAccount(store, def);
  atomic_store(&g_world.old_layouts, 0);
  CHECK(Balance(agg, "account-up", NULL, NULL) == 130);
  CHECK(atomic_load(&g_world.old_layouts) == 0);

  atomic_init(&old, 0);
  EXPECT_MSG(EVS_OK, evs_projection_options_set_filter_stream(po, STR("account-up"), &msg));
  EXPECT_MSG(EVS_OK, evs_projection_options_set_upcasters(po, up, &msg));
  EXPECT_MSG(EVS_OK, evs_projection_run(store, STR("deposits"), po, SumDeposits, &old, &p, &msg));
  EXPECT_MSG(EVS_OK, evs_projection_wait_for(p, ar.last_position + 1, WAIT_MS, &msg));
  CHECK(atomic_load(&old) == 0);
  EXPECT_MSG(EVS_OK, evs_projection_get(store, STR("deposits"), STR("last"), &value, &len, &msg));
  CHECK(BytesEq(value, len, "7"));
  evs_free(value);
  evs_projection_destroy(p);

  /* The stored events are as written, with their provenance. */
  {
    evs_iter_t* it = NULL;
    EXPECT_MSG(EVS_OK, evs_read_event(store, ar.last_position - 1, &it, &msg));
    CHECK(VIEW_IS(evs_iter_data(it, &len), "12300"));
    CHECK(evs_iter_schema_version(it) == 1);
    CHECK(VIEW_IS(evs_iter_correlation_id(it, &len), "corr-1"));
    CHECK(VIEW_IS(evs_iter_causation_id(it, &len), "cause-1"));
    evs_iter_destroy(it);
  }
  /* And a subscription delivers them. */
  {
    evs_subscribe_options_t* so = evs_subscribe_options_create();
    evs_subscription_t* sub = NULL;
    const evs_delivery_t* d = NULL;
    EXPECT_MSG(EVS_OK, evs_subscribe_options_set_filter_stream(so, STR("account-up"), &msg));
    EXPECT_MSG(EVS_OK, evs_subscribe(store, so, &sub, &msg));
    EXPECT_MSG(EVS_OK, evs_subscription_next(sub, WAIT_MS, &d, &msg));
    CHECK(evs_delivery_event_count(d) == 2);
    CHECK(VIEW_IS(evs_delivery_event_correlation_id(d, 0, &len), "corr-1"));
    CHECK(VIEW_IS(evs_delivery_event_causation_id(d, 0, &len), "cause-1"));
    CHECK(evs_delivery_event_schema_version(d, 1) == 2);
    CHECK(evs_delivery_event_correlation_id(d, 5, &len) == NULL && len == 0);
    evs_subscription_destroy(sub);
    evs_subscribe_options_destroy(so);
  }
  evs_projection_options_destroy(po);
  evs_aggregate_destroy(agg);
  evs_aggregate_def_destroy(def);
  evs_upcasters_destroy(up);
}

static void TestBus(evs_store_t* store) {
  evs_aggregate_def_t* def = AccountDef("account-bus", 0);
  evs_aggregate_t* agg = OpenAccount(store, def);
  evs_command_bus_t* bus = NULL;
  evs_command_result_t* r = NULL;
  evs_command_desc_t c;
  evs_aggregate_def_destroy(def);
  EXPECT_MSG(EVS_OK, evs_command_bus_create(store, NULL, 0, 0, 60000, &bus, &msg));
  EXPECT_MSG(EVS_OK, evs_command_bus_register(bus, STR("Deposit"), agg, Decide, NULL, &msg));
  EXPECT_MSG(EVS_OK, evs_command_bus_register(bus, STR("Withdraw"), agg, Decide, NULL, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_command_bus_register(bus, STR("Deposit"), agg, Decide, NULL, &msg));
  evs_aggregate_destroy(agg); /* the bus keeps it */
  c = Cmd("Deposit", "account-b", "10", "b-1");
  EXPECT_MSG(EVS_OK, evs_command_bus_handle(bus, &c, &r, &msg));
  CHECK(evs_command_result_accepted(r));
  evs_command_result_destroy(r);
  c = Cmd("Withdraw", "account-b", "11", NULL);
  EXPECT_MSG(EVS_OK, evs_command_bus_handle(bus, &c, &r, &msg));
  CHECK(!evs_command_result_accepted(r));
  evs_command_result_destroy(r);
  c = Cmd("Close", "account-b", "0", NULL);
  EXPECT_MSG(EVS_NOT_FOUND, evs_command_bus_handle(bus, &c, &r, &msg));
  CHECK(r == NULL);
  evs_command_bus_destroy(bus);
}

static void TestBadInput(evs_store_t* store) {
  evs_aggregate_def_t* def = NULL;
  evs_aggregate_t* agg = NULL;
  evs_loaded_t* l = NULL;
  evs_command_result_t* r = NULL;
  evs_command_desc_t c = Cmd("Deposit", "account-x", "1", NULL);
  char longname[300];
  memset(longname, 'n', sizeof longname);
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_aggregate_def_create(NULL, 3, &def, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_aggregate_def_create(STR("a"), NULL, &msg));
  EXPECT_MSG(EVS_OK, evs_aggregate_def_create(longname, sizeof longname, &def, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_aggregate_open(store, def, &agg, &msg)); /* no callbacks */
  EXPECT_MSG(EVS_OK, evs_aggregate_def_set_state(def, AccountInit, AccountClone, AccountFree,
                                                 AccountEvolve, &g_world, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_aggregate_open(store, def, &agg, &msg)); /* the name */
  CHECK(agg == NULL);
  evs_aggregate_def_destroy(def);
  def = AccountDef("account-x", 0);
  EXPECT_MSG(EVS_INVALID_ARGUMENT,
             evs_aggregate_def_set_state(def, AccountInit, NULL, AccountFree, AccountEvolve, NULL, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_aggregate_def_set_codec(def, AccountEncode, NULL, &msg));
  EXPECT_MSG(EVS_OK, evs_aggregate_def_set_snapshots(def, 10, 0, 1, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_aggregate_open(store, def, &agg, &msg)); /* no codec */
  EXPECT_MSG(EVS_OK, evs_aggregate_def_set_snapshots(def, 0, 0, 1, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_aggregate_open(NULL, def, &agg, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_aggregate_open(store, NULL, &agg, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_aggregate_open(store, def, NULL, &msg));
  agg = OpenAccount(store, def);
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_aggregate_load(agg, NULL, 4, &l, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_aggregate_load(agg, "", 0, &l, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_aggregate_load(NULL, STR("s"), &l, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_aggregate_load(agg, STR("s"), NULL, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_aggregate_save_snapshot(agg, STR("account-x"), &msg)); /* no codec */
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_command_handle(agg, NULL, Decide, NULL, NULL, &r, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_command_handle(agg, &c, NULL, NULL, NULL, &r, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_command_handle(agg, &c, Decide, NULL, NULL, NULL, &msg));
  c.type_len = 0;
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_command_handle(agg, &c, Decide, NULL, NULL, &r, &msg));
  c = Cmd("Deposit", "account-x", "1", NULL);
  c.id = longname;
  c.id_len = sizeof longname;
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_command_handle(agg, &c, Decide, NULL, NULL, &r, &msg));
  c.id = NULL;
  c.id_len = 3; /* NULL with a length */
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_command_handle(agg, &c, Decide, NULL, NULL, &r, &msg));
  c = Cmd("Deposit", "account-x", "1", NULL);
  {
    evs_command_options_t zero = {0, 0, 0, 0.5}, bad_jitter = {3, 1, 1, 2.0};
    EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_command_handle(agg, &c, Decide, NULL, &zero, &r, &msg));
    EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_command_handle(agg, &c, Decide, NULL, &bad_jitter, &r, &msg));
  }
  CHECK(r == NULL);
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_decision_add_event(NULL, NULL, 1, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_decision_reject(NULL, STR("x"), NULL, 0, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_buffer_set(NULL, "x", 1, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_command_lookup(store, NULL, 1, &r, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_command_lookup(store, STR("id"), NULL, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_command_log_prune(NULL, 0, 0, NULL, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_command_bus_create(store, NULL, 0, 0, 0, NULL, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_command_bus_register(NULL, STR("T"), agg, Decide, NULL, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_upcasters_add(NULL, STR("T"), 1, 2, CentsToUnits, NULL, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_upcast_event_set_data(NULL, "x", 1, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_append_traced(store, STR("s"), EVS_EXPECT_ANY, NULL, 1, NULL, 0,
                                                     NULL, 0, 1, NULL, &msg));
  /* NULL handles read as nothing. */
  CHECK(evs_loaded_state(NULL) == NULL);
  CHECK(evs_loaded_version(NULL) == -1);
  CHECK(evs_loaded_source(NULL) == -1);
  CHECK(evs_command_result_accepted(NULL) == 0);
  CHECK(evs_iter_schema_version(NULL) == 0);
  {
    size_t len = 9;
    CHECK(evs_iter_correlation_id(NULL, &len) == NULL && len == 0);
    CHECK(evs_event_view_data(NULL, &len) == NULL && len == 0);
  }
  evs_aggregate_destroy(NULL);
  evs_loaded_destroy(NULL);
  evs_command_result_destroy(NULL);
  evs_command_bus_destroy(NULL);
  evs_upcasters_destroy(NULL);
  evs_aggregate_def_destroy(NULL);
  evs_aggregate_destroy(agg);
  evs_aggregate_def_destroy(def);
}

static void TestAfterClose(const char* dir) {
  evs_store_t* store = Open(dir, NULL);
  evs_aggregate_def_t* def = AccountDef("account", 0);
  evs_aggregate_t* agg = OpenAccount(store, def);
  evs_aggregate_t* again = NULL;
  evs_loaded_t* l = NULL;
  evs_command_result_t* r = NULL;
  evs_command_desc_t c = Cmd("Deposit", "account-1", "1", "after");
  EXPECT_MSG(EVS_OK, evs_store_close(store, &msg));
  EXPECT_MSG(EVS_CLOSED, evs_aggregate_load(agg, STR("account-1"), &l, &msg));
  EXPECT_MSG(EVS_CLOSED, evs_command_handle(agg, &c, Decide, NULL, NULL, &r, &msg));
  EXPECT_MSG(EVS_CLOSED, evs_command_lookup(store, STR("after"), &r, &msg));
  EXPECT_MSG(EVS_CLOSED, evs_aggregate_open(store, def, &again, &msg));
  CHECK(again == NULL);
  evs_aggregate_destroy(agg);
  evs_aggregate_def_destroy(def);
  evs_store_destroy(store);
}

int main(void) {
  evs_store_t* store;
  evs_options_t* o = evs_options_create();
  atomic_init(&g_world.evolve_fail_at, -1);
  atomic_init(&g_world.encode_code, EVS_OK);
  atomic_init(&g_world.frees, 0);
  atomic_init(&g_world.made, 0);
  atomic_init(&g_world.old_layouts, 0);
  MakeRoot();
  evs_options_set_sync(o, 0, NULL);
  store = Open(Sub("commands"), o);
  evs_options_destroy(o);
  TestCommands(store);
  TestConcurrentSenders(store);
  TestSnapshotsAndErrors(store);
  TestUpcasters(store);
  TestBus(store);
  TestBadInput(store);
  EXPECT_MSG(EVS_OK, evs_store_close(store, &msg));
  evs_store_destroy(store);
  TestAfterClose(Sub("closing"));
  /* Every state the callbacks made was freed. */
  CHECK(atomic_load(&g_world.made) == atomic_load(&g_world.frees));
  RemoveRoot();
  printf("%d checks, %d failed\n", g_checks, g_failures);
  return g_failures ? 1 : 0;
}
