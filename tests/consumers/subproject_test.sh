#!/bin/sh
# Meson subproject test: copies tests/consumers/meson/ (with consumer.cpp and
# consumer.c) into a temporary directory, writes its subprojects/evstore.wrap
# as a [wrap-git] whose url is this checkout and whose revision is HEAD,
# configures it with the fallback forced (an installed evstore must not
# stand in), builds it, runs both programs and compares their output with
# expected.txt. Meson clones the repository, so this tests the committed
# HEAD, not uncommitted changes. Skips (77) when the source root is not the
# top of a git checkout with a commit.
#
# usage: subproject_test.sh SOURCE_ROOT VERSION CC CXX
set -eu

[ $# -eq 4 ] || { echo "usage: $0 SOURCE_ROOT VERSION CC CXX" >&2; exit 2; }
source_root=$1 version=$2 cc=$3 cxx=$4

fail() {
  echo "subproject_test: $*" >&2
  exit 1
}
skip() {
  echo "subproject_test: $*: skipped"
  exit 77
}

command -v git >/dev/null 2>&1 || skip "git not found"
top=$(git -C "$source_root" rev-parse --show-toplevel 2>/dev/null) || skip "$source_root is not in a git checkout"
[ "$(cd "$top" && pwd -P)" = "$(cd "$source_root" && pwd -P)" ] ||
  skip "$source_root is not the top of its git checkout ($top is)"
head=$(git -C "$source_root" rev-parse --verify -q HEAD) || skip "the git checkout at $source_root has no commit yet"
if [ -n "$(git -C "$source_root" status --porcelain --untracked-files=no)" ]; then
  echo "subproject_test: note: testing the commit HEAD ($head); uncommitted changes are not part of it"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/evstore-subproject-XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
consumers=$source_root/tests/consumers
src=$tmp/src
mkdir -p "$src/subprojects"
cp "$consumers/meson/meson.build" "$consumers/consumer.cpp" "$consumers/consumer.c" "$src/"
cat >"$src/subprojects/evstore.wrap" <<WRAP
[wrap-git]
url = $source_root
revision = HEAD

[provide]
dependency_names = evstore
WRAP

# plain: no optimisation or debug info, the quickest build of the library.
CC=$cc CXX=$cxx meson setup "$tmp/build" "$src" --buildtype=plain --force-fallback-for=evstore \
  >"$tmp/setup.log" 2>&1 || fail "meson setup of the consumer failed:
$(tail -n 40 "$tmp/setup.log")"
subprojects=$(meson introspect "$tmp/build" --projectinfo | python3 -c '
import json, sys
print(" ".join(p["name"] + "@" + p["version"] for p in json.load(sys.stdin)["subprojects"]))') ||
  fail "meson introspect --projectinfo failed"
[ "$subprojects" = "evstore@$version" ] ||
  fail "the consumer's subprojects are '$subprojects', expected evstore@$version"
cloned=$(git -C "$src/subprojects/evstore" rev-parse HEAD) || fail "meson did not clone evstore into subprojects/"
[ "$cloned" = "$head" ] || fail "the subproject is at $cloned, not at HEAD ($head)"
meson compile -C "$tmp/build" -j 2 >"$tmp/compile.log" 2>&1 || fail "building the consumer failed:
$(tail -n 60 "$tmp/compile.log")"

for api in C++ C; do
  case $api in
    C++) program=$tmp/build/consumer_cpp ;;
    C) program=$tmp/build/consumer_c ;;
  esac
  "$program" "$tmp/store-$api" >"$tmp/out.txt" 2>"$tmp/err.txt" ||
    fail "$program failed: $(cat "$tmp/err.txt")"
  [ "$(head -n 1 "$tmp/out.txt")" = "evstore $version through the $api API" ] ||
    fail "$program printed '$(head -n 1 "$tmp/out.txt")', expected 'evstore $version through the $api API'"
  sed 1d "$tmp/out.txt" | cmp -s "$consumers/expected.txt" - ||
    fail "the output of $program differs from tests/consumers/expected.txt (diff below)
$(sed 1d "$tmp/out.txt" | diff "$consumers/expected.txt" - || true)"
done
echo "subproject_test: built evstore $head as a subproject through a wrap and ran the C++ and C consumers"
