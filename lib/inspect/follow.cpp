// inspect: LogFollower — the log of a store another process writes, through
// a RocksDB secondary instance.
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <stdlib.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "evstore/inspect.hpp"
#include "format/keys.hpp"
#include "format/record.hpp"
#include "inspect/read_view.hpp"
#include "log/rocks_status.hpp"
#include "inspect/text.hpp"

namespace evstore::inspect {

namespace {
std::string_view ToView(const rocksdb::Slice& s) { return std::string_view(s.data(), s.size()); }
}  // namespace

namespace fs = std::filesystem;

struct LogFollower::Rep {
  std::string path;
  std::string scratch;
  rocksdb::DB* db = nullptr;
  // default (the format record) and events: the follower reads nothing
  // else, and the secondary skips the write-ahead log's entries of families
  // it did not open.
  std::vector<rocksdb::ColumnFamilyHandle*> cfs;
  uint64_t end = 0;

  ~Rep() {
    if (db != nullptr) {
      for (auto* h : cfs) db->DestroyColumnFamilyHandle(h).PermitUncheckedError();
      db->Close().PermitUncheckedError();
      delete db;
    }
    if (!scratch.empty()) {
      std::error_code ec;
      fs::remove_all(scratch, ec);
    }
  }
  rocksdb::ColumnFamilyHandle* events() const { return cfs[1]; }

  // end: one past the last key of `events`.
  Status FindEnd() {
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), events()));
    it->SeekToLast();
    uint64_t e = 0;
    if (it->Valid()) {
      auto p = format::DecodeEventKey(ToView(it->key()));
      if (!p || *p == UINT64_MAX)
        return Status::Corruption("'" + path + "': malformed key in the events column family");
      e = *p + 1;
    }
    if (!it->status().ok()) return internal::StatusFromRocks(it->status(), "finding the end of the log");
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

  rocksdb::DBOptions dbo;
  dbo.max_open_files = -1;  // required of a secondary (rocksdb/db.h)
  dbo.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;
  std::vector<std::string> names;
  rocksdb::Status ls = rocksdb::DB::ListColumnFamilies(dbo, rep->path, &names);
  if (!ls.ok()) return internal::StatusFromRocks(ls, "cannot list column families of '" + rep->path + "'");
  if (std::find(names.begin(), names.end(), internal::kCfNames[internal::kCfEvents]) == names.end())
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

  std::vector<rocksdb::ColumnFamilyDescriptor> descs;
  descs.emplace_back(internal::kCfNames[internal::kCfDefault], rocksdb::ColumnFamilyOptions());
  descs.emplace_back(internal::kCfNames[internal::kCfEvents], rocksdb::ColumnFamilyOptions());
  rocksdb::Status os =
      rocksdb::DB::OpenAsSecondary(dbo, rep->path, rep->scratch, descs, &rep->cfs, &rep->db);
  if (!os.ok()) {
    rep->db = nullptr;
    return internal::StatusFromRocks(os, "cannot open '" + rep->path + "' to follow it");
  }

  std::string fmt;
  rocksdb::Status gs = rep->db->Get(rocksdb::ReadOptions(), rep->cfs[0],
                                    std::string(format::kFormatKey), &fmt);
  if (gs.IsNotFound())
    return Status::InvalidArgument("'" + rep->path + "' is not an evstore store (no format record)");
  if (!gs.ok()) return internal::StatusFromRocks(gs, "cannot read the format record");
  auto rec = format::DecodeFormatRecord(fmt);
  if (!rec) return Status::Corruption("'" + rep->path + "': the format record is damaged");
  if (rec->version > format::kFormatVersion)
    return Status::NotSupported("'" + rep->path + "' uses on-disk format " +
                                std::to_string(rec->version) + "; this evstore reads up to " +
                                std::to_string(format::kFormatVersion));
  Status s = rep->FindEnd();
  if (!s.ok()) return s;
  return std::unique_ptr<LogFollower>(new LogFollower(std::move(rep)));
}

Status LogFollower::CatchUp() {
  rocksdb::Status s = rep_->db->TryCatchUpWithPrimary();
  if (!s.ok()) return internal::StatusFromRocks(s, "catching up with the store's writer");
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
  format::Be64 upper(rep_->end), start(from);
  rocksdb::Slice ub(upper.buf, 8);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &ub;
  ro.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it(rep_->db->NewIterator(ro, rep_->events()));
  std::string scratch, out;
  bool more = true;
  for (it->Seek(rocksdb::Slice(start.buf, 8)); it->Valid() && more && sum->events < limit;
       it->Next()) {
    out.clear();
    auto pos = format::DecodeEventKey(ToView(it->key()));
    if (!pos) {
      std::string msg = "malformed key in events: ";
      AppendHex(ToView(it->key()), &msg);
      FormatCorrupt(at, msg, format, ToView(it->value()), &out);
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
    Status ds = format::DecodeEvent(*pos, ToView(it->value()), &scratch, &e);
    if (ds.ok()) {
      FormatEvent(e, format, ToView(it->value()), &out);
    } else {
      FormatCorrupt(*pos, ds.message(), format, ToView(it->value()), &out);
      sum->corrupt++;
    }
    sum->events++;
    at = *pos + 1;
    if (next != nullptr) *next = at;
    more = sink(out);
  }
  if (!it->status().ok()) return internal::StatusFromRocks(it->status(), "reading events");
  return Status::OK();
}

}  // namespace evstore::inspect
