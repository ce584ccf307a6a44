/* The program of consumer.cpp written against the C API (evstore.h, C11),
 * built by the same consumer projects. Its output after the first line is
 * expected.txt, like consumer.cpp's.
 * usage: consumer_c DIR (DIR: a new directory) */
#include <evstore/evstore.h>
#include <stdio.h>
#include <string.h>

static int failed(const char* what, int rc, char* msg) {
  fprintf(stderr, "consumer_c: %s: %s (%s)\n", what, msg ? msg : "", evs_errstr(rc));
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

int main(int argc, char** argv) {
  evs_store_t* store = NULL;
  evs_iter_t* it = NULL;
  evs_append_result_t result;
  evs_event_t events[2];
  evs_event_t cancelled;
  char* msg = NULL;
  int rc;

  if (argc != 2) {
    fprintf(stderr, "usage: consumer_c DIR\n");
    return 2;
  }
  printf("evstore %s through the C API\n", evs_version_string());

  rc = evs_store_open(argv[1], NULL, &store, &msg);
  if (rc != EVS_OK) return failed("open", rc, msg);

  events[0] = event("OrderPlaced", "{\"sku\":\"tea\"}");
  events[1] = event("OrderPaid", "{\"amount\":3}");
  rc = evs_append(store, "order-7", 7, EVS_EXPECT_NO_STREAM, events, 2, &result, &msg);
  if (rc != EVS_OK) return failed("append", rc, msg);
  printf("appended order-7 v%llu..v%llu at positions %llu..%llu\n",
         (unsigned long long)result.first_version, (unsigned long long)result.last_version,
         (unsigned long long)result.first_position, (unsigned long long)result.last_position);

  cancelled = event("OrderCancelled", "{}");
  rc = evs_append(store, "order-7", 7, EVS_EXPECT_NO_STREAM, &cancelled, 1, &result, &msg);
  if (rc != EVS_WRONG_EXPECTED_VERSION) return failed("stale append", rc, msg);
  evs_free(msg);
  printf("refused: order-7 is at version %lld\n", (long long)result.actual_version);

  rc = evs_read_stream(store, "order-7", 7, 0, EVS_FORWARD, EVS_NO_LIMIT, &it, &msg);
  if (rc != EVS_OK) return failed("read", rc, msg);
  for (; evs_iter_valid(it); evs_iter_next(it)) {
    size_t stream_len, type_len, data_len;
    const char* stream = evs_iter_stream(it, &stream_len);
    const char* type = evs_iter_type(it, &type_len);
    const char* data = evs_iter_data(it, &data_len);
    printf("#%llu %.*s v%llu %.*s %.*s\n", (unsigned long long)evs_iter_position(it),
           (int)stream_len, stream, (unsigned long long)evs_iter_version(it), (int)type_len, type,
           (int)data_len, data);
  }
  rc = evs_iter_status(it, &msg); /* why the loop ended: EVS_OK at the end */
  evs_iter_destroy(it);
  if (rc != EVS_OK) return failed("read", rc, msg);

  rc = evs_store_close(store, &msg);
  evs_store_destroy(store);
  if (rc != EVS_OK) return failed("close", rc, msg);
  printf("closed\n");
  return 0;
}
