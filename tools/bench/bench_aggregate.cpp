// evstore-bench aggregate: the command side. Loading the state of one
// long stream cold (every event from the log), from a snapshot, and from the
// cache; and command handling (load, decide, append with the loaded version,
// a command id logged with the events) by 8 senders on distinct streams
// against 8 plain durable appenders, in the same run.
#include "bench.hpp"
#include "evstore/aggregate.hpp"
#include "evstore/command.hpp"
#include "evstore/store.hpp"

namespace evbench {
namespace {

using namespace evstore;

struct Account {
  int64_t balance = 0;
  uint64_t events = 0;
};

AggregateType<Account> AccountType() {
  AggregateType<Account> t;
  t.evolve = [](Account a, const EventView& e) {
    a.balance += static_cast<int64_t>(e.data.size());
    a.events++;
    return a;
  };
  t.codec.encode = [](const Account& a) {
    return std::to_string(a.balance) + " " + std::to_string(a.events);
  };
  t.codec.decode = [](std::string_view b) -> Result<Account> {
    size_t sp = b.find(' ');
    if (sp == std::string_view::npos) return Status::Corruption("account: no space");
    return Account{std::stoll(std::string(b.substr(0, sp))), std::stoull(std::string(b.substr(sp + 1)))};
  };
  return t;
}

EventData Deposit(size_t bytes) {
  EventData e;
  e.type = "Deposited";
  e.content_type = "application/json";
  e.data.assign(bytes, '1');
  return e;
}

// The median time of `repeat` loads of `stream`, in microseconds; exits on
// an error or a state that is not the stream's.
double LoadUs(Aggregate<Account>& a, const std::string& stream, int repeat, uint64_t want,
              LoadSource expect) {
  std::vector<double> t;
  for (int r = 0; r < repeat; r++) {
    double t0 = Now();
    auto l = a.load(stream);
    double us = (Now() - t0) * 1e6;
    if (!l.ok() || l->state->events != want || l->source != expect) {
      std::fprintf(stderr, "aggregate: load from %s: %s\n", LoadSourceName(expect),
                   l.ok() ? LoadSourceName(l->source) : l.status().ToString().c_str());
      std::exit(1);
    }
    t.push_back(us);
  }
  return Median(t);
}

Aggregate<Account> Open(Store& s, const std::string& name, size_t cache_bytes) {
  AggregateOptions o;
  o.name = name;
  o.cache_l1_bytes = cache_bytes;
  auto a = Aggregate<Account>::open(s, o, AccountType());
  if (!a.ok()) {
    std::fprintf(stderr, "aggregate: %s\n", a.status().ToString().c_str());
    std::exit(1);
  }
  return std::move(a).value();
}

int RunAggregate(const std::vector<std::string>& args) {
  const int events = std::stoi(Flag(args, "events", "10000"));
  const int repeat = std::stoi(Flag(args, "repeat", "5"));
  const size_t bytes = std::stoul(Flag(args, "bytes", "100"));
  const double seconds = std::stod(Flag(args, "seconds", "2"));
  const int threads = std::stoi(Flag(args, "threads", "8"));
  const bool ids = !HasFlag(args, "no-ids");
  ScratchDir sc;
  auto s = Store::open(sc.Fresh("ev"), Options::Durable());
  if (!s.ok()) {
    std::fprintf(stderr, "open: %s\n", s.status().ToString().c_str());
    return 1;
  }

  // ---- loads of one stream of `events` events ----
  {
    std::vector<EventData> batch(1000, Deposit(bytes));
    for (int i = 0; i < events; i += 1000) {
      size_t n = std::min(1000, events - i);
      if (!s->append("account-1", ExpectedVersion::Any(), std::span<const EventData>(batch.data(), n)).ok())
        return 1;
    }
  }
  const uint64_t n = static_cast<uint64_t>(events);
  Aggregate<Account> cold = Open(*s, "cold", 0);
  const double cold_us = LoadUs(cold, "account-1", repeat, n, LoadSource::kLog);
  Aggregate<Account> snap = Open(*s, "snap", 0);
  if (!snap.save_snapshot("account-1").ok()) return 1;
  const double snapshot_us = LoadUs(snap, "account-1", repeat, n, LoadSource::kSnapshot);
  Aggregate<Account> cached = Open(*s, "cached", 16u << 20);
  (void)LoadUs(cached, "account-1", 1, n, LoadSource::kLog);
  // A cached load is a few microseconds: time many and take the mean of each
  // run, so that the clock's granularity does not dominate.
  std::vector<double> per_load;
  for (int r = 0; r < repeat; r++) {
    const int k = 1000;
    double t0 = Now();
    for (int i = 0; i < k; i++) {
      auto l = cached.load("account-1");
      if (!l.ok() || l->source != LoadSource::kCache) return 1;
    }
    per_load.push_back((Now() - t0) * 1e6 / k);
  }
  const double cached_us = Median(per_load);

  // ---- commands vs appends, 8 senders on distinct streams, synced ----
  const std::string run_tag = std::to_string(static_cast<uint64_t>(Now() * 1e6));
  EventData e = Deposit(bytes);
  const double appends =
      RunTimed(threads, seconds, [&](int t, uint64_t) {
        return s->append("plain-" + std::to_string(t), ExpectedVersion::Any(), e).ok();
      });
  Aggregate<Account> agg = Open(*s, "account", 16u << 20);
  Decide<Account> deposit = [&](const Account&, const Command&) { return Decision::Accept({e}); };
  const double commands = RunTimed(threads, seconds, [&](int t, uint64_t i) {
    Command c;
    c.type = "Deposit";
    c.stream = "cmd-" + std::to_string(t);
    if (ids) c.id = run_tag + "-" + std::to_string(t) + "-" + std::to_string(i);
    auto r = HandleCommand(agg, c, deposit);
    return r.ok() && r->events == 1;
  });
  const double ratio = commands / appends;
  AggregateStats st = agg.stats();
  (void)s->close();

  std::printf("aggregate: a %d-event stream (%zu-byte events), median of %d; %d senders, sync on\n", events,
              bytes, repeat, threads);
  std::printf("%-40s %12.1f us\n", "load cold (every event)", cold_us);
  std::printf("%-40s %12.1f us  (%.0fx faster than cold)\n", "load from a snapshot", snapshot_us,
              cold_us / snapshot_us);
  std::printf("%-40s %12.2f us  (%.0fx faster than cold)\n", "load from the cache", cached_us,
              cold_us / cached_us);
  std::printf("%-40s %12.0f/s %12.0f/s  %.3f (commands%s / plain appends)\n",
              "commands vs appends", commands, appends, ratio, ids ? " with ids" : "");
  std::printf(
      "{\"scenario\":\"aggregate\",\"events\":%d,\"load_cold_us\":%.1f,\"load_snapshot_us\":%.1f,"
      "\"load_cached_us\":%.2f,\"cold_over_snapshot\":%.1f,\"cold_over_cached\":%.1f,"
      "\"commands_per_s_8\":%.0f,\"appends_per_s_8\":%.0f,\"command_ratio\":%.3f,\"command_ids\":%s,"
      "\"threads\":%d,\"command_loads_from_cache\":%lu}\n",
      events, cold_us, snapshot_us, cached_us, cold_us / snapshot_us, cold_us / cached_us, commands, appends,
      ratio, ids ? "true" : "false", threads,
      static_cast<unsigned long>(st.from_cache + st.from_cache_and_log));
  return 0;
}

Registrar reg("aggregate",
              "aggregate loads (cold, snapshot, cached) of one stream; commands vs plain appends by 8 "
              "synced senders (--events N --repeat N --seconds S --threads N --bytes N --no-ids)",
              RunAggregate);

}  // namespace
}  // namespace evbench
