// evstore-bench project: the read side. A projection folding the log (state
// committed with its checkpoint) against raw RocksDB iteration of the same
// log; the delay from an append's return to its live delivery; and append
// throughput with 64 live subscribers against none, in the same run.
#include <rocksdb/db.h>

#include <mutex>

#include "bench.hpp"
#include "evstore/store.hpp"
#include "log/store_impl.hpp"

namespace evbench {
namespace {

using namespace evstore;

EventData Typed(int type, size_t bytes) {
  EventData e;
  e.type = "Type" + std::to_string(type);
  e.content_type = "application/json";
  e.data.assign(bytes, 'x');
  return e;
}

Status CountByType(const RecordedEvent& e, ProjectionState& st) {
  for (const std::string& key : {"count/" + e.type, std::string("total")}) {
    auto cur = st.get(key);
    if (!cur.ok() && !cur.status().IsNotFound()) return cur.status();
    Status s = st.put(key, std::to_string((cur.ok() ? std::stoull(*cur) : 0) + 1));
    if (!s.ok()) return s;
  }
  return Status::OK();
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  return v[i];
}

// Appends per second from `threads` appenders (one event each) while
// `subscribers` pull subscriptions follow the log live, each on its own
// thread, reading every event (into a Delivery it reuses).
double AppendRateWithSubscribers(Store& s, int threads, double seconds, int subscribers, size_t bytes,
                                 long wake_interval_us, uint64_t* delivered) {
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> got{0};
  std::vector<std::thread> subs;
  for (int i = 0; i < subscribers; i++) {
    SubscribeOptions o;
    o.from = kNow;
    if (wake_interval_us >= 0) o.min_wake_interval = std::chrono::microseconds(wake_interval_us);
    auto sub = s.subscribe(o);
    if (!sub.ok()) std::exit(1);
    subs.emplace_back([&, sub = std::make_shared<Subscription>(std::move(sub).value())] {
      Delivery d;  // reused: each batch is copied into the strings of the one before
      while (!stop.load(std::memory_order_relaxed)) {
        if (!sub->next(&d, std::chrono::milliseconds(20)).ok()) std::exit(1);
        got.fetch_add(d.events.size(), std::memory_order_relaxed);
      }
    });
  }
  EventData e = Typed(0, bytes);
  double rate = RunTimed(threads, seconds, [&](int t, uint64_t i) {
    return s.append("sub-" + std::to_string(t * 1000 + i % 1000), ExpectedVersion::Any(), e).ok();
  });
  stop = true;
  for (auto& t : subs) t.join();
  *delivered = got.load();
  return rate;
}

int RunProject(const std::vector<std::string>& args) {
  const int events = std::stoi(Flag(args, "events", "1000000"));
  const int repeat = std::stoi(Flag(args, "repeat", "3"));
  const size_t bytes = std::stoul(Flag(args, "bytes", "100"));
  const double seconds = std::stod(Flag(args, "seconds", "2"));
  const int appenders = std::stoi(Flag(args, "threads", "8"));
  const int subscribers = std::stoi(Flag(args, "subscribers", "64"));
  // Subscriptions' min_wake_interval in microseconds; -1: the default.
  const long wake_interval_us = std::stol(Flag(args, "wake-interval-us", "-1"));
  ScratchDir sc;
  auto s = Store::open(sc.Fresh("ev"), Options::Fast());
  if (!s.ok()) {
    std::fprintf(stderr, "open: %s\n", s.status().ToString().c_str());
    return 1;
  }

  // ---- fold vs raw iteration of the same log ----
  {
    std::vector<EventData> batch;
    for (int i = 0; i < 1000; i++) batch.push_back(Typed(i % 10, bytes));
    for (int i = 0; i < events; i += 1000) {
      size_t n = std::min(1000, events - i);
      if (!s->append("order-" + std::to_string(i / 1000), ExpectedVersion::Any(),
                     std::span<const EventData>(batch.data(), n))
               .ok())
        return 1;
    }
  }
  internal::StoreImpl* impl = internal::StoreAccess::Impl(*s);
  std::vector<double> fold_t, raw_t, ratios;
  uint64_t sink = 0;
  for (int r = 0; r < repeat; r++) {
    double t0 = Now();
    {
      ProjectionOptions po;
      auto p = s->run_projection("fold", po, CountByType);
      if (!p.ok()) return 1;
      Status w = (*p)->wait_for(static_cast<uint64_t>(events), std::chrono::hours(1));
      if (!w.ok()) {
        std::fprintf(stderr, "fold: %s\n", w.ToString().c_str());
        return 1;
      }
    }
    fold_t.push_back(Now() - t0);
    auto total = s->projection_get("fold", "total");
    if (!total.ok() || *total != std::to_string(events)) {
      std::fprintf(stderr, "fold: wrong total\n");
      return 1;
    }
    if (!s->delete_projection("fold").ok()) return 1;
    t0 = Now();
    std::unique_ptr<rocksdb::Iterator> it(impl->db()->NewIterator(rocksdb::ReadOptions(),
                                                                  impl->cf(internal::kCfEvents)));
    uint64_t n = 0;
    for (it->SeekToFirst(); it->Valid(); it->Next(), n++) sink += it->value().size();
    raw_t.push_back(Now() - t0);
    if (n != static_cast<uint64_t>(events)) return 1;
    ratios.push_back(raw_t.back() / fold_t.back());
  }
  const double fold_rate = events / Median(fold_t), raw_rate = events / Median(raw_t);
  const double fold_ratio = Median(ratios);

  // ---- live delay: append return -> delivery ----
  std::vector<double> delays;
  {
    std::mutex mu;
    std::vector<double> returned;  // by position - base: when its append returned
    std::vector<double> delivered;
    const uint64_t base = s->stats()->next_position;
    SubscribeOptions o;
    o.from = kNow;
    if (wake_interval_us >= 0) o.min_wake_interval = std::chrono::microseconds(wake_interval_us);
    auto sub = s->subscribe(o);
    if (!sub.ok()) return 1;
    std::atomic<bool> stop{false};
    std::thread reader([&] {
      while (!stop.load()) {
        auto d = sub->next(std::chrono::milliseconds(20));
        if (!d.ok()) std::exit(1);
        double now = Now();
        std::lock_guard<std::mutex> l(mu);
        for (const RecordedEvent& e : d->events) {
          uint64_t k = e.position - base;
          if (delivered.size() <= k) delivered.resize(k + 1, 0);
          delivered[k] = now;
        }
      }
    });
    EventData e = Typed(1, bytes);
    RunTimed(appenders, seconds, [&](int t, uint64_t i) {
      auto a = s->append("live-" + std::to_string(t * 1000 + i % 1000), ExpectedVersion::Any(), e);
      if (!a.ok()) return false;
      double now = Now();
      std::lock_guard<std::mutex> l(mu);
      uint64_t k = a->first_position - base;
      if (returned.size() <= k) returned.resize(k + 1, 0);
      returned[k] = now;
      return true;
    });
    // Let the reader take the last deliveries.
    const uint64_t end = s->stats()->next_position - base;
    for (double t0 = Now(); Now() - t0 < 10;) {
      {
        std::lock_guard<std::mutex> l(mu);
        if (delivered.size() >= end) break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    stop = true;
    reader.join();
    std::lock_guard<std::mutex> l(mu);
    for (size_t k = 0; k < returned.size() && k < delivered.size(); k++)
      if (returned[k] > 0 && delivered[k] > 0)  // delivered before the append returned: no delay
        delays.push_back(std::max(0.0, delivered[k] - returned[k]) * 1e6);
  }
  const double p50 = Percentile(delays, 0.5), p99 = Percentile(delays, 0.99);

  // ---- append throughput with 64 live subscribers / none ----
  std::vector<double> sub_ratios, with_rates, without_rates;
  uint64_t delivered_total = 0;
  for (int r = 0; r < repeat; r++) {
    uint64_t d0 = 0, d1 = 0;
    double without = AppendRateWithSubscribers(*s, appenders, seconds, 0, bytes, wake_interval_us, &d0);
    double with =
        AppendRateWithSubscribers(*s, appenders, seconds, subscribers, bytes, wake_interval_us, &d1);
    delivered_total += d1;
    with_rates.push_back(with);
    without_rates.push_back(without);
    sub_ratios.push_back(with / without);
  }
  const double sub_ratio = Median(sub_ratios);
  (void)s->close();

  std::printf("project: %d events (%zu-byte payloads, 10 types), median of %d; %d appenders\n", events,
              bytes, repeat, appenders);
  std::printf("%-44s %14s %14s  %s\n", "case", "evstore", "baseline", "ratio");
  std::printf("%-44s %12.0f/s %12.0f/s  %.3f (raw RocksDB iteration of the same log)\n",
              "fold (count by type, state+checkpoint)", fold_rate, raw_rate, fold_ratio);
  std::printf("%-44s %12.0f/s %12.0f/s  %.3f (%d subscribers / none; %lu events delivered)\n",
              "appends with live subscribers", Median(with_rates), Median(without_rates), sub_ratio,
              subscribers, static_cast<unsigned long>(delivered_total));
  std::printf("%-44s p50 %.0f us, p99 %.0f us over %zu events\n", "live delay (append return -> delivery)",
              p50, p99, delays.size());
  std::printf(
      "{\"scenario\":\"project\",\"events\":%d,\"fold_events_per_s\":%.0f,\"raw_all_read_events_per_s\":%.0f,"
      "\"fold_ratio\":%.3f,\"live_delay_p50_us\":%.1f,\"live_delay_p99_us\":%.1f,\"live_delay_samples\":%zu,"
      "\"appends_per_s_no_subscribers\":%.0f,\"appends_per_s_with_subscribers\":%.0f,\"subscribers\":%d,"
      "\"subscribers_64_append_ratio\":%.3f,\"sink\":%lu}\n",
      events, fold_rate, raw_rate, fold_ratio, p50, p99, delays.size(), Median(without_rates),
      Median(with_rates), subscribers, sub_ratio, static_cast<unsigned long>(sink % 10));
  return 0;
}

Registrar reg("project",
              "projection fold vs raw RocksDB iteration, live delivery delay, appends with 64 subscribers "
              "(--events N --repeat N --seconds S --threads N --subscribers N --bytes N --wake-interval-us N)",
              RunProject);

}  // namespace
}  // namespace evbench
