// evstore-bench cache: hit ratio of evstore::TieredCache on key traces next
// to LRU and Belady's OPT, and multi-threaded throughput next to a
// mutex-guarded LRU and the textbook two-map design. See docs/benchmarks.md.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <list>
#include <malloc.h>
#include <sys/wait.h>
#include <unistd.h>
#include <mutex>
#include <queue>
#include <random>
#include <shared_mutex>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#ifdef EVSTORE_HAVE_ZSTD
#include <zstd.h>
#endif

#include "bench.hpp"
#include "evstore/cache.hpp"

namespace {

using evbench::Flag;
using evbench::HasFlag;

// ---------------------------------------------------------------- traces --

bool ReadFile(const std::string& path, std::string* out, std::string* err) {
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    *err = "cannot open " + path;
    return false;
  }
  std::ostringstream ss;
  ss << f.rdbuf();
  *out = ss.str();
  return true;
}

// Keys of a trace: little-endian u64, raw or zstd-compressed.
bool LoadTrace(const std::string& path, std::vector<uint64_t>* keys, std::string* err) {
  std::string data;
  if (!ReadFile(path, &data, err)) return false;
  bool zst = data.size() >= 4 && static_cast<uint8_t>(data[0]) == 0x28 &&
             static_cast<uint8_t>(data[1]) == 0xB5 && static_cast<uint8_t>(data[2]) == 0x2F &&
             static_cast<uint8_t>(data[3]) == 0xFD;
  if (zst) {
#ifdef EVSTORE_HAVE_ZSTD
    std::string raw;
    ZSTD_DStream* ds = ZSTD_createDStream();
    ZSTD_initDStream(ds);
    ZSTD_inBuffer in{data.data(), data.size(), 0};
    std::vector<char> buf(ZSTD_DStreamOutSize());
    while (in.pos < in.size) {
      ZSTD_outBuffer out{buf.data(), buf.size(), 0};
      size_t r = ZSTD_decompressStream(ds, &out, &in);
      if (ZSTD_isError(r)) {
        *err = path + ": " + ZSTD_getErrorName(r);
        ZSTD_freeDStream(ds);
        return false;
      }
      raw.append(buf.data(), out.pos);
    }
    ZSTD_freeDStream(ds);
    data.swap(raw);
#else
    *err = path + " is zstd-compressed but evstore-bench was built without libzstd; "
           "decompress it first (zstd -d)";
    return false;
#endif
  }
  if (data.size() % 8 != 0) {
    *err = path + ": size is not a multiple of 8 bytes";
    return false;
  }
  keys->resize(data.size() / 8);
  for (size_t i = 0; i < keys->size(); i++) {
    uint64_t k = 0;
    for (int b = 7; b >= 0; b--) k = (k << 8) | static_cast<uint8_t>(data[i * 8 + b]);
    (*keys)[i] = k;
  }
  return true;
}

// ------------------------------------------------------------- baselines --

// The classic LRU: a list in recency order and a hash map into it.
class LruCache {
 public:
  explicit LruCache(size_t capacity) : cap_(capacity) { map_.reserve(capacity * 2); }
  bool Get(uint64_t k, uint64_t* v) {
    auto it = map_.find(k);
    if (it == map_.end()) return false;
    list_.splice(list_.begin(), list_, it->second);
    *v = it->second->second;
    return true;
  }
  void Put(uint64_t k, uint64_t v) {
    auto it = map_.find(k);
    if (it != map_.end()) {
      it->second->second = v;
      list_.splice(list_.begin(), list_, it->second);
      return;
    }
    if (cap_ == 0) return;
    if (map_.size() >= cap_) {
      map_.erase(list_.back().first);
      list_.pop_back();
    }
    list_.emplace_front(k, v);
    map_.emplace(k, list_.begin());
  }

 private:
  size_t cap_;
  std::list<std::pair<uint64_t, uint64_t>> list_;
  std::unordered_map<uint64_t, std::list<std::pair<uint64_t, uint64_t>>::iterator> map_;
};

// The LRU above behind one mutex.
class MutexLru {
 public:
  explicit MutexLru(size_t capacity) : lru_(capacity) {}
  bool Get(uint64_t k, uint64_t* v) {
    std::lock_guard<std::mutex> l(mu_);
    return lru_.Get(k, v);
  }
  void Put(uint64_t k, uint64_t v) {
    std::lock_guard<std::mutex> l(mu_);
    lru_.Put(k, v);
  }

 private:
  std::mutex mu_;
  LruCache lru_;
};

// The textbook two-tier design: two hash maps, each behind a reader-writer
// lock, entries stamped on access, and the victim found by scanning a whole
// map for the oldest stamp.
class TwoMapCache {
 public:
  TwoMapCache(size_t l1, size_t l2) : cap1_(l1), cap2_(l2) {}
  bool Get(uint64_t k, uint64_t* v) {
    {
      std::shared_lock<std::shared_mutex> l(mu1_);
      auto it = m1_.find(k);
      if (it != m1_.end()) {
        it->second.stamp.store(clock_.fetch_add(1, std::memory_order_relaxed),
                               std::memory_order_relaxed);
        *v = it->second.value;
        return true;
      }
    }
    {
      std::shared_lock<std::shared_mutex> l(mu2_);
      auto it = m2_.find(k);
      if (it == m2_.end()) return false;
      *v = it->second.value;
    }
    std::unique_lock<std::shared_mutex> l1(mu1_);
    std::unique_lock<std::shared_mutex> l2(mu2_);
    if (m2_.erase(k)) InsertL1(k, *v);  // promote
    return true;
  }
  void Put(uint64_t k, uint64_t v) {
    std::unique_lock<std::shared_mutex> l1(mu1_);
    std::unique_lock<std::shared_mutex> l2(mu2_);
    m2_.erase(k);
    auto it = m1_.find(k);
    if (it != m1_.end()) {
      it->second.value = v;
      it->second.stamp.store(clock_.fetch_add(1, std::memory_order_relaxed));
      return;
    }
    InsertL1(k, v);
  }

 private:
  struct Entry {
    uint64_t value = 0;
    std::atomic<uint64_t> stamp{0};
  };
  using Map = std::unordered_map<uint64_t, Entry>;
  static Map::iterator Oldest(Map& m) {
    auto victim = m.begin();
    for (auto it = m.begin(); it != m.end(); ++it) {
      if (it->second.stamp.load(std::memory_order_relaxed) <
          victim->second.stamp.load(std::memory_order_relaxed)) {
        victim = it;
      }
    }
    return victim;
  }
  // REQUIRES: both locks held exclusively.
  void InsertL1(uint64_t k, uint64_t v) {
    if (m1_.size() >= cap1_) {
      auto victim = Oldest(m1_);
      uint64_t vk = victim->first, vv = victim->second.value;
      uint64_t vs = victim->second.stamp.load();
      m1_.erase(victim);
      if (m2_.size() >= cap2_) m2_.erase(Oldest(m2_));
      Entry& e = m2_[vk];  // demote
      e.value = vv;
      e.stamp.store(vs);
    }
    Entry& e = m1_[k];
    e.value = v;
    e.stamp.store(clock_.fetch_add(1, std::memory_order_relaxed));
  }

  size_t cap1_, cap2_;
  std::shared_mutex mu1_, mu2_;
  Map m1_, m2_;
  std::atomic<uint64_t> clock_{1};
};

using EvCache = evstore::TieredCache<uint64_t, uint64_t>;

std::unique_ptr<EvCache> MakeEvCache(uint64_t capacity) {
  return std::make_unique<EvCache>(evstore::CacheOptions::WithTotalCapacity(capacity),
                                   evstore::TrivialCacheCodec<uint64_t>());
}

// evstore's cache behind the baselines' Get/Put interface.
class EvAdapter {
 public:
  explicit EvAdapter(uint64_t capacity) : c_(MakeEvCache(capacity)) {}
  bool Get(uint64_t k, uint64_t* v) {
    std::optional<uint64_t> r = c_->get(k);
    if (!r) return false;
    *v = *r;
    return true;
  }
  void Put(uint64_t k, uint64_t v) { (void)c_->put(k, v); }

 private:
  std::unique_ptr<EvCache> c_;
};

// ------------------------------------------------------------ hit ratio --

double EvstoreHitRatio(const std::vector<uint64_t>& keys, uint64_t capacity) {
  auto c = MakeEvCache(capacity);
  uint64_t hits = 0;
  for (uint64_t k : keys) {
    if (c->get(k)) {
      hits++;
    } else {
      (void)c->put(k, k);
    }
  }
  return keys.empty() ? 0 : 100.0 * static_cast<double>(hits) / static_cast<double>(keys.size());
}

// evstore's hit ratio with the keys relabeled: each key k replaced by
// k * m + c for an odd m, a bijection, so the trace is the same workload
// with other key values. LRU and OPT do not depend on the labels; evstore's
// sketch and index do (through the keys' hashes), so the spread over
// relabelings shows how much of a point's figure is hash luck.
struct Relabeled {
  double mean = 0, min = 0, max = 0;
};
Relabeled EvstoreRelabeled(const std::vector<uint64_t>& keys, uint64_t capacity, int n) {
  Relabeled r{0, 100, 0};
  std::vector<uint64_t> other(keys.size());
  for (int t = 1; t <= n; t++) {
    uint64_t m = (0x9E3779B97F4A7C15ull * static_cast<uint64_t>(2 * t + 1)) | 1;
    uint64_t c = 0xD1B54A32D192ED03ull * static_cast<uint64_t>(t);
    for (size_t i = 0; i < keys.size(); i++) other[i] = keys[i] * m + c;
    double h = EvstoreHitRatio(other, capacity);
    r.mean += h / n;
    r.min = std::min(r.min, h);
    r.max = std::max(r.max, h);
  }
  return r;
}

double LruHitRatio(const std::vector<uint64_t>& keys, uint64_t capacity) {
  LruCache c(capacity);
  uint64_t hits = 0, v;
  for (uint64_t k : keys) {
    if (c.Get(k, &v)) {
      hits++;
    } else {
      c.Put(k, k);
    }
  }
  return keys.empty() ? 0 : 100.0 * static_cast<double>(hits) / static_cast<double>(keys.size());
}

// Belady: on a miss with a full cache, evict the key used furthest in the
// future (possibly the newcomer itself).
double OptHitRatio(const std::vector<uint64_t>& keys, uint64_t capacity) {
  const size_t n = keys.size();
  const uint64_t kInf = UINT64_MAX;
  std::vector<uint64_t> next(n);
  {
    std::unordered_map<uint64_t, uint64_t> seen;
    seen.reserve(n / 4);
    for (size_t i = n; i-- > 0;) {
      auto it = seen.find(keys[i]);
      next[i] = it == seen.end() ? kInf : it->second;
      seen[keys[i]] = i;
    }
  }
  std::unordered_map<uint64_t, uint64_t> cached;  // key -> its next use
  cached.reserve(capacity * 2);
  std::priority_queue<std::pair<uint64_t, uint64_t>> heap;  // (next use, key), lazy
  uint64_t hits = 0;
  for (size_t i = 0; i < n; i++) {
    uint64_t k = keys[i];
    auto it = cached.find(k);
    if (it != cached.end()) {
      hits++;
      it->second = next[i];
      heap.emplace(next[i], k);
      continue;
    }
    if (capacity == 0) continue;
    cached.emplace(k, next[i]);
    heap.emplace(next[i], k);
    while (cached.size() > capacity) {
      auto [nu, vk] = heap.top();
      heap.pop();
      auto v = cached.find(vk);
      if (v != cached.end() && v->second == nu) cached.erase(v);
    }
  }
  return n ? 100.0 * static_cast<double>(hits) / static_cast<double>(n) : 0;
}

struct Point {
  std::string trace;
  uint64_t capacity;
};

const std::vector<Point>& ReferencePoints() {
  static const std::vector<Point> p = {
      {"OLTP", 1000}, {"OLTP", 2000},  {"P3", 32768},       {"gli", 1000},    {"loop", 512},
      {"multi3", 512}, {"sprite", 512}, {"cloudphys", 5000}, {"web12", 1200}};
  return p;
}

std::string TracesDir(const std::vector<std::string>& args) {
  std::string d = Flag(args, "traces", "");
  if (!d.empty()) return d;
  if (const char* e = std::getenv("EVSTORE_SHARED")) return std::string(e) + "/traces";
  return "../shared/traces";
}

int RunHitRatio(const std::vector<std::string>& args) {
  std::vector<std::pair<std::string, Point>> points;  // (path, point)
  std::string list = Flag(args, "points", "");
  if (!list.empty()) {
    if (list != "reference") {
      std::fprintf(stderr, "evstore-bench cache: --points takes 'reference'\n");
      return 2;
    }
    std::string dir = TracesDir(args);
    for (const Point& p : ReferencePoints()) points.push_back({dir + "/" + p.trace + ".u64.zst", p});
  } else {
    std::string path = Flag(args, "trace", "");
    uint64_t cap = std::strtoull(Flag(args, "capacity", "0").c_str(), nullptr, 10);
    if (path.empty() || cap == 0) {
      std::fprintf(stderr,
                   "evstore-bench cache: need --trace FILE --capacity N, --points reference, or "
                   "--threads LIST (use --help)\n");
      return 2;
    }
    std::string name = path.substr(path.find_last_of('/') + 1);
    name = name.substr(0, name.find('.'));
    points.push_back({path, {name, cap}});
  }
  const int relabel = std::max(0, std::atoi(Flag(args, "relabel", "0").c_str()));
  std::printf("%-10s %9s %10s %9s %9s %9s %9s", "trace", "capacity", "requests", "evstore",
              "LRU", "OPT", "ev/OPT");
  if (relabel) std::printf("   relabeled x%d: mean [min-max]", relabel);
  std::printf("\n");
  std::string json = "{\"scenario\":\"cache-hit-ratio\",\"points\":[";
  std::string loaded_path;
  std::vector<uint64_t> keys;
  double sum_ev = 0, sum_lru = 0, sum_opt = 0, sum_rl = 0;
  bool lru_ok = true;
  std::vector<std::pair<std::string, double>> opt_share;
  for (size_t i = 0; i < points.size(); i++) {
    const auto& [path, p] = points[i];
    if (path != loaded_path) {
      std::string err;
      if (!LoadTrace(path, &keys, &err)) {
        std::fprintf(stderr, "evstore-bench cache: %s\n", err.c_str());
        return 1;
      }
      loaded_path = path;
    }
    double t0 = evbench::Now();
    double ev = EvstoreHitRatio(keys, p.capacity);
    double t1 = evbench::Now();
    double lru = LruHitRatio(keys, p.capacity);
    double opt = OptHitRatio(keys, p.capacity);
    Relabeled rl;
    if (relabel) rl = EvstoreRelabeled(keys, p.capacity, relabel);
    sum_rl += rl.mean;
    sum_ev += ev;
    sum_lru += lru;
    sum_opt += opt;
    if (ev < lru - 1.0) lru_ok = false;
    opt_share.push_back({p.trace + "@" + std::to_string(p.capacity), opt > 0 ? ev / opt : 1});
    std::printf("%-10s %9llu %10zu %8.2f%% %8.2f%% %8.2f%% %8.1f%%", p.trace.c_str(),
                static_cast<unsigned long long>(p.capacity), keys.size(), ev, lru, opt,
                opt > 0 ? 100 * ev / opt : 100.0);
    if (relabel) std::printf("   %6.2f%% [%.2f-%.2f]", rl.mean, rl.min, rl.max);
    std::printf("   (%.2f Mreq/s)\n", static_cast<double>(keys.size()) / (t1 - t0) / 1e6);
    char buf[384];
    std::snprintf(buf, sizeof buf,
                  "%s{\"trace\":\"%s\",\"capacity\":%llu,\"requests\":%zu,\"evstore\":%.2f,"
                  "\"lru\":%.2f,\"opt\":%.2f",
                  i ? "," : "", p.trace.c_str(), static_cast<unsigned long long>(p.capacity),
                  keys.size(), ev, lru, opt);
    json += buf;
    if (relabel) {
      std::snprintf(buf, sizeof buf, ",\"relabeled\":{\"n\":%d,\"mean\":%.2f,\"min\":%.2f,\"max\":%.2f}",
                    relabel, rl.mean, rl.min, rl.max);
      json += buf;
    }
    json += "}";
  }
  double n = static_cast<double>(points.size());
  std::printf("%-10s %9s %10s %8.2f%% %8.2f%% %8.2f%%", "mean", "", "", sum_ev / n, sum_lru / n,
              sum_opt / n);
  if (relabel) std::printf("   %19s %6.2f%%", "", sum_rl / n);
  std::printf("\n");
  char buf[256];
  std::snprintf(buf, sizeof buf, "],\"mean\":{\"evstore\":%.2f,\"lru\":%.2f,\"opt\":%.2f",
                sum_ev / n, sum_lru / n, sum_opt / n);
  json += buf;
  if (relabel) {
    std::snprintf(buf, sizeof buf, ",\"evstore_relabeled\":%.2f", sum_rl / n);
    json += buf;
  }
  std::snprintf(buf, sizeof buf, "},\"within_1pt_of_lru\":%s}", lru_ok ? "true" : "false");
  json += buf;
  if (!list.empty()) {
    std::printf("\ntargets: mean >= 47.10%%: %s (%.2f", sum_ev / n >= 47.1 ? "met" : "MISSED",
                sum_ev / n);
    if (relabel) std::printf("; relabeled %.2f", sum_rl / n);
    std::printf("); no point > 1 pt below LRU: %s", lru_ok ? "met" : "MISSED");
    for (const auto& [name, share] : opt_share) {
      if (name == "gli@1000" || name == "loop@512") {
        std::printf("; %s >= 90%% of OPT: %s (%.1f%%)", name.c_str(),
                    share >= 0.9 ? "met" : "MISSED", 100 * share);
      }
    }
    std::printf("\n");
  }
  std::printf("%s\n", json.c_str());
  return 0;
}

// ------------------------------------------------------------ throughput --

// Zipf(theta) over [0, n) by inverse CDF; the keys are scrambled so that hot
// keys are not neighbours.
std::vector<uint64_t> ZipfKeys(uint64_t n, double theta, size_t count, uint64_t seed) {
  std::vector<double> cdf(n);
  double sum = 0;
  for (uint64_t i = 0; i < n; i++) {
    sum += 1.0 / std::pow(static_cast<double>(i + 1), theta);
    cdf[i] = sum;
  }
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0, sum);
  std::vector<uint64_t> keys(count);
  for (auto& k : keys) {
    uint64_t rank = static_cast<uint64_t>(std::lower_bound(cdf.begin(), cdf.end(), u(rng)) - cdf.begin());
    k = rank * 0x9E3779B97F4A7C15ull;
  }
  return keys;
}

// Runs `threads` threads doing `op(thread, i)` until `seconds` pass; ops/s.
template <typename Op>
double Measure(int threads, double seconds, Op op) {
  std::atomic<bool> stop{false};
  std::atomic<int> ready{0};
  std::vector<uint64_t> counts(threads * 8, 0);  // padded against false sharing
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; t++) {
    ts.emplace_back([&, t] {
      ready++;
      while (ready.load() < threads) std::this_thread::yield();
      uint64_t i = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        for (int j = 0; j < 256; j++, i++) op(t, i);
      }
      counts[t * 8] = i;
    });
  }
  while (ready.load() < threads) std::this_thread::yield();
  double t0 = evbench::Now();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& th : ts) th.join();
  double el = evbench::Now() - t0;
  uint64_t total = 0;
  for (int t = 0; t < threads; t++) total += counts[t * 8];
  return static_cast<double>(total) / el;
}

// Runs f() in a child process and returns its result, or -1 if the child
// failed: the child starts from this process's heap as it is now, so what
// one implementation allocated cannot shape another's memory layout.
// REQUIRES: no other thread is running (fork copies only the caller).
template <typename F>
double RunIsolated(F f) {
  int fd[2];
  if (pipe(fd) != 0) return -1;
  std::fflush(nullptr);
  pid_t pid = fork();
  if (pid < 0) {
    close(fd[0]);
    close(fd[1]);
    return -1;
  }
  if (pid == 0) {
    close(fd[0]);
    double r = f();
    ssize_t n = write(fd[1], &r, sizeof r);
    _exit(n == static_cast<ssize_t>(sizeof r) ? 0 : 1);
  }
  close(fd[1]);
  double r = -1;
  if (read(fd[0], &r, sizeof r) != static_cast<ssize_t>(sizeof r)) r = -1;
  close(fd[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return -1;
  return r;
}

// The 1-minute load average, or -1 where /proc/loadavg is unreadable; printed
// with throughput figures, which other work on the machine distorts.
double LoadAverage() {
  std::ifstream f("/proc/loadavg");
  double l = -1;
  if (!(f >> l)) return -1;
  return l;
}

int RunThroughput(const std::vector<std::string>& args) {
  std::vector<int> thread_counts;
  {
    std::stringstream ss(Flag(args, "threads", "1,2"));
    std::string tok;
    while (std::getline(ss, tok, ',')) thread_counts.push_back(std::max(1, std::atoi(tok.c_str())));
  }
  const uint64_t cap = std::strtoull(Flag(args, "capacity", "65536").c_str(), nullptr, 10);
  const double theta = std::atof(Flag(args, "theta", "0.99").c_str());
  const double secs = std::atof(Flag(args, "duration", "0.3").c_str());
  const int repeats = std::max(1, std::atoi(Flag(args, "repeats", "5").c_str()));
  const std::string only = Flag(args, "workload", "all");  // 100r, 75r25w or all
  const bool with_two_map = !HasFlag(args, "no-two-map");
  const bool isolate = HasFlag(args, "isolate");
  const size_t kKeys = size_t{1} << 22;
  std::vector<uint64_t> keys = ZipfKeys(4 * cap, theta, kKeys, 42);
  const uint64_t mask = kKeys - 1;

  struct Row {
    std::string workload;
    int threads;
    double ev, lru, two;       // medians, ops/s
    double ev_min, ev_max;     // spread of evstore's repeats
  };
  std::vector<Row> rows;
  double load_before = LoadAverage();
  for (int write_pct : {0, 25}) {
    std::string wl = write_pct ? "75r/25w" : "100r";
    if (only != "all" && only != (write_pct ? "75r25w" : "100r")) continue;
    for (int threads : thread_counts) {
      std::vector<double> ev_r, lru_r, two_r;
      auto offset = [&](int t, uint64_t i) { return (i * 7 + static_cast<uint64_t>(t) * 1000003) & mask; };
      auto is_write = [&](uint64_t i) { return write_pct && (i % 4) == 3; };
      // Warm-up (the first half of the keys; the two-map design's only as
      // many as the capacity: its every miss scans a map) and measurement.
      auto warm = [&](auto& c, size_t n) {
        for (size_t i = 0; i < n; i++) {
          uint64_t k = keys[i], v;
          if (!c.Get(k, &v)) c.Put(k, k);
        }
      };
      auto measure = [&](auto& c, double s) {
        return Measure(threads, s, [&](int t, uint64_t i) {
          uint64_t k = keys[offset(t, i)], x;
          if (is_write(i)) c.Put(k, i); else (void)c.Get(k, &x);
        });
      };
      uint64_t l1 = std::max<uint64_t>(1, cap / 8);
      for (int rep = 0; rep < repeats; rep++) {
        if (isolate) {
          // Each implementation in its own child process, from the same heap.
          ev_r.push_back(RunIsolated([&] {
            EvAdapter ev(cap);
            warm(ev, kKeys / 2);
            return measure(ev, secs);
          }));
          lru_r.push_back(RunIsolated([&] {
            MutexLru lru(cap);
            warm(lru, kKeys / 2);
            return measure(lru, secs);
          }));
          if (with_two_map) {
            two_r.push_back(RunIsolated([&] {
              TwoMapCache two(l1, cap - l1);
              warm(two, cap);
              return measure(two, secs / 3);
            }));
          }
          continue;
        }
        // Fresh, warmed caches per repeat; implementations interleaved so
        // that machine noise hits all of them alike.
        EvAdapter ev(cap);
        MutexLru lru(cap);
        TwoMapCache two(l1, cap - l1);
        // One warm-up loop per cache: interleaved, each one's allocations
        // would scatter the other's nodes over twice the memory (the LRU
        // allocates per entry and measured up to 2x slower that way).
        warm(ev, kKeys / 2);
        warm(lru, kKeys / 2);
        if (with_two_map) warm(two, cap);
        ev_r.push_back(measure(ev, secs));
        lru_r.push_back(measure(lru, secs));
        if (with_two_map) two_r.push_back(measure(two, secs / 3));
      }
      for (const auto* r : {&ev_r, &lru_r, &two_r}) {
        if (std::any_of(r->begin(), r->end(), [](double x) { return x < 0; })) {
          std::fprintf(stderr, "evstore-bench cache: an isolated measurement failed\n");
          return 1;
        }
      }
      rows.push_back({wl, threads, evbench::Median(ev_r), evbench::Median(lru_r),
                      evbench::Median(two_r), *std::min_element(ev_r.begin(), ev_r.end()),
                      *std::max_element(ev_r.begin(), ev_r.end())});
    }
  }
  double load_after = LoadAverage();
  std::printf("Zipf(%.2f), %llu keys, capacity %llu entries, median of %d x %.2fs%s; "
              "load average %.2f before, %.2f after (%u hardware threads)\n",
              theta, static_cast<unsigned long long>(4 * cap), static_cast<unsigned long long>(cap),
              repeats, secs, isolate ? ", each implementation in its own process" : "", load_before,
              load_after, std::thread::hardware_concurrency());
  std::printf("%-9s %7s %14s %14s %11s %8s %8s %8s %17s\n", "workload", "threads",
              "evstore Mops/s", "mutex-LRU", "two-map", "ev/LRU", "ev/1T", "LRU/1T",
              "evstore min-max");
  auto one_thread = [&](const Row& r, bool ev) {
    for (const Row& o : rows)
      if (o.workload == r.workload && o.threads == 1) return ev ? o.ev : o.lru;
    return 0.0;
  };
  std::string json = "{\"scenario\":\"cache-throughput\",\"theta\":" + std::to_string(theta) +
                     ",\"capacity\":" + std::to_string(cap) + ",\"repeats\":" +
                     std::to_string(repeats) + ",\"duration_s\":" + std::to_string(secs) +
                     ",\"isolated\":" + (isolate ? "true" : "false");
  char buf[512];
  std::snprintf(buf, sizeof buf, ",\"load_before\":%.2f,\"load_after\":%.2f,\"rows\":[", load_before,
                load_after);
  json += buf;
  std::string targets;
  for (size_t i = 0; i < rows.size(); i++) {
    const Row& r = rows[i];
    double ev1 = one_thread(r, true), lru1 = one_thread(r, false);
    double vs_lru = r.lru > 0 ? r.ev / r.lru : 0;
    double scale = ev1 > 0 ? r.ev / ev1 : 0, lru_scale = lru1 > 0 ? r.lru / lru1 : 0;
    std::printf("%-9s %7d %14.2f %14.2f %11.3f %7.2fx %7.2fx %7.2fx %8.2f-%-8.2f\n",
                r.workload.c_str(), r.threads, r.ev / 1e6, r.lru / 1e6, r.two / 1e6, vs_lru,
                scale, lru_scale, r.ev_min / 1e6, r.ev_max / 1e6);
    std::snprintf(buf, sizeof buf,
                  "%s{\"workload\":\"%s\",\"threads\":%d,\"evstore_ops\":%.0f,\"mutex_lru_ops\":%.0f,"
                  "\"two_map_ops\":%.0f,\"evstore_vs_mutex_lru\":%.3f,\"evstore_scaling\":%.3f,"
                  "\"mutex_lru_scaling\":%.3f,\"evstore_min_ops\":%.0f,\"evstore_max_ops\":%.0f}",
                  i ? "," : "", r.workload.c_str(), r.threads, r.ev, r.lru, r.two, vs_lru, scale,
                  lru_scale, r.ev_min, r.ev_max);
    json += buf;
    if (r.threads == 2) {
      double want = r.workload == "100r" ? 5.0 : 3.0;
      std::snprintf(buf, sizeof buf, "%s%s 2T >= %.0fx LRU: %s (%.2fx); %s 2T >= 1.6x 1T: %s (%.2fx)",
                    targets.empty() ? "" : "; ", r.workload.c_str(), want,
                    vs_lru >= want ? "met" : "MISSED", vs_lru, r.workload.c_str(),
                    scale >= 1.6 ? "met" : "MISSED", scale);
      targets += buf;
    }
  }
  json += "]}";
  if (!targets.empty()) std::printf("\ntargets: %s\n", targets.c_str());
  std::printf("%s\n", json.c_str());
  return 0;
}

// ---------------------------------------------------------------- memory --

// Heap bytes in use (glibc's allocator statistics, small and mmapped blocks):
// exact and unaffected by pages the allocator keeps, unlike the resident set.
uint64_t HeapInUse() {
  struct mallinfo2 mi = mallinfo2();
  return static_cast<uint64_t>(mi.uordblks) + static_cast<uint64_t>(mi.hblkhd);
}

// Fills each implementation with N distinct u64 -> u64 entries and reports
// the heap it holds per entry, evstore's cache next to the plain LRU.
int RunMemory(const std::vector<std::string>& args) {
  const uint64_t n = std::strtoull(Flag(args, "capacity", "1048576").c_str(), nullptr, 10);
  auto fill = [&](auto put) {
    for (uint64_t i = 0; i < n; i++) put((i + 1) * 0x9E3779B97F4A7C15ull, i);
  };
  uint64_t before = HeapInUse();
  uint64_t ev_bytes, ev_entries;
  {
    auto ev = MakeEvCache(n);
    fill([&](uint64_t k, uint64_t v) { (void)ev->put(k, v); });
    ev_bytes = HeapInUse() - before;
    evstore::CacheStats st = ev->stats();
    ev_entries = st.l1.entries + st.l2.entries;
  }
  before = HeapInUse();
  uint64_t lru_bytes;
  {
    LruCache lru(n);
    fill([&](uint64_t k, uint64_t v) { lru.Put(k, v); });
    lru_bytes = HeapInUse() - before;
  }
  double ev_per = ev_entries ? static_cast<double>(ev_bytes) / static_cast<double>(ev_entries) : 0;
  double lru_per = static_cast<double>(lru_bytes) / static_cast<double>(n);
  std::printf("heap per entry, u64 -> u64, capacity %llu\n", static_cast<unsigned long long>(n));
  std::printf("%-9s %10s %12s %10s\n", "cache", "entries", "heap bytes", "per entry");
  std::printf("%-9s %10llu %12llu %10.1f\n", "evstore", static_cast<unsigned long long>(ev_entries),
              static_cast<unsigned long long>(ev_bytes), ev_per);
  std::printf("%-9s %10llu %12llu %10.1f\n", "LRU", static_cast<unsigned long long>(n),
              static_cast<unsigned long long>(lru_bytes), lru_per);
  std::printf("{\"scenario\":\"cache-memory\",\"capacity\":%llu,\"evstore_entries\":%llu,"
              "\"evstore_bytes_per_entry\":%.1f,\"lru_bytes_per_entry\":%.1f,\"ratio\":%.2f}\n",
              static_cast<unsigned long long>(n), static_cast<unsigned long long>(ev_entries), ev_per,
              lru_per, lru_per > 0 ? ev_per / lru_per : 0);
  return 0;
}

int RunCache(const std::vector<std::string>& args) {
  if (HasFlag(args, "help")) {
    std::printf(
        "usage: evstore-bench cache --trace FILE --capacity N [--relabel K]\n"
        "       evstore-bench cache --points reference [--traces DIR] [--relabel K]\n"
        "       evstore-bench cache --threads 1,2 [--capacity 65536] [--theta 0.99]\n"
        "                           [--duration 0.3] [--repeats 5] [--workload 100r|75r25w|all]\n"
        "                           [--no-two-map] [--isolate]\n"
        "       evstore-bench cache --memory [--capacity 1048576]\n\n"
        "Trace mode replays little-endian u64 keys (raw or zstd) with unit weights and\n"
        "prints the hit ratio of evstore's cache (default configuration, the capacity\n"
        "split between its tiers by the cache) next to LRU and Belady's OPT.\n"
        "--points reference runs the nine reference points of DIR/README.md (DIR defaults\n"
        "to $EVSTORE_SHARED/traces, else ../shared/traces).\n"
        "--relabel K also replays each point K times with every key k replaced by\n"
        "k * m + c (m odd: the same workload under other key values) and prints the\n"
        "mean, min and max of evstore's hit ratio over them; LRU and OPT do not depend\n"
        "on the labels, evstore's hashing does.\n"
        "--threads measures ops/s on Zipf keys, 100%% reads and 75/25 reads/writes,\n"
        "against a mutex-guarded LRU and a two-map design with scanning eviction; each\n"
        "figure is the median of the repeats, with ratios to the LRU, 2-thread/1-thread\n"
        "scaling and the machine's load average in the table and the JSON line.\n"
        "--isolate builds, warms and measures each implementation in its own child\n"
        "process, so that one's allocations cannot shape another's memory layout.\n"
        "--memory fills evstore's cache and a plain LRU with N u64 -> u64 entries and\n"
        "prints the heap each holds per entry.\n");
    return 0;
  }
  if (HasFlag(args, "threads")) return RunThroughput(args);
  if (HasFlag(args, "memory")) return RunMemory(args);
  return RunHitRatio(args);
}

}  // namespace

static evbench::Registrar reg("cache", "tiered cache: hit ratio on traces, throughput vs LRU",
                              &RunCache);
