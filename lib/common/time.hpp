// Wall-clock time in the one unit evstore stores: milliseconds since the Unix
// epoch (event timestamps, saga records, the format record).
#ifndef EVSTORE_LIB_COMMON_TIME_HPP_
#define EVSTORE_LIB_COMMON_TIME_HPP_

#include <chrono>
#include <cstdint>

namespace evstore {

inline int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace evstore

#endif  // EVSTORE_LIB_COMMON_TIME_HPP_
