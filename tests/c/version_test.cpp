// The run-time version from C++ (evstore/version.hpp) and from C (evs_version,
// evs_version_string) against the headers' macros, in a C++ host linked
// against the shared library, so that the C++ calls must be exported.
#include <cstdio>
#include <cstring>
#include <string>

#include "evstore/evstore.h"
#include "evstore/version.hpp"

namespace {

int failures = 0;

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "version_test: FAILED: %s\n", what);
    failures++;
  }
}

}  // namespace

int main() {
  const evstore::Version v = evstore::version();
  // Built in the tree: the library and the headers are the same version.
  Check(v == evstore::kHeaderVersion, "version() == the headers' version");
  Check(v.major == EVSTORE_VERSION_MAJOR && v.minor == EVSTORE_VERSION_MINOR &&
            v.patch == EVSTORE_VERSION_PATCH,
        "version() has the headers' numbers");
  Check(v.number() == EVSTORE_VERSION_NUMBER, "number() == EVSTORE_VERSION_NUMBER");
  Check(evs_version() == v.number(), "evs_version() == version().number()");
  const std::string text = std::to_string(v.major) + "." + std::to_string(v.minor) + "." +
                           std::to_string(v.patch);
  Check(text == evstore::version_string(), "version_string() spells version()");
  Check(std::strcmp(evstore::version_string(), EVSTORE_VERSION_STRING) == 0,
        "version_string() == EVSTORE_VERSION_STRING");
  Check(std::strcmp(evs_version_string(), evstore::version_string()) == 0,
        "evs_version_string() == version_string()");
  // Ordering follows the numbers, as EVSTORE_VERSION_ATLEAST does.
  Check(evstore::Version{0, 9, 0} < evstore::Version{1, 0, 0}, "0.9.0 < 1.0.0");
  Check(evstore::Version{1, 2, 3}.number() == 1002003, "1.2.3 packs to 1002003");
  Check(EVSTORE_VERSION_ATLEAST(EVSTORE_VERSION_MAJOR, EVSTORE_VERSION_MINOR, EVSTORE_VERSION_PATCH) &&
            !EVSTORE_VERSION_ATLEAST(EVSTORE_VERSION_MAJOR, EVSTORE_VERSION_MINOR,
                                     EVSTORE_VERSION_PATCH + 1),
        "EVSTORE_VERSION_ATLEAST");
  std::printf("version_test: %s, %d failure(s)\n", evstore::version_string(), failures);
  return failures ? 1 : 0;
}
