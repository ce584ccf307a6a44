/* The C API from a C11 client: every function, its error codes and bad input.
 * Compiled with -std=c11 -pedantic -Werror and linked against the shared
 * library, so it also proves that everything it calls is exported.
 * Exits 0 when every check holds; prints each failed check otherwise. */
#include "check.h"

/* ---- status, version, ids ---- */

static void TestStatusAndVersion(void) {
  int codes[] = {EVS_OK,     EVS_NOT_FOUND, EVS_CORRUPTION,      EVS_NOT_SUPPORTED,
                 EVS_INVALID_ARGUMENT,  EVS_IO_ERROR, EVS_WRONG_EXPECTED_VERSION,
                 EVS_DUPLICATE_EVENT,   EVS_BUSY,     EVS_TIMED_OUT,
                 EVS_ABORTED,           EVS_CLOSED,   EVS_NO_MEMORY};
  size_t i, j;
  /* The numbers are part of the ABI. */
  CHECK(EVS_OK == 0 && EVS_NOT_FOUND == 1 && EVS_CORRUPTION == 2 && EVS_NOT_SUPPORTED == 3);
  CHECK(EVS_INVALID_ARGUMENT == 4 && EVS_IO_ERROR == 5 && EVS_WRONG_EXPECTED_VERSION == 6);
  CHECK(EVS_DUPLICATE_EVENT == 7 && EVS_BUSY == 8 && EVS_TIMED_OUT == 9 && EVS_ABORTED == 10);
  CHECK(EVS_CLOSED == 11 && EVS_NO_MEMORY == 100);
  for (i = 0; i < sizeof codes / sizeof codes[0]; i++) {
    const char* s = evs_errstr(codes[i]);
    CHECK(s != NULL && s[0] != '\0');
    CHECK(strcmp(s, evs_errstr(12345)) != 0);
    for (j = 0; j < i; j++) CHECK(strcmp(s, evs_errstr(codes[j])) != 0);
  }
  CHECK(strcmp(evs_errstr(-1), "unknown status code") == 0);
  CHECK(strcmp(evs_errstr(EVS_WRONG_EXPECTED_VERSION), "wrong expected version") == 0);
  evs_free(NULL);

  CHECK(evs_version() == EVSTORE_VERSION_NUMBER);
  CHECK(strcmp(evs_version_string(), EVSTORE_VERSION_STRING) == 0);
  CHECK(EVSTORE_VERSION_ATLEAST(0, 1, 0));
}

static void TestUuid(void) {
  uint8_t a[16], b[16], zero[16];
  char text[37];
  memset(zero, 0, sizeof zero);
  EXPECT_MSG(EVS_OK, evs_uuid_generate(a, &msg));
  EXPECT_MSG(EVS_OK, evs_uuid_generate(b, &msg));
  CHECK(memcmp(a, zero, 16) != 0);
  CHECK(memcmp(a, b, 16) != 0);
  CHECK((a[6] >> 4) == 4); /* version 4 */
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_uuid_generate(NULL, &msg));

  EXPECT_MSG(EVS_OK, evs_uuid_format(a, text, &msg));
  CHECK(strlen(text) == 36 && text[8] == '-' && text[13] == '-' && text[18] == '-' && text[23] == '-');
  memset(b, 0, sizeof b);
  EXPECT_MSG(EVS_OK, evs_uuid_parse(text, 36, b, &msg));
  CHECK(memcmp(a, b, 16) == 0);
  EXPECT_MSG(EVS_OK, evs_uuid_parse(STR("0123ABCD-0000-4000-8000-00000000FFFF"), b, &msg));
  EXPECT_MSG(EVS_OK, evs_uuid_format(b, text, &msg));
  CHECK(strcmp(text, "0123abcd-0000-4000-8000-00000000ffff") == 0);

  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_uuid_parse(text, 35, b, &msg)); /* too short */
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_uuid_parse(STR("not a uuid"), b, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_uuid_parse(NULL, 0, b, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_uuid_parse(NULL, 36, b, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_uuid_parse(text, 36, NULL, &msg));
  EXPECT_RC(EVS_INVALID_ARGUMENT, evs_uuid_parse(STR("x"), b, NULL)); /* no message wanted */
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_uuid_format(NULL, text, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_uuid_format(a, NULL, &msg));
}

/* ---- options and open ---- */

static void TestOptions(void) {
  evs_options_t* o = evs_options_create();
  CHECK(o != NULL);
  EXPECT_MSG(EVS_OK, evs_options_set_create_if_missing(o, 1, &msg));
  EXPECT_MSG(EVS_OK, evs_options_set_read_only(o, 0, &msg));
  EXPECT_MSG(EVS_OK, evs_options_set_sync(o, 0, &msg));
  EXPECT_MSG(EVS_OK, evs_options_set_max_event_bytes(o, 1000, &msg));
  EXPECT_MSG(EVS_OK, evs_options_set_max_stream_name_bytes(o, 100, &msg));
  EXPECT_MSG(EVS_OK, evs_options_set_max_type_name_bytes(o, 100, &msg));
  EXPECT_MSG(EVS_OK, evs_options_set_max_content_type_bytes(o, 100, &msg));
  EXPECT_MSG(EVS_OK, evs_options_set_max_events_per_append(o, 100, &msg));
  EXPECT_MSG(EVS_OK, evs_options_set_max_append_bytes(o, 100000, &msg));
  EXPECT_MSG(EVS_OK, evs_options_set_max_streams_per_transaction(o, 10, &msg));
  EXPECT_MSG(EVS_OK, evs_options_set_block_cache_bytes(o, 1 << 20, &msg));
  EXPECT_MSG(EVS_OK, evs_options_set_max_group_requests(o, 64, &msg));
  EXPECT_MSG(EVS_OK, evs_options_set_max_group_bytes(o, 1 << 20, &msg));

  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_options_set_create_if_missing(NULL, 1, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_options_set_read_only(NULL, 1, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_options_set_sync(NULL, 1, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_options_set_max_event_bytes(NULL, 1, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_options_set_max_stream_name_bytes(NULL, 1, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_options_set_max_type_name_bytes(NULL, 1, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_options_set_max_content_type_bytes(NULL, 1, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_options_set_max_events_per_append(NULL, 1, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_options_set_max_append_bytes(NULL, 1, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_options_set_max_streams_per_transaction(NULL, 1, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_options_set_block_cache_bytes(NULL, 1, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_options_set_max_group_requests(NULL, 1, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_options_set_max_group_bytes(NULL, 1, &msg));

  /* The values take effect: a store opened with them enforces the limits. */
  {
    evs_store_t* s = Open(Sub("limits"), o);
    evs_event_t ev = Ev("t", "{}");
    evs_event_t many[101];
    char big[1001];
    char longname[101];
    char tx_names[11][8];
    evs_tx_t* tx = evs_tx_create();
    size_t i;
    memset(big, 'x', sizeof big);
    memset(longname, 'n', sizeof longname);
    for (i = 0; i < 101; i++) many[i] = ev;
    EXPECT_MSG(EVS_OK, evs_append(s, STR("s-1"), EVS_EXPECT_ANY, many, 100, NULL, &msg));
    EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_append(s, STR("s-1"), EVS_EXPECT_ANY, many, 101, NULL, &msg));
    EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_append(s, longname, 101, EVS_EXPECT_ANY, &ev, 1, NULL, &msg));
    EXPECT_MSG(EVS_OK, evs_append(s, longname, 100, EVS_EXPECT_ANY, &ev, 1, NULL, &msg));
    ev.type = longname;
    ev.type_len = 101;
    EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_append(s, STR("s-1"), EVS_EXPECT_ANY, &ev, 1, NULL, &msg));
    ev = Ev("t", "");
    ev.content_type = longname;
    ev.content_type_len = 101;
    EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_append(s, STR("s-1"), EVS_EXPECT_ANY, &ev, 1, NULL, &msg));
    ev = Ev("t", "");
    ev.data = big;
    ev.data_len = 1001;
    EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_append(s, STR("s-1"), EVS_EXPECT_ANY, &ev, 1, NULL, &msg));
    ev.data_len = 600;
    ev.metadata = big;
    ev.metadata_len = 401; /* data + metadata over max_event_bytes */
    EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_append(s, STR("s-1"), EVS_EXPECT_ANY, &ev, 1, NULL, &msg));
    ev.metadata_len = 400;
    EXPECT_MSG(EVS_OK, evs_append(s, STR("s-1"), EVS_EXPECT_ANY, &ev, 1, NULL, &msg));
    /* max_streams_per_transaction = 10 */
    ev = Ev("t", "{}");
    for (i = 0; i < 11; i++) {
      snprintf(tx_names[i], sizeof tx_names[i], "tx-%u", (unsigned)i);
      EXPECT_MSG(EVS_OK, evs_tx_add(tx, STR(tx_names[i]), EVS_EXPECT_ANY, &ev, 1, &msg));
    }
    EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_tx_commit(s, tx, NULL, 0, NULL, &msg));
    evs_tx_destroy(tx);
    evs_store_destroy(s);
  }

  /* Open checks option values. */
  EXPECT_MSG(EVS_OK, evs_options_set_max_group_requests(o, 0, &msg));
  {
    evs_store_t* s = (evs_store_t*)&g_checks; /* overwritten with NULL on failure */
    EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_store_open(Sub("badopts"), o, &s, &msg));
    CHECK(s == NULL);
  }
  evs_options_destroy(o);
  evs_options_destroy(NULL);
}

static void TestOpenErrors(void) {
  evs_store_t* s = NULL;
  evs_store_t* s2 = NULL;
  evs_options_t* o = evs_options_create();
  FILE* f;

  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_store_open(NULL, NULL, &s, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_store_open(Sub("x"), NULL, NULL, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_store_open("", NULL, &s, &msg));
  CHECK(s == NULL);
  EXPECT_RC(EVS_INVALID_ARGUMENT, evs_store_open("", NULL, &s, NULL));

  /* A file, and a directory holding something else. */
  f = fopen(Sub("afile"), "w");
  CHECK(f != NULL);
  if (f) fclose(f);
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_store_open(Sub("afile"), NULL, &s, &msg));
  CHECK(mkdir(Sub("other"), 0700) == 0);
  f = fopen(Sub("other/notes.txt"), "w");
  if (f) fclose(f);
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_store_open(Sub("other"), NULL, &s, &msg));

  /* Missing without create_if_missing, and read-only. */
  evs_options_set_create_if_missing(o, 0, NULL);
  EXPECT_MSG(EVS_NOT_FOUND, evs_store_open(Sub("missing"), o, &s, &msg));
  evs_options_set_create_if_missing(o, 1, NULL);
  evs_options_set_read_only(o, 1, NULL);
  EXPECT_MSG(EVS_NOT_FOUND, evs_store_open(Sub("missing"), o, &s, &msg));
  CHECK(s == NULL);

  /* A second writer is refused; a read-only reader is not, and cannot write. */
  s = Open(Sub("locked"), NULL);
  {
    evs_event_t ev = Ev("t", "{}");
    EXPECT_MSG(EVS_OK, evs_append(s, STR("a-1"), EVS_EXPECT_ANY, &ev, 1, NULL, &msg));
    EXPECT_MSG(EVS_IO_ERROR, evs_store_open(Sub("locked"), NULL, &s2, &msg));
    CHECK(s2 == NULL);
    EXPECT_MSG(EVS_OK, evs_store_open(Sub("locked"), o, &s2, &msg));
    EXPECT_MSG(EVS_NOT_SUPPORTED, evs_append(s2, STR("a-1"), EVS_EXPECT_ANY, &ev, 1, NULL, &msg));
    {
      uint64_t v = 99;
      EXPECT_MSG(EVS_OK, evs_stream_head(s2, STR("a-1"), &v, NULL, &msg));
      CHECK(v == 0);
    }
  }
  CHECK(strcmp(evs_store_path(s), Sub("locked")) == 0);
  CHECK(strcmp(evs_store_path(NULL), "") == 0);
  evs_store_destroy(s2);
  evs_store_destroy(s);
  evs_store_destroy(NULL);
  evs_options_destroy(o);
}

/* ---- appends ---- */

static void TestAppend(evs_store_t* s) {
  evs_event_t evs[3];
  evs_append_result_t r;
  evs_store_stats_t st;
  uint64_t v = 0, p = 0;

  evs[0] = Ev("OrderPlaced", "{\"n\":1}");
  evs[1] = Ev("OrderPaid", "{\"n\":2}");
  evs[2] = Ev("OrderShipped", "{\"n\":3}");
  evs[1].metadata = "meta";
  evs[1].metadata_len = 4;

  EXPECT_MSG(EVS_OK, evs_append(s, STR("order-1"), EVS_EXPECT_NO_STREAM, evs, 2, &r, &msg));
  CHECK(r.first_version == 0 && r.last_version == 1);
  CHECK(r.first_position == 0 && r.last_position == 1);
  CHECK(r.idempotent_replay == 0 && r.actual_version == EVS_NO_STREAM);

  /* Expected versions. */
  EXPECT_MSG(EVS_WRONG_EXPECTED_VERSION,
             evs_append(s, STR("order-1"), EVS_EXPECT_NO_STREAM, evs + 2, 1, &r, &msg));
  CHECK(r.actual_version == 1);
  EXPECT_MSG(EVS_WRONG_EXPECTED_VERSION, evs_append(s, STR("order-1"), 0, evs + 2, 1, &r, &msg));
  CHECK(r.actual_version == 1);
  EXPECT_MSG(EVS_WRONG_EXPECTED_VERSION,
             evs_append(s, STR("order-2"), EVS_EXPECT_STREAM_EXISTS, evs, 1, &r, &msg));
  CHECK(r.actual_version == EVS_NO_STREAM);
  EXPECT_MSG(EVS_WRONG_EXPECTED_VERSION, evs_append(s, STR("order-2"), 0, evs, 1, &r, &msg));
  CHECK(r.actual_version == EVS_NO_STREAM);
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_append(s, STR("order-1"), -3, evs, 1, &r, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_append(s, STR("order-1"), -5, evs, 1, &r, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_append(s, STR("order-1"), INT64_MIN, evs, 1, &r, &msg));
  EXPECT_MSG(EVS_OK, evs_append(s, STR("order-1"), 1, evs + 2, 1, &r, &msg));
  CHECK(r.first_version == 2 && r.first_position == 2);
  EXPECT_MSG(EVS_OK, evs_append(s, STR("order-1"), EVS_EXPECT_STREAM_EXISTS, evs, 1, &r, &msg));
  CHECK(r.first_version == 3 && r.first_position == 3);
  EXPECT_MSG(EVS_OK, evs_append(s, STR("order-2"), EVS_EXPECT_ANY, evs, 3, NULL, &msg));
  EXPECT_MSG(EVS_OK, evs_append(s, STR("payment-1"), EVS_EXPECT_ANY, evs + 1, 1, &r, &msg));
  CHECK(r.first_position == 7);

  /* Bad input, none of which writes anything. */
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_append(NULL, STR("x-1"), EVS_EXPECT_ANY, evs, 1, &r, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_append(s, NULL, 3, EVS_EXPECT_ANY, evs, 1, &r, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_append(s, NULL, 0, EVS_EXPECT_ANY, evs, 1, &r, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_append(s, "", 0, EVS_EXPECT_ANY, evs, 1, &r, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_append(s, "\xff\xfe", 2, EVS_EXPECT_ANY, evs, 1, &r, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_append(s, "\xc0\xaf", 2, EVS_EXPECT_ANY, evs, 1, &r, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_append(s, "a\0b", 3, EVS_EXPECT_ANY, evs, 1, &r, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_append(s, STR("x-1"), EVS_EXPECT_ANY, NULL, 1, &r, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_append(s, STR("x-1"), EVS_EXPECT_ANY, NULL, 0, &r, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_append(s, STR("x-1"), EVS_EXPECT_ANY, evs, 0, &r, &msg));
  {
    evs_event_t bad = Ev("T", "{}");
    bad.type = NULL;
    EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_append(s, STR("x-1"), EVS_EXPECT_ANY, &bad, 1, &r, &msg));
    bad.type_len = 0; /* empty type */
    EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_append(s, STR("x-1"), EVS_EXPECT_ANY, &bad, 1, &r, &msg));
    bad = Ev("\xed\xa0\x80", "{}"); /* a UTF-16 surrogate */
    EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_append(s, STR("x-1"), EVS_EXPECT_ANY, &bad, 1, &r, &msg));
    bad = Ev("T", "{}");
    bad.data = NULL;
    EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_append(s, STR("x-1"), EVS_EXPECT_ANY, &bad, 1, &r, &msg));
    bad = Ev("T", "{}");
    bad.metadata_len = 5;
    EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_append(s, STR("x-1"), EVS_EXPECT_ANY, &bad, 1, &r, &msg));
    bad = Ev("T", "{}");
    bad.content_type = NULL;
    EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_append(s, STR("x-1"), EVS_EXPECT_ANY, &bad, 1, &r, &msg));
    bad.content_type = "\x80";
    bad.content_type_len = 1;
    EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_append(s, STR("x-1"), EVS_EXPECT_ANY, &bad, 1, &r, &msg));
    /* Empty data, metadata and content type are fine, with or without pointers. */
    bad = Ev("T", "");
    bad.data = NULL;
    bad.content_type = NULL;
    bad.content_type_len = 0;
    EXPECT_MSG(EVS_OK, evs_append(s, STR("empty-1"), EVS_EXPECT_NO_STREAM, &bad, 1, &r, &msg));
    CHECK(r.first_position == 8);
  }
  /* Errors without a message argument. */
  EXPECT_RC(EVS_INVALID_ARGUMENT, evs_append(s, NULL, 1, EVS_EXPECT_ANY, evs, 1, NULL, NULL));
  EXPECT_RC(EVS_WRONG_EXPECTED_VERSION, evs_append(s, STR("order-1"), 0, evs, 1, NULL, NULL));

  EXPECT_MSG(EVS_OK, evs_stream_head(s, STR("order-1"), &v, &p, &msg));
  CHECK(v == 3 && p == 3);
  EXPECT_MSG(EVS_OK, evs_store_stats(s, &st, &msg));
  CHECK(st.next_position == 9);
  CHECK(st.events_appended == 9);
  CHECK(st.appends == 6);
  CHECK(st.conflicts == 5); /* wrong expected versions, including the one without a message */
  CHECK(st.commit_groups >= 1 && st.commit_groups <= st.appends);
}

static void TestIdempotency(evs_store_t* s) {
  evs_event_t evs[2];
  evs_append_result_t r1, r2;
  evs_store_stats_t before, after;
  evs[0] = Ev("Deposited", "{\"amount\":10}");
  evs[1] = Ev("Deposited", "{\"amount\":20}");
  EXPECT_MSG(EVS_OK, evs_uuid_generate(evs[0].id, &msg));
  EXPECT_MSG(EVS_OK, evs_uuid_generate(evs[1].id, &msg));

  EXPECT_MSG(EVS_OK, evs_append(s, STR("account-1"), EVS_EXPECT_NO_STREAM, evs, 2, &r1, &msg));
  CHECK(r1.idempotent_replay == 0);
  EXPECT_MSG(EVS_OK, evs_store_stats(s, &before, &msg));
  /* A retry of the same append (same ids, same content) is answered, not written. */
  EXPECT_MSG(EVS_OK, evs_append(s, STR("account-1"), EVS_EXPECT_NO_STREAM, evs, 2, &r2, &msg));
  CHECK(r2.idempotent_replay == 1);
  CHECK(r2.first_version == r1.first_version && r2.last_version == r1.last_version);
  CHECK(r2.first_position == r1.first_position && r2.last_position == r1.last_position);
  EXPECT_MSG(EVS_OK, evs_store_stats(s, &after, &msg));
  CHECK(after.next_position == before.next_position);
  CHECK(after.idempotent_replays == before.idempotent_replays + 1);

  /* The same id with other content is a duplicate. */
  evs[0].data = "{\"amount\":11}";
  EXPECT_MSG(EVS_DUPLICATE_EVENT, evs_append(s, STR("account-1"), EVS_EXPECT_ANY, evs, 1, &r2, &msg));
  /* The same id in another stream too. */
  evs[0].data = "{\"amount\":10}";
  EXPECT_MSG(EVS_DUPLICATE_EVENT, evs_append(s, STR("account-2"), EVS_EXPECT_ANY, evs, 1, &r2, &msg));
  EXPECT_MSG(EVS_OK, evs_store_stats(s, &after, &msg));
  CHECK(after.next_position == before.next_position);
}

static void TestTransactions(evs_store_t* s) {
  evs_tx_t* tx = evs_tx_create();
  evs_event_t a = Ev("ItemReserved", "{}");
  evs_event_t b[2];
  evs_append_result_t res[3];
  evs_store_stats_t before, after;
  uint64_t v;
  size_t conflict;
  b[0] = Ev("StockReduced", "{\"n\":1}");
  b[1] = Ev("StockReduced", "{\"n\":2}");
  EXPECT_MSG(EVS_OK, evs_uuid_generate(a.id, &msg));

  CHECK(tx != NULL);
  CHECK(evs_tx_size(tx) == 0);
  CHECK(evs_tx_size(NULL) == 0);
  EXPECT_MSG(EVS_OK, evs_tx_add(tx, STR("cart-7"), EVS_EXPECT_NO_STREAM, &a, 1, &msg));
  EXPECT_MSG(EVS_OK, evs_tx_add(tx, STR("stock-9"), EVS_EXPECT_ANY, b, 2, &msg));
  CHECK(evs_tx_size(tx) == 2);
  /* Bad parts are refused when added. */
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_tx_add(NULL, STR("x-1"), EVS_EXPECT_ANY, &a, 1, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_tx_add(tx, NULL, 2, EVS_EXPECT_ANY, &a, 1, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_tx_add(tx, STR("x-1"), -7, &a, 1, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_tx_add(tx, STR("x-1"), EVS_EXPECT_ANY, NULL, 1, &msg));
  {
    evs_event_t bad = Ev("T", "{}");
    bad.data = NULL;
    EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_tx_add(tx, STR("x-1"), EVS_EXPECT_ANY, &bad, 1, &msg));
  }
  CHECK(evs_tx_size(tx) == 2);

  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_tx_commit(NULL, tx, res, 3, NULL, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_tx_commit(s, NULL, res, 3, NULL, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_tx_commit(s, tx, res, 1, NULL, &msg));
  EXPECT_MSG(EVS_OK, evs_store_stats(s, &before, &msg));
  conflict = 5;
  EXPECT_MSG(EVS_OK, evs_tx_commit(s, tx, res, 3, &conflict, &msg));
  CHECK(conflict == EVS_NO_PART);
  CHECK(res[0].first_version == 0 && res[0].last_version == 0);
  CHECK(res[1].first_version == 0 && res[1].last_version == 1);
  CHECK(res[0].first_position == before.next_position);
  CHECK(res[1].first_position == before.next_position + 1);
  CHECK(res[1].last_position == before.next_position + 2);
  CHECK(res[0].idempotent_replay == 0 && res[1].actual_version == EVS_NO_STREAM);

  /* A conflict in one part writes nothing at all. */
  EXPECT_MSG(EVS_OK, evs_tx_clear(tx, &msg));
  CHECK(evs_tx_size(tx) == 0);
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_tx_clear(NULL, &msg));
  EXPECT_MSG(EVS_OK, evs_tx_add(tx, STR("stock-9"), 1, b, 1, &msg));
  EXPECT_MSG(EVS_OK, evs_tx_add(tx, STR("cart-7"), EVS_EXPECT_NO_STREAM, b + 1, 1, &msg));
  EXPECT_MSG(EVS_OK, evs_store_stats(s, &before, &msg));
  EXPECT_MSG(EVS_WRONG_EXPECTED_VERSION, evs_tx_commit(s, tx, res, 2, &conflict, &msg));
  /* The caller learns which part failed and the stream's actual version. */
  CHECK(conflict == 1);
  CHECK(res[1].actual_version == 0 && res[1].first_position == 0);
  CHECK(res[0].actual_version == EVS_NO_STREAM && res[0].first_position == 0);
  EXPECT_MSG(EVS_OK, evs_store_stats(s, &after, &msg));
  CHECK(after.next_position == before.next_position);
  EXPECT_MSG(EVS_OK, evs_stream_head(s, STR("stock-9"), &v, NULL, &msg));
  CHECK(v == 1);
  /* Without a message, and without results. */
  conflict = 7;
  EXPECT_RC(EVS_WRONG_EXPECTED_VERSION, evs_tx_commit(s, tx, NULL, 0, &conflict, NULL));
  CHECK(conflict == 1);
  EXPECT_RC(EVS_WRONG_EXPECTED_VERSION, evs_tx_commit(s, tx, res, 2, NULL, NULL));
  CHECK(res[1].actual_version == 0);
  /* A missing stream: actual_version EVS_NO_STREAM, told apart by the index. */
  EXPECT_MSG(EVS_OK, evs_tx_clear(tx, &msg));
  EXPECT_MSG(EVS_OK, evs_tx_add(tx, STR("stock-9"), 1, b, 1, &msg));
  EXPECT_MSG(EVS_OK, evs_tx_add(tx, STR("stock-404"), EVS_EXPECT_STREAM_EXISTS, b + 1, 1, &msg));
  EXPECT_MSG(EVS_WRONG_EXPECTED_VERSION, evs_tx_commit(s, tx, res, 2, &conflict, &msg));
  CHECK(conflict == 1 && res[1].actual_version == EVS_NO_STREAM);
  /* Both parts stale: the first is reported. */
  EXPECT_MSG(EVS_OK, evs_tx_clear(tx, &msg));
  EXPECT_MSG(EVS_OK, evs_tx_add(tx, STR("stock-9"), 0, b, 1, &msg));
  EXPECT_MSG(EVS_OK, evs_tx_add(tx, STR("cart-7"), 5, b + 1, 1, &msg));
  EXPECT_MSG(EVS_WRONG_EXPECTED_VERSION, evs_tx_commit(s, tx, res, 2, &conflict, &msg));
  CHECK(conflict == 0 && res[0].actual_version == 1 && res[1].actual_version == EVS_NO_STREAM);
  /* Stream names that extend one another, quotes included: the right one. */
  EXPECT_MSG(EVS_OK, evs_tx_clear(tx, &msg));
  EXPECT_MSG(EVS_OK, evs_tx_add(tx, STR("q-1"), EVS_EXPECT_ANY, b, 1, &msg));
  EXPECT_MSG(EVS_OK, evs_tx_add(tx, STR("q-1': expected"), 3, b + 1, 1, &msg));
  EXPECT_MSG(EVS_OK, evs_tx_add(tx, STR("q-1': "), EVS_EXPECT_ANY, b + 1, 1, &msg));
  EXPECT_MSG(EVS_WRONG_EXPECTED_VERSION, evs_tx_commit(s, tx, res, 3, &conflict, &msg));
  CHECK(conflict == 1 && res[1].actual_version == EVS_NO_STREAM);
  EXPECT_MSG(EVS_OK, evs_tx_clear(tx, &msg));
  EXPECT_MSG(EVS_OK, evs_tx_add(tx, STR("q-1': expected"), EVS_EXPECT_ANY, b + 1, 1, &msg));
  EXPECT_MSG(EVS_OK, evs_tx_add(tx, STR("q-1"), 2, b, 1, &msg));
  EXPECT_MSG(EVS_WRONG_EXPECTED_VERSION, evs_tx_commit(s, tx, res, 2, &conflict, &msg));
  CHECK(conflict == 1 && res[1].actual_version == EVS_NO_STREAM);
  /* Other failures name no part. */
  conflict = 0;
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_tx_commit(s, tx, res, 1, &conflict, &msg));
  CHECK(conflict == EVS_NO_PART);
  conflict = 0;
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_tx_commit(NULL, tx, res, 2, &conflict, &msg));
  CHECK(conflict == EVS_NO_PART);
  EXPECT_MSG(EVS_OK, evs_store_stats(s, &after, &msg));
  CHECK(after.next_position == before.next_position);

  /* The same stream twice, and an empty transaction. */
  EXPECT_MSG(EVS_OK, evs_tx_clear(tx, &msg));
  EXPECT_MSG(EVS_OK, evs_tx_add(tx, STR("dup-1"), EVS_EXPECT_ANY, b, 1, &msg));
  EXPECT_MSG(EVS_OK, evs_tx_add(tx, STR("dup-1"), EVS_EXPECT_ANY, b + 1, 1, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_tx_commit(s, tx, NULL, 0, NULL, &msg));
  EXPECT_MSG(EVS_OK, evs_tx_clear(tx, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_tx_commit(s, tx, NULL, 0, NULL, &msg));
  /* A part without events is refused at commit; names are checked at commit too. */
  EXPECT_MSG(EVS_OK, evs_tx_add(tx, STR("none-1"), EVS_EXPECT_ANY, NULL, 0, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_tx_commit(s, tx, NULL, 0, NULL, &msg));
  EXPECT_MSG(EVS_OK, evs_tx_clear(tx, &msg));
  EXPECT_MSG(EVS_OK, evs_tx_add(tx, "\xff", 1, EVS_EXPECT_ANY, b, 1, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_tx_commit(s, tx, NULL, 0, NULL, &msg));

  /* A committed transaction with ids can be committed again: an idempotent replay. */
  EXPECT_MSG(EVS_OK, evs_tx_clear(tx, &msg));
  b[0].id[0] = 0x42;
  b[0].id[15] = 0x17;
  EXPECT_MSG(EVS_OK, evs_tx_add(tx, STR("replay-1"), EVS_EXPECT_NO_STREAM, b, 1, &msg));
  EXPECT_MSG(EVS_OK, evs_tx_commit(s, tx, res, 1, NULL, &msg));
  CHECK(res[0].idempotent_replay == 0);
  EXPECT_MSG(EVS_OK, evs_tx_commit(s, tx, res, 1, NULL, &msg));
  CHECK(res[0].idempotent_replay == 1);
  evs_tx_destroy(tx);
  evs_tx_destroy(NULL);
}

/* ---- reads ---- */

static void TestReads(evs_store_t* s) {
  evs_iter_t* it = NULL;
  size_t len = 99;
  const void* p;
  uint64_t last = 0;
  evs_store_stats_t st;

  /* A stream, forward: every field. */
  EXPECT_MSG(EVS_OK, evs_read_stream(s, STR("order-1"), 0, EVS_FORWARD, EVS_NO_LIMIT, &it, &msg));
  CHECK(it != NULL);
  CHECK(evs_iter_valid(it) == 1);
  p = evs_iter_stream(it, &len);
  CHECK(BytesEq(p, len, "order-1"));
  p = evs_iter_type(it, &len);
  CHECK(BytesEq(p, len, "OrderPlaced"));
  p = evs_iter_content_type(it, &len);
  CHECK(BytesEq(p, len, "application/json"));
  p = evs_iter_data(it, &len);
  CHECK(BytesEq(p, len, "{\"n\":1}"));
  p = evs_iter_metadata(it, &len);
  CHECK(p != NULL && len == 0);
  CHECK(evs_iter_type(it, NULL) != NULL); /* len not wanted */
  CHECK(evs_iter_version(it) == 0 && evs_iter_position(it) == 0);
  CHECK(evs_iter_timestamp_ms(it) > 1500000000000LL);
  CHECK(evs_iter_id(it) != NULL);
  evs_iter_next(it);
  CHECK(evs_iter_version(it) == 1);
  p = evs_iter_metadata(it, &len);
  CHECK(BytesEq(p, len, "meta"));
  CHECK(CountEvents(it) == 3);
  /* At the end: accessors answer NULL / 0 and do not crash. */
  CHECK(evs_iter_valid(it) == 0);
  len = 5;
  CHECK(evs_iter_stream(it, &len) == NULL && len == 0);
  CHECK(evs_iter_type(it, &len) == NULL);
  CHECK(evs_iter_content_type(it, &len) == NULL);
  CHECK(evs_iter_data(it, &len) == NULL);
  CHECK(evs_iter_metadata(it, NULL) == NULL);
  CHECK(evs_iter_id(it) == NULL);
  CHECK(evs_iter_version(it) == 0 && evs_iter_position(it) == 0 && evs_iter_timestamp_ms(it) == 0);
  evs_iter_next(it); /* past the end: nothing happens */
  EXPECT_MSG(EVS_OK, evs_iter_status(it, &msg));
  /* Seek goes back. */
  evs_iter_seek(it, 2);
  CHECK(evs_iter_valid(it) && evs_iter_version(it) == 2);
  evs_iter_destroy(it);

  /* Backward from the end, with a limit. */
  EXPECT_MSG(EVS_OK, evs_read_stream(s, STR("order-1"), EVS_END, EVS_BACKWARD, 2, &it, &msg));
  CHECK(evs_iter_valid(it) && evs_iter_version(it) == 3);
  evs_iter_next(it);
  CHECK(evs_iter_valid(it) && evs_iter_version(it) == 2);
  evs_iter_next(it);
  CHECK(!evs_iter_valid(it));
  evs_iter_seek(it, 1); /* the limit counts afresh */
  CHECK(CountEvents(it) == 2);
  evs_iter_destroy(it);

  /* Read errors. */
  it = (evs_iter_t*)&g_checks;
  EXPECT_MSG(EVS_NOT_FOUND, evs_read_stream(s, STR("order-404"), 0, EVS_FORWARD, EVS_NO_LIMIT, &it, &msg));
  CHECK(it == NULL);
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_read_stream(s, "\xff", 1, 0, EVS_FORWARD, EVS_NO_LIMIT, &it, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_read_stream(s, NULL, 0, 0, EVS_FORWARD, EVS_NO_LIMIT, &it, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_read_stream(s, NULL, 4, 0, EVS_FORWARD, EVS_NO_LIMIT, &it, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_read_stream(s, STR("order-1"), 0, 2, EVS_NO_LIMIT, &it, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_read_stream(s, STR("order-1"), 0, -1, EVS_NO_LIMIT, &it, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_read_stream(s, STR("order-1"), 0, EVS_FORWARD, EVS_NO_LIMIT, NULL, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_read_stream(NULL, STR("order-1"), 0, EVS_FORWARD, EVS_NO_LIMIT, &it, &msg));

  /* The global log: every position once, in order. */
  EXPECT_MSG(EVS_OK, evs_store_stats(s, &st, &msg));
  EXPECT_MSG(EVS_OK, evs_read_all(s, 0, EVS_FORWARD, EVS_NO_LIMIT, &it, &msg));
  {
    uint64_t n = 0;
    int in_order = 1;
    for (; evs_iter_valid(it); evs_iter_next(it), n++)
      if (evs_iter_position(it) != n) in_order = 0;
    CHECK(in_order);
    CHECK(n == st.next_position);
  }
  EXPECT_MSG(EVS_OK, evs_iter_status(it, &msg));
  evs_iter_destroy(it);
  EXPECT_MSG(EVS_OK, evs_read_all(s, EVS_END, EVS_BACKWARD, 1, &it, &msg));
  CHECK(evs_iter_valid(it) && evs_iter_position(it) == st.next_position - 1);
  evs_iter_destroy(it);
  EXPECT_MSG(EVS_OK, evs_read_all(s, st.next_position, EVS_FORWARD, EVS_NO_LIMIT, &it, &msg));
  CHECK(!evs_iter_valid(it));
  evs_iter_destroy(it);
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_read_all(s, 0, 7, EVS_NO_LIMIT, &it, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_read_all(s, 0, EVS_FORWARD, EVS_NO_LIMIT, NULL, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_read_all(NULL, 0, EVS_FORWARD, EVS_NO_LIMIT, &it, &msg));

  /* A category: order-1 (4 events) and order-2 (3), in global order. */
  EXPECT_MSG(EVS_OK, evs_read_category(s, STR("order"), 0, EVS_FORWARD, EVS_NO_LIMIT, &it, &msg));
  {
    uint64_t n = 0;
    int ok = 1;
    for (; evs_iter_valid(it); evs_iter_next(it), n++) {
      const char* name = evs_iter_stream(it, &len);
      if (len < 6 || memcmp(name, "order-", 6) != 0) ok = 0;
      if (n > 0 && evs_iter_position(it) <= last) ok = 0;
      last = evs_iter_position(it);
    }
    CHECK(ok);
    CHECK(n == 7);
  }
  evs_iter_destroy(it);
  EXPECT_MSG(EVS_OK, evs_read_category(s, STR("order"), 4, EVS_FORWARD, 1, &it, &msg));
  CHECK(evs_iter_valid(it) && evs_iter_position(it) == 4);
  evs_iter_destroy(it);
  EXPECT_MSG(EVS_OK, evs_read_category(s, STR("nothing"), 0, EVS_FORWARD, EVS_NO_LIMIT, &it, &msg));
  CHECK(!evs_iter_valid(it));
  evs_iter_destroy(it);
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_read_category(s, STR("order-1"), 0, EVS_FORWARD, EVS_NO_LIMIT, &it, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_read_category(s, "\xc3", 1, 0, EVS_FORWARD, EVS_NO_LIMIT, &it, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_read_category(s, NULL, 0, 0, EVS_FORWARD, EVS_NO_LIMIT, &it, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_read_category(s, STR("order"), 0, 3, EVS_NO_LIMIT, &it, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_read_category(NULL, STR("order"), 0, EVS_FORWARD, EVS_NO_LIMIT, &it, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_read_category(s, STR("order"), 0, EVS_FORWARD, EVS_NO_LIMIT, NULL, &msg));

  /* An event type, backward. */
  EXPECT_MSG(EVS_OK, evs_read_type(s, STR("OrderPaid"), EVS_END, EVS_BACKWARD, EVS_NO_LIMIT, &it, &msg));
  {
    uint64_t n = 0;
    int ok = 1;
    for (; evs_iter_valid(it); evs_iter_next(it), n++) {
      p = evs_iter_type(it, &len);
      if (!BytesEq(p, len, "OrderPaid")) ok = 0;
      if (n > 0 && evs_iter_position(it) >= last) ok = 0;
      last = evs_iter_position(it);
    }
    CHECK(ok);
    CHECK(n == 3); /* order-1, order-2, payment-1 */
  }
  evs_iter_destroy(it);
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_read_type(s, "\xe2\x82", 2, 0, EVS_FORWARD, EVS_NO_LIMIT, &it, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_read_type(s, NULL, 0, 0, EVS_FORWARD, EVS_NO_LIMIT, &it, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_read_type(s, STR("OrderPaid"), 0, 9, EVS_NO_LIMIT, &it, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_read_type(NULL, STR("OrderPaid"), 0, EVS_FORWARD, EVS_NO_LIMIT, &it, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_read_type(s, STR("OrderPaid"), 0, EVS_FORWARD, EVS_NO_LIMIT, NULL, &msg));

  /* One event by position. */
  EXPECT_MSG(EVS_OK, evs_read_event(s, 2, &it, &msg));
  CHECK(evs_iter_valid(it) && evs_iter_position(it) == 2);
  p = evs_iter_type(it, &len);
  CHECK(BytesEq(p, len, "OrderShipped"));
  evs_iter_next(it);
  CHECK(!evs_iter_valid(it));
  evs_iter_destroy(it);
  it = (evs_iter_t*)&g_checks;
  EXPECT_MSG(EVS_NOT_FOUND, evs_read_event(s, st.next_position, &it, &msg));
  CHECK(it == NULL);
  EXPECT_MSG(EVS_NOT_FOUND, evs_read_event(s, UINT64_MAX, &it, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_read_event(NULL, 0, &it, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_read_event(s, 0, NULL, &msg));

  /* Iterator functions on NULL. */
  CHECK(evs_iter_valid(NULL) == 0);
  evs_iter_next(NULL);
  evs_iter_seek(NULL, 0);
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_iter_status(NULL, &msg));
  len = 3;
  CHECK(evs_iter_stream(NULL, &len) == NULL && len == 0);
  CHECK(evs_iter_type(NULL, NULL) == NULL);
  CHECK(evs_iter_content_type(NULL, NULL) == NULL);
  CHECK(evs_iter_data(NULL, NULL) == NULL);
  CHECK(evs_iter_metadata(NULL, NULL) == NULL);
  CHECK(evs_iter_id(NULL) == NULL);
  CHECK(evs_iter_version(NULL) == 0 && evs_iter_position(NULL) == 0);
  CHECK(evs_iter_timestamp_ms(NULL) == 0);
  evs_iter_destroy(NULL);

  /* An iterator sees the log as it was when the read began. */
  EXPECT_MSG(EVS_OK, evs_read_stream(s, STR("order-2"), 0, EVS_FORWARD, EVS_NO_LIMIT, &it, &msg));
  {
    evs_event_t e = Ev("OrderPaid", "{}");
    EXPECT_MSG(EVS_OK, evs_append(s, STR("order-2"), EVS_EXPECT_ANY, &e, 1, NULL, &msg));
  }
  CHECK(CountEvents(it) == 3);
  evs_iter_destroy(it);

  /* Stream heads. */
  {
    uint64_t v = 7, pos = 7;
    EXPECT_MSG(EVS_OK, evs_stream_head(s, STR("order-2"), &v, &pos, &msg));
    CHECK(v == 3);
    EXPECT_MSG(EVS_OK, evs_stream_head(s, STR("order-2"), NULL, NULL, &msg));
    v = 7;
    EXPECT_MSG(EVS_NOT_FOUND, evs_stream_head(s, STR("order-404"), &v, &pos, &msg));
    CHECK(v == 7);
    EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_stream_head(s, "\xff", 1, &v, &pos, &msg));
    EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_stream_head(s, NULL, 0, &v, &pos, &msg));
    EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_stream_head(s, NULL, 2, &v, &pos, &msg));
    EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_stream_head(NULL, STR("order-2"), &v, &pos, &msg));
  }
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_store_stats(NULL, &st, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_store_stats(s, NULL, &msg));
}

/* ---- close and lifetime ---- */

static void TestClose(const char* dir) {
  evs_store_t* s = Open(dir, NULL);
  evs_iter_t* it = NULL;
  evs_tx_t* tx = evs_tx_create();
  evs_event_t e = Ev("T", "{}");
  evs_store_stats_t st;
  uint64_t v;

  EXPECT_MSG(EVS_OK, evs_read_all(s, 0, EVS_FORWARD, EVS_NO_LIMIT, &it, &msg));
  EXPECT_MSG(EVS_BUSY, evs_store_close(s, &msg));
  /* Busy changed nothing: the store still works. */
  EXPECT_MSG(EVS_OK, evs_append(s, STR("close-1"), EVS_EXPECT_NO_STREAM, &e, 1, NULL, &msg));
  evs_iter_destroy(it);
  EXPECT_MSG(EVS_OK, evs_store_close(s, &msg));
  EXPECT_MSG(EVS_OK, evs_store_close(s, &msg)); /* twice is fine */
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_store_close(NULL, &msg));

  /* Everything after close is EVS_CLOSED. */
  EXPECT_MSG(EVS_CLOSED, evs_append(s, STR("close-1"), EVS_EXPECT_ANY, &e, 1, NULL, &msg));
  EXPECT_MSG(EVS_OK, evs_tx_add(tx, STR("close-2"), EVS_EXPECT_ANY, &e, 1, &msg));
  EXPECT_MSG(EVS_CLOSED, evs_tx_commit(s, tx, NULL, 0, NULL, &msg));
  it = (evs_iter_t*)&g_checks;
  EXPECT_MSG(EVS_CLOSED, evs_read_stream(s, STR("close-1"), 0, EVS_FORWARD, EVS_NO_LIMIT, &it, &msg));
  CHECK(it == NULL);
  EXPECT_MSG(EVS_CLOSED, evs_read_all(s, 0, EVS_FORWARD, EVS_NO_LIMIT, &it, &msg));
  EXPECT_MSG(EVS_CLOSED, evs_read_category(s, STR("close"), 0, EVS_FORWARD, EVS_NO_LIMIT, &it, &msg));
  EXPECT_MSG(EVS_CLOSED, evs_read_type(s, STR("T"), 0, EVS_FORWARD, EVS_NO_LIMIT, &it, &msg));
  EXPECT_MSG(EVS_CLOSED, evs_read_event(s, 0, &it, &msg));
  EXPECT_MSG(EVS_CLOSED, evs_stream_head(s, STR("close-1"), &v, NULL, &msg));
  EXPECT_MSG(EVS_CLOSED, evs_store_stats(s, &st, &msg));
  CHECK(strcmp(evs_store_path(s), dir) == 0);
  evs_store_destroy(s);

  /* Everything committed is there after reopening. */
  s = Open(dir, NULL);
  EXPECT_MSG(EVS_OK, evs_stream_head(s, STR("close-1"), &v, NULL, &msg));
  CHECK(v == 0);
  EXPECT_MSG(EVS_OK, evs_stream_head(s, STR("order-1"), &v, NULL, &msg));
  CHECK(v == 3);
  EXPECT_MSG(EVS_OK, evs_read_stream(s, STR("order-1"), 0, EVS_FORWARD, EVS_NO_LIMIT, &it, &msg));
  /* Destroying the handle while an iterator lives keeps the store open for it. */
  evs_store_destroy(s);
  CHECK(CountEvents(it) == 4);
  EXPECT_MSG(EVS_OK, evs_iter_status(it, &msg));
  evs_iter_destroy(it);
  /* ... and releases the directory once the iterator is gone. */
  s = Open(dir, NULL);
  evs_store_destroy(s);
  evs_tx_destroy(tx);
}

/* ---- the cache ---- */

static void TestCacheOptions(void) {
  evs_cache_options_t* o = evs_cache_options_create();
  evs_cache_t* c = NULL;
  CHECK(o != NULL);
  EXPECT_MSG(EVS_OK, evs_cache_options_set_capacity(o, 1, 100, &msg));
  EXPECT_MSG(EVS_OK, evs_cache_options_set_capacity(o, 2, 1000, &msg));
  EXPECT_MSG(EVS_OK, evs_cache_options_set_ttl_ms(o, 1, 0, &msg));
  EXPECT_MSG(EVS_OK, evs_cache_options_set_ttl_ms(o, 2, 60000, &msg));
  EXPECT_MSG(EVS_OK, evs_cache_options_set_shards(o, 1, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_cache_options_set_capacity(NULL, 1, 100, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_cache_options_set_capacity(o, 0, 100, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_cache_options_set_capacity(o, 3, 100, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_cache_options_set_ttl_ms(NULL, 1, 1, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_cache_options_set_ttl_ms(o, -1, 1, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_cache_options_set_ttl_ms(o, 1, UINT64_MAX, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_cache_options_set_shards(NULL, 1, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_cache_options_set_adaptive_split(NULL, 1, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_cache_create(o, NULL, &msg));
  EXPECT_MSG(EVS_OK, evs_cache_create(o, &c, &msg));
  CHECK(c != NULL);
  evs_cache_options_destroy(o); /* the cache keeps its copy */
  EXPECT_MSG(EVS_OK, evs_cache_put(c, STR("k"), STR("v"), 0, &msg));
  evs_cache_destroy(c);
  evs_cache_options_destroy(NULL);
  evs_cache_destroy(NULL);

  /* Without options nothing is cached: puts succeed and keep nothing. */
  EXPECT_MSG(EVS_OK, evs_cache_create(NULL, &c, &msg));
  EXPECT_MSG(EVS_OK, evs_cache_put(c, STR("k"), STR("v"), 0, &msg));
  {
    void* v = NULL;
    size_t n = 0;
    EXPECT_MSG(EVS_NOT_FOUND, evs_cache_get(c, STR("k"), &v, &n, &msg));
  }
  evs_cache_destroy(c);
}

static evs_cache_t* MakeCache(uint64_t l1, uint64_t l2) {
  evs_cache_options_t* o = evs_cache_options_create();
  evs_cache_t* c = NULL;
  evs_cache_options_set_capacity(o, 1, l1, NULL);
  evs_cache_options_set_capacity(o, 2, l2, NULL);
  evs_cache_options_set_shards(o, 1, NULL);
  if (evs_cache_create(o, &c, NULL) != EVS_OK) exit(2);
  evs_cache_options_destroy(o);
  return c;
}

/* With the adaptive split on, byte-weighted entries (the same weight in both
 * tiers) move the capacity to L1; without it the tiers keep theirs. */
static void TestCacheAdaptiveSplit(void) {
  int adaptive;
  for (adaptive = 0; adaptive <= 1; adaptive++) {
    evs_cache_options_t* o = evs_cache_options_create();
    evs_cache_t* c = NULL;
    uint64_t l1 = 0, l2 = 0, i;
    evs_cache_stats_t st;
    char key[16], value[24];
    CHECK(o != NULL);
    EXPECT_MSG(EVS_OK, evs_cache_options_set_capacity(o, 1, 2000, &msg));
    EXPECT_MSG(EVS_OK, evs_cache_options_set_capacity(o, 2, 14000, &msg));
    EXPECT_MSG(EVS_OK, evs_cache_options_set_shards(o, 1, &msg));
    EXPECT_MSG(EVS_OK, evs_cache_options_set_adaptive_split(o, adaptive, &msg));
    EXPECT_MSG(EVS_OK, evs_cache_create(o, &c, &msg));
    evs_cache_options_destroy(o);
    EXPECT_MSG(EVS_OK, evs_cache_capacity(c, &l1, &l2, &msg));
    CHECK(l1 == 2000 && l2 == 14000);
    for (i = 0; i < 20000; i++) {
      uint64_t k = (i * 7919) % 3000;
      void* v = NULL;
      size_t n = 0;
      snprintf(key, sizeof key, "k%llu", (unsigned long long)k);
      snprintf(value, sizeof value, "value-%llu", (unsigned long long)k);
      if (evs_cache_get(c, key, strlen(key), &v, &n, NULL) == EVS_OK) {
        CHECK(BytesEq(v, n, value));
        evs_free(v);
      } else {
        EXPECT_MSG(EVS_OK, evs_cache_put(c, key, strlen(key), value, strlen(value), 0, &msg));
      }
    }
    EXPECT_MSG(EVS_OK, evs_cache_capacity(c, &l1, NULL, &msg));
    EXPECT_MSG(EVS_OK, evs_cache_capacity(c, NULL, &l2, &msg));
    EXPECT_MSG(EVS_OK, evs_cache_stats(c, &st, &msg));
    if (adaptive) {
      CHECK(l1 == 15000);
      CHECK(l2 >= 1000 && l2 <= 14000);
    } else {
      CHECK(l1 == 2000 && l2 == 14000);
    }
    CHECK(st.l1.bytes <= l1 && st.l2.bytes <= l2);
    CHECK(st.l1.bytes + st.l2.bytes <= 16000);
    EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_cache_capacity(NULL, &l1, &l2, &msg));
    evs_cache_destroy(c);
  }
}

static void TestCacheBasics(void) {
  evs_cache_t* c = MakeCache(1000, 4000);
  evs_cache_stats_t st;
  void* v = (void*)"x";
  size_t n = 7;
  char big[5000];
  memset(big, 'b', sizeof big);

  EXPECT_MSG(EVS_NOT_FOUND, evs_cache_get(c, STR("k1"), &v, &n, &msg));
  CHECK(v == NULL && n == 0);
  EXPECT_MSG(EVS_OK, evs_cache_put(c, STR("k1"), STR("value one"), 0, &msg));
  EXPECT_MSG(EVS_OK, evs_cache_get(c, STR("k1"), &v, &n, &msg));
  CHECK(BytesEq(v, n, "value one"));
  evs_free(v);
  /* Replacing, empty values, binary keys. */
  EXPECT_MSG(EVS_OK, evs_cache_put(c, STR("k1"), STR("value 1"), 0, &msg));
  EXPECT_MSG(EVS_OK, evs_cache_get(c, STR("k1"), &v, &n, &msg));
  CHECK(BytesEq(v, n, "value 1"));
  evs_free(v);
  EXPECT_MSG(EVS_OK, evs_cache_put(c, "\0\1", 2, NULL, 0, 0, &msg));
  EXPECT_MSG(EVS_OK, evs_cache_get(c, "\0\1", 2, &v, &n, &msg));
  CHECK(v != NULL && n == 0);
  evs_free(v);
  EXPECT_MSG(EVS_NOT_FOUND, evs_cache_get(c, "\0\2", 2, &v, &n, &msg));
  EXPECT_MSG(EVS_OK, evs_cache_put(c, NULL, 0, STR("empty key"), 0, &msg));
  EXPECT_MSG(EVS_OK, evs_cache_get(c, NULL, 0, &v, &n, &msg));
  CHECK(BytesEq(v, n, "empty key"));
  evs_free(v);

  /* Too heavy for either tier. */
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_cache_put(c, STR("big"), big, sizeof big, 0, &msg));
  EXPECT_MSG(EVS_NOT_FOUND, evs_cache_get(c, STR("big"), &v, &n, &msg));

  /* Erase and clear. */
  EXPECT_MSG(EVS_OK, evs_cache_erase(c, STR("k1"), &msg));
  EXPECT_MSG(EVS_NOT_FOUND, evs_cache_erase(c, STR("k1"), &msg));
  EXPECT_MSG(EVS_NOT_FOUND, evs_cache_get(c, STR("k1"), &v, &n, &msg));
  EXPECT_MSG(EVS_OK, evs_cache_clear(c, &msg));
  EXPECT_MSG(EVS_NOT_FOUND, evs_cache_get(c, NULL, 0, &v, &n, &msg));

  /* Statistics. */
  EXPECT_MSG(EVS_OK, evs_cache_stats(c, &st, &msg));
  CHECK(st.l1.hits + st.l2.hits == 4);
  CHECK(st.misses == 5);
  CHECK(st.rejections == 1);
  CHECK(st.l1.entries == 0 && st.l2.entries == 0 && st.l1.bytes == 0);
  EXPECT_MSG(EVS_OK, evs_cache_reset_stats(c, &msg));
  EXPECT_MSG(EVS_OK, evs_cache_stats(c, &st, &msg));
  CHECK(st.l1.hits == 0 && st.misses == 0 && st.rejections == 0);

  /* L1 victims are demoted to L2, and L2 hits promoted back. Weights are
   * key + value bytes: 10 entries of 100 bytes overflow L1's 1000 bytes. */
  {
    char key[8], val[96];
    int i;
    memset(val, 'v', sizeof val);
    for (i = 0; i < 20; i++) {
      snprintf(key, sizeof key, "key%03d", i);
      val[0] = (char)('a' + i);
      EXPECT_MSG(EVS_OK, evs_cache_put(c, key, 6, val, sizeof val, 0, &msg));
    }
    EXPECT_MSG(EVS_OK, evs_cache_stats(c, &st, &msg));
    CHECK(st.l1.bytes <= 1000);
    CHECK(st.l1.demotions > 0);
    CHECK(st.l2.entries > 0);
    CHECK(st.l1.entries + st.l2.entries == 20);
    for (i = 0; i < 20; i++) {
      snprintf(key, sizeof key, "key%03d", i);
      EXPECT_MSG(EVS_OK, evs_cache_get(c, key, 6, &v, &n, &msg));
      CHECK(n == sizeof val && ((char*)v)[0] == (char)('a' + i));
      evs_free(v);
    }
    EXPECT_MSG(EVS_OK, evs_cache_stats(c, &st, &msg));
    CHECK(st.l2.hits > 0 && st.l2.promotions > 0);
  }

  /* Bad arguments. */
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_cache_get(NULL, STR("k"), &v, &n, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_cache_get(c, NULL, 1, &v, &n, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_cache_get(c, STR("k"), NULL, &n, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_cache_get(c, STR("k"), &v, NULL, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_cache_put(NULL, STR("k"), STR("v"), 0, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_cache_put(c, NULL, 1, STR("v"), 0, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_cache_put(c, STR("k"), NULL, 1, 0, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_cache_put(c, STR("k"), STR("v"), UINT64_MAX, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_cache_erase(NULL, STR("k"), &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_cache_erase(c, NULL, 1, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_cache_clear(NULL, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_cache_cleanup(NULL, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_cache_reset_stats(NULL, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_cache_stats(NULL, &st, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_cache_stats(c, NULL, &msg));
  evs_cache_destroy(c);
}

static void TestCacheTtl(void) {
  evs_cache_options_t* o = evs_cache_options_create();
  evs_cache_t* c = NULL;
  evs_cache_stats_t st;
  void* v;
  size_t n;
  evs_cache_options_set_capacity(o, 1, 1000, NULL);
  evs_cache_options_set_capacity(o, 2, 1000, NULL);
  evs_cache_options_set_ttl_ms(o, 1, 30, NULL);
  EXPECT_MSG(EVS_OK, evs_cache_create(o, &c, &msg));
  evs_cache_options_destroy(o);

  EXPECT_MSG(EVS_OK, evs_cache_put(c, STR("tier-ttl"), STR("v"), 0, &msg));
  EXPECT_MSG(EVS_OK, evs_cache_put(c, STR("entry-ttl"), STR("v"), 20, &msg));
  EXPECT_MSG(EVS_OK, evs_cache_put(c, STR("cleaned"), STR("v"), 20, &msg));
  EXPECT_MSG(EVS_OK, evs_cache_get(c, STR("entry-ttl"), &v, &n, &msg));
  evs_free(v);
  SleepMs(60);
  EXPECT_MSG(EVS_NOT_FOUND, evs_cache_get(c, STR("tier-ttl"), &v, &n, &msg));
  EXPECT_MSG(EVS_NOT_FOUND, evs_cache_get(c, STR("entry-ttl"), &v, &n, &msg));
  EXPECT_MSG(EVS_OK, evs_cache_cleanup(c, &msg));
  EXPECT_MSG(EVS_OK, evs_cache_stats(c, &st, &msg));
  CHECK(st.l1.expirations + st.l2.expirations == 3);
  CHECK(st.l1.entries + st.l2.entries == 0);
  evs_cache_destroy(c);
}

/* A loader that counts its calls and returns a value derived from the key,
 * or fails with the code in `fail`. */
typedef struct {
  atomic_int calls;
  int fail;
  long delay_ms;
} CountingLoader;

static int CountLoad(void* user, const void* key, size_t key_len, evs_cache_load_t* load) {
  CountingLoader* l = (CountingLoader*)user;
  char buf[64];
  int n;
  atomic_fetch_add(&l->calls, 1);
  if (l->delay_ms) SleepMs(l->delay_ms);
  if (l->fail) return l->fail;
  n = snprintf(buf, sizeof buf, "loaded:%.*s", (int)key_len, (const char*)key);
  return evs_cache_load_set_value(load, buf, (size_t)n, NULL);
}

/* A loader that calls back into the API: the same cache (other keys, and the
 * key it is loading), and a store. */
typedef struct {
  evs_cache_t* cache;
  evs_store_t* store;
  int same_key_rc;
  int nested_rc;
  int put_rc;
  int get_rc;
  int append_rc;
  int read_rc;
  uint64_t read_count;
} ReentrantLoader;

static int ReentrantLoad(void* user, const void* key, size_t key_len, evs_cache_load_t* load) {
  ReentrantLoader* r = (ReentrantLoader*)user;
  CountingLoader inner;
  void* v = NULL;
  size_t n = 0;
  evs_event_t e = Ev("Loaded", "{}");
  evs_iter_t* it = NULL;
  atomic_init(&inner.calls, 0);
  inner.fail = 0;
  inner.delay_ms = 0;

  r->same_key_rc = evs_cache_get_or_load(r->cache, key, key_len, CountLoad, &inner, 0, &v, &n, NULL);
  evs_free(v);
  r->nested_rc = evs_cache_get_or_load(r->cache, STR("inner"), CountLoad, &inner, 0, &v, &n, NULL);
  evs_free(v);
  r->put_rc = evs_cache_put(r->cache, STR("side"), STR("effect"), 0, NULL);
  r->get_rc = evs_cache_get(r->cache, STR("side"), &v, &n, NULL);
  evs_free(v);
  r->append_rc = evs_append(r->store, STR("loader-1"), EVS_EXPECT_ANY, &e, 1, NULL, NULL);
  r->read_rc = evs_read_stream(r->store, STR("loader-1"), 0, EVS_FORWARD, EVS_NO_LIMIT, &it, NULL);
  r->read_count = CountEvents(it);
  evs_iter_destroy(it);
  return evs_cache_load_set_value(load, STR("outer"), NULL);
}

typedef struct {
  evs_cache_t* cache;
  CountingLoader* loader;
  int rc;
  char value[64];
} LoadThread;

static int LoadThreadMain(void* arg) {
  LoadThread* t = (LoadThread*)arg;
  void* v = NULL;
  size_t n = 0;
  t->rc = evs_cache_get_or_load(t->cache, STR("shared"), CountLoad, t->loader, 0, &v, &n, NULL);
  if (t->rc == EVS_OK && n < sizeof t->value) {
    memcpy(t->value, v, n);
    t->value[n] = '\0';
  }
  evs_free(v);
  return 0;
}

static void TestCacheLoader(evs_store_t* store) {
  evs_cache_t* c = MakeCache(10000, 10000);
  CountingLoader l;
  evs_cache_stats_t st;
  void* v = NULL;
  size_t n = 0;
  atomic_init(&l.calls, 0);
  l.fail = 0;
  l.delay_ms = 0;

  /* A miss loads once; the next call is a hit. */
  EXPECT_MSG(EVS_OK, evs_cache_get_or_load(c, STR("a"), CountLoad, &l, 0, &v, &n, &msg));
  CHECK(BytesEq(v, n, "loaded:a"));
  evs_free(v);
  EXPECT_MSG(EVS_OK, evs_cache_get_or_load(c, STR("a"), CountLoad, &l, 0, &v, &n, &msg));
  CHECK(BytesEq(v, n, "loaded:a"));
  evs_free(v);
  CHECK(atomic_load(&l.calls) == 1);
  EXPECT_MSG(EVS_OK, evs_cache_get(c, STR("a"), &v, &n, &msg));
  evs_free(v);

  /* A failing loader: its code is returned and nothing is cached. */
  l.fail = EVS_IO_ERROR;
  EXPECT_MSG(EVS_IO_ERROR, evs_cache_get_or_load(c, STR("b"), CountLoad, &l, 0, &v, &n, &msg));
  CHECK(v == NULL && n == 0);
  EXPECT_MSG(EVS_NOT_FOUND, evs_cache_get(c, STR("b"), &v, &n, &msg));
  /* EVS_NO_MEMORY is the C API's own code, not a C++ status: it survives too,
   * for the caller that ran the loader and for callers that waited on it. */
  l.fail = EVS_NO_MEMORY;
  EXPECT_MSG(EVS_NO_MEMORY, evs_cache_get_or_load(c, STR("b"), CountLoad, &l, 0, &v, &n, &msg));
  {
    enum { kThreads = 4 };
    thrd_t th[kThreads];
    LoadThread lt[kThreads];
    int i, all_no_memory = 1;
    evs_cache_t* shared = MakeCache(1000, 0); /* keeps c's statistics exact */
    for (i = 0; i < kThreads; i++) {
      memset(&lt[i], 0, sizeof lt[i]);
      lt[i].cache = shared;
      lt[i].loader = &l;
      CHECK(thrd_create(&th[i], LoadThreadMain, &lt[i]) == thrd_success);
    }
    for (i = 0; i < kThreads; i++) {
      thrd_join(th[i], NULL);
      if (lt[i].rc != EVS_NO_MEMORY) all_no_memory = 0;
    }
    CHECK(all_no_memory);
    evs_cache_destroy(shared);
  }
  l.fail = 999; /* not an evstore code */
  EXPECT_MSG(EVS_ABORTED, evs_cache_get_or_load(c, STR("b"), CountLoad, &l, 0, &v, &n, &msg));
  l.fail = -1;
  EXPECT_MSG(EVS_ABORTED, evs_cache_get_or_load(c, STR("b"), CountLoad, &l, 0, &v, &n, &msg));
  l.fail = 0;
  EXPECT_MSG(EVS_OK, evs_cache_get_or_load(c, STR("b"), CountLoad, &l, 0, &v, &n, &msg));
  evs_free(v);
  EXPECT_MSG(EVS_OK, evs_cache_stats(c, &st, &msg));
  CHECK(st.loads == 6 && st.load_errors == 4);

  /* A loaded value with a TTL expires. */
  EXPECT_MSG(EVS_OK, evs_cache_get_or_load(c, STR("short"), CountLoad, &l, 10, &v, &n, &msg));
  evs_free(v);
  SleepMs(40);
  EXPECT_MSG(EVS_NOT_FOUND, evs_cache_get(c, STR("short"), &v, &n, &msg));

  /* The loader may call back into the API without deadlock. */
  {
    ReentrantLoader r;
    memset(&r, 0, sizeof r);
    r.cache = c;
    r.store = store;
    EXPECT_MSG(EVS_OK, evs_cache_get_or_load(c, STR("outer"), ReentrantLoad, &r, 0, &v, &n, &msg));
    CHECK(BytesEq(v, n, "outer"));
    evs_free(v);
    CHECK(r.same_key_rc == EVS_BUSY);
    CHECK(r.nested_rc == EVS_OK);
    CHECK(r.put_rc == EVS_OK && r.get_rc == EVS_OK);
    CHECK(r.append_rc == EVS_OK && r.read_rc == EVS_OK && r.read_count == 1);
    EXPECT_MSG(EVS_OK, evs_cache_get(c, STR("inner"), &v, &n, &msg));
    CHECK(BytesEq(v, n, "loaded:inner"));
    evs_free(v);
  }

  /* Concurrent misses on one key run the loader once. */
  {
    enum { kThreads = 8 };
    thrd_t th[kThreads];
    LoadThread lt[kThreads];
    int i, all_ok = 1;
    CountingLoader slow;
    atomic_init(&slow.calls, 0);
    slow.fail = 0;
    slow.delay_ms = 100;
    for (i = 0; i < kThreads; i++) {
      memset(&lt[i], 0, sizeof lt[i]);
      lt[i].cache = c;
      lt[i].loader = &slow;
      CHECK(thrd_create(&th[i], LoadThreadMain, &lt[i]) == thrd_success);
    }
    for (i = 0; i < kThreads; i++) {
      thrd_join(th[i], NULL);
      if (lt[i].rc != EVS_OK || strcmp(lt[i].value, "loaded:shared") != 0) all_ok = 0;
    }
    CHECK(all_ok);
    CHECK(atomic_load(&slow.calls) == 1);
  }

  /* Bad arguments. */
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_cache_get_or_load(NULL, STR("a"), CountLoad, &l, 0, &v, &n, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_cache_get_or_load(c, NULL, 1, CountLoad, &l, 0, &v, &n, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_cache_get_or_load(c, STR("a"), NULL, &l, 0, &v, &n, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_cache_get_or_load(c, STR("a"), CountLoad, &l, 0, NULL, &n, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_cache_get_or_load(c, STR("a"), CountLoad, &l, 0, &v, NULL, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT,
             evs_cache_get_or_load(c, STR("a"), CountLoad, &l, UINT64_MAX, &v, &n, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_cache_load_set_value(NULL, STR("v"), &msg));
  evs_cache_destroy(c);
}

/* A loader that checks evs_cache_load_set_value's own argument checks. */
static int SetValueChecks(void* user, const void* key, size_t key_len, evs_cache_load_t* load) {
  int* ok = (int*)user;
  (void)key;
  (void)key_len;
  *ok = evs_cache_load_set_value(load, NULL, 3, NULL) == EVS_INVALID_ARGUMENT &&
        evs_cache_load_set_value(load, STR("first"), NULL) == EVS_OK &&
        evs_cache_load_set_value(load, STR("second"), NULL) == EVS_OK;
  return EVS_OK;
}

static int NoValue(void* user, const void* key, size_t key_len, evs_cache_load_t* load) {
  (void)user;
  (void)key;
  (void)key_len;
  (void)load;
  return EVS_OK;
}

static void TestCacheLoadValue(void) {
  evs_cache_t* c = MakeCache(1000, 0);
  int ok = 0;
  void* v = NULL;
  size_t n = 9;
  EXPECT_MSG(EVS_OK, evs_cache_get_or_load(c, STR("k"), SetValueChecks, &ok, 0, &v, &n, &msg));
  CHECK(ok);
  CHECK(BytesEq(v, n, "second"));
  evs_free(v);
  EXPECT_MSG(EVS_OK, evs_cache_get_or_load(c, STR("none"), NoValue, NULL, 0, &v, &n, &msg));
  CHECK(v != NULL && n == 0);
  evs_free(v);
  evs_cache_destroy(c);
}

/* ---- concurrency on one store handle ---- */

typedef struct {
  evs_store_t* store;
  int id;
  int failures;
} AppendThread;

static int AppendThreadMain(void* arg) {
  AppendThread* t = (AppendThread*)arg;
  char stream[32];
  int i;
  evs_event_t e = Ev("Tick", "{}");
  snprintf(stream, sizeof stream, "worker-%d", t->id);
  for (i = 0; i < 50; i++) {
    if (evs_append(t->store, STR(stream), i == 0 ? EVS_EXPECT_NO_STREAM : i - 1, &e, 1, NULL, NULL) !=
        EVS_OK)
      t->failures++;
    if (evs_append(t->store, STR("shared-1"), EVS_EXPECT_ANY, &e, 1, NULL, NULL) != EVS_OK)
      t->failures++;
  }
  return 0;
}

static void TestConcurrentAppends(const char* dir) {
  enum { kThreads = 4 };
  evs_options_t* o = evs_options_create();
  evs_store_t* s;
  thrd_t th[kThreads];
  AppendThread at[kThreads];
  evs_store_stats_t st;
  uint64_t v = 0;
  int i, failures = 0;
  evs_options_set_sync(o, 0, NULL);
  s = Open(dir, o);
  evs_options_destroy(o);
  for (i = 0; i < kThreads; i++) {
    at[i].store = s;
    at[i].id = i;
    at[i].failures = 0;
    CHECK(thrd_create(&th[i], AppendThreadMain, &at[i]) == thrd_success);
  }
  for (i = 0; i < kThreads; i++) {
    thrd_join(th[i], NULL);
    failures += at[i].failures;
  }
  CHECK(failures == 0);
  EXPECT_MSG(EVS_OK, evs_stream_head(s, STR("shared-1"), &v, NULL, &msg));
  CHECK(v == kThreads * 50 - 1);
  EXPECT_MSG(EVS_OK, evs_store_stats(s, &st, &msg));
  CHECK(st.next_position == kThreads * 100);
  evs_store_destroy(s);
}

/* ---- the store's own caches ---- */

static void TestStoreCaches(const char* dir) {
  evs_options_t* o = evs_options_create();
  evs_store_t* s;
  evs_event_t ev = Ev("Cached", "{}");
  evs_append_result_t r;
  evs_cache_stats_t events, heads;
  evs_iter_t* it = NULL;
  int i;

  CHECK(o != NULL);
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_options_set_event_cache_l1_bytes(NULL, 1, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_options_set_event_cache_l2_bytes(NULL, 1, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_options_set_event_cache_ttl_ms(NULL, 1, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_options_set_head_cache_entries(NULL, 1, &msg));
  EXPECT_MSG(EVS_OK, evs_options_set_event_cache_l1_bytes(o, 1 << 20, &msg));
  EXPECT_MSG(EVS_OK, evs_options_set_event_cache_l2_bytes(o, 1 << 20, &msg));
  EXPECT_MSG(EVS_OK, evs_options_set_event_cache_ttl_ms(o, 60000, &msg));
  EXPECT_MSG(EVS_OK, evs_options_set_head_cache_entries(o, 16, &msg));
  s = Open(dir, o);
  EXPECT_MSG(EVS_OK, evs_append(s, STR("cached-1"), EVS_EXPECT_ANY, &ev, 1, &r, &msg));
  EXPECT_MSG(EVS_OK, evs_store_reset_cache_stats(s, &msg));
  for (i = 0; i < 3; i++) {
    EXPECT_MSG(EVS_OK, evs_read_event(s, 0, &it, &msg));
    CHECK(evs_iter_valid(it) && evs_iter_position(it) == 0);
    evs_iter_destroy(it);
  }
  EXPECT_MSG(EVS_OK, evs_store_cache_stats(s, &events, &heads, &msg));
  CHECK(events.misses == 1);
  CHECK(events.l1.hits + events.l2.hits == 2);
  CHECK(heads.l1.entries == 1);
  EXPECT_MSG(EVS_OK, evs_store_cache_stats(s, NULL, NULL, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_store_cache_stats(NULL, &events, &heads, &msg));
  EXPECT_MSG(EVS_INVALID_ARGUMENT, evs_store_reset_cache_stats(NULL, &msg));
  EXPECT_MSG(EVS_OK, evs_store_close(s, &msg));
  EXPECT_MSG(EVS_CLOSED, evs_store_cache_stats(s, &events, NULL, &msg));
  EXPECT_MSG(EVS_CLOSED, evs_store_reset_cache_stats(s, &msg));
  evs_store_destroy(s);
  evs_options_destroy(o);
}

int main(void) {
  evs_store_t* store;
  MakeRoot();
  TestStatusAndVersion();
  TestUuid();
  TestOptions();
  TestOpenErrors();

  store = Open(Sub("main"), NULL);
  TestAppend(store);
  TestIdempotency(store);
  TestTransactions(store);
  TestReads(store);
  TestCacheLoader(store);
  evs_store_destroy(store);
  TestClose(Sub("main"));

  TestCacheOptions();
  TestCacheAdaptiveSplit();
  TestCacheBasics();
  TestCacheTtl();
  TestCacheLoadValue();
  TestConcurrentAppends(Sub("concurrent"));
  TestStoreCaches(Sub("caches"));

  RemoveRoot();
  printf("%d checks, %d failed\n", g_checks, g_failures);
  return g_failures ? 1 : 0;
}
