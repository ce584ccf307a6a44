// evstore-inspect: examine an evstore store without changing it.
//
//   evstore-inspect <command> [--db PATH | PATH] [flags]
//
// A thin shell over evstore/inspect.hpp; docs/inspect.md is the manual.
// Exit codes: 0 success; 1 the store has problems (verify found some, dump
// or tail met damaged records, checkpoints found bad ones); 2 usage error;
// 3 the store cannot be opened (missing, not an evstore store, newer format,
// locked or damaged metadata); 4 a read failed while the command ran.
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "evstore/inspect.hpp"
#include "evstore/store.hpp"

namespace ins = evstore::inspect;
using evstore::Status;

namespace {

enum Exit : int { kOk = 0, kProblems = 1, kUsage = 2, kCannotOpen = 3, kReadFailed = 4 };

constexpr const char* kUsageText =
    "usage: evstore-inspect <command> [--db PATH | PATH] [flags]\n"
    "commands: info, streams, dump, tail, verify, sagas, checkpoints, projections, stats, help\n";

struct Command {
  const char* name;
  const char* summary;
  const char* help;
};

const Command kCommands[] = {
    {"info", "format version, counts, next position, column families",
     "usage: evstore-inspect info [--db PATH] [--json]\n"
     "\n"
     "Prints the store's format version, creation time, event and stream counts,\n"
     "next position, and per column family the estimated keys and sizes.\n"
     "\n"
     "  --db PATH   the store directory (default: the current directory)\n"
     "  --json      one JSON object\n"},
    {"streams", "list streams with their id, head version and event count",
     "usage: evstore-inspect streams [--db PATH] [--from NAME] [--limit N] [--json]\n"
     "\n"
     "Lists streams in name order: name, id, head version, head position, events.\n"
     "\n"
     "  --db PATH     the store directory (default: the current directory)\n"
     "  --from NAME   start at the first stream whose name is >= NAME\n"
     "  --limit N     list at most N streams\n"
     "  --json        JSON Lines: one object per stream\n"},
    {"dump", "print events of the global log, a position range or one stream",
     "usage: evstore-inspect dump [--db PATH] [--stream NAME] [--from N] [--to N]\n"
     "                            [--limit N] [--json | --hex] [--no-progress]\n"
     "\n"
     "Prints events in order: the global log by position, or with --stream one\n"
     "stream by version. Damaged records are printed as CORRUPT lines naming their\n"
     "position; the dump goes on and exits with 1.\n"
     "\n"
     "  --db PATH       the store directory (default: the current directory)\n"
     "  --stream NAME   dump one stream; --from/--to are then versions\n"
     "  --from N        first position (or version), inclusive (default 0)\n"
     "  --to N          last position (or version), inclusive (default: the end)\n"
     "  --limit N       print at most N events\n"
     "  --json          JSON Lines: one object per event\n"
     "  --hex           the key and record bytes as a hex dump\n"
     "  --no-progress   no progress line on a terminal\n"},
    {"tail", "print the last events; with --follow, new ones as they are committed",
     "usage: evstore-inspect tail [--db PATH] [--from N] [--follow] [--json | --hex]\n"
     "\n"
     "Prints the last 10 events of the global log, or the events from position N.\n"
     "With --follow, keeps printing events as another process that has the store\n"
     "open commits them (checking every 100 ms), like tail -f, until interrupted\n"
     "(SIGINT, SIGTERM) or its output is closed; it then exits 0 (1 if it printed\n"
     "damaged records). --follow uses a RocksDB secondary instance, whose own files\n"
     "go to a private directory under $TMPDIR (or /tmp), removed at exit.\n"
     "\n"
     "  --db PATH   the store directory (default: the current directory)\n"
     "  --from N    first position to print (default: the last 10 events)\n"
     "  --follow    keep printing new events\n"
     "  --json      JSON Lines: one object per event\n"
     "  --hex       the key and record bytes as a hex dump\n"},
    {"verify", "check every record and index; exit 1 with a report on problems",
     "usage: evstore-inspect verify [--db PATH] [--max-problems N] [--json] [--no-progress]\n"
     "\n"
     "Checks the metadata, every event record (checksum, schema, key), gapless\n"
     "positions, stream records, dense versions and stream heads, and every index\n"
     "entry both ways (stream_index, category_index, type_index, event_ids), saga\n"
     "records and checkpoint records (none may lie beyond the end of the log).\n"
     "Prints each problem with its column family, key and position. Exits 0 when\n"
     "the store is sound, 1 when a problem was found.\n"
     "\n"
     "  --db PATH          the store directory (default: the current directory)\n"
     "  --max-problems N   list at most N problems (all are counted; default 1000)\n"
     "  --json             one JSON object with the counts and the problems\n"
     "  --no-progress      no progress line on a terminal\n"},
    {"checkpoints", "subscription checkpoints: position, lag behind the log, last update",
     "usage: evstore-inspect checkpoints [--db PATH] [--json]\n"
     "\n"
     "Lists the durable subscription checkpoints in name order: name, position\n"
     "(where delivery resumes), lag (events from there to the end of the log) and\n"
     "the time of the last update. A damaged record, or a checkpoint beyond the end\n"
     "of the log, is listed with a PROBLEM and the exit code is 1.\n"
     "\n"
     "  --db PATH   the store directory (default: the current directory)\n"
     "  --json      JSON Lines: one object per checkpoint\n"},
    {"projections", "projections: status, or the state of one by key or prefix",
     "usage: evstore-inspect projections [--db PATH] [--name NAME [--key K | --prefix P]] [--limit N] [--json]\n"
     "\n"
     "Without --name, lists the stored projections in name order: name, handler\n"
     "version, position (every selected event before it is folded in), lag (events\n"
     "from there to the end of the log), events handled, last update, and the\n"
     "position of a rebuild under way. With --name, prints that projection's state:\n"
     "the value under --key, or the entries whose keys start with --prefix (all\n"
     "entries without it), in key order.\n"
     "\n"
     "  --db PATH     the store directory (default: the current directory)\n"
     "  --name NAME   the projection whose state to print\n"
     "  --key K       print the value under key K\n"
     "  --prefix P    print the entries whose keys start with P\n"
     "  --limit N     print at most N entries\n"
     "  --json        JSON Lines: one object per projection or entry\n"},
    {"sagas", "list sagas, or show one with its history",
     "usage: evstore-inspect sagas [--db PATH] [--id ID] [--from ID] [--limit N] [--json]\n"
     "\n"
     "Without --id, lists sagas in id order: id, definition@version, state, step,\n"
     "attempts ended, attempts started, last update. With --id, shows that saga's\n"
     "record and its history. The engine's index keys beside the records are skipped.\n"
     "A damaged saga record stops the listing with exit 1 (verify lists them all).\n"
     "\n"
     "  --db PATH     the store directory (default: the current directory)\n"
     "  --id ID       show one saga with its history\n"
     "  --from ID     start the list at the first id >= ID\n"
     "  --limit N     list at most N sagas\n"
     "  --json        JSON Lines: one object per saga (with --id: one object)\n"},
    {"stats", "event, byte and type statistics from one scan of the log",
     "usage: evstore-inspect stats [--db PATH] [--top N] [--json] [--no-progress]\n"
     "\n"
     "Scans the log once: events, streams, record/data/metadata bytes, the largest\n"
     "record, the longest stream, the time range, and the most frequent event types\n"
     "and categories. Then RocksDB's figures per column family: estimated keys, live\n"
     "data, memtable and table-file bytes, pending compaction bytes.\n"
     "\n"
     "  --db PATH       the store directory (default: the current directory)\n"
     "  --top N         how many types and categories to list (default 10)\n"
     "  --json          one JSON object\n"
     "  --no-progress   no progress line on a terminal\n"},
};

const Command* FindCommand(std::string_view name) {
  for (const Command& c : kCommands)
    if (name == c.name) return &c;
  return nullptr;
}

void PrintMainHelp() {
  std::string out =
      "usage: evstore-inspect <command> [--db PATH | PATH] [flags]\n"
      "\n"
      "Examines an evstore store. Opens it read-only: never changes it, and works\n"
      "while another process has it open. The store directory is given with --db\n"
      "or as the one argument that is not a flag; the default is the current\n"
      "directory.\n"
      "\n"
      "commands:\n";
  for (const Command& c : kCommands) {
    char line[160];
    std::snprintf(line, sizeof line, "  %-12s %s\n", c.name, c.summary);
    out += line;
  }
  out +=
      "\n"
      "`evstore-inspect <command> --help` describes a command's flags.\n"
      "exit codes: 0 ok, 1 problems found, 2 usage error, 3 cannot open the store,\n"
      "4 a read failed\n";
  std::fputs(out.c_str(), stdout);
}

int UsageError(const std::string& msg, const char* command) {
  std::fprintf(stderr, "evstore-inspect: %s\n%s", msg.c_str(), kUsageText);
  if (command)
    std::fprintf(stderr, "use 'evstore-inspect %s --help' for help\n", command);
  else
    std::fprintf(stderr, "use 'evstore-inspect --help' for help\n");
  return kUsage;
}

struct Args {
  std::string db = ".";
  bool db_given = false;
  bool json = false, hex = false, no_progress = false, follow = false;
  std::string stream, from_name;
  uint64_t from = 0, to = evstore::kEnd, limit = evstore::kNoLimit;
  uint64_t max_problems = 1000, top = 10;
  bool from_given = false;
  std::string saga_id;
  bool saga_id_given = false;
  std::string projection, key, prefix;
  bool projection_given = false, key_given = false;
};

bool ParseU64(std::string_view s, uint64_t* out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

// Parses the flags of `cmd`; returns -1 to go on, otherwise an exit code.
int ParseArgs(const Command& cmd, int argc, char** argv, Args* a) {
  std::string_view name = cmd.name;
  auto allowed = [&](std::string_view flag) {
    if (flag == "--db" || flag == "--json") return true;
    if (name == "streams") return flag == "--from" || flag == "--limit";
    if (name == "sagas") return flag == "--id" || flag == "--from" || flag == "--limit";
    if (name == "dump")
      return flag == "--stream" || flag == "--from" || flag == "--to" || flag == "--limit" ||
             flag == "--hex" || flag == "--no-progress";
    if (name == "tail") return flag == "--from" || flag == "--follow" || flag == "--hex";
    if (name == "verify") return flag == "--max-problems" || flag == "--no-progress";
    if (name == "stats") return flag == "--top" || flag == "--no-progress";
    if (name == "projections")
      return flag == "--name" || flag == "--key" || flag == "--prefix" || flag == "--limit";
    return false;
  };
  for (int i = 0; i < argc; i++) {
    std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(cmd.help, stdout);
      return kOk;
    }
    std::string_view flag = arg, value;
    bool inline_value = false;
    if (size_t eq = arg.find('='); arg.starts_with("--") && eq != std::string_view::npos) {
      flag = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      inline_value = true;
    }
    if (!flag.starts_with("-")) {
      // One positional argument: the store directory, as with --db.
      if (a->db_given)
        return UsageError("the store directory is given twice (unexpected argument '" +
                              std::string(arg) + "')",
                          cmd.name);
      if (arg.empty()) return UsageError("the store directory is empty", cmd.name);
      a->db = std::string(arg);
      a->db_given = true;
      continue;
    }
    if (!allowed(flag))
      return UsageError("unknown flag '" + std::string(flag) + "' for " + std::string(name),
                        cmd.name);
    bool boolean =
        flag == "--json" || flag == "--hex" || flag == "--no-progress" || flag == "--follow";
    if (boolean) {
      if (inline_value) return UsageError(std::string(flag) + " takes no value", cmd.name);
      if (flag == "--json") a->json = true;
      if (flag == "--hex") a->hex = true;
      if (flag == "--no-progress") a->no_progress = true;
      if (flag == "--follow") a->follow = true;
      continue;
    }
    if (!inline_value) {
      if (i + 1 >= argc) return UsageError(std::string(flag) + " needs a value", cmd.name);
      value = argv[++i];
    }
    auto number = [&](uint64_t* out) {
      if (!ParseU64(value, out)) {
        UsageError(std::string(flag) + " needs a non-negative integer, not '" +
                       std::string(value) + "'",
                   cmd.name);
        return false;
      }
      return true;
    };
    if (flag == "--db") {
      if (value.empty()) return UsageError("--db needs a path", cmd.name);
      if (a->db_given) return UsageError("the store directory is given twice", cmd.name);
      a->db = std::string(value);
      a->db_given = true;
    } else if (flag == "--stream") {
      if (value.empty()) return UsageError("--stream needs a name", cmd.name);
      a->stream = std::string(value);
    } else if (flag == "--name") {
      if (value.empty()) return UsageError("--name needs a projection name", cmd.name);
      a->projection = std::string(value);
      a->projection_given = true;
    } else if (flag == "--key") {
      a->key = std::string(value);
      a->key_given = true;
    } else if (flag == "--prefix") {
      a->prefix = std::string(value);
    } else if (flag == "--id") {
      a->saga_id = std::string(value);
      a->saga_id_given = true;
    } else if (flag == "--from" && (name == "streams" || name == "sagas")) {
      a->from_name = std::string(value);
    } else if (flag == "--from") {
      if (!number(&a->from)) return kUsage;
      a->from_given = true;
    } else if (flag == "--to") {
      if (!number(&a->to)) return kUsage;
    } else if (flag == "--limit") {
      if (!number(&a->limit)) return kUsage;
    } else if (flag == "--max-problems") {
      if (!number(&a->max_problems)) return kUsage;
    } else if (flag == "--top") {
      if (!number(&a->top)) return kUsage;
    }
  }
  if (a->json && a->hex) return UsageError("--json and --hex exclude each other", cmd.name);
  if ((a->key_given || !a->prefix.empty()) && !a->projection_given)
    return UsageError("--key and --prefix need --name", cmd.name);
  if (a->key_given && !a->prefix.empty()) return UsageError("--key and --prefix exclude each other", cmd.name);
  if (a->from > a->to) return UsageError("--from is after --to", cmd.name);
  return -1;
}

// A progress line on stderr, redrawn at most every 100 ms, only on a terminal.
class ProgressLine {
 public:
  ProgressLine(const char* command, bool enabled)
      : command_(command), enabled_(enabled && isatty(STDERR_FILENO)) {}
  ~ProgressLine() { Clear(); }
  ins::ProgressFn fn() {
    if (!enabled_) return ins::ProgressFn();
    return [this](const ins::Progress& p) { Show(p); };
  }
  void Clear() {
    if (shown_) std::fputs("\r\033[K", stderr);
    shown_ = false;
  }

 private:
  void Show(const ins::Progress& p) {
    auto now = std::chrono::steady_clock::now();
    if (shown_ && now - last_ < std::chrono::milliseconds(100)) return;
    last_ = now;
    if (p.total > 0)
      std::fprintf(stderr, "\r\033[K%s: %.*s %" PRIu64 "/%" PRIu64 " (%d%%)", command_,
                   static_cast<int>(p.phase.size()), p.phase.data(), p.done, p.total,
                   static_cast<int>(p.done * 100 / p.total));
    else
      std::fprintf(stderr, "\r\033[K%s: %.*s %" PRIu64, command_, static_cast<int>(p.phase.size()),
                   p.phase.data(), p.done);
    shown_ = true;
  }
  const char* command_;
  bool enabled_;
  bool shown_ = false;
  std::chrono::steady_clock::time_point last_;
};

int Fail(const Status& s, int code) {
  std::fprintf(stderr, "evstore-inspect: %s\n", s.ToString().c_str());
  return code;
}

int OpenStore(const std::string& path, std::optional<evstore::Store>* out) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    std::fprintf(stderr, "evstore-inspect: '%s': no such directory\n", path.c_str());
    return kCannotOpen;
  }
  evstore::Options o;
  o.read_only = true;
  o.create_if_missing = false;
  o.block_cache_bytes = 8u << 20;
  auto r = evstore::Store::open(path, o);
  if (!r.ok()) {
    std::string msg = r.status().ToString();
    std::fprintf(stderr, "evstore-inspect: cannot open the store: %s\n", msg.c_str());
    return kCannotOpen;
  }
  out->emplace(std::move(r).value());
  return -1;
}

std::string Json(std::string_view s) {
  std::string out;
  ins::AppendJsonString(s, &out);
  return out;
}

std::string Esc(std::string_view s) {
  std::string out;
  ins::AppendEscaped(s, &out);
  return out;
}

std::string Time(int64_t ms) {
  std::string out;
  ins::AppendTime(ms, &out);
  return out;
}

void Put(const std::string& s) { std::fwrite(s.data(), 1, s.size(), stdout); }

int RunInfo(evstore::Store& store, const Args& a) {
  auto r = ins::GetInfo(store);
  if (!r.ok()) return Fail(r.status(), kReadFailed);
  const ins::StoreInfo& i = *r;
  std::string out;
  if (a.json) {
    out = "{\"path\":" + Json(i.path) + ",\"format_version\":" + std::to_string(i.format_version) +
          ",\"created_ms\":" + std::to_string(i.created_ms) + ",\"created\":\"" +
          Time(i.created_ms) + "\",\"events\":" + std::to_string(i.event_count) +
          ",\"streams\":" + std::to_string(i.stream_count) +
          ",\"next_position\":" + std::to_string(i.next_position) +
          ",\"next_stream_id\":" + std::to_string(i.next_stream_id) + ",\"id_tag\":\"" + i.id_tag +
          "\",\"column_families\":[";
    for (size_t k = 0; k < i.column_families.size(); k++) {
      const auto& c = i.column_families[k];
      out += (k ? "," : "") + std::string("{\"name\":") + Json(c.name) +
             ",\"estimated_keys\":" + std::to_string(c.estimated_keys) +
             ",\"sst_bytes\":" + std::to_string(c.sst_bytes) +
             ",\"memtable_bytes\":" + std::to_string(c.memtable_bytes) + "}";
    }
    out += "]}\n";
  } else {
    out = "path            " + Esc(i.path) + "\nformat version  " +
          std::to_string(i.format_version) + "\ncreated         " + Time(i.created_ms) +
          "\nevents          " + std::to_string(i.event_count) + "\nstreams         " +
          std::to_string(i.stream_count) + "\nnext position   " + std::to_string(i.next_position) +
          "\nnext stream id  " + std::to_string(i.next_stream_id) + "\nid tag          " +
          i.id_tag + "\n\ncolumn family    est. keys     sst bytes  memtable bytes\n";
    for (const auto& c : i.column_families) {
      char line[160];
      std::snprintf(line, sizeof line, "%-15s %10" PRIu64 " %13" PRIu64 " %15" PRIu64 "\n",
                    c.name.c_str(), c.estimated_keys, c.sst_bytes, c.memtable_bytes);
      out += line;
    }
  }
  Put(out);
  return kOk;
}

int RunStreams(evstore::Store& store, const Args& a) {
  uint64_t n = 0;
  if (!a.json) Put("stream\tid\thead_version\thead_position\tevents\n");
  Status s = ins::ListStreams(store, a.from_name, [&](const ins::StreamSummary& st) {
    if (n >= a.limit) return false;
    n++;
    std::string out;
    if (a.json) {
      out = "{\"name\":" + Json(st.name) + ",\"id\":" + std::to_string(st.stream_id) +
            ",\"head_version\":" + (st.has_events ? std::to_string(st.head_version) : "null") +
            ",\"head_position\":" + (st.has_events ? std::to_string(st.head_position) : "null") +
            ",\"events\":" + std::to_string(st.event_count) +
            ",\"created_position\":" + std::to_string(st.created_position) +
            ",\"created_ms\":" + std::to_string(st.created_ms) + "}\n";
    } else {
      out = Esc(st.name) + "\t" + std::to_string(st.stream_id) + "\t" +
            (st.has_events ? std::to_string(st.head_version) : "-") + "\t" +
            (st.has_events ? std::to_string(st.head_position) : "-") + "\t" +
            std::to_string(st.event_count) + "\n";
    }
    Put(out);
    return true;
  });
  if (!s.ok()) return Fail(s, s.IsCorruption() ? kProblems : kReadFailed);
  return kOk;
}

int RunDump(evstore::Store& store, const Args& a) {
  ins::DumpOptions o;
  o.format = a.json ? ins::DumpFormat::kJson : a.hex ? ins::DumpFormat::kHex : ins::DumpFormat::kText;
  o.stream = a.stream;
  o.from = a.from;
  o.to = a.to;
  o.limit = a.limit;
  ProgressLine progress("dump", !a.no_progress);
  o.progress = progress.fn();
  ins::DumpSummary sum;
  Status s = ins::Dump(store, o, [&](std::string_view text) {
    progress.Clear();
    std::fwrite(text.data(), 1, text.size(), stdout);
  }, &sum);
  progress.Clear();
  if (!s.ok()) return Fail(s, s.IsNotFound() || s.IsInvalidArgument() ? kUsage : kReadFailed);
  if (sum.corrupt > 0) {
    std::fprintf(stderr, "evstore-inspect: %" PRIu64 " damaged record(s) in the dump\n",
                 sum.corrupt);
    return kProblems;
  }
  return kOk;
}

// How many events tail prints when not given --from.
constexpr uint64_t kTailEvents = 10;

ins::DumpFormat FormatOf(const Args& a) {
  return a.json ? ins::DumpFormat::kJson : a.hex ? ins::DumpFormat::kHex : ins::DumpFormat::kText;
}

uint64_t TailStart(const Args& a, uint64_t end) {
  if (a.from_given) return a.from;
  return end > kTailEvents ? end - kTailEvents : 0;
}

int RunTail(evstore::Store& store, const Args& a) {
  auto st = store.stats();
  if (!st.ok()) return Fail(st.status(), kReadFailed);
  ins::DumpOptions o;
  o.format = FormatOf(a);
  o.from = TailStart(a, st->next_position);
  ins::DumpSummary sum;
  Status s = ins::Dump(store, o, [&](std::string_view text) {
    std::fwrite(text.data(), 1, text.size(), stdout);
  }, &sum);
  if (!s.ok()) return Fail(s, kReadFailed);
  if (sum.corrupt > 0) {
    std::fprintf(stderr, "evstore-inspect: %" PRIu64 " damaged record(s)\n", sum.corrupt);
    return kProblems;
  }
  return kOk;
}

// tail --follow: set by SIGINT and SIGTERM.
volatile sig_atomic_t g_stop = 0;
extern "C" void OnStopSignal(int) { g_stop = 1; }

// Waits up to `ms` for a stop signal or, when stdout is a pipe or socket,
// for its reader to go away (POLLERR/POLLHUP: nothing more would be read).
// The signals stay blocked except inside ppoll, so one that arrives between
// the check of g_stop and the wait still ends the wait. False when stdout's
// reader is gone.
bool Pause(int ms) {
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGINT);
  sigaddset(&block, SIGTERM);
  sigprocmask(SIG_BLOCK, &block, &old);
  bool open = true;
  if (!g_stop) {
    struct stat sb;
    bool watch = fstat(STDOUT_FILENO, &sb) == 0 && (S_ISFIFO(sb.st_mode) || S_ISSOCK(sb.st_mode));
    struct pollfd pfd = {STDOUT_FILENO, 0, 0};
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    int n = ppoll(watch ? &pfd : nullptr, watch ? 1 : 0, &ts, &old);
    if (n > 0 && (pfd.revents & (POLLERR | POLLHUP))) open = false;
  }
  sigprocmask(SIG_SETMASK, &old, nullptr);
  return open;
}

// Follows the store through a secondary instance until a signal or a closed
// output. Everything it made (the private directory) is removed on the way
// out, which is why the signals only set a flag.
int RunFollow(const Args& a) {
  std::error_code ec;
  if (!std::filesystem::exists(a.db, ec)) {
    std::fprintf(stderr, "evstore-inspect: '%s': no such directory\n", a.db.c_str());
    return kCannotOpen;
  }
  struct sigaction sa = {};
  sa.sa_handler = OnStopSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: a blocking call returns EINTR
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  // A closed output is a write error (EPIPE), not a death by SIGPIPE that
  // would leave the private directory behind.
  signal(SIGPIPE, SIG_IGN);

  auto f = ins::LogFollower::Open(a.db);
  if (!f.ok()) {
    std::fprintf(stderr, "evstore-inspect: cannot open the store: %s\n",
                 f.status().ToString().c_str());
    return kCannotOpen;
  }
  ins::LogFollower& follower = **f;
  const ins::DumpFormat format = FormatOf(a);
  uint64_t next = TailStart(a, follower.end()), corrupt = 0;
  bool out_open = true;
  int write_errno = 0;
  auto closed = [&] {
    out_open = false;
    if (write_errno == 0) write_errno = errno;
  };
  auto sink = [&](std::string_view text) {
    if (std::fwrite(text.data(), 1, text.size(), stdout) != text.size()) closed();
    return out_open && !g_stop;
  };
  int rc = kOk;
  for (;;) {
    ins::DumpSummary sum;
    Status s = follower.Read(next, evstore::kNoLimit, format, sink, &sum, &next);
    corrupt += sum.corrupt;
    if (std::fflush(stdout) != 0) closed();
    if (!s.ok()) {
      rc = Fail(s, kReadFailed);
      break;
    }
    if (!out_open || g_stop) break;
    if (!Pause(100) || g_stop) break;
    s = follower.CatchUp();
    if (!s.ok()) {
      rc = Fail(s, kReadFailed);
      break;
    }
  }
  if (!out_open && write_errno != EPIPE && rc == kOk) {
    std::fprintf(stderr, "evstore-inspect: writing the output failed: %s\n",
                 std::strerror(write_errno));
    rc = kReadFailed;
  }
  if (rc == kOk && corrupt > 0) {
    std::fprintf(stderr, "evstore-inspect: %" PRIu64 " damaged record(s)\n", corrupt);
    rc = kProblems;
  }
  return rc;
}

int RunVerify(evstore::Store& store, const Args& a) {
  ins::VerifyOptions o;
  o.max_problems = a.max_problems;
  ProgressLine progress("verify", !a.no_progress);
  o.progress = progress.fn();
  auto r = ins::Verify(store, o);
  progress.Clear();
  if (!r.ok()) return Fail(r.status(), kReadFailed);
  const ins::VerifyReport& v = *r;
  std::string out;
  if (a.json) {
    out = "{\"ok\":" + std::string(v.ok() ? "true" : "false") +
          ",\"events\":" + std::to_string(v.events) + ",\"streams\":" + std::to_string(v.streams) +
          ",\"stream_index_entries\":" + std::to_string(v.stream_index_entries) +
          ",\"category_index_entries\":" + std::to_string(v.category_index_entries) +
          ",\"type_index_entries\":" + std::to_string(v.type_index_entries) +
          ",\"event_id_entries\":" + std::to_string(v.event_id_entries) +
          ",\"saga_records\":" + std::to_string(v.saga_records) +
          ",\"checkpoint_records\":" + std::to_string(v.checkpoint_records) +
          ",\"problem_count\":" + std::to_string(v.problem_count) + ",\"problems\":[";
    for (size_t k = 0; k < v.problems.size(); k++) {
      const auto& p = v.problems[k];
      out += (k ? "," : "") + std::string("{\"column_family\":") + Json(p.column_family) +
             ",\"key\":" + Json(p.key) + ",\"position\":" +
             (p.position == ins::Problem::kNoPosition ? "null" : std::to_string(p.position)) +
             ",\"message\":" + Json(p.message) + "}";
    }
    out += "]}\n";
  } else {
    out = "checked: " + std::to_string(v.events) + " events, " + std::to_string(v.streams) +
          " streams, " + std::to_string(v.stream_index_entries) + " stream_index, " +
          std::to_string(v.category_index_entries) + " category_index, " +
          std::to_string(v.type_index_entries) + " type_index, " +
          std::to_string(v.event_id_entries) + " event_ids entries, " +
          std::to_string(v.saga_records) + " sagas, " + std::to_string(v.checkpoint_records) +
          " checkpoints\n";
    for (const auto& p : v.problems)
      out += "PROBLEM " + p.column_family + " [" + Esc(p.key) + "]: " + Esc(p.message) + "\n";
    if (v.problem_count > v.problems.size())
      out += "... and " + std::to_string(v.problem_count - v.problems.size()) +
             " more problem(s) not listed (--max-problems)\n";
    out += v.ok() ? "OK: no problems found\n"
                  : "FAILED: " + std::to_string(v.problem_count) + " problem(s) found\n";
  }
  Put(out);
  return v.ok() ? kOk : kProblems;
}

std::string SagaJson(const ins::SagaInfo& g, bool with_history) {
  std::string out = "{\"id\":" + Json(g.id) + ",\"definition\":" + Json(g.definition) +
                    ",\"version\":" + std::to_string(g.version) + ",\"state\":" + Json(g.state) +
                    ",\"step\":" + std::to_string(g.step) + ",\"attempt\":" +
                    std::to_string(g.attempt) + ",\"started\":" + std::to_string(g.started) +
                    ",\"next_attempt_ms\":" +
                    std::to_string(g.next_attempt_ms) + ",\"tainted\":" +
                    (g.tainted ? "true" : "false") + ",\"resolved\":" +
                    (g.resolved ? "true" : "false") + ",\"error\":" + Json(g.error) +
                    ",\"created_ms\":" + std::to_string(g.created_ms) +
                    ",\"updated_ms\":" + std::to_string(g.updated_ms) +
                    ",\"revision\":" + std::to_string(g.revision);
  if (with_history) {
    out += ",\"input\":" + Json(g.input) + ",\"outputs\":[";
    for (size_t k = 0; k < g.outputs.size(); k++) out += (k ? "," : "") + Json(g.outputs[k]);
    out += "],\"history_dropped\":" + std::to_string(g.history_dropped) + ",\"history\":[";
    for (size_t k = 0; k < g.history.size(); k++) {
      const auto& h = g.history[k];
      out += (k ? "," : "") + std::string("{\"time_ms\":") + std::to_string(h.time_ms) +
             ",\"event\":" + Json(h.event) + ",\"state\":" + Json(h.state) +
             ",\"step\":" + std::to_string(h.step) + ",\"attempt\":" +
             std::to_string(h.attempt) + ",\"text\":" + Json(h.text) + "}";
    }
    out += "]";
  }
  return out + "}\n";
}

int RunSagas(evstore::Store& store, const Args& a) {
  if (a.saga_id_given) {
    auto r = ins::GetSaga(store, a.saga_id);
    if (!r.ok())
      return Fail(r.status(), r.status().IsNotFound()     ? kUsage
                              : r.status().IsCorruption() ? kProblems
                                                          : kReadFailed);
    const ins::SagaInfo& g = *r;
    if (a.json) {
      Put(SagaJson(g, true));
      return kOk;
    }
    std::string out = "id          " + Esc(g.id) + "\ndefinition  " + Esc(g.definition) + "@" +
                      std::to_string(g.version) + "\nstate       " + g.state +
                      (g.resolved ? " (resolved by hand)" : "") + "\nstep        " +
                      std::to_string(g.step) + " (attempt " + std::to_string(g.attempt) +
                      ", started " + std::to_string(g.started) +
                      (g.started > g.attempt ? ": running or interrupted" : "") + ")" +
                      (g.tainted ? " tainted" : "") + "\ncreated     " + Time(g.created_ms) +
                      "\nupdated     " + Time(g.updated_ms) + " (revision " +
                      std::to_string(g.revision) + ")\n";
    if (g.next_attempt_ms) out += "next try    " + Time(g.next_attempt_ms) + "\n";
    if (!g.error.empty()) out += "error       " + Esc(g.error) + "\n";
    out += "input       " + Esc(g.input) + "\n";
    for (size_t k = 0; k < g.outputs.size(); k++)
      out += "output " + std::to_string(k) + "    " + Esc(g.outputs[k]) + "\n";
    out += "history";
    if (g.history_dropped) out += " (" + std::to_string(g.history_dropped) + " older entries dropped)";
    out += "\n";
    for (const auto& h : g.history) {
      out += "  " + Time(h.time_ms) + "  " + h.event + " -> " + h.state;
      if (h.step >= 0) out += "  step " + std::to_string(h.step);
      if (h.attempt) out += " attempt " + std::to_string(h.attempt);
      if (!h.text.empty()) out += "  " + Esc(h.text);
      out += "\n";
    }
    Put(out);
    return kOk;
  }
  uint64_t n = 0;
  if (!a.json) Put("saga\tdefinition\tstate\tstep\tattempt\tstarted\tupdated\n");
  Status s = ins::ListSagas(store, a.from_name, [&](const ins::SagaInfo& g) {
    if (n >= a.limit) return false;
    n++;
    if (a.json)
      Put(SagaJson(g, false));
    else
      Put(Esc(g.id) + "\t" + Esc(g.definition) + "@" + std::to_string(g.version) + "\t" + g.state +
          "\t" + std::to_string(g.step) + "\t" + std::to_string(g.attempt) + "\t" +
          std::to_string(g.started) + "\t" + Time(g.updated_ms) + "\n");
    return true;
  });
  if (!s.ok()) return Fail(s, s.IsCorruption() ? kProblems : kReadFailed);
  return kOk;
}

int RunCheckpoints(evstore::Store& store, const Args& a) {
  using State = ins::CheckpointStatus::State;
  uint64_t problems = 0;
  if (!a.json) Put("checkpoint\tposition\tlag\tupdated\n");
  Status s = ins::ListCheckpoints(store, [&](const ins::CheckpointStatus& c) {
    const bool damaged = c.state == State::kDamaged, ok = c.state == State::kOk;
    if (!ok) problems++;
    std::string out;
    if (a.json) {
      out = "{\"name\":" + Json(c.name) +
            ",\"position\":" + (damaged ? "null" : std::to_string(c.position)) +
            ",\"lag\":" + (ok ? std::to_string(c.lag) : "null") +
            ",\"updated_ms\":" + (damaged ? "null" : std::to_string(c.updated_ms)) +
            ",\"updated\":" + (damaged ? "null" : "\"" + Time(c.updated_ms) + "\"");
      if (!ok) out += ",\"problem\":" + Json(c.problem);
      out += "}\n";
    } else {
      out = Esc(c.name) + "\t" + (damaged ? "-" : std::to_string(c.position)) + "\t" +
            (ok ? std::to_string(c.lag) : "-") + "\t" + (damaged ? "-" : Time(c.updated_ms));
      if (!ok) out += "\tPROBLEM: " + Esc(c.problem);
      out += "\n";
    }
    Put(out);
    return true;
  });
  if (!s.ok()) return Fail(s, kReadFailed);
  if (problems > 0) {
    std::fprintf(stderr, "evstore-inspect: %" PRIu64 " checkpoint(s) with problems\n", problems);
    return kProblems;
  }
  return kOk;
}

int RunProjections(evstore::Store& store, const Args& a) {
  if (!a.projection_given) {
    auto list = store.list_projections();
    if (!list.ok()) return Fail(list.status(), kReadFailed);
    auto stats = store.stats();
    const uint64_t end = stats.ok() ? stats->next_position : 0;
    if (!a.json) Put("projection\tversion\tposition\tlag\thandled\tupdated\trebuild\n");
    for (const evstore::ProjectionInfo& p : *list) {
      const uint64_t lag = end > p.position ? end - p.position : 0;
      std::string out;
      if (a.json) {
        out = "{\"name\":" + Json(p.name) + ",\"version\":" + std::to_string(p.version) +
              ",\"position\":" + std::to_string(p.position) + ",\"lag\":" + std::to_string(lag) +
              ",\"events_handled\":" + std::to_string(p.events_handled) +
              ",\"updated_ms\":" + std::to_string(p.updated_ms) + ",\"updated\":\"" + Time(p.updated_ms) +
              "\",\"rebuild_position\":" + (p.rebuilding ? std::to_string(p.rebuild_position) : "null") + "}\n";
      } else {
        out = Esc(p.name) + "\t" + std::to_string(p.version) + "\t" + std::to_string(p.position) + "\t" +
              std::to_string(lag) + "\t" + std::to_string(p.events_handled) + "\t" + Time(p.updated_ms) +
              "\t" + (p.rebuilding ? std::to_string(p.rebuild_position) : "-") + "\n";
      }
      Put(out);
    }
    return kOk;
  }
  auto entry = [&](std::string_view key, std::string_view value) {
    Put(a.json ? "{\"key\":" + Json(key) + ",\"value\":" + Json(value) + "}\n"
               : Esc(key) + "\t" + Esc(value) + "\n");
  };
  if (a.key_given) {
    auto v = store.projection_get(a.projection, a.key);
    if (!v.ok()) return Fail(v.status(), v.status().IsNotFound() ? kProblems : kReadFailed);
    entry(a.key, *v);
    return kOk;
  }
  std::string after;
  uint64_t left = a.limit;
  while (left > 0) {
    auto page = store.projection_scan(a.projection, a.prefix, after, std::min<uint64_t>(left, 1000));
    if (!page.ok()) return Fail(page.status(), page.status().IsNotFound() ? kProblems : kReadFailed);
    for (const evstore::ProjectionEntry& e : *page) entry(e.key, e.value);
    left -= page->size();
    if (page->size() < 1000) break;
    after = page->back().key;
  }
  return kOk;
}

int RunStats(evstore::Store& store, const Args& a) {
  ProgressLine progress("stats", !a.no_progress);
  auto r = ins::GetStats(store, a.top, progress.fn());
  progress.Clear();
  if (!r.ok()) return Fail(r.status(), kReadFailed);
  const ins::LogStats& s = *r;
  auto m = store.metrics();
  if (!m.ok()) return Fail(m.status(), kReadFailed);
  const evstore::RocksDbMetrics& rocks = m->rocksdb;
  std::string out;
  auto list_json = [&](const std::vector<ins::NameCount>& v) {
    std::string j = "[";
    for (size_t k = 0; k < v.size(); k++)
      j += (k ? "," : "") + std::string("{\"name\":") + Json(v[k].name) +
           ",\"events\":" + std::to_string(v[k].events) + "}";
    return j + "]";
  };
  if (a.json) {
    out = "{\"events\":" + std::to_string(s.events) + ",\"streams\":" + std::to_string(s.streams) +
          ",\"corrupt_records\":" + std::to_string(s.corrupt_records) +
          ",\"record_bytes\":" + std::to_string(s.record_bytes) +
          ",\"data_bytes\":" + std::to_string(s.data_bytes) +
          ",\"metadata_bytes\":" + std::to_string(s.metadata_bytes) +
          ",\"largest_record_bytes\":" + std::to_string(s.largest_record_bytes) +
          ",\"largest_record_position\":" + std::to_string(s.largest_record_position) +
          ",\"longest_stream\":" + Json(s.longest_stream) +
          ",\"longest_stream_events\":" + std::to_string(s.longest_stream_events) +
          ",\"first_timestamp_ms\":" + std::to_string(s.first_timestamp_ms) +
          ",\"last_timestamp_ms\":" + std::to_string(s.last_timestamp_ms) +
          ",\"caller_ids\":" + std::to_string(s.caller_ids) +
          ",\"distinct_types\":" + std::to_string(s.distinct_types) +
          ",\"distinct_categories\":" + std::to_string(s.distinct_categories) +
          ",\"types\":" + list_json(s.types) + ",\"categories\":" + list_json(s.categories) +
          ",\"rocksdb\":{\"column_families\":[";
    for (size_t k = 0; k < rocks.column_families.size(); k++) {
      const evstore::ColumnFamilyMetrics& c = rocks.column_families[k];
      out += (k ? ",{\"name\":" : "{\"name\":") + Json(c.name) +
             ",\"estimated_keys\":" + std::to_string(c.estimated_keys) +
             ",\"live_data_bytes\":" + std::to_string(c.live_data_bytes) +
             ",\"memtable_bytes\":" + std::to_string(c.memtable_bytes) +
             ",\"sst_bytes\":" + std::to_string(c.sst_bytes) +
             ",\"pending_compaction_bytes\":" + std::to_string(c.pending_compaction_bytes) + "}";
    }
    out += "],\"block_cache_bytes\":" + std::to_string(rocks.block_cache_bytes) + "}}\n";
  } else {
    auto row = [&](const char* k, const std::string& v) {
      char line[64];
      std::snprintf(line, sizeof line, "%-24s", k);
      out += line + v + "\n";
    };
    row("events", std::to_string(s.events));
    row("streams", std::to_string(s.streams));
    if (s.corrupt_records) row("corrupt records", std::to_string(s.corrupt_records));
    row("record bytes", std::to_string(s.record_bytes));
    row("data bytes", std::to_string(s.data_bytes));
    row("metadata bytes", std::to_string(s.metadata_bytes));
    if (s.events) {
      row("mean record bytes", std::to_string(s.record_bytes / s.events));
      row("largest record", std::to_string(s.largest_record_bytes) + " bytes at position " +
                                std::to_string(s.largest_record_position));
      row("longest stream", Esc(s.longest_stream) + " (" + std::to_string(s.longest_stream_events) +
                                " events)");
      row("first event", Time(s.first_timestamp_ms));
      row("last event", Time(s.last_timestamp_ms));
    }
    row("caller-supplied ids", std::to_string(s.caller_ids));
    out += "\ntop types (" + std::to_string(s.distinct_types) + " distinct)\n";
    for (const auto& t : s.types) out += "  " + std::to_string(t.events) + "\t" + Esc(t.name) + "\n";
    out += "\ntop categories (" + std::to_string(s.distinct_categories) + " distinct)\n";
    for (const auto& t : s.categories)
      out += "  " + std::to_string(t.events) + "\t" + Esc(t.name) + "\n";
    out += "\nrocksdb (estimates)\n";
    char line[200];
    std::snprintf(line, sizeof line, "  %-16s %12s %14s %14s %14s %14s\n", "column family", "keys",
                  "live bytes", "memtable bytes", "sst bytes", "pending bytes");
    out += line;
    for (const evstore::ColumnFamilyMetrics& c : rocks.column_families) {
      std::snprintf(line, sizeof line, "  %-16s %12llu %14llu %14llu %14llu %14llu\n", c.name.c_str(),
                    static_cast<unsigned long long>(c.estimated_keys),
                    static_cast<unsigned long long>(c.live_data_bytes),
                    static_cast<unsigned long long>(c.memtable_bytes),
                    static_cast<unsigned long long>(c.sst_bytes),
                    static_cast<unsigned long long>(c.pending_compaction_bytes));
      out += line;
    }
  }
  Put(out);
  return s.corrupt_records ? kProblems : kOk;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return UsageError("no command given", nullptr);
  std::string_view first = argv[1];
  if (first == "--help" || first == "-h" || first == "help") {
    if (first == "help" && argc >= 3) {
      if (const Command* c = FindCommand(argv[2])) {
        std::fputs(c->help, stdout);
        return kOk;
      }
      return UsageError("unknown command '" + std::string(argv[2]) + "'", nullptr);
    }
    PrintMainHelp();
    return kOk;
  }
  const Command* cmd = FindCommand(first);
  if (cmd == nullptr) return UsageError("unknown command '" + std::string(first) + "'", nullptr);
  Args a;
  int rc = ParseArgs(*cmd, argc - 2, argv + 2, &a);
  if (rc >= 0) return rc;
  if (a.follow) {
    // Not the read-only store: it would see the log as it was at open.
    rc = RunFollow(a);
    std::fflush(stdout);
    std::fflush(stderr);
    return rc;
  }
  std::optional<evstore::Store> opened;
  rc = OpenStore(a.db, &opened);
  if (rc >= 0) return rc;
  evstore::Store& store = *opened;
  std::string_view name = cmd->name;
  if (name == "info") rc = RunInfo(store, a);
  if (name == "streams") rc = RunStreams(store, a);
  if (name == "dump") rc = RunDump(store, a);
  if (name == "tail") rc = RunTail(store, a);
  if (name == "verify") rc = RunVerify(store, a);
  if (name == "sagas") rc = RunSagas(store, a);
  if (name == "checkpoints") rc = RunCheckpoints(store, a);
  if (name == "projections") rc = RunProjections(store, a);
  if (name == "stats") rc = RunStats(store, a);
  if (std::fflush(stdout) != 0 && rc == kOk) rc = kReadFailed;
  return rc;
}
