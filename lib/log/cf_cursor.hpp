// Reading the store's column families from above the log. The saga engine,
// the inspector and the bench read through these; only lib/log talks to
// RocksDB (docs/design.md, "Layers").
//
// - CfCursor: a scan over one column family in key order, optionally below
//   an upper bound and at a snapshot; of an open store, or of a store
//   another process has open (a SecondaryDb, secondary.hpp).
// - CfGet: a point read.
// - CfSnapshot: a consistent point in time for cursors and point reads.
// - CfIntProperty: one of RocksDB's integer properties of a column family.
//
// Errors are Statuses with RocksDB's code mapped as StatusFromRocks maps it
// and RocksDB's own text as the message; InContext (rocks_status.hpp) adds
// what was being read.
//
// Thread safety: a cursor belongs to one thread at a time; a snapshot may be
// shared by the cursors and reads of any threads; CfGet and CfIntProperty
// may be called from any thread.
//
// Lifetime: REQUIRES: the store stays open while a cursor or a snapshot
// exists (the caller holds a StoreImpl::OpGuard, which makes close() wait):
// the Debian RocksDB aborts when either outlives its database.
#ifndef EVSTORE_LIB_LOG_CF_CURSOR_HPP_
#define EVSTORE_LIB_LOG_CF_CURSOR_HPP_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "evstore/status.hpp"
#include "log/store_impl.hpp"

namespace evstore::internal {

class CfSnapshot;
class SecondaryDb;

// Reads `key` of `cf` (at `snapshot`, if given) into *value: OK, NotFound,
// or the error. A family the store lacks (an older store opened read-only)
// finds nothing.
Status CfGet(const StoreImpl& store, Cf cf, std::string_view key, std::string* value,
             const CfSnapshot* snapshot = nullptr);

// RocksDB's integer property `property` of `cf` (for instance
// "rocksdb.estimate-num-keys"), or nullopt when RocksDB has none (or the
// store lacks the family).
std::optional<uint64_t> CfIntProperty(const StoreImpl& store, Cf cf, const std::string& property);

// A RocksDB snapshot of the store, released on destruction.
class CfSnapshot {
 public:
  // REQUIRES: the store is open.
  explicit CfSnapshot(const StoreImpl& store);
  ~CfSnapshot();
  CfSnapshot(const CfSnapshot&) = delete;
  CfSnapshot& operator=(const CfSnapshot&) = delete;
  // For the log layer's own reads (lib/log) only.
  const rocksdb::Snapshot* rocks() const { return snap_; }

 private:
  friend class CfCursor;
  friend Status CfGet(const StoreImpl& store, Cf cf, std::string_view key, std::string* value,
                      const CfSnapshot* snapshot);
  rocksdb::DB* db_;
  const rocksdb::Snapshot* snap_;
};

struct CfCursorOptions {
  // Keys at or above this are not seen; empty: no bound.
  std::string upper;
  // Read at this snapshot; null: what is written when the cursor is made.
  const CfSnapshot* snapshot = nullptr;
  // False for one-pass scans (the inspector's): the blocks they read do not
  // push the host's hot blocks out of the block cache.
  bool fill_cache = true;
};

class CfCursor {
 public:
  // A cursor over `cf` of `store`, not positioned (Valid() is false until
  // a Seek). REQUIRES: the store has `cf` (store.cf(cf) is not null). Keys are in bytewise order over the whole family, also in
  // families with a prefix extractor.
  CfCursor(const StoreImpl& store, Cf cf, CfCursorOptions options = {});
  // The same over `cf` of a secondary instance, as of its last catch-up.
  // A snapshot in `options` (a CfSnapshot belongs to an open store), or a
  // family the instance did not open, gives a cursor that is never Valid(),
  // with status() InvalidArgument.
  CfCursor(const SecondaryDb& db, Cf cf, CfCursorOptions options = {});
  ~CfCursor();
  CfCursor(const CfCursor&) = delete;
  CfCursor& operator=(const CfCursor&) = delete;

  // True while positioned at an entry; false at either end or after an
  // error (see status()).
  bool Valid() const;
  void SeekToFirst();
  void SeekToLast();
  // At the first key at or after `target`.
  void Seek(std::string_view target);
  // At the last key at or before `target`.
  void SeekForPrev(std::string_view target);
  // REQUIRES: Valid().
  void Next();
  // REQUIRES: Valid(). The views stay valid until the next move or the
  // cursor's destruction.
  std::string_view key() const;
  std::string_view value() const;
  // OK, or the error that ended the scan (the cursor is then not Valid()).
  Status status() const;

 private:
  // `refusal` not empty: the cursor is that InvalidArgument error.
  CfCursor(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf, const CfCursorOptions& options,
           const std::string& refusal);

  // The iterator points at these: the cursor is neither copied nor moved.
  std::string upper_;
  rocksdb::Slice upper_slice_;
  std::unique_ptr<rocksdb::Iterator> it_;
};

}  // namespace evstore::internal

#endif  // EVSTORE_LIB_LOG_CF_CURSOR_HPP_
