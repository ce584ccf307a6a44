/* The C example of docs/event-sourcing.md ("From C"), as one program: the
 * guide's C code blocks are copies of parts of this file (the test
 * es-example-doc checks it), and the test es-example-c runs it. C11. Exits 0
 * when everything the guide says holds. */
#ifndef _XOPEN_SOURCE
#define _XOPEN_SOURCE 700
#endif

#include <evstore/command.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

static void Check(int ok, const char* what) {
  if (!ok) {
    fprintf(stderr, "es_example_c: %s\n", what);
    failures++;
  }
}

/* [c-aggregate] */
typedef struct {
  long long balance;
} Account;

static void* AccountInit(void* user) {
  (void)user;
  return calloc(1, sizeof(Account));
}
static void* AccountClone(void* user, const void* state) {
  Account* a = malloc(sizeof *a);
  (void)user;
  if (a) *a = *(const Account*)state;
  return a;
}
static void AccountFree(void* user, void* state) {
  (void)user;
  free(state);
}
static int AccountEvolve(void* user, void* state, const evs_event_view_t* event) {
  Account* a = state;
  size_t type_len, data_len;
  const char* type = evs_event_view_type(event, &type_len);
  const char* data = evs_event_view_data(event, &data_len);
  char amount[32];
  (void)user;
  snprintf(amount, sizeof amount, "%.*s", (int)data_len, data);
  if (type_len == 9 && memcmp(type, "Deposited", 9) == 0) a->balance += atoll(amount);
  if (type_len == 9 && memcmp(type, "Withdrawn", 9) == 0) a->balance -= atoll(amount);
  return EVS_OK;
}

/* Withdraw: refuse beyond the balance, else one Withdrawn event. */
static int Withdraw(void* user, const void* state, const evs_command_desc_t* command,
                    evs_decision_t* decision) {
  const Account* a = state;
  char amount[32];
  evs_event_t e;
  (void)user;
  snprintf(amount, sizeof amount, "%.*s", (int)command->payload_len, (const char*)command->payload);
  if (a->balance < atoll(amount))
    return evs_decision_reject(decision, "insufficient_funds", 18, NULL, 0, NULL);
  memset(&e, 0, sizeof e);
  e.type = "Withdrawn";
  e.type_len = 9;
  e.data = command->payload;
  e.data_len = command->payload_len;
  return evs_decision_add_event(decision, &e, 1, NULL);
}
/* [c-aggregate] */

static int Remove(const char* path, const struct stat* sb, int flag, struct FTW* ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(path);
}

static int Run(evs_store_t* store) {
  evs_event_t deposit;
  memset(&deposit, 0, sizeof deposit);
  deposit.type = "Deposited";
  deposit.type_len = 9;
  deposit.data = "50";
  deposit.data_len = 2;
  Check(evs_append(store, "account-42", 10, EVS_EXPECT_NO_STREAM, &deposit, 1, NULL, NULL) == EVS_OK,
        "a deposit");
  {
    /* [c-handle] */
    evs_aggregate_def_t* def = NULL;
    evs_aggregate_t* accounts = NULL;
    evs_command_result_t* result = NULL;
    evs_command_desc_t cmd;
    char* err = NULL;
    int rc;

    evs_aggregate_def_create("account", 7, &def, NULL);
    evs_aggregate_def_set_state(def, AccountInit, AccountClone, AccountFree, AccountEvolve, NULL, NULL);
    rc = evs_aggregate_open(store, def, &accounts, &err);
    evs_aggregate_def_destroy(def);
    if (rc != EVS_OK) {
      fprintf(stderr, "open: %s\n", err);
      evs_free(err);
      return 1;
    }

    memset(&cmd, 0, sizeof cmd);
    cmd.type = "Withdraw";
    cmd.type_len = 8;
    cmd.stream = "account-42";
    cmd.stream_len = 10;
    cmd.payload = "30";
    cmd.payload_len = 2;
    cmd.id = "withdrawal-7f3a"; /* handled at most once */
    cmd.id_len = 15;
    rc = evs_command_handle(accounts, &cmd, Withdraw, NULL, NULL, &result, &err);
    if (rc == EVS_OK && evs_command_result_accepted(result)) {
      evs_append_result_t where;
      evs_command_result_append(result, &where, NULL);
      printf("withdrawn: position %llu after %u tries\n", (unsigned long long)where.first_position,
             evs_command_result_tries(result));
    }
    /* [c-handle] */
    Check(rc == EVS_OK && evs_command_result_accepted(result) == 1, "the withdrawal is accepted");
    evs_command_result_destroy(result);
    result = NULL;
    rc = evs_command_handle(accounts, &cmd, Withdraw, NULL, NULL, &result, NULL);
    Check(rc == EVS_OK && evs_command_result_from_log(result) == 1, "the repeat comes from the log");
    evs_command_result_destroy(result);
    {
      /* [c-provenance] */
      evs_iter_t* it = NULL;
      size_t len;
      if (evs_read_stream(store, "account-42", 10, 1, EVS_FORWARD, 1, &it, NULL) == EVS_OK &&
          evs_iter_valid(it)) {
        const char* causation = evs_iter_causation_id(it, &len); /* "withdrawal-7f3a" */
        printf("caused by %.*s (schema version %u)\n", (int)len, causation, evs_iter_schema_version(it));
      }
      evs_iter_destroy(it);
      /* [c-provenance] */
    }
    {
      evs_loaded_t* l = NULL;
      Check(evs_aggregate_load(accounts, "account-42", 10, &l, NULL) == EVS_OK &&
                ((const Account*)evs_loaded_state(l))->balance == 20,
            "the balance is 20");
      evs_loaded_destroy(l);
    }
    evs_aggregate_destroy(accounts);
  }
  return 0;
}

int main(void) {
  char root[256];
  const char* tmp = getenv("TMPDIR");
  char path[300];
  evs_store_t* store = NULL;
  int rc;
  snprintf(root, sizeof root, "%s/evstore-es-example-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(root)) return 2;
  snprintf(path, sizeof path, "%s/store", root);
  if (evs_store_open(path, NULL, &store, NULL) != EVS_OK) return 2;
  rc = Run(store);
  evs_store_close(store, NULL);
  evs_store_destroy(store);
  nftw(root, Remove, 16, FTW_DEPTH | FTW_PHYS);
  if (rc != 0 || failures != 0) return 1;
  printf("es_example_c: ok\n");
  return 0;
}
