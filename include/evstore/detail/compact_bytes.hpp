// CompactBytes: an L2 entry's encoded bytes in 16 bytes.
//
// Thread safety: a value; one object is used by one thread at a time.
//
// Not API: part of the implementation of evstore::TieredCache
// (evstore/cache.hpp), installed only because the template needs it. No
// compatibility promise: anything here may change in any release. Include
// evstore/cache.hpp instead.
#ifndef EVSTORE_DETAIL_COMPACT_BYTES_HPP_
#define EVSTORE_DETAIL_COMPACT_BYTES_HPP_

#include <cstddef>
#include <cstring>
#include <new>
#include <string_view>

namespace evstore::cache_internal {

// An L2 entry's encoded bytes in 16 bytes (std::string takes 32): up to 15
// bytes inline, longer ones in one heap block of exactly their size. The
// last byte holds the inline length, or kHeap with the block's address in
// the first eight bytes and its size in the next seven. Move-only.
class CompactBytes {
 public:
  CompactBytes() { raw_[kTag] = 0; }
  explicit CompactBytes(std::string_view b) {
    if (b.size() <= kTag) {
      if (!b.empty()) std::memcpy(raw_, b.data(), b.size());
      raw_[kTag] = static_cast<unsigned char>(b.size());
      return;
    }
    char* p = static_cast<char*>(::operator new(b.size()));
    std::memcpy(p, b.data(), b.size());
    std::memcpy(raw_, &p, sizeof p);
    for (size_t i = 0; i < kTag - sizeof p; i++) raw_[sizeof p + i] = static_cast<unsigned char>(b.size() >> (8 * i));
    raw_[kTag] = kHeap;
  }
  CompactBytes(CompactBytes&& o) noexcept {
    std::memcpy(raw_, o.raw_, sizeof raw_);
    o.raw_[kTag] = 0;
  }
  CompactBytes& operator=(CompactBytes&& o) noexcept {
    if (this != &o) {
      Free();
      std::memcpy(raw_, o.raw_, sizeof raw_);
      o.raw_[kTag] = 0;
    }
    return *this;
  }
  CompactBytes(const CompactBytes&) = delete;
  CompactBytes& operator=(const CompactBytes&) = delete;
  ~CompactBytes() { Free(); }

  std::string_view view() const {
    if (raw_[kTag] != kHeap) return {reinterpret_cast<const char*>(raw_), raw_[kTag]};
    size_t n = 0;
    for (size_t i = kTag - sizeof(char*); i-- > 0;) n = (n << 8) | raw_[sizeof(char*) + i];
    return {heap_data(), n};
  }

 private:
  static constexpr size_t kTag = 15;
  static constexpr unsigned char kHeap = 0xFF;
  char* heap_data() const {
    char* p;
    std::memcpy(&p, raw_, sizeof p);
    return p;
  }
  void Free() {
    if (raw_[kTag] == kHeap) ::operator delete(heap_data());
    raw_[kTag] = 0;
  }
  alignas(8) unsigned char raw_[16];
};
static_assert(sizeof(CompactBytes) == 16);

}  // namespace evstore::cache_internal

#endif  // EVSTORE_DETAIL_COMPACT_BYTES_HPP_
