// evstore-bench all [--compare] | compare: every scenario in one run, written
// as one JSON report (--out, default bench-report.json) that tools/bench-report
// turns into docs/benchmarks-generated.md and plots. With --compare (and
// always for `compare`) the append and log workloads also run on raw RocksDB
// and SQLite, back to back with evstore in every repeat, and the report holds
// the target ratios. The saga and cache scenarios run through their own
// scenario functions (their JSON lines are embedded as they print them).
#include <sys/utsname.h>
#include <unistd.h>

#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>

#include "compare.hpp"

#ifndef EVBENCH_SOURCE_DIR
#define EVBENCH_SOURCE_DIR ""
#endif

namespace evbench {
namespace {

std::vector<int> IntList(const std::string& s) {
  std::vector<int> v;
  std::stringstream ss(s);
  std::string tok;
  while (std::getline(ss, tok, ','))
    if (!tok.empty()) v.push_back(std::max(1, std::atoi(tok.c_str())));
  return v;
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  return s;
}

// The output of a shell command, or "" when it fails.
std::string Capture(const std::string& cmd) {
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return "";
  std::string out;
  char buf[256];
  while (std::fgets(buf, sizeof buf, p) != nullptr) out += buf;
  return pclose(p) == 0 ? Trim(out) : "";
}

// The commit the run measures: of the source tree this binary was built
// from, else of the working directory; "-dirty" when files differ from it.
std::string Commit() {
  for (std::string dir : {std::string(EVBENCH_SOURCE_DIR), std::string(".")}) {
    if (dir.empty()) continue;
    std::string q = "'" + dir + "'";
    std::string head = Capture("git -C " + q + " rev-parse --short HEAD 2>/dev/null");
    if (head.empty()) continue;
    std::string dirty = Capture("git -C " + q + " status --porcelain --untracked-files=no 2>/dev/null");
    return dirty.empty() ? head : head + "-dirty";
  }
  return "unknown";
}

std::string CpuModel() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("model name", 0) == 0) {
      size_t c = line.find(':');
      return c == std::string::npos ? "unknown" : Trim(line.substr(c + 2));
    }
  return "unknown";
}

double LoadAverage() {
  std::ifstream f("/proc/loadavg");
  double l = -1;
  f >> l;
  return l;
}

// Runs a registered scenario with `args` and returns the last JSON line it
// printed; what it prints goes to stderr as progress. "null" when it fails.
std::string RunScenario(const char* name, const std::vector<std::string>& args) {
  ScenarioFn fn = nullptr;
  for (const auto& s : Scenarios())
    if (std::strcmp(s.name, name) == 0) fn = s.run;
  if (fn == nullptr) return "null";
  std::fflush(stdout);
  FILE* tmp = std::tmpfile();
  int saved = dup(STDOUT_FILENO);
  if (tmp == nullptr || saved < 0 || dup2(fileno(tmp), STDOUT_FILENO) < 0) {
    std::fprintf(stderr, "evstore-bench: cannot capture the output of '%s'\n", name);
    return "null";
  }
  int rc = fn(args);
  std::fflush(stdout);
  dup2(saved, STDOUT_FILENO);
  close(saved);
  std::rewind(tmp);
  std::string line, json = "null";
  char buf[4096];
  while (std::fgets(buf, sizeof buf, tmp) != nullptr) {
    line += buf;
    if (line.back() != '\n' && !std::feof(tmp)) continue;
    std::fputs(line.c_str(), stderr);
    if (line[0] == '{') json = Trim(line);
    line.clear();
  }
  std::fclose(tmp);
  return rc == 0 ? json : "null";
}

bool Wants(const std::string& sections, const char* s) {
  return sections == "all" || ("," + sections + ",").find(std::string(",") + s + ",") != std::string::npos;
}

int RunAll(const std::vector<std::string>& args, bool compare) {
  const bool quick = HasFlag(args, "quick");
  std::string bad;  // the first flag whose value is not a number in range
  auto number = [&](const char* name, const char* def, double lo) {
    std::string v = Flag(args, name, def);
    char* end = nullptr;
    double d = std::strtod(v.c_str(), &end);
    if (end == v.c_str() || *end != '\0' || !(d >= lo) || d > 1e12) {
      if (bad.empty()) bad = std::string("--") + name + " " + v;
      return lo;
    }
    return d;
  };
  CompareConfig c;
  c.baselines = compare || HasFlag(args, "compare");
  c.seconds = number("seconds", quick ? "0.3" : "1", 0.001);
  c.repeat = static_cast<int>(number("repeat", quick ? "1" : "3", 1));
  c.events = static_cast<uint64_t>(number("events", quick ? "20000" : "1000000", 10));
  c.stream_reads = static_cast<int>(number("stream-reads", quick ? "100" : "500", 1));
  c.bytes = static_cast<size_t>(number("bytes", "100", 1));
  c.streams = static_cast<uint64_t>(number("streams", "10000", 8));
  c.appenders = IntList(Flag(args, "appenders", "1,8"));
  const std::string out_path = Flag(args, "out", "bench-report.json");
  const std::string sections = Flag(args, "sections", "all");
  {
    std::stringstream ss(sections);
    std::string tok;
    while (std::getline(ss, tok, ','))
      if (tok != "all" && tok != "append" && tok != "log" && tok != "saga" && tok != "cache" && bad.empty())
        bad = "--sections " + sections;
  }
  if (!bad.empty() || c.appenders.empty()) {
    std::fprintf(stderr,
                 "evstore-bench all: bad flag value '%s' (--events needs at least 10, --seconds more than "
                 "0, counts at least 1, sections among append,log,saga,cache)\n",
                 bad.empty() ? "--appenders" : bad.c_str());
    return 2;
  }

  std::fprintf(stderr, "evstore-bench all%s: %.2fs x %d repeats, %llu events in the filled log -> %s\n",
               c.baselines ? " --compare" : "", c.seconds, c.repeat, static_cast<unsigned long long>(c.events),
               out_path.c_str());
  double load_before = LoadAverage(), started = Now();
  ScratchDir dir;
  Workload w(c);
  Json ratios, report;
  double fsync_rate = 0, fsync8_rate = 0;
  Json append, log;
  if (Wants(sections, "append")) {
    append = RunAppendComparison(c, w, dir, &ratios, &fsync_rate, &fsync8_rate);
  } else {
    fsync_rate = FdatasyncRate(dir.Fresh("fsync"), 1);
    fsync8_rate = FdatasyncRate(dir.Fresh("fsync"), 1, 8);
  }
  if (Wants(sections, "log")) log = RunLogComparison(c, w, dir, &ratios);
  std::string repeat = std::to_string(c.repeat), secs = std::to_string(c.seconds);
  std::string saga = "null", cache_tp = "null", cache_mem = "null";
  if (Wants(sections, "saga")) saga = RunScenario("saga", {"--seconds", secs, "--repeat", repeat});
  if (Wants(sections, "cache")) {
    cache_tp = RunScenario("cache", {"--threads", "1,2", "--no-two-map", "--repeats", repeat, "--duration",
                                     quick ? "0.1" : "0.3"});
    cache_mem = RunScenario("cache", {"--memory", "--capacity", quick ? "65536" : "262144"});
  }

  time_t now = std::time(nullptr);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  struct utsname un {};
  uname(&un);
  Json machine;
  machine.Int("cores", std::thread::hardware_concurrency()).Str("cpu_model", CpuModel());
  machine.Str("kernel", std::string(un.sysname) + " " + un.release);
  machine.Num("fdatasync_per_s", fsync_rate).Num("fdatasync_8_threads_per_s", fsync8_rate);
  machine.Num("load_average_before", load_before).Num("load_average_after", LoadAverage());
  Json config;
  config.Bool("compare", c.baselines).Bool("quick", quick).Num("seconds", c.seconds).Int("repeat", c.repeat);
  config.Int("events", static_cast<int64_t>(c.events)).Int("stream_reads", c.stream_reads);
  config.Int("streams", static_cast<int64_t>(c.streams)).Int("payload_bytes", static_cast<int64_t>(c.bytes));
  Json rules;
  rules.Str("durable8_vs_sqlite", ">= 3").Str("nosync1_vs_sqlite", ">= 5");
  rules.Str("stream_read_vs_sqlite", ">= 2").Str("bytes_per_event_vs_sqlite", "<= 1.0");
  rules.Str("durable8_vs_limit", "reported");
  report.Str("report", "evstore-bench all").Int("report_version", 1).Str("generated", stamp);
  report.Str("commit", Commit());
#ifdef NDEBUG
  report.Str("build", "optimized, NDEBUG");
#else
  report.Str("build", "assertions on (not a release build)");
#endif
  report.Num("wall_seconds", Now() - started);
  report.Obj("machine", machine).Obj("config", config).Obj("targets", ratios).Obj("target_rules", rules);
  report.Raw("append", Wants(sections, "append") ? append.str() : "null");
  report.Raw("log", Wants(sections, "log") ? log.str() : "null");
  report.Raw("saga", saga).Raw("cache_throughput", cache_tp).Raw("cache_memory", cache_mem);

  std::ofstream f(out_path);
  f << report.str() << "\n";
  f.close();
  if (!f) {
    std::fprintf(stderr, "evstore-bench all: cannot write %s\n", out_path.c_str());
    return 1;
  }
  std::printf("targets: %s\nreport: %s (%.0fs)\n", ratios.str().c_str(), out_path.c_str(), Now() - started);
  return 0;
}

Registrar reg_all("all",
                  "every scenario, one JSON report [--compare --out bench-report.json --quick --seconds 1 "
                  "--repeat 3 --events 1000000 --stream-reads 500 --appenders 1,8 --sections all]",
                  [](const std::vector<std::string>& a) { return RunAll(a, false); });
Registrar reg_compare("compare", "the same as all --compare (evstore, raw RocksDB and SQLite) [--out --quick]",
                      [](const std::vector<std::string>& a) { return RunAll(a, true); });

}  // namespace
}  // namespace evbench
