// The checkout saga: reserve stock, charge the payment, arrange shipping.
// Each step appends its event to the order's "checkout-" stream in the same
// commit as the step's completion; compensations release the stock and
// refund the payment. Failures are injected by order number:
//   n % 7 == 3   the card is declined (stock is released),
//   n % 11 == 5  no carrier is available (payment refunded, stock released),
//   n % 5 == 0   the payment gateway times out once (retried),
//   n == 13      the refund service is down: the saga gets stuck until the
//                service is back and an operator retries it.
#include "checkout_saga.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>
#include <vector>

#include "evstore/saga.hpp"

namespace evdemo {
namespace {

using namespace evstore;
using namespace std::chrono_literals;

constexpr int kOrders = 40;
constexpr int kStartStock = 100;

int Fail(const char* what, const Status& s) {
  std::fprintf(stderr, "evstore-demo: checkout saga: %s: %s\n", what, s.ToString().c_str());
  return 1;
}

int OrderNumber(std::string_view input) { return std::stoi(std::string(input)); }

std::vector<StreamAppend> Emit(const StepContext& c, const char* type) {
  EventData e;
  e.id = c.event_id(0);
  e.type = type;
  e.content_type = "application/json";
  e.data = "{\"order\":" + std::string(c.input) + ",\"attempt\":" + std::to_string(c.attempt) + "}";
  return {StreamAppend{"checkout-" + std::string(c.saga_id), ExpectedVersion::Any(), {e}}};
}

}  // namespace

int RunCheckoutSaga(Store& store) {
  std::printf("\ncheckout saga (reserve stock -> charge payment -> arrange shipping):\n");
  std::atomic<int> stock{kStartStock};
  std::atomic<bool> refunds_up{false};

  SagaDefinition checkout;
  checkout.name = "checkout";
  RetryPolicy quick;
  quick.max_attempts = 3;
  quick.initial_backoff = 5ms;
  quick.max_backoff = 20ms;

  StepDefinition reserve;
  reserve.name = "reserve-stock";
  reserve.action = [&](const StepContext& c) {
    stock--;
    return StepResult::Success("1 unit", Emit(c, "StockHeld"));
  };
  reserve.compensation = [&](const StepContext& c) {
    stock++;
    return StepResult::Success({}, Emit(c, "StockReleased"));
  };
  reserve.retry = quick;
  reserve.compensation_retry = quick;

  StepDefinition charge;
  charge.name = "charge-payment";
  charge.action = [](const StepContext& c) {
    int n = OrderNumber(c.input);
    if (n % 5 == 0 && c.attempt == 1) return StepResult::Retry("payment gateway timed out");
    if (n % 7 == 3) return StepResult::Fail("card declined");
    return StepResult::Success("receipt-" + std::to_string(n), Emit(c, "PaymentCharged"));
  };
  charge.compensation = [&](const StepContext& c) {
    if (OrderNumber(c.input) == 13 && !refunds_up) return StepResult::Retry("refund service down");
    return StepResult::Success({}, Emit(c, "PaymentRefunded"));
  };
  charge.retry = quick;
  charge.compensation_retry = quick;

  StepDefinition ship;
  ship.name = "arrange-shipping";
  ship.action = [](const StepContext& c) {
    int n = OrderNumber(c.input);
    if (n % 11 == 5 || n == 13) return StepResult::Fail("no carrier available");
    return StepResult::Success("parcel for " + std::string(c.output_of("charge-payment")),
                               Emit(c, "ShipmentArranged"));
  };
  ship.retry = quick;
  checkout.steps = {reserve, charge, ship};

  std::mutex mu;
  std::vector<std::string> stuck_reports;
  SagaEngineOptions options;
  options.threads = 4;
  options.on_stuck = [&](const SagaInfo& i) {
    std::lock_guard<std::mutex> l(mu);
    stuck_reports.push_back(i.id + ": " + i.error);
  };
  auto opened = SagaEngine::open(store, std::vector{checkout}, options);
  if (!opened.ok()) return Fail("open engine", opened.status());
  SagaEngine& engine = **opened;

  // Saga ids must be new in a store that earlier demo runs filled.
  auto st = store.stats();
  if (!st.ok()) return Fail("stats", st.status());
  std::string run = std::to_string(st->next_position);
  for (int n = 1; n <= kOrders; n++) {
    auto r = engine.start("checkout", "order-" + run + "-" + std::to_string(n), std::to_string(n));
    if (!r.ok()) return Fail("start", r.status());
  }
  // A duplicate start (a client retrying its request) changes nothing.
  auto dup = engine.start("checkout", "order-" + run + "-1", "1");
  if (!dup.ok()) return Fail("duplicate start", dup.status());
  std::printf("  started %d checkouts; a repeated start of the first one: %s\n", kOrders,
              *dup ? "started again (unexpected)" : "recognised, nothing done twice");

  Status idle = engine.wait_idle(60s);
  if (!idle.ok()) return Fail("waiting", idle);
  {
    std::lock_guard<std::mutex> l(mu);
    for (const auto& s : stuck_reports) std::printf("  stuck, reported: %s\n", s.c_str());
  }
  std::string stuck_id = "order-" + run + "-13";
  auto stuck = engine.get(stuck_id);
  if (stuck.ok() && stuck->state == SagaState::kStuck) {
    refunds_up = true;
    std::printf("  the refund service is back; the operator retries %s\n", stuck_id.c_str());
    Status rs = engine.retry(stuck_id);
    if (!rs.ok()) return Fail("retry", rs);
    auto after = engine.wait(stuck_id, 60s);
    if (!after.ok()) return Fail("wait", after.status());
    std::printf("  %s is now %s\n", stuck_id.c_str(), SagaStateName(after->state));
  }

  int completed = 0, compensated = 0, other = 0;
  std::string declined, no_carrier;
  for (int n = 1; n <= kOrders; n++) {
    auto i = engine.get("order-" + run + "-" + std::to_string(n));
    if (!i.ok()) return Fail("get", i.status());
    if (i->state == SagaState::kCompleted) {
      completed++;
    } else if (i->state == SagaState::kCompensated) {
      compensated++;
      (i->error.find("declined") != std::string::npos ? declined : no_carrier) +=
          " " + std::to_string(n);
    } else {
      other++;
    }
  }
  std::printf("  outcome: %d completed, %d compensated, %d other\n", completed, compensated,
              other);
  std::printf("    card declined, stock released:            orders%s\n", declined.c_str());
  std::printf("    no carrier, payment refunded, stock back: orders%s\n", no_carrier.c_str());
  std::printf("  stock: %d of %d left = %d shipped orders (nothing lost or held)\n", stock.load(),
              kStartStock, kStartStock - stock.load());

  auto sample = engine.get("order-" + run + "-10");
  if (sample.ok()) {
    std::printf("  history of order 10 (payment retried once, then declined):\n");
    for (const auto& h : sample->history)
      std::printf("    %-22s step %2d attempt %u %s\n", SagaEventName(h.event), h.step, h.attempt,
                  h.text.c_str());
  }
  SagaStats s = engine.stats();
  std::printf("  engine: %llu started, %llu completed, %llu compensated, %llu stuck (then "
              "retried), %llu step retries; step p50 %.0f us\n",
              static_cast<unsigned long long>(s.started),
              static_cast<unsigned long long>(s.completed),
              static_cast<unsigned long long>(s.compensated),
              static_cast<unsigned long long>(s.stuck),
              static_cast<unsigned long long>(s.step_retries), s.step_p50_us);
  Status ss = engine.shutdown();
  if (!ss.ok()) return Fail("shutdown", ss);
  return other == 0 && kStartStock - stock.load() == completed ? 0 : 1;
}

}  // namespace evdemo
