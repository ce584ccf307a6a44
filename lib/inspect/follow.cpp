// inspect: LogFollower — the log of a store another process writes, through
// the log layer's secondary instance (log/secondary.hpp).
#include <stdlib.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "evstore/inspect.hpp"
#include "format/keys.hpp"
#include "format/record.hpp"
#include "inspect/text.hpp"
#include "log/cf_cursor.hpp"
#include "log/rocks_status.hpp"
#include "log/secondary.hpp"

namespace evstore::inspect {

namespace fs = std::filesystem;

struct LogFollower::Rep {
  std::string path;
  std::string scratch;
  std::unique_ptr<internal::SecondaryDb> db;
  uint64_t end = 0;

  ~Rep() {
    // The instance keeps files in the scratch directory until it is closed.
    db.reset();
    if (!scratch.empty()) {
      std::error_code ec;
      fs::remove_all(scratch, ec);
    }
  }

  // end: one past the last key of `events`.
  Status FindEnd() {
    internal::CfCursor it(*db, internal::kCfEvents);
    it.SeekToLast();
    uint64_t e = 0;
    if (it.Valid()) {
      auto p = format::DecodeEventKey(it.key());
      if (!p || *p == UINT64_MAX)
        return Status::Corruption("'" + path + "': malformed key in the events column family");
      e = *p + 1;
    }
    if (!it.status().ok()) return internal::InContext(it.status(), "finding the end of the log");
    // A secondary sees whole commits in log order, so the end only grows.
    end = std::max(end, e);
    return Status::OK();
  }
};

LogFollower::LogFollower(std::unique_ptr<Rep> rep) : rep_(std::move(rep)) {}
LogFollower::~LogFollower() = default;

Result<std::unique_ptr<LogFollower>> LogFollower::Open(std::string_view path,
                                                       const FollowOptions& options) {
  auto rep = std::make_unique<Rep>();
  rep->path = std::string(path);
  if (path.empty() || path.find('\0') != std::string_view::npos)
    return Status::InvalidArgument("store path is empty or holds a NUL byte");
  std::error_code ec;
  if (!fs::exists(rep->path, ec)) return Status::NotFound("no evstore store at '" + rep->path + "'");
  if (!fs::is_directory(rep->path, ec))
    return Status::InvalidArgument("'" + rep->path + "' is not a directory");
  if (!fs::exists(fs::path(rep->path) / "CURRENT", ec))
    return Status::InvalidArgument("'" + rep->path + "' is not an evstore store");

  std::string parent = options.scratch_parent;
  if (parent.empty()) {
    const char* t = std::getenv("TMPDIR");
    parent = t != nullptr && *t != '\0' ? t : "/tmp";
  }
  std::string tmpl = (fs::path(parent) / "evstore-follow-XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr)
    return Status::IOError("cannot make a private directory in '" + parent + "'");
  rep->scratch = tmpl;

  // The events family holds the log and the default family the format
  // record; nothing else is read.
  auto db = internal::SecondaryDb::Open(rep->path, rep->scratch, {internal::kCfEvents});
  if (!db.ok()) return db.status();
  rep->db = std::move(db).value();
  Status s = rep->FindEnd();
  if (!s.ok()) return s;
  return std::unique_ptr<LogFollower>(new LogFollower(std::move(rep)));
}

Status LogFollower::CatchUp() {
  Status s = rep_->db->CatchUp();
  if (!s.ok()) return s;
  return rep_->FindEnd();
}

uint64_t LogFollower::end() const { return rep_->end; }

const std::string& LogFollower::scratch_dir() const { return rep_->scratch; }

Status LogFollower::Read(uint64_t from, uint64_t limit, DumpFormat format,
                         const std::function<bool(std::string_view)>& sink, DumpSummary* summary,
                         uint64_t* next) {
  DumpSummary local;
  DumpSummary* sum = summary ? summary : &local;
  *sum = DumpSummary();
  uint64_t at = from;
  if (next != nullptr) *next = at;
  if (from >= rep_->end || limit == 0) return Status::OK();
  // Bounded by the end seen at the last catch-up, so that what is written
  // never runs ahead of end().
  internal::CfCursorOptions co;
  co.upper = std::string(format::Be64(rep_->end).view());
  co.fill_cache = false;
  internal::CfCursor it(*rep_->db, internal::kCfEvents, std::move(co));
  std::string scratch, out;
  bool more = true;
  for (it.Seek(format::Be64(from).view()); it.Valid() && more && sum->events < limit; it.Next()) {
    out.clear();
    auto pos = format::DecodeEventKey(it.key());
    if (!pos) {
      std::string msg = "malformed key in events: ";
      AppendHex(it.key(), &msg);
      FormatCorrupt(at, msg, format, it.value(), &out);
      sum->corrupt++;
      sum->events++;
      more = sink(out);
      continue;
    }
    if (*pos > at) {
      // Positions are dense: a hole is damage (an event lost), never an
      // append still under way (commits are seen whole, in order).
      FormatCorrupt(at,
                    "positions " + std::to_string(at) + ".." + std::to_string(*pos - 1) +
                        " are missing (the log has a gap)",
                    format, std::string_view(), &out);
      sum->corrupt++;
    }
    EventView e;
    Status ds = format::DecodeEvent(*pos, it.value(), &scratch, &e);
    if (ds.ok()) {
      FormatEvent(e, format, it.value(), &out);
    } else {
      FormatCorrupt(*pos, ds.message(), format, it.value(), &out);
      sum->corrupt++;
    }
    sum->events++;
    at = *pos + 1;
    if (next != nullptr) *next = at;
    more = sink(out);
  }
  return internal::InContext(it.status(), "reading events");
}

}  // namespace evstore::inspect
