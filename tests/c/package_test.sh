#!/bin/sh
# Package test: installs evstore into a temporary DESTDIR, checks what was
# installed, builds tests/c/example.c against the installed copy with
# `pkg-config --cflags --libs evstore`, runs it and compares its output with
# the output shown in docs/c-api.md, whose example must be example.c verbatim.
#
# usage: package_test.sh BUILD_ROOT SOURCE_ROOT PREFIX LIBDIR INCLUDEDIR BINDIR VERSION TOOLS CC [CFLAGS...]
set -eu

build_root=$1 source_root=$2 prefix=$3 libdir=$4 includedir=$5 bindir=$6 version=$7 tools=$8
shift 8
[ $# -ge 1 ] || { echo "usage: $0 BUILD_ROOT SOURCE_ROOT PREFIX LIBDIR INCLUDEDIR BINDIR VERSION TOOLS CC [CFLAGS...]" >&2; exit 2; }

fail() {
  echo "package_test: $*" >&2
  exit 1
}
under_prefix() {
  case $1 in
    /*) echo "$1" ;;
    *) echo "$prefix/$1" ;;
  esac
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/evstore-package-XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
dest=$tmp/dest
doc=$source_root/docs/c-api.md
example=$source_root/tests/c/example.c

# 1. The guide's complete example is example.c, and its output block is what
#    the example prints (the first line carries the version).
awk '/^## A complete example/ { s = 1 } s && /^```c$/ { p = 1; next } p && /^```$/ { exit } p' "$doc" >"$tmp/doc_example.c"
cmp -s "$example" "$tmp/doc_example.c" ||
  fail "the example in docs/c-api.md differs from tests/c/example.c (diff below)
$(diff "$example" "$tmp/doc_example.c" || true)"
awk '/^## A complete example/ { s = 1 } s && /^```text$/ { p = 1; next } p && /^```$/ { exit } p' "$doc" | sed 1d >"$tmp/doc_output.txt"
[ -s "$tmp/doc_output.txt" ] || fail "docs/c-api.md shows no output of the example"

# 2. Install (building whatever installable target `meson test` did not need).
DESTDIR=$dest meson install -C "$build_root" --quiet >"$tmp/install.log" 2>&1 ||
  fail "meson install failed: $(cat "$tmp/install.log")"
lib=$dest$(under_prefix "$libdir")
inc=$dest$(under_prefix "$includedir")
bin=$dest$(under_prefix "$bindir")
for f in "$inc/evstore/evstore.h" "$inc/evstore/version.h" "$inc/evstore/version.hpp" \
  "$inc/evstore/store.hpp" "$lib/pkgconfig/evstore.pc" "$lib/libevstore.so" "$lib/libevstore.so.0"; do
  [ -e "$f" ] || fail "not installed: ${f#"$dest"}"
done
# Every evstore header an installed header includes is installed too.
for h in "$inc"/evstore/*.h "$inc"/evstore/*.hpp; do
  for used in $(sed -n 's|^#include "\(evstore/[^"]*\)".*|\1|p' "$h"); do
    [ -e "$inc/$used" ] || fail "${h#"$inc/"} includes $used, which is not installed"
  done
done
if [ "$tools" = true ]; then
  [ -x "$bin/evstore-inspect" ] || fail "not installed: ${bin#"$dest"}/evstore-inspect"
fi

# 3. Build the example against the installed copy, through pkg-config only.
export PKG_CONFIG_PATH="$lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
export PKG_CONFIG_SYSROOT_DIR=$dest
[ "$(pkg-config --modversion evstore)" = "$version" ] ||
  fail "pkg-config reports version $(pkg-config --modversion evstore), expected $version"
cflags=$(pkg-config --cflags evstore) || fail "pkg-config --cflags evstore failed"
libs=$(pkg-config --libs evstore) || fail "pkg-config --libs evstore failed"
# shellcheck disable=SC2086 # word splitting of pkg-config output is intended
"$@" -std=c11 -Wall -Wextra -Wpedantic -Werror $cflags "$example" $libs -o "$tmp/example" \
  >"$tmp/cc.log" 2>&1 || fail "building the example failed: $*
$(cat "$tmp/cc.log")"

# 4. Run it from the installed library only.
LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$tmp/example" "$tmp/store" \
  >"$tmp/out.txt" 2>"$tmp/err.txt" || fail "the example failed: $(cat "$tmp/err.txt")"
[ "$(head -n 1 "$tmp/out.txt")" = "evstore $version" ] ||
  fail "the example printed '$(head -n 1 "$tmp/out.txt")', expected 'evstore $version'"
sed 1d "$tmp/out.txt" >"$tmp/out_rest.txt"
cmp -s "$tmp/doc_output.txt" "$tmp/out_rest.txt" ||
  fail "the example's output differs from docs/c-api.md (diff below)
$(diff "$tmp/doc_output.txt" "$tmp/out_rest.txt" || true)"
echo "package_test: installed, built with pkg-config and ran the example"
