// RocksDB adapters of the store's metrics and logging (rocks_hooks.hpp).
#include "metrics/rocks_hooks.hpp"

#include <cstdarg>
#include <cstdio>
#include <string>
#include <string_view>

namespace evstore::metrics {

rocksdb::InfoLogLevel RocksLevel(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return rocksdb::InfoLogLevel::DEBUG_LEVEL;
    case LogLevel::kInfo: return rocksdb::InfoLogLevel::INFO_LEVEL;
    case LogLevel::kWarn: return rocksdb::InfoLogLevel::WARN_LEVEL;
    case LogLevel::kError: return rocksdb::InfoLogLevel::ERROR_LEVEL;
    case LogLevel::kFatal: return rocksdb::InfoLogLevel::FATAL_LEVEL;
  }
  return rocksdb::InfoLogLevel::WARN_LEVEL;
}

namespace {

LogLevel FromRocks(rocksdb::InfoLogLevel level) {
  switch (level) {
    case rocksdb::InfoLogLevel::DEBUG_LEVEL: return LogLevel::kDebug;
    case rocksdb::InfoLogLevel::INFO_LEVEL:
    case rocksdb::InfoLogLevel::HEADER_LEVEL: return LogLevel::kInfo;
    case rocksdb::InfoLogLevel::WARN_LEVEL: return LogLevel::kWarn;
    case rocksdb::InfoLogLevel::ERROR_LEVEL: return LogLevel::kError;
    default: return LogLevel::kFatal;
  }
}

class CallbackLogger : public rocksdb::Logger {
 public:
  explicit CallbackLogger(std::shared_ptr<MetricsHub> hub)
      : rocksdb::Logger(RocksLevel(hub->log_level())), hub_(std::move(hub)) {}
  ~CallbackLogger() override { closed_ = true; }

  void Logv(const char* format, va_list ap) override {
    Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap);
  }
  void LogHeader(const char* format, va_list ap) override {
    Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap);
  }
  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    if (level < GetInfoLogLevel()) return;
    // Most messages fit the stack buffer; a longer one is formatted again
    // into a string of its size (a failed allocation drops it: RocksDB's
    // threads must not see an exception).
    char buf[1024];
    va_list copy;
    va_copy(copy, ap);
    int n = std::vsnprintf(buf, sizeof buf, format, copy);
    va_end(copy);
    if (n < 0) return;
    std::string_view msg;
    std::string big;
    if (static_cast<size_t>(n) < sizeof buf) {
      msg = std::string_view(buf, static_cast<size_t>(n));
    } else {
      try {
        big.resize(static_cast<size_t>(n) + 1);
      } catch (...) {
        return;
      }
      va_copy(copy, ap);
      std::vsnprintf(big.data(), big.size(), format, copy);
      va_end(copy);
      big.resize(static_cast<size_t>(n));
      msg = big;
    }
    while (!msg.empty() && msg.back() == '\n') msg.remove_suffix(1);
    hub_->CallLog(FromRocks(level), msg);
  }

 private:
  const std::shared_ptr<MetricsHub> hub_;
};

class SyncTimingFile : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  SyncTimingFile(std::unique_ptr<rocksdb::FSWritableFile> f, std::shared_ptr<MetricsHub> hub)
      : rocksdb::FSWritableFileOwnerWrapper(std::move(f)), hub_(std::move(hub)) {}
  rocksdb::IOStatus Sync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
    ScopedTimer t(&hub_->wal_sync);
    return target()->Sync(o, dbg);
  }
  rocksdb::IOStatus Fsync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
    ScopedTimer t(&hub_->wal_sync);
    return target()->Fsync(o, dbg);
  }

 private:
  const std::shared_ptr<MetricsHub> hub_;
};

bool IsWal(const std::string& name) {
  return name.size() > 4 && name.compare(name.size() - 4, 4, ".log") == 0;
}

class SyncTimingFs : public rocksdb::FileSystemWrapper {
 public:
  SyncTimingFs(std::shared_ptr<rocksdb::FileSystem> base, std::shared_ptr<MetricsHub> hub)
      : rocksdb::FileSystemWrapper(base), hub_(std::move(hub)) {}
  static const char* kClassName() { return "evstore.SyncTimingFs"; }
  const char* Name() const override { return kClassName(); }

  rocksdb::IOStatus NewWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                    std::unique_ptr<rocksdb::FSWritableFile>* r,
                                    rocksdb::IODebugContext* dbg) override {
    return Wrap(f, target()->NewWritableFile(f, o, r, dbg), r);
  }
  rocksdb::IOStatus ReopenWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                       std::unique_ptr<rocksdb::FSWritableFile>* r,
                                       rocksdb::IODebugContext* dbg) override {
    return Wrap(f, target()->ReopenWritableFile(f, o, r, dbg), r);
  }
  rocksdb::IOStatus ReuseWritableFile(const std::string& f, const std::string& old,
                                      const rocksdb::FileOptions& o,
                                      std::unique_ptr<rocksdb::FSWritableFile>* r,
                                      rocksdb::IODebugContext* dbg) override {
    return Wrap(f, target()->ReuseWritableFile(f, old, o, r, dbg), r);
  }

 private:
  rocksdb::IOStatus Wrap(const std::string& name, rocksdb::IOStatus s,
                         std::unique_ptr<rocksdb::FSWritableFile>* r) {
    if (s.ok() && *r && IsWal(name)) {
      try {
        *r = std::make_unique<SyncTimingFile>(std::move(*r), hub_);
      } catch (const std::bad_alloc&) {
        // *r is untouched when the allocation fails: the log is only not timed.
      }
    }
    return s;
  }
  const std::shared_ptr<MetricsHub> hub_;
};

}  // namespace

std::shared_ptr<rocksdb::Logger> NewCallbackLogger(std::shared_ptr<MetricsHub> hub) {
  return std::make_shared<CallbackLogger>(std::move(hub));
}

std::shared_ptr<rocksdb::FileSystem> NewSyncTimingFs(std::shared_ptr<rocksdb::FileSystem> base,
                                                     std::shared_ptr<MetricsHub> hub) {
  return std::make_shared<SyncTimingFs>(std::move(base), std::move(hub));
}

}  // namespace evstore::metrics
