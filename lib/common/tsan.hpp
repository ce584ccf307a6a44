// ThreadSanitizer annotations for reads that RocksDB synchronises itself.
//
// Debian's librocksdb is not built with ThreadSanitizer, so the atomics that
// publish a memtable entry to concurrent readers are invisible to it. A
// reader that by design looks at entries a commit leader is writing at that
// moment (a bounded head load, which reads past the published position and
// skips what it finds there) would be reported as racing with RocksDB's
// memcpy, whose stack ThreadSanitizer cannot restore, so no suppression can
// name it. IgnoreRocksReads marks such a read: inside its scope the thread's
// memory accesses are not checked. Keep the scope to the RocksDB reads
// themselves; evstore's own shared state must stay outside it.
#pragma once

#if defined(__SANITIZE_THREAD__)
#define EVSTORE_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define EVSTORE_TSAN 1
#endif
#endif

#ifdef EVSTORE_TSAN
extern "C" void AnnotateIgnoreReadsBegin(const char* file, int line);
extern "C" void AnnotateIgnoreReadsEnd(const char* file, int line);
extern "C" void AnnotateIgnoreWritesBegin(const char* file, int line);
extern "C" void AnnotateIgnoreWritesEnd(const char* file, int line);
#endif

namespace evstore::internal {

class IgnoreRocksReads {
 public:
#ifdef EVSTORE_TSAN
  explicit IgnoreRocksReads(bool on) : on_(on) {
    if (on_) {
      AnnotateIgnoreReadsBegin(__FILE__, __LINE__);
      AnnotateIgnoreWritesBegin(__FILE__, __LINE__);
    }
  }
  ~IgnoreRocksReads() {
    if (on_) {
      AnnotateIgnoreWritesEnd(__FILE__, __LINE__);
      AnnotateIgnoreReadsEnd(__FILE__, __LINE__);
    }
  }

 private:
  bool on_;
#else
  explicit IgnoreRocksReads(bool) {}
#endif
  IgnoreRocksReads(const IgnoreRocksReads&) = delete;
  IgnoreRocksReads& operator=(const IgnoreRocksReads&) = delete;
};

}  // namespace evstore::internal
