// LifeGate: the lifecycle lock between a store's operations and close().
//
// Every public operation passes the gate for its duration (Enter/Leave: one
// atomic update each way). close() shuts it: operations arriving while a
// close decides wait for the decision, then either go on (the close was
// refused, e.g. Busy) or fail with Closed; operations in flight finish first.
// Unlike std::shared_mutex, which glibc makes prefer readers, a close never
// starves behind a steady stream of operations.
//
// Re-entry: a thread already inside the gate (a callback run by an
// operation, such as an inspection's progress report) may enter again
// without waiting, so a pending close cannot deadlock it. Close() from such
// a thread would wait for itself; it is refused instead (ClosedFromInside).
#ifndef EVSTORE_LIB_LOG_LIFE_GATE_HPP_
#define EVSTORE_LIB_LOG_LIFE_GATE_HPP_

#include <atomic>
#include <cstdint>
#include <mutex>

namespace evstore::internal {

class LifeGate {
 public:
  LifeGate() = default;
  LifeGate(const LifeGate&) = delete;
  LifeGate& operator=(const LifeGate&) = delete;

  // True when the gate is open; the caller is then inside until Leave().
  // False once the gate has closed for good.
  bool Enter() noexcept {
    if (Held* h = Find()) {
      // Inside already: the count is above zero, so no close can complete.
      h->depth++;
      state_.fetch_add(1, std::memory_order_acquire);
      return true;
    }
    uint64_t s = state_.load(std::memory_order_relaxed);
    for (;;) {
      if (s & kClosed) return false;
      if (s & kClosing) {
        state_.wait(s, std::memory_order_relaxed);
        s = state_.load(std::memory_order_relaxed);
        continue;
      }
      if (state_.compare_exchange_weak(s, s + 1, std::memory_order_acquire,
                                       std::memory_order_relaxed))
        break;
    }
    Track();
    return true;
  }

  // REQUIRES: the matching Enter() returned true on this thread.
  void Leave() noexcept {
    Untrack();
    uint64_t s = state_.fetch_sub(1, std::memory_order_release) - 1;
    if ((s & kClosing) && (s & kCount) == 0) state_.notify_all();
  }

  enum class CloseResult { kDecided, kAlreadyClosed, kFromInside };

  // Shuts the gate, waits until no operation is inside, then calls
  // `decide()` alone; it returns true to close for good (every later Enter
  // fails) or false to reopen. Concurrent closes take turns. kFromInside,
  // without waiting, when this thread is inside the gate.
  template <typename Decide>
  CloseResult Close(Decide&& decide) {
    if (Find() != nullptr) return CloseResult::kFromInside;
    std::lock_guard<std::mutex> l(close_mu_);
    uint64_t s = state_.load(std::memory_order_acquire);
    if (s & kClosed) return CloseResult::kAlreadyClosed;
    s = state_.fetch_or(kClosing, std::memory_order_acq_rel) | kClosing;
    while ((s & kCount) != 0) {
      state_.wait(s, std::memory_order_acquire);
      s = state_.load(std::memory_order_acquire);
    }
    bool closed = false;
    try {
      closed = decide();
    } catch (...) {
      Reopen(false);
      throw;
    }
    Reopen(closed);
    return CloseResult::kDecided;
  }

  bool closed() const noexcept { return state_.load(std::memory_order_acquire) & kClosed; }

 private:
  static constexpr uint64_t kClosed = uint64_t{1} << 63;
  static constexpr uint64_t kClosing = uint64_t{1} << 62;
  static constexpr uint64_t kCount = kClosing - 1;

  void Reopen(bool closed) noexcept {
    state_.store(closed ? kClosed : 0, std::memory_order_release);
    state_.notify_all();
  }

  // The gates this thread is inside, for re-entry. A thread nested in more
  // gates than this (stores opened from callbacks of other stores) is not
  // tracked for the extra ones: it re-enters those like any thread.
  struct Held {
    const LifeGate* gate;
    uint32_t depth;
  };
  static constexpr int kMaxHeld = 4;
  struct HeldSet {
    Held held[kMaxHeld];
    int n = 0;
  };
  static HeldSet& Mine() noexcept {
    thread_local HeldSet set;
    return set;
  }
  Held* Find() const noexcept {
    HeldSet& m = Mine();
    for (int i = 0; i < m.n; i++)
      if (m.held[i].gate == this) return &m.held[i];
    return nullptr;
  }
  void Track() noexcept {
    HeldSet& m = Mine();
    if (m.n < kMaxHeld) m.held[m.n++] = Held{this, 1};
  }
  void Untrack() noexcept {
    HeldSet& m = Mine();
    for (int i = 0; i < m.n; i++) {
      if (m.held[i].gate != this) continue;
      if (--m.held[i].depth == 0) m.held[i] = m.held[--m.n];
      return;
    }
  }

  std::atomic<uint64_t> state_{0};  // kClosed | kClosing | operations inside
  std::mutex close_mu_;
};

}  // namespace evstore::internal

#endif  // EVSTORE_LIB_LOG_LIFE_GATE_HPP_
