// evstore-demo part: the order service's command side (order_commands.hpp).
#include "order_commands.hpp"

#include <atomic>
#include <cstdio>
#include <string>

#include "evstore/aggregate.hpp"
#include "evstore/command.hpp"

namespace evdemo {

using namespace evstore;

namespace {

int Fail(const char* what, const Status& s) {
  std::fprintf(stderr, "evstore-demo: %s: %s\n", what, s.ToString().c_str());
  return 1;
}

struct Order {
  bool placed = false;
  bool confirmed = false;
  int items = 0;
};

EventData Event(std::string type, std::string json) {
  EventData e;
  e.type = std::move(type);
  e.data = std::move(json);
  e.content_type = "application/json";
  return e;
}

AggregateType<Order> OrderType() {
  AggregateType<Order> t;
  t.evolve = [](Order o, const EventView& e) {
    if (e.type == "OrderPlaced") o.placed = true;
    if (e.type == "ItemAdded") o.items++;
    if (e.type == "OrderConfirmed") o.confirmed = true;
    return o;
  };
  t.codec.encode = [](const Order& o) {
    return std::to_string(o.placed) + std::to_string(o.confirmed) + std::to_string(o.items);
  };
  t.codec.decode = [](std::string_view b) -> Result<Order> {
    if (b.size() < 3) return Status::Corruption("order state too short");
    return Order{b[0] == '1', b[1] == '1', std::stoi(std::string(b.substr(2)))};
  };
  return t;
}

Command Cmd(std::string type, std::string order, std::string payload, std::string id) {
  Command c;
  c.type = std::move(type);
  c.stream = std::move(order);
  c.payload = std::move(payload);
  c.id = std::move(id);
  c.correlation_id = "checkout-of-" + c.stream;
  return c;
}

void Print(const char* what, const CommandResult& r) {
  if (!r.accepted()) {
    std::printf("  %-34s refused: %s (%s)%s\n", what, r.error->code.c_str(), r.error->message.c_str(),
                r.from_log ? ", answered from the command log" : "");
    return;
  }
  if (r.from_log) {
    std::printf("  %-34s accepted at position %llu: answered from the command log, nothing appended\n",
                what, (unsigned long long)r.append.first_position);
    return;
  }
  std::printf("  %-34s accepted: %llu event(s) at position %llu, %u tr%s\n", what,
              (unsigned long long)r.events, (unsigned long long)r.append.first_position, r.tries,
              r.tries == 1 ? "y" : "ies (a conflict, decided again on the newer state)");
}

}  // namespace

int RunOrderCommands(Store& store) {
  std::printf("\ncommand side (an order aggregate, a command bus, the command log):\n");
  AggregateOptions ao;
  ao.name = "order";
  ao.snapshots.every_events = 20;
  auto orders = Aggregate<Order>::open(store, ao, OrderType());
  if (!orders.ok()) return Fail("aggregate", orders.status());
  auto bus = CommandBus::Create(store);
  if (!bus.ok()) return Fail("command bus", bus.status());

  // The first AddItem lets another clerk write to the order between its
  // decision and its append: the append conflicts, and the bus decides again
  // on the newer state.
  std::atomic<bool> interfere{true};
  Status reg = (*bus)->register_handler<Order>(
      "PlaceOrder", *orders, [](const Order& o, const Command& c) {
        if (o.placed) return Decision::Reject("already_placed", c.stream + " exists");
        return Decision::Accept({Event("OrderPlaced", "{\"customer\":\"" + c.payload + "\"}")});
      });
  if (reg.ok())
    reg = (*bus)->register_handler<Order>(
        "AddItem", *orders, [&](const Order& o, const Command& c) {
          if (!o.placed) return Decision::Reject("no_order", c.stream + " was never placed");
          if (o.confirmed) return Decision::Reject("order_confirmed", "items cannot change after confirmation");
          if (interfere.exchange(false)) {
            // (Another process's write, made here only to show the retry.)
            (void)store.append(c.stream, ExpectedVersion::Any(),
                               Event("ItemAdded", "{\"sku\":\"sku-pear\",\"qty\":1,\"by\":\"bob\"}"));
          }
          return Decision::Accept({Event("ItemAdded", "{\"sku\":\"" + c.payload + "\",\"qty\":1}")});
        });
  if (reg.ok())
    reg = (*bus)->register_handler<Order>(
        "ConfirmOrder", *orders, [](const Order& o, const Command&) {
          if (o.confirmed) return Decision::Reject("already_confirmed", "confirmed before");
          if (o.items == 0) return Decision::Reject("empty_order", "nothing to confirm");
          return Decision::Accept({Event("OrderConfirmed", "{\"items\":" + std::to_string(o.items) + "}")});
        });
  if (!reg.ok()) return Fail("register", reg);

  const std::string order = "order-cmd-" + std::to_string(store.stats()->next_position);
  auto handle = [&](const char* what, Command c) -> int {
    auto r = (*bus)->handle(c);
    if (!r.ok()) return Fail(what, r.status());
    Print(what, *r);
    return 0;
  };
  if (handle("PlaceOrder", Cmd("PlaceOrder", order, "c9", "place-" + order)) ||
      handle("PlaceOrder again (a client retry)", Cmd("PlaceOrder", order, "c9", "place-" + order)) ||
      handle("AddItem sku-plum (bob writes too)", Cmd("AddItem", order, "sku-plum", "add-1-" + order)) ||
      handle("ConfirmOrder", Cmd("ConfirmOrder", order, "", "confirm-" + order)) ||
      handle("ConfirmOrder (a second clerk)", Cmd("ConfirmOrder", order, "", "confirm-2-" + order)) ||
      handle("ConfirmOrder (the second, retried)", Cmd("ConfirmOrder", order, "", "confirm-2-" + order)) ||
      handle("AddItem sku-apple", Cmd("AddItem", order, "sku-apple", "add-2-" + order)))
    return 1;

  std::printf("  %s's events, with their correlation and causation:\n", order.c_str());
  auto it = store.read_stream(order, 0);
  if (!it.ok()) return Fail("read", it.status());
  for (; it->Valid(); it->Next()) {
    const EventView& e = it->value();
    if (e.causation_id.empty()) {
      std::printf("    v%llu %-15s (bob's write, outside the command side)\n", (unsigned long long)e.version,
                  std::string(e.type).c_str());
      continue;
    }
    std::printf("    v%llu %-15s correlation=%.*s causation=%.*s\n", (unsigned long long)e.version,
                std::string(e.type).c_str(), (int)e.correlation_id.size(), e.correlation_id.data(),
                (int)e.causation_id.size(), e.causation_id.data());
  }
  if (!it->status().ok()) return Fail("read", it->status());
  auto loaded = orders->load(order);
  if (!loaded.ok()) return Fail("load", loaded.status());
  AggregateStats st = orders->stats();
  std::printf("  the order now: %d items, %s; loaded from the %s (%llu loads, %llu from the cache)\n",
              loaded->state->items, loaded->state->confirmed ? "confirmed" : "open",
              LoadSourceName(loaded->source), (unsigned long long)st.loads,
              (unsigned long long)(st.from_cache + st.from_cache_and_log));
  return 0;
}

}  // namespace evdemo
