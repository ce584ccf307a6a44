// Tests of FaultFs itself: its model of what a power loss keeps (file data,
// directory entries, renames), that nothing reaches the disk once the power
// is off, and that each injected fault reaches the operations and files it
// names, with plain RocksDB and with a store.
#include "fault_fs.hpp"

#include <doctest/doctest.h>
#include <rocksdb/db.h>
#include <rocksdb/env.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>

#include "evstore/inspect.hpp"
#include "evstore/store.hpp"
#include "fault_test_util.hpp"
#include "log/store_impl.hpp"
#include "test_util.hpp"

using namespace evstore;
using evtest::FaultEffect;
using evtest::FaultFs;
using evtest::FaultRule;
using evtest::FileKind;
using evtest::FsOp;
using TempDir = evtest::ScratchDir;
namespace fs = std::filesystem;

namespace {

const rocksdb::IOOptions kIo;

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::unique_ptr<rocksdb::FSWritableFile> Create(FaultFs& f, const std::string& path) {
  std::unique_ptr<rocksdb::FSWritableFile> w;
  rocksdb::IOStatus s = f.NewWritableFile(path, rocksdb::FileOptions(), &w, nullptr);
  REQUIRE_MESSAGE(s.ok(), s.ToString());
  return w;
}

void Append(rocksdb::FSWritableFile* w, const std::string& data) {
  rocksdb::IOStatus s = w->Append(data, kIo, nullptr);
  REQUIRE_MESSAGE(s.ok(), s.ToString());
}

void Sync(rocksdb::FSWritableFile* w) {
  rocksdb::IOStatus s = w->Sync(kIo, nullptr);
  REQUIRE_MESSAGE(s.ok(), s.ToString());
}

void Close(std::unique_ptr<rocksdb::FSWritableFile>& w) {
  REQUIRE(w->Close(kIo, nullptr).ok());
  w.reset();
}

rocksdb::IOStatus SyncDir(FaultFs& f, const std::string& dir) {
  std::unique_ptr<rocksdb::FSDirectory> d;
  rocksdb::IOStatus s = f.NewDirectory(dir, kIo, &d, nullptr);
  if (s.ok()) s = d->Fsync(kIo, nullptr);
  return s;
}

// A whole file: created, written, synced, closed, its entry made durable.
void Durable(FaultFs& f, const std::string& path, const std::string& data) {
  auto w = Create(f, path);
  Append(w.get(), data);
  Sync(w.get());
  Close(w);
  REQUIRE(SyncDir(f, fs::path(path).parent_path().string()).ok());
}

void Drop(FaultFs& f, evtest::DropReport* rep = nullptr) {
  rocksdb::IOStatus s = f.DropUnsyncedData(rep);
  REQUIRE_MESSAGE(s.ok(), s.ToString());
}

// Plain RocksDB on a FaultFs.
struct RawDb {
  std::unique_ptr<rocksdb::Env> env;
  rocksdb::DB* db = nullptr;
  explicit RawDb(const std::shared_ptr<FaultFs>& f, const std::string& path) {
    env = rocksdb::NewCompositeEnv(f);
    rocksdb::Options o;
    o.env = env.get();
    o.create_if_missing = true;
    o.wal_recovery_mode = rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords;
    o.max_bgerror_resume_count = 0;
    rocksdb::Status s = rocksdb::DB::Open(o, path, &db);
    REQUIRE_MESSAGE(s.ok(), s.ToString());
  }
  ~RawDb() {
    if (db != nullptr) {
      db->Close().PermitUncheckedError();
      delete db;
    }
  }
  rocksdb::Status Put(const std::string& k, const std::string& v, bool sync = true) {
    rocksdb::WriteOptions wo;
    wo.sync = sync;
    return db->Put(wo, k, v);
  }
  std::string Get(const std::string& k) {
    std::string v;
    rocksdb::Status s = db->Get(rocksdb::ReadOptions(), k, &v);
    if (s.IsNotFound()) return "<none>";
    if (!s.ok()) return "<error: " + s.ToString() + ">";
    return v;
  }
};

Store OpenOn(const std::string& path, const std::shared_ptr<FaultFs>& f, Options o = Options()) {
  auto r = internal::OpenStore(path, o, evtest::OnFs(f));
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  return std::move(r).value();
}

EventData Event(const std::string& data, Uuid id = Uuid()) {
  EventData e = evtest::Ev("Happened", data, id);
  e.metadata = "m:" + data;
  return e;
}

}  // namespace

TEST_SUITE("fault_fs") {
  TEST_CASE("file data: synced bytes survive a power loss, unsynced ones do not") {
    TempDir dir;
    auto f = std::make_shared<FaultFs>();
    std::string a = dir.sub("a"), b = dir.sub("b");
    Durable(*f, a, "kept");
    auto w = Create(*f, b);
    Append(w.get(), "hello");
    Sync(w.get());
    Append(w.get(), " world");
    // Neither RangeSync nor Flush nor Close makes data durable.
    REQUIRE(w->RangeSync(0, 11, kIo, nullptr).ok());
    REQUIRE(w->Flush(kIo, nullptr).ok());
    Close(w);
    REQUIRE(SyncDir(*f, dir.path()).ok());
    CHECK(Slurp(b) == "hello world");  // written through, as the OS holds it
    CHECK(f->Tracked(b)->written == 11);
    CHECK(f->Tracked(b)->synced == 5);
    // Appends after a reopen for append are tracked on top of what was there.
    std::unique_ptr<rocksdb::FSWritableFile> r;
    REQUIRE(f->ReopenWritableFile(a, rocksdb::FileOptions(), &r, nullptr).ok());
    Append(r.get(), "+more");
    Close(r);
    evtest::DropReport rep;
    Drop(*f, &rep);
    CHECK(Slurp(a) == "kept");
    CHECK(Slurp(b) == "hello");
    CHECK(rep.files_truncated == 2);
    CHECK(rep.bytes_dropped == 6 + 5);
    CHECK_FALSE(f->powered_off());  // rebooted
  }

  TEST_CASE("file data: truncation and a rewrite of an existing file are modelled") {
    TempDir dir;
    auto f = std::make_shared<FaultFs>();
    std::string a = dir.sub("a"), b = dir.sub("b");
    Durable(*f, a, "0123456789");
    Durable(*f, b, "old contents");
    std::unique_ptr<rocksdb::FSWritableFile> t;
    REQUIRE(f->ReopenWritableFile(a, rocksdb::FileOptions(), &t, nullptr).ok());
    REQUIRE(t->Truncate(4, kIo, nullptr).ok());
    Close(t);
    // NewWritableFile over an existing file truncates it: nothing is durable
    // until the new contents are synced.
    auto w = Create(*f, b);
    Append(w.get(), "new");
    Close(w);
    Drop(*f);
    CHECK(Slurp(a) == "0123");
    CHECK(fs::exists(b));
    CHECK(Slurp(b).empty());
  }

  TEST_CASE("torn-write mode keeps a random prefix of the unsynced tail") {
    TempDir dir;
    std::string tail(1000, 'x');
    std::set<uint64_t> sizes;
    for (uint64_t seed = 1; seed <= 8; seed++) {
      auto f = std::make_shared<FaultFs>();
      f->SetTornWrites(true, seed);
      std::string p = dir.sub("f" + std::to_string(seed));
      auto w = Create(*f, p);
      Append(w.get(), "synced");
      Sync(w.get());
      Append(w.get(), tail);
      Close(w);
      REQUIRE(SyncDir(*f, dir.path()).ok());
      evtest::DropReport rep;
      Drop(*f, &rep);
      std::string got = Slurp(p);
      REQUIRE(got.size() >= 6);
      CHECK(got.size() <= 1006);
      CHECK(got == ("synced" + tail).substr(0, got.size()));
      CHECK(rep.torn_bytes_kept == got.size() - 6);
      sizes.insert(got.size());
    }
    CHECK(sizes.size() > 4);  // the cut point varies with the seed
  }

  TEST_CASE(
      "torn-write mode keeps a random prefix, in order, of the directory changes not synced") {
    TempDir dir;
    std::set<std::string> outcomes;
    for (uint64_t seed = 1; seed <= 12; seed++) {
      fs::remove_all(dir.sub("d"));
      fs::create_directory(dir.sub("d"));
      auto f = std::make_shared<FaultFs>();
      f->SetTornWrites(true, seed);
      for (const char* name : {"a", "b", "c"}) {
        auto w = Create(*f, dir.sub(std::string("d/") + name));
        Close(w);
      }
      REQUIRE(f->RenameFile(dir.sub("d/a"), dir.sub("d/z"), kIo, nullptr).ok());
      evtest::DropReport rep;
      Drop(*f, &rep);
      std::string got;
      for (const char* name : {"a", "b", "c", "z"})
        got += fs::exists(dir.sub(std::string("d/") + name)) ? name : "";
      // Created a, b, c, then renamed a to z: each prefix of that history.
      CHECK((got == "" || got == "a" || got == "ab" || got == "abc" || got == "bcz"));
      CHECK(rep.torn_entries_kept == (got == "bcz" ? 4 : got.size()));
      outcomes.insert(got);
    }
    CHECK(outcomes.size() >= 3);
  }

  TEST_CASE("directory entries: a file not made durable by a directory sync vanishes") {
    TempDir dir;
    auto f = std::make_shared<FaultFs>();
    std::string a = dir.sub("a"), b = dir.sub("b");
    auto w = Create(*f, a);
    Append(w.get(), "data");
    Sync(w.get());  // the data is durable, its name is not
    Close(w);
    CHECK(f->PendingEntries() == 1);
    REQUIRE(SyncDir(*f, dir.path()).ok());
    CHECK(f->PendingEntries() == 0);
    auto w2 = Create(*f, b);
    Append(w2.get(), "data");
    Sync(w2.get());
    Close(w2);
    REQUIRE(fs::exists(b));
    evtest::DropReport rep;
    Drop(*f, &rep);
    CHECK(Slurp(a) == "data");
    CHECK_FALSE(fs::exists(b));
    CHECK(rep.entries_removed == 1);
  }

  TEST_CASE(
      "directory entries: a new directory vanishes with its contents unless its parent is synced") {
    TempDir dir;
    for (bool sync_parent : {false, true}) {
      CAPTURE(sync_parent);
      auto f = std::make_shared<FaultFs>();
      std::string d = dir.sub(sync_parent ? "kept" : "lost");
      REQUIRE(f->CreateDir(d, kIo, nullptr).ok());
      Durable(*f, d + "/f", "inside");  // synced, and d itself synced
      if (sync_parent) REQUIRE(SyncDir(*f, dir.path()).ok());
      Drop(*f);
      CHECK(fs::exists(d + "/f") == sync_parent);
      CHECK(fs::exists(d) == sync_parent);
    }
  }

  TEST_CASE("renames: one not made durable is reverted, and what it replaced comes back") {
    TempDir dir;
    std::string cur = dir.sub("CURRENT"), tmp = dir.sub("000009.dbtmp");
    for (bool sync_after : {false, true}) {
      CAPTURE(sync_after);
      auto f = std::make_shared<FaultFs>();
      Durable(*f, cur, "MANIFEST-000001\n");
      Durable(*f, tmp, "MANIFEST-000009\n");
      REQUIRE(f->RenameFile(tmp, cur, kIo, nullptr).ok());
      CHECK(Slurp(cur) == "MANIFEST-000009\n");
      CHECK_FALSE(fs::exists(tmp));
      if (sync_after) REQUIRE(SyncDir(*f, dir.path()).ok());
      evtest::DropReport rep;
      Drop(*f, &rep);
      if (sync_after) {
        CHECK(Slurp(cur) == "MANIFEST-000009\n");
        CHECK_FALSE(fs::exists(tmp));
        CHECK(rep.renames_reverted == 0);
      } else {
        CHECK(Slurp(cur) == "MANIFEST-000001\n");
        CHECK(Slurp(tmp) == "MANIFEST-000009\n");
        CHECK(rep.renames_reverted == 1);
      }
      fs::remove(tmp);
    }
  }

  TEST_CASE("renames: a directory rename moves the tracked files and is reverted as a whole") {
    TempDir dir;
    std::string from = dir.sub("db.evstore-creating"), to = dir.sub("db");
    for (int variant = 0; variant < 3; variant++) {
      CAPTURE(variant);
      fs::remove_all(from);
      fs::remove_all(to);
      auto f = std::make_shared<FaultFs>();
      REQUIRE(f->CreateDir(from, kIo, nullptr).ok());
      auto w = Create(*f, from + "/000003.log");
      Append(w.get(), "synced");
      Sync(w.get());
      Append(w.get(), "+unsynced");
      Close(w);
      REQUIRE(SyncDir(*f, from).ok());
      // 0: nothing of the parent synced; 1: the creation synced, not the
      // rename; 2: both.
      if (variant >= 1) REQUIRE(SyncDir(*f, dir.path()).ok());
      fs::create_directory(to);  // an empty directory made beforehand: replaced
      REQUIRE(f->RenameFile(from, to, kIo, nullptr).ok());
      REQUIRE(f->Tracked(to + "/000003.log").has_value());
      CHECK_FALSE(f->Tracked(from + "/000003.log").has_value());
      if (variant == 2) REQUIRE(SyncDir(*f, dir.path()).ok());
      Drop(*f);
      switch (variant) {
        case 0:
          CHECK_FALSE(fs::exists(from));
          CHECK(fs::is_directory(to));  // the empty directory it replaced is back
          CHECK(fs::is_empty(to));
          break;
        case 1:
          CHECK(Slurp(from + "/000003.log") == "synced");
          CHECK(fs::is_empty(to));
          break;
        case 2:
          CHECK_FALSE(fs::exists(from));
          CHECK(Slurp(to + "/000003.log") == "synced");
          break;
      }
    }
  }

  TEST_CASE("deletes take effect at once") {
    TempDir dir;
    auto f = std::make_shared<FaultFs>();
    std::string a = dir.sub("a");
    Durable(*f, a, "x");
    REQUIRE(f->DeleteFile(a, kIo, nullptr).ok());
    Drop(*f);
    CHECK_FALSE(fs::exists(a));
  }

  TEST_CASE(
      "after PowerLoss nothing reaches the disk, reads still work, and the store above shuts "
      "down") {
    TempDir dir;
    auto f = std::make_shared<FaultFs>();
    std::string a = dir.sub("a"), b = dir.sub("b"), d = dir.sub("d");
    Durable(*f, a, "before");
    auto w = Create(*f, b);
    Append(w.get(), "12345");
    REQUIRE(SyncDir(*f, dir.path()).ok());
    f->PowerLoss();
    CHECK(f->powered_off());
    CHECK(f->WaitForPowerLoss(std::chrono::milliseconds(0)));
    CHECK(w->Append("more", kIo, nullptr).IsIOError());
    CHECK(w->Sync(kIo, nullptr).IsIOError());
    CHECK(w->Truncate(1, kIo, nullptr).IsIOError());
    CHECK(w->Close(kIo, nullptr).IsIOError());
    w.reset();
    CHECK(fs::file_size(b) == 5);
    std::unique_ptr<rocksdb::FSWritableFile> w2;
    CHECK(f->NewWritableFile(dir.sub("c"), rocksdb::FileOptions(), &w2, nullptr).IsIOError());
    CHECK(f->CreateDir(d, kIo, nullptr).IsIOError());
    CHECK(f->RenameFile(a, dir.sub("a2"), kIo, nullptr).IsIOError());
    CHECK(f->DeleteFile(a, kIo, nullptr).IsIOError());
    CHECK(f->Truncate(a, 0, kIo, nullptr).IsIOError());
    CHECK(SyncDir(*f, dir.path()).IsIOError());
    CHECK_FALSE(fs::exists(dir.sub("c")));
    CHECK_FALSE(fs::exists(d));
    CHECK(Slurp(a) == "before");
    std::string got;
    REQUIRE(rocksdb::ReadFileToString(f.get(), a, &got).ok());
    CHECK(got == "before");
    Drop(*f);
    CHECK(fs::file_size(b) == 0);  // its name was durable, its data not
  }

  TEST_CASE("DropUnsyncedData refuses while a file is open for writing") {
    TempDir dir;
    auto f = std::make_shared<FaultFs>();
    auto w = Create(*f, dir.sub("a"));
    CHECK(f->OpenWritableFiles() == 1);
    CHECK(f->DropUnsyncedData().IsIOError());
    CHECK(f->Reset().IsIOError());
    w.reset();
    CHECK(f->OpenWritableFiles() == 0);
    CHECK(f->DropUnsyncedData().ok());
  }

  TEST_CASE("rules match by operation, kind and path, fail their window of matches, and count") {
    TempDir dir;
    auto f = std::make_shared<FaultFs>();
    auto x = Create(*f, dir.sub("x.log"));
    auto y = Create(*f, dir.sub("y.log"));
    // The 2nd and 3rd appends to files named *y*: NoSpace.
    int r = f->AddRule(FaultRule::On(FsOp::kAppend, FileKind::kWal)
                           .OnPath("y.")
                           .After(1)
                           .Times(2)
                           .With(FaultEffect::kNoSpace));
    CHECK(x->Append("1", kIo, nullptr).ok());
    CHECK(y->Append("1", kIo, nullptr).ok());
    CHECK(y->Append("2", kIo, nullptr).IsNoSpace());
    CHECK(x->Append("2", kIo, nullptr).ok());
    CHECK(y->Append("3", kIo, nullptr).IsNoSpace());
    CHECK(y->Append("4", kIo, nullptr).ok());  // the window is spent
    CHECK(f->Injected(r) == 2);
    CHECK(f->Count(FsOp::kAppend, FileKind::kWal) == 6);
    CHECK(f->Count(FsOp::kAppend, FileKind::kSst) == 0);
    CHECK(f->Count(FsOp::kCreate) == 2);
    CHECK(fs::file_size(dir.sub("y.log")) == 2);  // a failed append wrote nothing
    // Applied anyway: the bytes land, the caller is told they did not.
    f->AddRule(FaultRule::On(FsOp::kAppend).Anyway());
    CHECK(y->Append("5", kIo, nullptr).IsIOError());
    CHECK(fs::file_size(dir.sub("y.log")) == 3);
    CHECK(f->InjectedTotal() == 3);
    f->ClearRules();
    CHECK(y->Append("6", kIo, nullptr).ok());
    Close(x);
    Close(y);
  }

  TEST_CASE("plain RocksDB: a synced put survives a power loss, an unsynced one does not") {
    TempDir dir;
    std::string path = dir.sub("db");
    // RocksDB syncs the directory it creates, never its parent: made
    // beforehand, the directory itself is durable.
    fs::create_directory(path);
    auto f = std::make_shared<FaultFs>();
    {
      RawDb db(f, path);
      REQUIRE(db.Put("synced", "1", true).ok());
      REQUIRE(db.Put("unsynced", "2", false).ok());
      f->PowerLoss();
      CHECK_FALSE(db.Put("after", "3", true).ok());
    }
    CHECK(f->OpenWritableFiles() == 0);
    evtest::DropReport rep;
    Drop(*f, &rep);
    CHECK(rep.bytes_dropped > 0);
    RawDb db(f, path);
    CHECK(db.Get("synced") == "1");
    CHECK(db.Get("unsynced") == "<none>");
    CHECK(db.Get("after") == "<none>");
  }

  TEST_CASE("injected faults reach the operation and file kind they name") {
    TempDir dir;
    std::string path = dir.sub("db");
    {
      auto f = std::make_shared<FaultFs>();
      RawDb db(f, path);
      REQUIRE(db.Put("k0", "v0").ok());
      REQUIRE(db.db->Flush(rocksdb::FlushOptions()).ok());
    }

    SUBCASE("WAL append") {
      auto f = std::make_shared<FaultFs>();
      RawDb db(f, path);
      int sst = f->AddRule(FaultRule::On(FsOp::kAppend, FileKind::kSst).Always());
      int wal = f->AddRule(FaultRule::On(FsOp::kAppend, FileKind::kWal));
      rocksdb::Status s = db.Put("k", "v");
      CHECK(s.IsIOError());
      CHECK(s.ToString().find("injected fault: append") != std::string::npos);
      CHECK(s.ToString().find(".log") != std::string::npos);
      CHECK(f->Injected(wal) == 1);
      CHECK(f->Injected(sst) == 0);
      CHECK(f->InjectedTotal() == 1);
      CHECK(f->Count(FsOp::kAppend, FileKind::kWal) >= 1);
    }
    SUBCASE("WAL sync") {
      auto f = std::make_shared<FaultFs>();
      RawDb db(f, path);
      int wal = f->AddRule(FaultRule::On(FsOp::kSync, FileKind::kWal));
      CHECK(db.Put("k", "v", /*sync=*/false).ok());  // no sync, no fault
      CHECK(f->Injected(wal) == 0);
      CHECK(db.Put("k", "v", /*sync=*/true).IsIOError());
      CHECK(f->Injected(wal) == 1);
    }
    SUBCASE("a failed WAL sync may still be there after a reopen, and is gone after a power loss") {
      auto f = std::make_shared<FaultFs>();
      {
        RawDb db(f, path);
        f->AddRule(FaultRule::On(FsOp::kSync, FileKind::kWal));
        CHECK(db.Put("maybe", "v", /*sync=*/true).IsIOError());
      }
      {
        RawDb db(f, path);  // no power loss: the OS kept the bytes
        CHECK(db.Get("maybe") == "v");
      }
      f->AddRule(FaultRule::On(FsOp::kSync, FileKind::kWal).Always());
      {
        RawDb db(f, path);
        CHECK(db.Put("lost", "v", /*sync=*/true).IsIOError());
      }
      Drop(*f);
      RawDb db(f, path);
      CHECK(db.Get("lost") == "<none>");
    }
    SUBCASE("SST write") {
      auto f = std::make_shared<FaultFs>();
      RawDb db(f, path);
      int wal = f->AddRule(FaultRule::On(FsOp::kAppend, FileKind::kWal).Always());
      int sst = f->AddRule(FaultRule::On(FsOp::kAppend, FileKind::kSst));
      rocksdb::WriteOptions wo;
      wo.disableWAL = true;
      REQUIRE(db.db->Put(wo, "k", "v").ok());
      rocksdb::Status s = db.db->Flush(rocksdb::FlushOptions());
      CHECK_FALSE(s.ok());
      CHECK(f->Injected(sst) == 1);
      CHECK(f->Injected(wal) == 0);
    }
    SUBCASE("MANIFEST write") {
      auto f = std::make_shared<FaultFs>();
      RawDb db(f, path);
      int m = f->AddRule(FaultRule::On(FsOp::kAppend, FileKind::kManifest));
      REQUIRE(db.Put("k", "v").ok());
      CHECK(f->Injected(m) == 0);
      // A flush records its new table in the MANIFEST.
      CHECK_FALSE(db.db->Flush(rocksdb::FlushOptions()).ok());
      CHECK(f->Injected(m) == 1);
      CHECK(f->Count(FsOp::kAppend, FileKind::kSst) >= 1);
    }
    SUBCASE("file read") {
      auto f = std::make_shared<FaultFs>();
      RawDb db(f, path);
      int r = f->AddRule(FaultRule::On(FsOp::kRead, FileKind::kSst).Times(1));
      std::string got = db.Get("k0");
      CHECK(got.find("<error") == 0);
      CHECK(f->Injected(r) == 1);
      CHECK(db.Get("k0") == "v0");  // the rule is spent
    }
    SUBCASE("a corrupted read is caught by RocksDB's block checksum") {
      auto f = std::make_shared<FaultFs>();
      f->AddRule(
          FaultRule::On(FsOp::kRead, FileKind::kSst).Always().With(FaultEffect::kCorruptRead));
      std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(f);
      rocksdb::Options o;
      o.env = env.get();
      rocksdb::DB* raw = nullptr;
      rocksdb::Status s = rocksdb::DB::Open(o, path, &raw);
      if (s.ok()) {
        std::string v;
        s = raw->Get(rocksdb::ReadOptions(), "k0", &v);
        raw->Close().PermitUncheckedError();
        delete raw;
      }
      CHECK(s.IsCorruption());
      CHECK(f->InjectedTotal() >= 1);
    }
    SUBCASE("ENOSPC on a WAL append") {
      auto f = std::make_shared<FaultFs>();
      RawDb db(f, path);
      f->AddRule(FaultRule::On(FsOp::kAppend, FileKind::kWal).With(FaultEffect::kNoSpace));
      rocksdb::Status s = db.Put("k", "v");
      CHECK(s.IsNoSpace());
    }
    SUBCASE("the Nth operation: skip lets the first ones through") {
      auto f = std::make_shared<FaultFs>();
      RawDb db(f, path);
      int wal = f->AddRule(FaultRule::On(FsOp::kSync, FileKind::kWal).After(3));
      for (int i = 0; i < 3; i++) REQUIRE(db.Put("k" + std::to_string(i), "v").ok());
      CHECK(f->Injected(wal) == 0);
      CHECK(db.Put("k3", "v").IsIOError());
      CHECK(f->Injected(wal) == 1);
    }
    SUBCASE("a power-loss rule pulls the plug at the chosen operation") {
      auto f = std::make_shared<FaultFs>();
      {
        RawDb db(f, path);
        f->AddRule(
            FaultRule::On(FsOp::kSync, FileKind::kWal).After(2).With(FaultEffect::kPowerLoss));
        CHECK(db.Put("a", "1").ok());
        CHECK(db.Put("b", "2").ok());
        CHECK_FALSE(f->powered_off());
        CHECK(db.Put("c", "3").IsIOError());
        CHECK(f->powered_off());
      }
      Drop(*f);
      RawDb db(f, path);
      CHECK(db.Get("a") == "1");
      CHECK(db.Get("b") == "2");
      CHECK(db.Get("c") == "<none>");
    }
    SUBCASE("a power-loss rule applied anyway: the sync is durable, its caller sees it fail") {
      auto f = std::make_shared<FaultFs>();
      {
        RawDb db(f, path);
        f->AddRule(
            FaultRule::On(FsOp::kSync, FileKind::kWal).With(FaultEffect::kPowerLoss).Anyway());
        CHECK(db.Put("landed", "1").IsIOError());
        CHECK(f->powered_off());
      }
      Drop(*f);
      RawDb db(f, path);
      CHECK(db.Get("landed") == "1");
    }
  }

  TEST_CASE(
      "a store: acknowledged appends survive a power loss; appends after it fail and leave "
      "nothing") {
    TempDir dir;
    std::string path = dir.sub("db");
    Uuid id = Uuid::Random();
    {
      auto f = std::make_shared<FaultFs>();
      {
        Store s = OpenOn(path, f);
        REQUIRE(s.append("a-1", ExpectedVersion::NoStream(), Event("one")).ok());
        f->PowerLoss();
        auto r = s.append("a-1", ExpectedVersion::Any(), Event("two", id));
        REQUIRE_FALSE(r.ok());
        CHECK(r.status().IsIOError());
        // Fail-stop: later appends get the same error.
        CHECK(s.append("a-1", ExpectedVersion::Any(), Event("three")).status().IsIOError());
        CHECK_FALSE(s.close().ok());
      }
      CHECK(f->OpenWritableFiles() == 0);
      Drop(*f);
    }
    auto f = std::make_shared<FaultFs>();
    Store s = OpenOn(path, f);
    {
      auto all = s.read_all(0);
      REQUIRE(all.ok());
      REQUIRE(all->Valid());
      CHECK(all->value().data == "one");
      CHECK(all->value().metadata == "m:one");
      all->Next();
      CHECK_FALSE(all->Valid());
    }
    // The failed append's outcome was unknown; a retry with its id settles it.
    auto retry = s.append("a-1", ExpectedVersion::Any(), Event("two", id));
    REQUIRE(retry.ok());
    CHECK_FALSE(retry->idempotent_replay);
    CHECK(retry->first_position == 1);
    auto v = inspect::Verify(s);
    REQUIRE(v.ok());
    CHECK(v->ok());
  }

  TEST_CASE("a store: a power loss at any point of its creation leaves no store or a whole one") {
    TempDir dir;
    std::string path = dir.sub("db");
    // How many operations a creation takes.
    uint64_t ops = 0;
    {
      auto f = std::make_shared<FaultFs>();
      {
        Store s = OpenOn(path, f);
        ops = f->Count(FsOp::kAny);
      }
      fs::remove_all(path);
    }
    REQUIRE(ops > 20);
    // Into a new directory, and into an empty one made (durably) beforehand,
    // which a creation made in place would leave half filled.
    for (bool premade : {false, true}) {
      CAPTURE(premade);
      int whole = 0, none = 0;
      // Every twelfth operation, from a different first one each time the
      // test runs: about twenty creations, each cut at a new place.
      const uint64_t first = static_cast<uint64_t>(std::random_device{}()) % 12;
      for (uint64_t n = first; n < ops; n += 12) {
        CAPTURE(n);  // the operation the power was cut at
        fs::remove_all(path);
        fs::remove_all(path + ".evstore-creating");
        if (premade) fs::create_directory(path);
        auto f = std::make_shared<FaultFs>();
        f->AddRule(FaultRule::On(FsOp::kAny).After(n).With(FaultEffect::kPowerLoss));
        // Every other cut keeps a random part of what was not synced.
        f->SetTornWrites(n % 2 == 1, n);
        {
          // Usually the open fails; a plug pulled at its very end may hit an
          // operation whose failure it ignores.
          auto r = internal::OpenStore(path, Options(),
                                       evtest::OnFs(f));
          CHECK(f->powered_off());
        }
        Drop(*f);
        if (fs::exists(path + "/CURRENT")) {
          whole++;
        } else {
          none++;
          CHECK((!fs::exists(path) || fs::is_empty(path)));
        }
        // Either way the next open works and finds an empty, consistent store.
        auto f2 = std::make_shared<FaultFs>();
        Store s = OpenOn(path, f2);
        CHECK(s.stats()->next_position == 0);
        REQUIRE(s.append("x-1", ExpectedVersion::NoStream(), Event("e")).ok());
        auto v = inspect::Verify(s);
        REQUIRE(v.ok());
        CHECK(v->ok());
      }
      MESSAGE("creation takes " << ops << " file system operations; cut from the " << first
                                << "th every 12"
                                << std::string(premade ? " into a premade directory: " : ": ")
                                << none << " cut creations left nothing, " << whole
                                << " a whole store");
      CHECK(none > 0);
    }
  }
}
