// evstore::inspect: read-only examination of a store — summary, stream
// listing, dumps of the log as text, JSON or hex, a full consistency check,
// and statistics. The evstore-inspect tool is a thin shell over these
// functions; tests and fuzzers call them directly.
//
// Every function only reads. Open the store with Options::read_only to
// examine a store that another process has open (see docs/inspect.md). Each
// call reads one consistent snapshot of the store, so it may run while other
// threads append to the same Store: it sees the store as it was when the call
// began.
//
// Thread safety: the functions may be called concurrently with each other and
// with any Store method. REQUIRES for every function: `store` is open; a
// concurrent close() waits until the call returns. Callbacks (sinks, visitors,
// progress) run on the calling thread and must not close the store.
#ifndef EVSTORE_INSPECT_HPP_
#define EVSTORE_INSPECT_HPP_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "evstore/event.hpp"
#include "evstore/export.hpp"
#include "evstore/status.hpp"
#include "evstore/store.hpp"

namespace evstore::inspect {

// ---- Progress ----

// Where a long operation is. `total` is an estimate (0 when unknown); `done`
// never decreases within one phase.
struct Progress {
  std::string_view phase;  // e.g. "events", "stream_index"
  uint64_t done = 0;
  uint64_t total = 0;
};
// Called every few thousand records and once at the end of each phase.
using ProgressFn = std::function<void(const Progress&)>;

// ---- info ----

struct ColumnFamilyInfo {
  std::string name;
  uint64_t estimated_keys = 0;  // RocksDB's estimate, not an exact count
  uint64_t sst_bytes = 0;       // bytes of table files on disk
  uint64_t memtable_bytes = 0;  // bytes in memory not yet flushed
};

struct StoreInfo {
  std::string path;
  uint32_t format_version = 0;
  int64_t created_ms = 0;           // when the store was created (ms since the epoch)
  uint64_t next_position = 0;       // the position the next event gets
  uint64_t event_count = 0;         // keys in `events` (counted)
  uint64_t stream_count = 0;        // stream records (counted)
  uint64_t next_stream_id = 0;
  std::string id_tag;               // 16 hex digits: the tag of generated event ids
  std::vector<ColumnFamilyInfo> column_families;
};

// A summary of the store. Counts keys of `events` and `streams`, so it takes
// time proportional to the store's size. Errors: Corruption (damaged store
// metadata), IOError, Closed.
EVSTORE_EXPORT Result<StoreInfo> GetInfo(const Store& store);

// ---- streams ----

struct StreamSummary {
  std::string name;
  uint64_t stream_id = 0;
  bool has_events = false;
  uint64_t head_version = 0;   // version of the newest event (valid when has_events)
  uint64_t head_position = 0;  // its global position (valid when has_events)
  uint64_t event_count = 0;    // head_version + 1, or 0
  uint64_t created_position = 0;
  int64_t created_ms = 0;
};

// Calls `visit` for each stream in name order, starting at the first name
// >= `from_name`, until it returns false. Errors: Corruption (naming the
// stream whose record or index is damaged), IOError, Closed.
EVSTORE_EXPORT Status ListStreams(const Store& store, std::string_view from_name,
                                  const std::function<bool(const StreamSummary&)>& visit);

// ---- dump ----

enum class DumpFormat : uint8_t {
  kText,  // one line per event, bytes escaped
  kJson,  // JSON Lines: one object per event
  kHex,   // key and record bytes as a hex dump, plus a decoded header line
};

struct DumpOptions {
  DumpFormat format = DumpFormat::kText;
  // Empty: the global log, bounded by positions. Otherwise one stream,
  // bounded by versions.
  std::string stream;
  uint64_t from = 0;         // first position (or version), inclusive
  uint64_t to = kEnd;        // last position (or version), inclusive
  uint64_t limit = kNoLimit; // most events written
  ProgressFn progress;       // optional
};

struct DumpSummary {
  uint64_t events = 0;   // events written
  uint64_t corrupt = 0;  // records written as errors (see Dump)
};

// Writes the selected events to `sink` in `options.format`, each as one or
// more complete lines ending in '\n'. A record that fails verification is
// written as an error line naming its position and counted in
// summary->corrupt; the dump goes on. Errors: NotFound (options.stream does
// not exist), InvalidArgument (from > to), IOError, Closed; *summary holds
// what was written so far.
EVSTORE_EXPORT Status Dump(const Store& store, const DumpOptions& options,
                           const std::function<void(std::string_view)>& sink,
                           DumpSummary* summary = nullptr);

// Appends the description of one event in `format` to *out (kHex needs the
// raw record: pass it in `record`, the key is rebuilt from the position).
// The output is one or more lines, each ending in '\n'; any bytes are safe.
EVSTORE_EXPORT void FormatEvent(const EventView& event, DumpFormat format, std::string_view record,
                                std::string* out);

// ---- follow (tail -f) ----

struct FollowOptions {
  // Where the follower makes its private directory (RocksDB's secondary
  // instance keeps its info log there). Empty: $TMPDIR, else /tmp.
  std::string scratch_parent;
};

// Follows the log of a store that another process may have open and be
// appending to, like `tail -f` a file. It is a RocksDB secondary instance on
// the store's directory: it takes no lock, writes nothing there, and sees
// what the writer has committed each time it catches up (a read of the
// writer's MANIFEST and write-ahead log, which costs little when nothing is
// new). Unlike Options::read_only, it does not take the store as it was at
// open for good.
//
// What it sees is always a prefix of the log: whole commits, in position
// order. It may show the events of an append whose writer got an IOError
// (such an outcome is unknown; the writer's next open settles it, see
// docs/reliability.md).
//
// Its private directory (`<scratch_parent>/evstore-follow-XXXXXX`) is
// removed when the follower is destroyed; a process killed with SIGKILL
// leaves it behind.
//
// Thread safety: a LogFollower belongs to one thread at a time.
class EVSTORE_EXPORT LogFollower {
 public:
  // Opens the store at `path` and catches up once. Errors: NotFound (no
  // store there), InvalidArgument (not an evstore store), NotSupported (a
  // newer format), Corruption, IOError (also: the private directory cannot
  // be made).
  static Result<std::unique_ptr<LogFollower>> Open(std::string_view path,
                                                   const FollowOptions& options = FollowOptions());
  ~LogFollower();
  LogFollower(const LogFollower&) = delete;
  LogFollower& operator=(const LogFollower&) = delete;

  // Catches up with what the writer committed since. Afterwards end() and
  // Read() include it. Errors: Corruption, IOError (the follower stays as it
  // was; calling again retries).
  Status CatchUp();

  // One past the last position seen at the last catch-up: the position the
  // next event will get.
  uint64_t end() const;

  // Writes the events from position `from` up to end(), at most `limit`, in
  // `format` to `sink` (one or more complete lines per event, as Dump), until
  // the sink returns false. A record that fails verification, and positions
  // missing from the log, are written as CORRUPT lines and counted in
  // summary->corrupt. *next (optional) receives the position to read from
  // next time: one past the last position written. Errors: IOError,
  // Corruption (the log cannot be read); *summary and *next then tell how far
  // it got.
  Status Read(uint64_t from, uint64_t limit, DumpFormat format,
              const std::function<bool(std::string_view)>& sink, DumpSummary* summary = nullptr,
              uint64_t* next = nullptr);

  // The private directory (removed by the destructor).
  const std::string& scratch_dir() const;

 private:
  struct Rep;
  EVSTORE_INTERNAL explicit LogFollower(std::unique_ptr<Rep> rep);
  std::unique_ptr<Rep> rep_;
};

// ---- verify ----

// One inconsistency. `column_family` and `key` (printable: numbers in
// decimal, names quoted, other bytes escaped) locate the damaged entry;
// `position` is the event involved, or kNoPosition.
struct Problem {
  static constexpr uint64_t kNoPosition = UINT64_MAX;
  std::string column_family;
  std::string key;
  uint64_t position = kNoPosition;
  std::string message;
};

struct VerifyOptions {
  // Most problems kept in the report; further ones are only counted.
  size_t max_problems = 1000;
  ProgressFn progress;  // optional
};

struct VerifyReport {
  // What was checked.
  uint64_t events = 0;
  uint64_t streams = 0;
  uint64_t stream_index_entries = 0;
  uint64_t category_index_entries = 0;
  uint64_t type_index_entries = 0;
  uint64_t event_id_entries = 0;
  uint64_t saga_records = 0;
  uint64_t checkpoint_records = 0;
  // What was wrong: the first max_problems problems, and how many in all.
  std::vector<Problem> problems;
  uint64_t problem_count = 0;

  bool ok() const { return problem_count == 0; }
};

// Checks the whole store: the metadata records; every event record's
// checksum, schema and key; positions gapless from 0; every stream record;
// versions dense per stream and the stream heads; and the indexes both ways
// (every stream_index, category_index, type_index and event_ids entry points
// at an event that matches it, and every event has its stream_index,
// category_index, type_index and — for caller-supplied ids — event_ids
// entries); every saga record (checksum, schema, enum ranges, its key) and
// that the saga engine's index keys beside them are well formed; every
// checkpoint record (its name, checksum and format) and that no checkpoint
// lies beyond the end of the log.
// Finding problems is not an error: they are in the report.
// Memory grows with the number of streams, not events. Errors: IOError,
// Closed (the report is then incomplete).
EVSTORE_EXPORT Result<VerifyReport> Verify(const Store& store,
                                           const VerifyOptions& options = VerifyOptions());

// ---- sagas ----

// One entry of a saga's history (see evstore/saga.hpp for the meanings).
struct SagaHistoryItem {
  int64_t time_ms = 0;
  std::string event;  // SagaEventName, e.g. "step completed", "step interrupted"
  std::string state;  // SagaStateName after the transition
  int32_t step = -1;  // -1: none
  uint32_t attempt = 0;
  std::string text;   // error or note
};

// A saga record as stored in the `sagas` column family.
struct SagaInfo {
  std::string id;
  std::string definition;
  uint32_t version = 0;  // of the definition
  std::string state;     // SagaStateName
  int32_t step = 0;
  uint32_t attempt = 0;  // attempts of that step that ended without success
  // Attempts of that step begun (0 in records of older builds). Above
  // `attempt` while one runs, or after one was interrupted (the process
  // stopped in it, or shutdown gave up on it) until an engine records that.
  uint32_t started = 0;
  int64_t next_attempt_ms = 0;
  bool tainted = false;
  bool resolved = false;
  std::string error;
  int64_t created_ms = 0;
  int64_t updated_ms = 0;
  uint64_t revision = 0;
  std::string input;
  std::vector<std::string> outputs;
  std::vector<SagaHistoryItem> history;  // oldest first
  uint32_t history_dropped = 0;          // older entries no longer kept
};

// Calls `visit` for each saga in id order, from the first id >= `from_id`,
// until it returns false. Only records: the saga engine's index keys beside
// them (docs/format.md) are not sagas. Errors: Corruption (naming the saga
// whose record is damaged), IOError, Closed.
EVSTORE_EXPORT Status ListSagas(const Store& store, std::string_view from_id,
                                const std::function<bool(const SagaInfo&)>& visit);
// One saga. Errors: NotFound (also for an index key), Corruption, IOError,
// Closed.
EVSTORE_EXPORT Result<SagaInfo> GetSaga(const Store& store, std::string_view id);

// ---- checkpoints ----

// A durable subscription checkpoint as stored in the `checkpoints` column
// family (see evstore/subscription.hpp), with its lag behind the log.
struct CheckpointStatus {
  enum class State : uint8_t {
    kOk,
    kDamaged,    // the record does not decode: `problem` says why; numbers are 0
    kBeyondEnd,  // `position` is past the end of the log: the store is damaged
  };
  std::string name;
  State state = State::kOk;
  uint64_t position = 0;   // delivery under this name resumes here
  // Events from `position` to the end of the log: every event, not only those
  // the subscription selects (its filter is not stored). 0 unless kOk.
  uint64_t lag = 0;
  int64_t updated_ms = 0;  // wall clock of its last update
  std::string problem;     // empty when kOk
};

// Calls `visit` for each checkpoint in name order, until it returns false.
// A damaged record is visited as kDamaged, not an error. *log_end (optional)
// receives the end of the log the lags are measured against (the position
// the next event gets). Errors: IOError, Closed.
EVSTORE_EXPORT Status ListCheckpoints(const Store& store,
                                      const std::function<bool(const CheckpointStatus&)>& visit,
                                      uint64_t* log_end = nullptr);

// ---- stats ----

struct NameCount {
  std::string name;
  uint64_t events = 0;
};

struct LogStats {
  uint64_t events = 0;
  uint64_t streams = 0;
  uint64_t corrupt_records = 0;  // events that failed verification (not counted below)
  uint64_t record_bytes = 0;     // stored record bytes, checksums included
  uint64_t data_bytes = 0;
  uint64_t metadata_bytes = 0;
  uint64_t largest_record_bytes = 0;
  uint64_t largest_record_position = 0;
  uint64_t longest_stream_events = 0;
  std::string longest_stream;
  int64_t first_timestamp_ms = 0;  // of position 0
  int64_t last_timestamp_ms = 0;   // of the newest event
  uint64_t caller_ids = 0;         // events with a caller-supplied id
  // The most frequent event types and categories, most frequent first (at
  // most `top` each).
  std::vector<NameCount> types;
  std::vector<NameCount> categories;
  uint64_t distinct_types = 0;
  uint64_t distinct_categories = 0;
};

// Scans the global log once. Memory grows with the number of distinct types,
// categories and streams. Errors: IOError, Closed.
EVSTORE_EXPORT Result<LogStats> GetStats(const Store& store, size_t top = 10,
                                         const ProgressFn& progress = ProgressFn());

// ---- JSON helpers (shared with the tool) ----

// Appends `s` as a JSON string literal (quotes included) to *out. Bytes that
// are not valid UTF-8 are written as \u00XX escapes of each byte.
EVSTORE_EXPORT void AppendJsonString(std::string_view s, std::string* out);
// Appends `s` with non-printable bytes as \xNN and backslashes doubled.
EVSTORE_EXPORT void AppendEscaped(std::string_view s, std::string* out);
// Appends `ms` (since the Unix epoch) as ISO 8601 UTC with milliseconds,
// e.g. "2024-05-01T10:00:00.123Z". Any value is accepted.
EVSTORE_EXPORT void AppendTime(int64_t ms, std::string* out);

}  // namespace evstore::inspect

#endif  // EVSTORE_INSPECT_HPP_
