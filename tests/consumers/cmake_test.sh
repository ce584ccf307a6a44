#!/bin/sh
# CMake package test: installs evstore into a temporary DESTDIR, checks that
# the CMake package is there and accepts exactly the versions it should, then
# configures tests/consumers/cmake/ with CMAKE_PREFIX_PATH=<DESTDIR><prefix>
# (so the package must find itself relative to its own location), builds the
# C++ and C consumers with find_package(evstore 0.1 CONFIG REQUIRED) and
# evstore::evstore, runs them, and compares their output with expected.txt.
# A C-only configuration of the same project checks that C consumers need no
# C++ compiler. Skips (77) without cmake.
#
# usage: cmake_test.sh BUILD_ROOT SOURCE_ROOT PREFIX LIBDIR VERSION SANITIZE CC CXX
set -eu

[ $# -eq 8 ] || { echo "usage: $0 BUILD_ROOT SOURCE_ROOT PREFIX LIBDIR VERSION SANITIZE CC CXX" >&2; exit 2; }
build_root=$1 source_root=$2 prefix=$3 libdir=$4 version=$5 sanitize=$6 cc=$7 cxx=$8

fail() {
  echo "cmake_test: $*" >&2
  exit 1
}
under_prefix() {
  case $1 in
    /*) echo "$1" ;;
    *) echo "$prefix/$1" ;;
  esac
}
command -v cmake >/dev/null 2>&1 || { echo "cmake_test: cmake not found (Debian package cmake): skipped"; exit 77; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/evstore-cmake-XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
dest=$tmp/dest
consumers=$source_root/tests/consumers

# 1. Install; --no-rebuild because `meson test` built everything, and other
#    tests may be using the build directory.
DESTDIR=$dest meson install -C "$build_root" --no-rebuild --quiet >"$tmp/install.log" 2>&1 ||
  fail "meson install failed: $(cat "$tmp/install.log")"
lib=$dest$(under_prefix "$libdir")
package=$lib/cmake/evstore
for f in "$package/evstoreConfig.cmake" "$package/evstoreConfigVersion.cmake"; do
  [ -f "$f" ] || fail "not installed: ${f#"$dest"}"
done

# 2. Which requests the package accepts: while the major version is 0 only
#    the same major.minor (a 0.x minor release may change the API), from 1.0
#    on the same major; never a newer version than installed, never an
#    unknown component. No compiler is involved, so this takes a moment.
major=${version%%.*} rest=${version#*.}
minor=${rest%%.*}
# find_request REQUEST [COMPONENT]: prints "found VERSION" or "not found".
find_request() {
  rm -rf "$tmp/find"
  cmake -S "$consumers/cmake_find" -B "$tmp/find" -Devstore_DIR="$package" \
    -DREQUEST="$1" -DREQUEST_COMPONENTS="${2:-}" >"$tmp/find.log" 2>&1 ||
    fail "configuring cmake_find failed: $(cat "$tmp/find.log")"
  sed -nE 's/^-- evstore-find: (found [^ ]*|not found).*/\1/p' "$tmp/find.log"
}
refused=
expect_request() {
  [ "$1" = "not found" ] && refused="$refused${refused:+, }$2${3:+ COMPONENTS $3}"
  got=$(find_request "$2" "${3:-}")
  [ "$got" = "$1" ] || fail "find_package(evstore $2${3:+ COMPONENTS $3}): expected '$1', got '${got:-nothing}'
$(cat "$tmp/find.log")"
}
expect_request "found $version" "$major.$minor"
expect_request "found $version" "$version"
expect_request "not found" "$major.$((minor + 1))"
expect_request "not found" "$((major + 1)).0"
expect_request "not found" "$major.$minor.$((${version##*.} + 1))"
if [ "$major" = 0 ] && [ "$minor" -gt 0 ]; then
  expect_request "not found" "0.$((minor - 1))"
elif [ "$major" != 0 ]; then
  expect_request "found $version" "$major.0"
fi
expect_request "not found" "$major.$minor" no_such_component

# 3. Configure the consumer project against the installed tree, compiled
#    like the library (same compilers, sanitizers included), warnings fatal.
generator=
command -v ninja >/dev/null 2>&1 && generator="-GNinja"
flags="-Wall -Wextra -Wpedantic -Werror"
ldflags=
if [ "$sanitize" != none ]; then
  flags="$flags -fsanitize=$sanitize"
  ldflags="-fsanitize=$sanitize"
fi
# configure DIR [CMAKE ARGS]: configures the consumer project into DIR.
configure() {
  dir=$1
  shift
  # shellcheck disable=SC2086 # $generator is empty or one word
  cmake -S "$consumers/cmake" -B "$dir" $generator -DCMAKE_BUILD_TYPE=Debug \
    -DCMAKE_PREFIX_PATH="$dest$prefix" -DCMAKE_C_COMPILER="$cc" -DCMAKE_CXX_COMPILER="$cxx" \
    -DCMAKE_C_FLAGS="$flags" -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="$ldflags" \
    "$@" >"$dir.log" 2>&1 || fail "configuring the CMake consumer failed:
$(cat "$dir.log")"
  # The package found must be the one just installed, its paths resolved
  # from where it lies, not from the prefix it was built for.
  grep -qxF "evstore_DIR:PATH=$package" "$dir/CMakeCache.txt" ||
    fail "find_package(evstore) did not use $package but: $(grep '^evstore_DIR' "$dir/CMakeCache.txt")"
  grep -qxF -- "-- evstore $version: $lib/libevstore.so.$version" "$dir.log" ||
    fail "evstore::evstore does not point at $lib/libevstore.so.$version:
$(grep -- '^-- evstore ' "$dir.log")"
  cmake --build "$dir" -j 2 >"$dir.build.log" 2>&1 || fail "building the CMake consumer failed:
$(cat "$dir.build.log")"
}
# run PROGRAM API: runs PROGRAM on a new store; checks its output.
runs=0
run() {
  runs=$((runs + 1))
  "$1" "$tmp/store-$runs" >"$tmp/out.txt" 2>"$tmp/err.txt" ||
    fail "$1 failed: $(cat "$tmp/err.txt")"
  [ "$(head -n 1 "$tmp/out.txt")" = "evstore $version through the $2 API" ] ||
    fail "$1 printed '$(head -n 1 "$tmp/out.txt")', expected 'evstore $version through the $2 API'"
  sed 1d "$tmp/out.txt" | cmp -s "$consumers/expected.txt" - ||
    fail "the output of $1 differs from tests/consumers/expected.txt (diff below)
$(sed 1d "$tmp/out.txt" | diff "$consumers/expected.txt" - || true)"
}

configure "$tmp/build"
run "$tmp/build/consumer_cpp" C++
run "$tmp/build/consumer_c" C

# 4. A C application's project: only C enabled.
configure "$tmp/build-c" -DCONSUMER_CXX=OFF
for f in "$tmp/build-c/consumer_cpp" "$tmp/build-c"/CMakeFiles/*/CMakeCXXCompiler.cmake; do
  [ ! -e "$f" ] || fail "the C-only configuration enabled C++: ${f#"$tmp/"} exists"
done
run "$tmp/build-c/consumer_c" C
echo "cmake_test: the package accepts $major.$minor and $version, refuses $refused; built and ran the C++ and C consumers ($cxx, $cc${generator:+, Ninja})"
