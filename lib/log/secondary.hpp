// SecondaryDb: a store that another process has open, read through a RocksDB
// secondary instance (the inspector's follower, `evstore-inspect tail
// --follow`). It never writes to the store and takes no lock on it. It sees
// the writer's commits whole and in log order, as they stood at its last
// CatchUp().
//
// Reads go through CfCursor (cf_cursor.hpp), as reads of an open store do,
// but without a CfSnapshot: the instance changes only in CatchUp(), so every
// cursor made between two catch-ups reads one state.
//
// Thread safety: one thread at a time, its cursors included.
//
// Lifetime: REQUIRES: every cursor over it is destroyed before it (the Debian
// RocksDB aborts when an iterator outlives its database).
#ifndef EVSTORE_LIB_LOG_SECONDARY_HPP_
#define EVSTORE_LIB_LOG_SECONDARY_HPP_

#include <array>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "evstore/status.hpp"
#include "log/store_impl.hpp"

namespace evstore::internal {

class SecondaryDb {
 public:
  // Opens the store in the directory `path` with the column families `cfs`
  // (and the default family, which holds the format record, in any case) and
  // checks that evstore reads its format. A secondary instance skips the
  // write-ahead log entries of the families it did not open, so open only
  // those read. `scratch_dir`: an existing directory of the caller's, where
  // the instance keeps its own files (its info log); the caller removes it
  // after the SecondaryDb is destroyed.
  // Errors: InvalidArgument (not an evstore store: no `events` family or no
  // format record), NotSupported (written by a newer evstore), Corruption (a
  // damaged format record), IOError, or RocksDB's other errors.
  static Result<std::unique_ptr<SecondaryDb>> Open(const std::string& path,
                                                   const std::string& scratch_dir,
                                                   std::initializer_list<Cf> cfs);
  ~SecondaryDb();
  SecondaryDb(const SecondaryDb&) = delete;
  SecondaryDb& operator=(const SecondaryDb&) = delete;

  // Applies what the writer has committed since the last catch-up (or the
  // open). Afterwards new cursors see it. Errors: as RocksDB reports them
  // (IOError, Corruption); the instance then reads as before and a later
  // call retries.
  Status CatchUp();

  // Whether `cf` was opened (cursors over other families report
  // InvalidArgument).
  bool has(Cf cf) const { return cfs_[cf] != nullptr; }

 private:
  friend class CfCursor;
  SecondaryDb() = default;

  rocksdb::DB* db_ = nullptr;
  // As opened (for their release), and by family.
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  std::array<rocksdb::ColumnFamilyHandle*, kNumCfs> cfs_{};
};

}  // namespace evstore::internal

#endif  // EVSTORE_LIB_LOG_SECONDARY_HPP_
