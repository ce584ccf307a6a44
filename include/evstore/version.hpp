// evstore::version(): the version of the evstore library a program runs
// with, which may be newer than the headers it was compiled with (their
// version is EVSTORE_VERSION_MAJOR/MINOR/PATCH in evstore/version.h). The C
// API gives the same through evs_version() and evs_version_string().
//
// Thread safety: both functions may be called from any thread at any time;
// they allocate nothing and never fail.
#ifndef EVSTORE_VERSION_HPP_
#define EVSTORE_VERSION_HPP_

#include <compare>

#include "evstore/export.hpp"
#include "evstore/version.h"

namespace evstore {

struct Version {
  int major = 0;
  int minor = 0;
  int patch = 0;

  // major * 1000000 + minor * 1000 + patch: EVSTORE_VERSION_NUMBER's scale.
  constexpr int number() const { return major * 1000000 + minor * 1000 + patch; }
  friend constexpr auto operator<=>(const Version&, const Version&) = default;
};

// The library's version, e.g. {0, 1, 0}.
EVSTORE_EXPORT Version version() noexcept;
// The library's version as static NUL-terminated text, e.g. "0.1.0".
EVSTORE_EXPORT const char* version_string() noexcept;

// The version of the headers this code is compiled with.
inline constexpr Version kHeaderVersion{EVSTORE_VERSION_MAJOR, EVSTORE_VERSION_MINOR,
                                        EVSTORE_VERSION_PATCH};

}  // namespace evstore

#endif  // EVSTORE_VERSION_HPP_
