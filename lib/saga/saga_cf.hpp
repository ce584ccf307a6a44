// The saga engine's writes to the sagas column family and the key ranges it
// scans there. The key layout is in format/saga_record.hpp and
// docs/format.md.
#ifndef EVSTORE_LIB_SAGA_SAGA_CF_HPP_
#define EVSTORE_LIB_SAGA_SAGA_CF_HPP_

#include <cstddef>
#include <string>
#include <string_view>

#include "log/store_impl.hpp"

namespace evstore::saga {

// Sets `key` of the sagas column family to `value`.
inline internal::ExtraWrite Put(std::string key, std::string value = {}) {
  internal::ExtraWrite w;
  w.cf = internal::kCfSagas;
  w.key = std::move(key);
  w.value = std::move(value);
  return w;
}

// Deletes `key` of the sagas column family.
inline internal::ExtraWrite Erase(std::string key) {
  internal::ExtraWrite w = Put(std::move(key));
  w.erase = true;
  return w;
}

// The first key after every key that starts with `prefix` (its last byte
// is below 0xff in every prefix used here).
inline std::string PrefixEnd(std::string_view prefix) {
  std::string e(prefix);
  e.back() = static_cast<char>(e.back() + 1);
  return e;
}

// Index upkeep and retention commit in chunks of this many writes, so that
// none makes a commit group large.
inline constexpr size_t kChunk = 512;

}  // namespace evstore::saga

#endif  // EVSTORE_LIB_SAGA_SAGA_CF_HPP_
