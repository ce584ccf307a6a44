// evstore-demo part: read models (read_models.hpp).
#include "read_models.hpp"

#include <cstdio>
#include <string>

namespace evdemo {

using namespace evstore;

namespace {

constexpr int64_t kInitialStock = 100;

int Fail(const char* what, const Status& s) {
  std::fprintf(stderr, "evstore-demo: %s: %s\n", what, s.ToString().c_str());
  return 1;
}

// The value of "key":"..." or "key":123 in the demo's flat JSON.
std::string Field(const std::string& json, const std::string& key) {
  size_t k = json.find("\"" + key + "\":");
  if (k == std::string::npos) return {};
  size_t v = k + key.size() + 3;
  if (v < json.size() && json[v] == '"') {
    size_t end = json.find('"', v + 1);
    return end == std::string::npos ? std::string() : json.substr(v + 1, end - v - 1);
  }
  size_t end = json.find_first_of(",}", v);
  return json.substr(v, end == std::string::npos ? std::string::npos : end - v);
}

// Adds `delta` to the integer under `key` (absent: `initial`).
Status Add(ProjectionState& st, const std::string& key, int64_t delta, int64_t initial = 0) {
  auto cur = st.get(key);
  if (!cur.ok() && !cur.status().IsNotFound()) return cur.status();
  int64_t v = cur.ok() ? std::stoll(*cur) : initial;
  return st.put(key, std::to_string(v + delta));
}

// Items per order, and orders per customer.
Status OrderTotals(const RecordedEvent& e, ProjectionState& st) {
  if (e.type == "OrderPlaced") return Add(st, "customer/" + Field(e.data, "customer"), 1);
  if (e.type == "ItemAdded") {
    std::string qty = Field(e.data, "qty");
    return Add(st, "order/" + e.stream, qty.empty() ? 1 : std::stoll(qty));
  }
  return Status::OK();
}

// Units left per SKU, starting from kInitialStock.
Status StockPerSku(const RecordedEvent& e, ProjectionState& st) {
  std::string qty = Field(e.data, "qty");
  return Add(st, "sku/" + Field(e.data, "sku"), -(qty.empty() ? 1 : std::stoll(qty)), kInitialStock);
}

}  // namespace

int RunReadModels(Store& store) {
  std::printf("\nread models (projections, exactly once):\n");
  ProjectionOptions totals_opts;
  totals_opts.filter = SubscriptionFilter::Category("order");
  auto totals = store.run_projection("order-totals", totals_opts, OrderTotals);
  if (!totals.ok()) return Fail("run_projection order-totals", totals.status());
  ProjectionOptions stock_opts;
  stock_opts.filter = SubscriptionFilter::Types({"ItemAdded"});
  auto stock = store.run_projection("stock-per-sku", stock_opts, StockPerSku);
  if (!stock.ok()) return Fail("run_projection stock-per-sku", stock.status());

  // Read your own write: wait until both have folded in everything so far.
  const uint64_t end = store.stats()->next_position;
  for (Projection* p : {totals->get(), stock->get()}) {
    Status w = p->wait_for(end, std::chrono::seconds(30));
    if (!w.ok()) return Fail("wait_for", w);
  }
  auto orders = store.projection_scan("order-totals", "order/", {}, 3);
  if (!orders.ok()) return Fail("projection_scan", orders.status());
  std::printf("  order-totals, first orders by key: ");
  for (const auto& e : *orders) std::printf("%s=%s items  ", e.key.substr(6).c_str(), e.value.c_str());
  auto c0 = store.projection_get("order-totals", "customer/c0");
  if (!c0.ok()) return Fail("projection_get", c0.status());
  std::printf("\n  order-totals, customer c0 placed %s orders\n", c0->c_str());
  auto skus = store.projection_scan("stock-per-sku", "sku/");
  if (!skus.ok()) return Fail("projection_scan", skus.status());
  std::printf("  stock-per-sku: ");
  for (const auto& e : *skus) std::printf("%s=%s  ", e.key.substr(4).c_str(), e.value.c_str());
  ProjectionStatus st = (*stock)->status();
  std::printf("\n  stock-per-sku is at position %llu, %llu behind the log, %llu events folded this run\n",
              (unsigned long long)st.position, (unsigned long long)st.lag_events,
              (unsigned long long)st.events_handled);

  // A point-in-time view: the read model and the log it was built from
  // agree. A snapshot holds the store (close() waits for it): keep it short.
  {
    auto snap = store.snapshot();
    if (!snap.ok()) return Fail("snapshot", snap.status());
    auto info = snap->projection_info("stock-per-sku");
    if (!info.ok()) return Fail("projection_info", info.status());
    std::printf("  snapshot at position %llu sees stock-per-sku at position %llu\n",
                (unsigned long long)snap->position(), (unsigned long long)info->position);
  }

  // A subscriber handles order events, checkpoints, stops, and resumes after
  // its checkpoint (as after a restart).
  std::printf("\na subscriber with a checkpoint:\n");
  SubscribeOptions so;
  so.filter = SubscriptionFilter::Category("order");
  so.checkpoint = "demo-mailer";
  so.max_batch = 4;
  uint64_t resumed_from = 0;
  {
    auto sub = store.subscribe(so);
    if (!sub.ok()) return Fail("subscribe", sub.status());
    resumed_from = sub->position();
    auto d = sub->next(std::chrono::seconds(5));
    if (!d.ok()) return Fail("next", d.status());
    std::printf("  starts at position %llu, handles %zu events, checkpoints position %llu, stops\n",
                (unsigned long long)resumed_from, d->events.size(), (unsigned long long)d->position);
    Status cs = sub->checkpoint();
    if (!cs.ok()) return Fail("checkpoint", cs);
  }
  auto sub = store.subscribe(so);
  if (!sub.ok()) return Fail("subscribe", sub.status());
  std::printf("  resubscribes: resumes at position %llu", (unsigned long long)sub->position());
  uint64_t delivered = 0;
  for (;;) {
    auto d = sub->next(std::chrono::seconds(5));
    if (!d.ok()) return Fail("next", d.status());
    delivered += d->events.size();
    if (d->kind == Delivery::Kind::kCaughtUp) {
      std::printf(", catches up with %llu more events, live from position %llu\n",
                  (unsigned long long)delivered, (unsigned long long)d->position);
      break;
    }
  }
  return sub->checkpoint().ok() ? 0 : Fail("checkpoint", Status::IOError("checkpoint failed"));
}

}  // namespace evdemo
