/* An order service in C on evstore: append with expected versions, a
 * transaction over two streams, an idempotent retry, a conflict, and reads
 * by stream and by category. Usage: example DIR (DIR: a new directory). */
#include <evstore/evstore.h>
#include <stdio.h>
#include <string.h>

/* Prints the failure and its message, frees the message, returns 1. */
static int failed(const char* what, int rc, char* msg) {
  fprintf(stderr, "%s: %s (%s)\n", what, msg ? msg : "", evs_errstr(rc));
  evs_free(msg);
  return 1;
}

static evs_event_t event(const char* type, const char* json) {
  evs_event_t e;
  memset(&e, 0, sizeof e); /* an all-zero id: evstore generates one */
  e.type = type;
  e.type_len = strlen(type);
  e.data = json;
  e.data_len = strlen(json);
  e.content_type = "application/json";
  e.content_type_len = strlen(e.content_type);
  return e;
}

static void print_events(evs_iter_t* it) {
  for (; evs_iter_valid(it); evs_iter_next(it)) {
    size_t stream_len, type_len, data_len;
    const char* stream = evs_iter_stream(it, &stream_len);
    const char* type = evs_iter_type(it, &type_len);
    const char* data = evs_iter_data(it, &data_len);
    printf("  #%llu %.*s v%llu %.*s %.*s\n", (unsigned long long)evs_iter_position(it),
           (int)stream_len, stream, (unsigned long long)evs_iter_version(it), (int)type_len, type,
           (int)data_len, data);
  }
}

int main(int argc, char** argv) {
  evs_options_t* options;
  evs_store_t* store = NULL;
  evs_append_result_t result;
  evs_tx_t* tx;
  evs_iter_t* it = NULL;
  evs_store_stats_t stats;
  char* msg = NULL;
  int rc;

  if (argc != 2) {
    fprintf(stderr, "usage: example DIR\n");
    return 2;
  }
  printf("evstore %s\n", evs_version_string());

  options = evs_options_create();
  evs_options_set_sync(options, 0, NULL); /* a demo: survive a process crash, not a power loss */
  rc = evs_store_open(argv[1], options, &store, &msg);
  evs_options_destroy(options); /* the store keeps its own copy */
  if (rc != EVS_OK) return failed("open", rc, msg);

  /* 1. A new stream: it must not exist yet. */
  {
    evs_event_t placed = event("OrderPlaced", "{\"sku\":\"tea\",\"qty\":2}");
    rc = evs_append(store, "order-1", 7, EVS_EXPECT_NO_STREAM, &placed, 1, &result, &msg);
    if (rc != EVS_OK) return failed("append", rc, msg);
    printf("placed order-1 at version %llu\n", (unsigned long long)result.last_version);
  }

  /* 2. Payment and stock in one transaction: both streams or neither. The
   * caller-chosen event id makes a retry of the same commit harmless. */
  tx = evs_tx_create();
  {
    evs_event_t paid = event("OrderPaid", "{\"amount\":9.5}");
    evs_event_t reserved = event("StockReserved", "{\"order\":\"order-1\",\"qty\":2}");
    evs_uuid_parse("6f1c2b9e-0d7a-4c55-9a43-1e2f3a4b5c6d", 36, paid.id, NULL);
    evs_uuid_parse("0b7e55a1-3c2d-4e8f-9a10-7c6d5e4f3a2b", 36, reserved.id, NULL);
    evs_tx_add(tx, "order-1", 7, 0, &paid, 1, NULL); /* order-1 must be at version 0 */
    evs_tx_add(tx, "stock-tea", 9, EVS_EXPECT_ANY, &reserved, 1, NULL);
  }
  {
    evs_append_result_t results[2];
    rc = evs_tx_commit(store, tx, results, 2, NULL, &msg);
    if (rc != EVS_OK) return failed("commit", rc, msg);
    printf("paid and reserved at positions %llu and %llu\n",
           (unsigned long long)results[0].first_position,
           (unsigned long long)results[1].first_position);
    rc = evs_tx_commit(store, tx, results, 2, NULL, &msg); /* a retry after, say, a timeout */
    if (rc != EVS_OK) return failed("retry", rc, msg);
    printf("retry: %s\n", results[0].idempotent_replay ? "already committed, nothing written" : "?");
  }
  evs_tx_destroy(tx);

  /* 3. A writer that read order-1 at version 0 loses the race. */
  {
    evs_event_t cancelled = event("OrderCancelled", "{}");
    rc = evs_append(store, "order-1", 7, 0, &cancelled, 1, &result, &msg);
    if (rc == EVS_WRONG_EXPECTED_VERSION)
      printf("conflict: order-1 is at version %lld, not 0\n", (long long)result.actual_version);
    evs_free(msg);
  }

  /* 4. Read one stream, then a whole category in commit order. */
  rc = evs_read_stream(store, "order-1", 7, 0, EVS_FORWARD, EVS_NO_LIMIT, &it, &msg);
  if (rc != EVS_OK) return failed("read", rc, msg);
  printf("order-1:\n");
  print_events(it);
  rc = evs_iter_status(it, &msg); /* why the loop ended: EVS_OK at the end */
  evs_iter_destroy(it);
  if (rc != EVS_OK) return failed("read", rc, msg);

  rc = evs_read_category(store, "stock", 5, 0, EVS_FORWARD, EVS_NO_LIMIT, &it, &msg);
  if (rc != EVS_OK) return failed("read", rc, msg);
  printf("category stock:\n");
  print_events(it);
  evs_iter_destroy(it);

  rc = evs_store_stats(store, &stats, &msg);
  if (rc != EVS_OK) return failed("stats", rc, msg);
  printf("%llu events written, %llu idempotent replay(s), %llu conflict(s)\n",
         (unsigned long long)stats.events_appended, (unsigned long long)stats.idempotent_replays,
         (unsigned long long)stats.conflicts);

  rc = evs_store_close(store, &msg);
  evs_store_destroy(store);
  if (rc != EVS_OK) return failed("close", rc, msg);
  return 0;
}
