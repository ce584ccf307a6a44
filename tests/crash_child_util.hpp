// Helpers shared by the crash-test child processes (crash_child,
// saga_crash_child), which the crash tests run and kill.
#ifndef EVSTORE_TESTS_CRASH_CHILD_UTIL_HPP_
#define EVSTORE_TESTS_CRASH_CHILD_UTIL_HPP_

#include <unistd.h>

#include <cstdio>
#include <optional>
#include <string>

#include "evstore/store.hpp"

namespace evtest {

// Writes one line to stdout. One write per line, shorter than PIPE_BUF:
// lines of concurrent threads never interleave, and a kill never leaves a
// half line.
inline void Emit(const std::string& line) {
  ssize_t n = write(1, line.data(), line.size());
  (void)n;
}

// Opens the store at `dir` with sync=true, as every crash test does; on
// failure prints why and returns nullopt (the child then exits with 1).
inline std::optional<evstore::Store> OpenSynced(const std::string& dir) {
  evstore::Options o;
  o.sync = true;
  auto opened = evstore::Store::open(dir, o);
  if (!opened.ok()) {
    std::fprintf(stderr, "open: %s\n", opened.status().ToString().c_str());
    return std::nullopt;
  }
  return std::move(opened).value();
}

}  // namespace evtest

#endif  // EVSTORE_TESTS_CRASH_CHILD_UTIL_HPP_
