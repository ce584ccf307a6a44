// evstore-demo [DIR]: a small order service on evstore.
//
// Opens (or creates) a store in DIR (default ./evstore-demo-data), places
// orders that write to several streams in one transaction, reads them back,
// shows an optimistic-concurrency conflict being resolved, retries an append
// idempotently, runs a checkout saga, handles commands on an order aggregate
// (a conflict retried, a repeated command id answered from the command log),
// keeps read models (projections) and a checkpointed subscriber, reopens the
// store and prints a summary.
#include <cstdio>
#include <string>
#include <vector>

#include "checkout_saga.hpp"
#include "order_commands.hpp"
#include "read_models.hpp"
#include "evstore/store.hpp"
#include "evstore/version.h"

using namespace evstore;

namespace {

int Fail(const char* what, const Status& s) {
  std::fprintf(stderr, "evstore-demo: %s: %s\n", what, s.ToString().c_str());
  return 1;
}

EventData Event(std::string type, std::string json) {
  EventData e;
  e.type = std::move(type);
  e.data = std::move(json);
  e.content_type = "application/json";
  return e;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = argc > 1 ? argv[1] : "./evstore-demo-data";
  if (argc > 2 || dir == "--help" || dir == "-h") {
    std::printf("usage: evstore-demo [DIR]   (default ./evstore-demo-data)\n");
    return argc > 2 ? 2 : 0;
  }
  std::printf("evstore %s demo: an order service in %s\n\n", EVSTORE_VERSION_STRING, dir.c_str());

  auto opened = Store::open(dir);
  if (!opened.ok()) return Fail("open", opened.status());
  Store store = std::move(opened).value();
  uint64_t start = store.stats()->next_position;
  if (start > 0) std::printf("the store already holds %llu events; adding more\n", (unsigned long long)start);

  // 1. Place orders: each writes the order stream and reserves stock in the
  //    inventory stream, all or nothing.
  const char* skus[] = {"sku-apple", "sku-pear", "sku-plum"};
  const int kOrders = 6;
  std::string first_order;
  for (int i = 0; i < kOrders; i++) {
    std::string order = "order-" + std::to_string(start + i);
    if (first_order.empty()) first_order = order;
    std::string sku = skus[i % 3];
    std::vector<StreamAppend> tx = {
        {order, ExpectedVersion::NoStream(),
         {Event("OrderPlaced", "{\"customer\":\"c" + std::to_string(i) + "\"}"),
          Event("ItemAdded", "{\"sku\":\"" + sku + "\",\"qty\":" + std::to_string(1 + i % 3) + "}")}},
        {"inventory-" + sku, ExpectedVersion::Any(),
         {Event("StockReserved", "{\"order\":\"" + order + "\"}")}},
    };
    auto r = store.append_multi(tx);
    if (!r.ok()) return Fail("place order", r.status());
    std::printf("placed %-10s -> versions %llu..%llu, positions %llu..%llu (+ inventory-%s v%llu)\n",
                order.c_str(), (unsigned long long)(*r)[0].first_version,
                (unsigned long long)(*r)[0].last_version, (unsigned long long)(*r)[0].first_position,
                (unsigned long long)(*r)[0].last_position, sku.c_str(),
                (unsigned long long)(*r)[1].last_version);
  }

  // 2. Read one order back.
  std::printf("\n%s reads back as:\n", first_order.c_str());
  {
    auto it = store.read_stream(first_order, 0);
    if (!it.ok()) return Fail("read", it.status());
    for (; it->Valid(); it->Next()) {
      const EventView& e = it->value();
      std::printf("  v%llu @%llu %-12s %.*s\n", (unsigned long long)e.version,
                  (unsigned long long)e.position, std::string(e.type).c_str(), (int)e.data.size(),
                  e.data.data());
    }
    if (!it->status().ok()) return Fail("read", it->status());
  }

  // 3. Two clerks confirm the same order from the same version: the second
  //    one conflicts, re-reads the head and retries.
  std::printf("\ntwo clerks update %s concurrently:\n", first_order.c_str());
  auto head = store.stream_head(first_order);
  if (!head.ok()) return Fail("head", head.status());
  ExpectedVersion seen = ExpectedVersion::Exact(head->last_version);
  auto a = store.append(first_order, seen, Event("OrderConfirmed", "{\"by\":\"alice\"}"));
  if (!a.ok()) return Fail("alice", a.status());
  std::printf("  alice appends at expected version %llu: ok, now v%llu\n",
              (unsigned long long)head->last_version, (unsigned long long)a->last_version);
  auto b = store.append(first_order, seen, Event("OrderConfirmed", "{\"by\":\"bob\"}"));
  if (!b.status().IsWrongExpectedVersion()) return Fail("bob should have conflicted", b.status());
  std::printf("  bob appends at expected version %llu: %s\n", (unsigned long long)head->last_version,
              b.status().ToString().c_str());
  auto b2 = store.append(first_order, ExpectedVersion::Exact(b.status().actual_version()),
                         Event("NoteAdded", "{\"by\":\"bob\",\"note\":\"already confirmed\"}"));
  if (!b2.ok()) return Fail("bob retry", b2.status());
  std::printf("  bob re-reads (actual version %lld) and adds a note instead: ok, now v%llu\n",
              (long long)b.status().actual_version(), (unsigned long long)b2->last_version);

  // 4. A payment whose acknowledgement was lost is retried with the same
  //    event id: the store recognises it and writes nothing twice.
  std::printf("\nidempotent retry:\n");
  EventData paid = Event("PaymentReceived", "{\"amount\":42}");
  paid.id = Uuid::Random();
  auto p1 = store.append(first_order, ExpectedVersion::Any(), paid);
  if (!p1.ok()) return Fail("payment", p1.status());
  auto p2 = store.append(first_order, ExpectedVersion::Any(), paid);
  if (!p2.ok()) return Fail("payment retry", p2.status());
  std::printf("  first append: position %llu; retry: position %llu, replay=%s\n",
              (unsigned long long)p1->first_position, (unsigned long long)p2->first_position,
              p2->idempotent_replay ? "yes" : "no");

  // [demo-parts] Further demo parts run here, on the open store.
  if (evdemo::RunCheckoutSaga(store) != 0) return 1;
  if (evdemo::RunOrderCommands(store) != 0) return 1;
  if (evdemo::RunReadModels(store) != 0) return 1;

  // 5. Reopen and summarise.
  Status cs = store.close();
  if (!cs.ok()) return Fail("close", cs);
  auto re = Store::open(dir);
  if (!re.ok()) return Fail("reopen", re.status());
  Store again = std::move(re).value();
  auto st = again.stats();
  uint64_t orders = 0, reserved = 0;
  {
    auto it = again.read_category("order", 0);
    if (!it.ok()) return Fail("read category", it.status());
    for (; it->Valid(); it->Next()) orders++;
    auto rt = again.read_type("StockReserved", 0);
    if (!rt.ok()) return Fail("read type", rt.status());
    for (; rt->Valid(); rt->Next()) reserved++;
  }
  auto h = again.stream_head(first_order);
  if (!h.ok()) return Fail("head after reopen", h.status());
  std::printf("\nafter reopening %s:\n", dir.c_str());
  std::printf("  events in the log:          %llu\n", (unsigned long long)st->next_position);
  std::printf("  events in category 'order': %llu\n", (unsigned long long)orders);
  std::printf("  StockReserved events:       %llu\n", (unsigned long long)reserved);
  std::printf("  %s is at version:     %llu\n", first_order.c_str(), (unsigned long long)h->last_version);
  Status ac = again.close();
  if (!ac.ok()) return Fail("close", ac);
  std::printf("\ndone.\n");
  return 0;
}
