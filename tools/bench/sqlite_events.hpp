// The event table users build on SQLite when they do not use an event store,
// the baseline of `evstore-bench compare`:
//
//   CREATE TABLE events (position INTEGER PRIMARY KEY, id BLOB, stream TEXT,
//     version INTEGER, type TEXT, content_type TEXT, data BLOB, metadata BLOB,
//     timestamp_ms INTEGER, UNIQUE(stream, version));
//   CREATE INDEX events_type ON events(type);
//
// in WAL mode, synchronous=FULL when evstore syncs and NORMAL when it does
// not, prepared statements, one transaction per append (BEGIN IMMEDIATE, the
// stream's last version, the inserts, COMMIT). The page cache is 64 MiB, the
// size of evstore's block cache, so neither side reads with less memory.
//
// Thread safety: one connection per thread; SqliteEvents is not shared.
#ifndef EVSTORE_TOOLS_BENCH_SQLITE_EVENTS_HPP_
#define EVSTORE_TOOLS_BENCH_SQLITE_EVENTS_HPP_

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

struct sqlite3;
struct sqlite3_stmt;

namespace evbench {

// One event as the benchmark appends it (the same bytes go to every engine).
struct BenchEvent {
  std::string_view id;    // 16 bytes
  std::string_view type;
  std::string_view content_type;
  std::string_view data;
};

class SqliteEvents {
 public:
  // Opens (creating the schema when missing) the database file `path`.
  // Exits the process with a message on any SQLite error: a benchmark whose
  // baseline fails has nothing to report.
  SqliteEvents(const std::string& path, bool sync);
  ~SqliteEvents();
  SqliteEvents(const SqliteEvents&) = delete;
  SqliteEvents& operator=(const SqliteEvents&) = delete;

  // One transaction appending `events` to `stream` at its next versions.
  // False on an error (busy beyond the timeout included).
  bool Append(std::string_view stream, std::span<const BenchEvent> events);

  // Group commit by hand: Begin(), AppendInTransaction() for each queued
  // append, Commit(). False on an error (the transaction is rolled back).
  bool Begin();
  bool AppendInTransaction(std::string_view stream, std::span<const BenchEvent> events);
  bool Commit();

  // Reads: each calls `sink` with every event's data size and returns the
  // number of events read, or -1 on an error.
  int64_t ReadStream(std::string_view stream, uint64_t* sink);
  int64_t ReadAll(uint64_t from, uint64_t limit, uint64_t* sink);
  // Streams named `category`-*, in position order (a range over the unique
  // (stream, version) index, then a sort: the schema has no category column).
  int64_t ReadCategory(std::string_view category, uint64_t* sink);

  // The WAL folded into the database file and emptied, then VACUUM (SQLite's
  // compaction): afterwards the database file holds everything.
  bool Compact();
  // Runs `sql` (no rows); false on an error.
  bool Exec(const char* sql);
  sqlite3* db() const { return db_; }

 private:
  bool Insert(std::string_view stream, std::span<const BenchEvent> events);
  sqlite3* db_ = nullptr;
  sqlite3_stmt* begin_ = nullptr;
  sqlite3_stmt* commit_ = nullptr;
  sqlite3_stmt* rollback_ = nullptr;
  sqlite3_stmt* last_version_ = nullptr;
  sqlite3_stmt* insert_ = nullptr;
  sqlite3_stmt* read_stream_ = nullptr;
  sqlite3_stmt* read_all_ = nullptr;
  sqlite3_stmt* read_category_ = nullptr;
};

}  // namespace evbench

#endif  // EVSTORE_TOOLS_BENCH_SQLITE_EVENTS_HPP_
