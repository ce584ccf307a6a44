// The failure plan shared by the saga crash test and its child process:
// each saga id maps to the step that fails for good (if any) and how.
#ifndef EVSTORE_TESTS_SAGA_CRASH_FATE_HPP_
#define EVSTORE_TESTS_SAGA_CRASH_FATE_HPP_

#include <cstdint>
#include <string_view>

namespace evtest {

inline uint64_t Fnv(std::string_view s) {
  uint64_t h = 1469598103934665603ull;
  for (char c : s) h = (h ^ static_cast<uint8_t>(c)) * 1099511628211ull;
  return h;
}

struct Fate {
  int fail_at = 3;          // the step (0-based) that fails for good; 3: none
  bool partial = false;     // the failing step had effects
  bool comp_fails = false;  // compensating step 0 always fails: the saga ends stuck
};

inline Fate FateOf(std::string_view id) {
  uint64_t h = Fnv(id);
  Fate f;
  switch (h % 10) {
    case 6: f.fail_at = 0; break;
    case 7: f.fail_at = static_cast<int>(1 + (h / 10) % 2); break;
    case 8:
      f.fail_at = 2;
      f.partial = true;
      break;
    case 9:
      f.fail_at = 2;
      f.comp_fails = true;
      break;
    default: break;
  }
  return f;
}

}  // namespace evtest

#endif  // EVSTORE_TESTS_SAGA_CRASH_FATE_HPP_
