#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <random>

#include "compare.hpp"

namespace evbench {

Workload::Workload(const CompareConfig& c) {
  categories = {"order", "customer", "payment", "shipment", "invoice", "cart", "account", "stock"};
  types = {"OrderPlaced",     "OrderShipped",   "PaymentReceived", "PaymentRefunded",
           "ItemAdded",       "ItemRemoved",    "AddressChanged",  "InvoiceIssued",
           "StockReserved",   "AccountOpened"};
  for (uint64_t i = 0; i < c.streams; i++)
    streams.push_back(categories[i % categories.size()] + "-" + std::to_string(i));
  std::mt19937_64 rng(20261205);
  // Zipf by inverse CDF: rank k has weight 1 / k^theta. Ranks are scattered
  // over the stream names (a fixed shuffle), so hot streams are not all of
  // one category.
  std::vector<double> cdf(c.streams);
  double sum = 0;
  for (uint64_t k = 0; k < c.streams; k++) cdf[k] = sum += 1.0 / std::pow(double(k + 1), c.theta);
  std::vector<uint32_t> perm(c.streams);
  for (uint32_t k = 0; k < c.streams; k++) perm[k] = k;
  std::shuffle(perm.begin(), perm.end(), rng);
  std::uniform_real_distribution<double> u(0, sum);
  zipf.resize(size_t{1} << 20);
  for (auto& z : zipf) {
    size_t k = static_cast<size_t>(std::lower_bound(cdf.begin(), cdf.end(), u(rng)) - cdf.begin());
    z = perm[std::min<size_t>(k, c.streams - 1)];
  }
  std::uniform_int_distribution<int> byte(0, 255);
  for (int i = 0; i < 4096; i++) {
    std::string p(c.bytes, '\0'), id(16, '\0');
    for (char& ch : p) ch = static_cast<char>(byte(rng));
    for (char& ch : id) ch = static_cast<char>(byte(rng));
    payloads.push_back(std::move(p));
    ids.push_back(std::move(id));
  }
}

Json LatencyJson(const Histogram& h) {
  Json j;
  j.Int("count", static_cast<int64_t>(h.count()));
  j.Num("p50_us", static_cast<double>(h.Percentile(0.50)) / 1e3);
  j.Num("p99_us", static_cast<double>(h.Percentile(0.99)) / 1e3);
  j.Num("p999_us", static_cast<double>(h.Percentile(0.999)) / 1e3);
  j.Num("max_us", static_cast<double>(h.max()) / 1e3);
  return j;
}

double FdatasyncRate(const std::string& dir, double seconds, int threads) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  std::atomic<uint64_t> total{0};
  std::atomic<bool> failed{false};
  double t0 = Now();
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; t++) {
    ts.emplace_back([&, t] {
      std::string path = dir + "/fdatasync-probe-" + std::to_string(t);
      int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
      if (fd < 0) {
        failed = true;
        return;
      }
      char buf[100] = {};
      uint64_t n = 0;
      while (Now() - t0 < seconds) {
        if (::write(fd, buf, sizeof buf) != static_cast<ssize_t>(sizeof buf) || ::fdatasync(fd) != 0) {
          failed = true;
          break;
        }
        n++;
      }
      ::close(fd);
      ::unlink(path.c_str());
      total += n;
    });
  }
  for (auto& th : ts) th.join();
  if (failed) {
    std::perror("evstore-bench: fdatasync probe");
    std::exit(1);
  }
  return static_cast<double>(total.load()) / (Now() - t0);
}

uint64_t DirBytes(const std::string& dir) {
  uint64_t total = 0;
  std::error_code ec;
  for (const auto& f : std::filesystem::recursive_directory_iterator(dir, ec)) {
    if (!f.is_regular_file(ec)) continue;
    std::string name = f.path().filename().string();
    if (name == "LOG" || name.rfind("LOG.old", 0) == 0) continue;
    total += f.file_size(ec);
  }
  return total;
}

void DropPageCache(const std::string& dir) {
  std::error_code ec;
  for (const auto& f : std::filesystem::recursive_directory_iterator(dir, ec)) {
    if (!f.is_regular_file(ec)) continue;
    int fd = ::open(f.path().c_str(), O_RDONLY);
    if (fd < 0) continue;
    (void)::fdatasync(fd);  // dirty pages are not dropped
    (void)::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ::close(fd);
  }
}

std::string SqlitePath(const std::string& dir) {
  std::filesystem::create_directories(dir);
  return dir + "/events.db";
}

double MedianRatio(const std::vector<double>& a, const std::vector<double>& b) {
  std::vector<double> r;
  for (size_t i = 0; i < a.size() && i < b.size(); i++)
    if (b[i] > 0) r.push_back(a[i] / b[i]);
  return r.empty() ? std::nan("") : Median(r);
}

}  // namespace evbench
