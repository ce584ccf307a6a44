// The library's version (include/evstore/version.hpp), from the build's
// generated evstore/version.h: compiled into the library, so that it reports
// the library a program runs with rather than the headers it was built with.
#include "evstore/version.hpp"

namespace evstore {

Version version() noexcept {
  return Version{EVSTORE_VERSION_MAJOR, EVSTORE_VERSION_MINOR, EVSTORE_VERSION_PATCH};
}

const char* version_string() noexcept { return EVSTORE_VERSION_STRING; }

}  // namespace evstore
