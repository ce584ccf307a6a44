// FuzzInput: reads typed values off a fuzzer's byte string. Past the end,
// every read returns zeros/empty, so targets never branch on exhaustion.
#ifndef EVSTORE_FUZZ_FUZZ_INPUT_HPP_
#define EVSTORE_FUZZ_FUZZ_INPUT_HPP_

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

// Set by a target that keeps state across inputs: called once when a check
// fails, before the abort, to save what reproduces the failure.
inline void (*g_fuzz_on_failure)() = nullptr;

[[noreturn]] inline void FuzzFail(const char* file, int line, const char* cond) {
  std::fprintf(stderr, "%s:%d: check failed: %s\n", file, line, cond);
  if (auto hook = g_fuzz_on_failure) {
    g_fuzz_on_failure = nullptr;  // a check failing inside the hook just aborts
    hook();
  }
  std::abort();
}

// A failed check: print and abort (libFuzzer records the input as a crash).
#define FUZZ_CHECK(cond)                                 \
  do {                                                   \
    if (!(cond)) FuzzFail(__FILE__, __LINE__, #cond);    \
  } while (0)

class FuzzInput {
 public:
  FuzzInput(const uint8_t* data, size_t size)
      : s_(reinterpret_cast<const char*>(data), size) {}
  bool empty() const { return pos_ >= s_.size(); }
  size_t remaining() const { return empty() ? 0 : s_.size() - pos_; }
  uint8_t Byte() { return empty() ? 0 : static_cast<uint8_t>(s_[pos_++]); }
  uint64_t U64() {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = (v << 8) | Byte();
    return v;
  }
  // Up to `max` bytes, the length taken from one input byte.
  std::string Bytes(size_t max) {
    size_t n = Byte() % (max + 1);
    n = std::min(n, remaining());
    std::string out(s_.substr(pos_, n));
    pos_ += n;
    return out;
  }
  std::string_view Rest() {
    std::string_view r = empty() ? std::string_view() : s_.substr(pos_);
    pos_ = s_.size();
    return r;
  }

 private:
  std::string_view s_;
  size_t pos_ = 0;
};

#endif  // EVSTORE_FUZZ_FUZZ_INPUT_HPP_
