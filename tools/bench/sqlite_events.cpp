#include "sqlite_events.hpp"

#include <sqlite3.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

namespace evbench {
namespace {

[[noreturn]] void Die(sqlite3* db, const char* what) {
  std::fprintf(stderr, "evstore-bench: SQLite %s: %s\n", what, db ? sqlite3_errmsg(db) : "no memory");
  std::exit(1);
}

sqlite3_stmt* Prepare(sqlite3* db, const char* sql) {
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, nullptr) != SQLITE_OK)
    Die(db, sql);
  return st;
}

bool Step(sqlite3_stmt* st) {
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  return rc == SQLITE_DONE || rc == SQLITE_ROW;
}

void BindText(sqlite3_stmt* st, int i, std::string_view s) {
  sqlite3_bind_text(st, i, s.data(), static_cast<int>(s.size()), SQLITE_STATIC);
}
void BindBlob(sqlite3_stmt* st, int i, std::string_view s) {
  sqlite3_bind_blob(st, i, s.data(), static_cast<int>(s.size()), SQLITE_STATIC);
}

// Reads every row of a prepared read (columns as in kColumns) into sink.
int64_t Drain(sqlite3_stmt* st, uint64_t* sink) {
  int64_t n = 0;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    // Touch what a reader uses, as evstore's readers are given it.
    *sink += static_cast<uint64_t>(sqlite3_column_int64(st, 0));
    *sink += static_cast<uint64_t>(sqlite3_column_bytes(st, 1));
    *sink += static_cast<uint64_t>(sqlite3_column_int64(st, 3));
    *sink += static_cast<uint64_t>(sqlite3_column_bytes(st, 4));
    *sink += static_cast<uint64_t>(sqlite3_column_bytes(st, 6));
    n++;
  }
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? n : -1;
}

#define EVBENCH_COLUMNS "position, id, stream, version, type, content_type, data, metadata, timestamp_ms"

}  // namespace

SqliteEvents::SqliteEvents(const std::string& path, bool sync) {
  if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                      nullptr) != SQLITE_OK)
    Die(db_, "open");
  sqlite3_busy_timeout(db_, 30000);
  if (!Exec("PRAGMA journal_mode=WAL")) Die(db_, "journal_mode=WAL");
  if (!Exec(sync ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL")) Die(db_, "synchronous");
  if (!Exec("PRAGMA cache_size=-65536")) Die(db_, "cache_size");
  if (!Exec("CREATE TABLE IF NOT EXISTS events ("
            " position INTEGER PRIMARY KEY,"
            " id BLOB NOT NULL,"
            " stream TEXT NOT NULL,"
            " version INTEGER NOT NULL,"
            " type TEXT NOT NULL,"
            " content_type TEXT NOT NULL,"
            " data BLOB NOT NULL,"
            " metadata BLOB,"
            " timestamp_ms INTEGER NOT NULL,"
            " UNIQUE(stream, version));"
            "CREATE INDEX IF NOT EXISTS events_type ON events(type);"))
    Die(db_, "schema");
  begin_ = Prepare(db_, "BEGIN IMMEDIATE");
  commit_ = Prepare(db_, "COMMIT");
  rollback_ = Prepare(db_, "ROLLBACK");
  last_version_ = Prepare(db_, "SELECT max(version) FROM events WHERE stream = ?1");
  insert_ = Prepare(db_,
                    "INSERT INTO events (id, stream, version, type, content_type, data, metadata,"
                    " timestamp_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL, ?7)");
  read_stream_ =
      Prepare(db_, "SELECT " EVBENCH_COLUMNS " FROM events WHERE stream = ?1 ORDER BY version");
  read_all_ = Prepare(db_, "SELECT " EVBENCH_COLUMNS
                           " FROM events WHERE position >= ?1 ORDER BY position LIMIT ?2");
  read_category_ = Prepare(db_, "SELECT " EVBENCH_COLUMNS
                                " FROM events WHERE stream >= ?1 AND stream < ?2 ORDER BY position");
}

SqliteEvents::~SqliteEvents() {
  for (sqlite3_stmt* st : {begin_, commit_, rollback_, last_version_, insert_, read_stream_, read_all_,
                           read_category_})
    sqlite3_finalize(st);
  sqlite3_close(db_);
}

bool SqliteEvents::Exec(const char* sql) {
  return sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) == SQLITE_OK;
}

bool SqliteEvents::Begin() { return Step(begin_); }

bool SqliteEvents::Commit() {
  if (Step(commit_)) return true;
  Step(rollback_);
  return false;
}

bool SqliteEvents::Insert(std::string_view stream, std::span<const BenchEvent> events) {
  BindText(last_version_, 1, stream);
  int64_t next = 0;
  int rc = sqlite3_step(last_version_);
  if (rc == SQLITE_ROW && sqlite3_column_type(last_version_, 0) != SQLITE_NULL)
    next = sqlite3_column_int64(last_version_, 0) + 1;
  sqlite3_reset(last_version_);
  if (rc != SQLITE_ROW) return false;
  int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  for (const BenchEvent& e : events) {
    BindBlob(insert_, 1, e.id);
    BindText(insert_, 2, stream);
    sqlite3_bind_int64(insert_, 3, next++);
    BindText(insert_, 4, e.type);
    BindText(insert_, 5, e.content_type);
    BindBlob(insert_, 6, e.data);
    sqlite3_bind_int64(insert_, 7, now);
    if (sqlite3_step(insert_) != SQLITE_DONE) {
      sqlite3_reset(insert_);
      return false;
    }
    sqlite3_reset(insert_);
  }
  return true;
}

bool SqliteEvents::AppendInTransaction(std::string_view stream, std::span<const BenchEvent> events) {
  return Insert(stream, events);
}

bool SqliteEvents::Append(std::string_view stream, std::span<const BenchEvent> events) {
  if (!Begin()) return false;
  if (!Insert(stream, events)) {
    Step(rollback_);
    return false;
  }
  return Commit();
}

int64_t SqliteEvents::ReadStream(std::string_view stream, uint64_t* sink) {
  BindText(read_stream_, 1, stream);
  return Drain(read_stream_, sink);
}

int64_t SqliteEvents::ReadAll(uint64_t from, uint64_t limit, uint64_t* sink) {
  sqlite3_bind_int64(read_all_, 1, static_cast<int64_t>(from));
  sqlite3_bind_int64(read_all_, 2, limit > INT64_MAX ? -1 : static_cast<int64_t>(limit));
  return Drain(read_all_, sink);
}

int64_t SqliteEvents::ReadCategory(std::string_view category, uint64_t* sink) {
  // '.' follows '-': [category "-", category ".") holds exactly the names
  // that start with category "-".
  std::string lo = std::string(category) + "-", hi = std::string(category) + ".";
  sqlite3_bind_text(read_category_, 1, lo.data(), static_cast<int>(lo.size()), SQLITE_TRANSIENT);
  sqlite3_bind_text(read_category_, 2, hi.data(), static_cast<int>(hi.size()), SQLITE_TRANSIENT);
  return Drain(read_category_, sink);
}

bool SqliteEvents::Compact() {
  return Exec("PRAGMA wal_checkpoint(TRUNCATE)") && Exec("VACUUM") &&
         Exec("PRAGMA wal_checkpoint(TRUNCATE)");
}

}  // namespace evbench
