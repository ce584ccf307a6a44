#!/bin/sh
# Manual page test: installs only the manual pages (meson install --tags man)
# into a temporary DESTDIR and checks that
#  - evstore-inspect(1), evstore-bench(1) and evstore-demo(1) are installed
#    in MANDIR/man1, each with its name and the project's version in .TH and
#    a NAME line that whatis(1) can read;
#  - groff renders each with every warning on and prints none (skipped, with
#    a message, when groff is not installed);
#  - the pages keep up with the tools: every command evstore-inspect lists
#    (in --help and in its short usage) has a .SS section in
#    evstore-inspect(1) that names every flag of the command's --help, and
#    every scenario evstore-bench --help lists has a .SS section in
#    evstore-bench(1) that names the flags of the scenario's summary.
#
# usage: man_test.sh BUILD_ROOT PREFIX MANDIR VERSION EVSTORE_INSPECT EVSTORE_BENCH
set -eu

[ $# -eq 6 ] || { echo "usage: $0 BUILD_ROOT PREFIX MANDIR VERSION EVSTORE_INSPECT EVSTORE_BENCH" >&2; exit 2; }
build_root=$1 prefix=$2 mandir=$3 version=$4 inspect=$5 bench=$6

fail() {
  echo "man_test: $*" >&2
  exit 1
}
under_prefix() {
  case $1 in
    /*) echo "$1" ;;
    *) echo "$prefix/$1" ;;
  esac
}
# section PAGE NAME: the roff source of PAGE's ".SS NAME" section, with
# minus signs and font changes turned into plain text.
section() {
  awk -v name="$2" '$0 == ".SS " name { s = 1; next } s && /^\.S[HS]( |$)/ { exit } s' "$1" |
    sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g'
}
# flags TEXT: the long flags named in TEXT, one per line.
flags() {
  printf '%s\n' "$1" | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u || true
}
# names FLAG TEXT: whether TEXT names FLAG as a whole word.
names() {
  printf '%s\n' "$2" | grep -qE -- "(^|[^a-z0-9-])$1([^a-z0-9-]|\$)"
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/evstore-man-XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
dest=$tmp/dest

# 1. Install the manual pages only; --no-rebuild because `meson test` built
#    them, and tests running alongside may be using the build directory.
DESTDIR=$dest meson install -C "$build_root" --no-rebuild --tags man --quiet >"$tmp/install.log" 2>&1 ||
  fail "meson install --tags man failed: $(cat "$tmp/install.log")"
man1=$dest$(under_prefix "$mandir")/man1
for tool in evstore-inspect evstore-bench evstore-demo; do
  page=$man1/$tool.1
  [ -f "$page" ] || fail "not installed: ${page#"$dest"}"
  upper=$(printf '%s' "$tool" | tr '[:lower:]' '[:upper:]')
  grep -qx ".TH $upper 1 \"\" \"evstore $version\" \"evstore manual\"" "$page" ||
    fail "$tool.1: no '.TH $upper 1 \"\" \"evstore $version\" ...' line"
  sed -n '/^\.SH NAME$/{n;p;q;}' "$page" | grep -q "^$tool \\\\- ." ||
    fail "$tool.1: the line after .SH NAME is not '$tool \\- description'"

  # 2. Render with every warning on.
  if command -v groff >/dev/null 2>&1; then
    groff -man -Tutf8 -ww -z "$page" >"$tmp/groff.log" 2>&1 ||
      fail "groff failed on $tool.1: $(cat "$tmp/groff.log")"
    [ ! -s "$tmp/groff.log" ] || fail "groff warns about $tool.1:
$(cat "$tmp/groff.log")"
  fi
done
command -v groff >/dev/null 2>&1 || echo "man_test: groff not found: rendering not checked"

# 3. evstore-inspect: each command, from the full and from the short usage.
page=$man1/evstore-inspect.1
help=$("$inspect" --help) || fail "evstore-inspect --help failed"
listed=$(printf '%s\n' "$help" | awk '/^commands:$/ { s = 1; next } s && /^$/ { exit } s { print $1 }')
short=$("$inspect" 2>&1 >/dev/null | sed -n 's/^commands: //p' | tr ',' '\n' | tr -d ' ') || true
[ -n "$listed" ] || fail "found no commands in 'evstore-inspect --help':
$help"
[ -n "$short" ] || fail "found no 'commands:' line in the usage evstore-inspect prints without arguments"
checked=0
for cmd in $(printf '%s\n%s\n' "$listed" "$short" | sort -u); do
  text=$(section "$page" "$cmd")
  [ -n "$text" ] || fail "evstore-inspect.1 has no '.SS $cmd' section for the command '$cmd'"
  if printf '%s\n' "$listed" | grep -qx "$cmd"; then
    cmd_help=$("$inspect" "$cmd" --help) || fail "evstore-inspect $cmd --help failed"
    cmd_flags=$(flags "$cmd_help")
    [ -n "$cmd_flags" ] || fail "found no flags in 'evstore-inspect $cmd --help'"
    for f in $cmd_flags; do
      names "$f" "$text" || fail "evstore-inspect.1, section '$cmd', does not name $f (from 'evstore-inspect $cmd --help')"
      checked=$((checked + 1))
    done
  fi
done

# 4. evstore-bench: each scenario with the flags of its summary line.
page=$man1/evstore-bench.1
help=$("$bench" --help) || fail "evstore-bench --help failed"
scenarios=$(printf '%s\n' "$help" | awk '/^scenarios:$/ { s = 1; next } s && NF { print $1 }')
[ -n "$scenarios" ] || fail "found no scenarios in 'evstore-bench --help':
$help"
for sc in $scenarios; do
  text=$(section "$page" "$sc")
  [ -n "$text" ] || fail "evstore-bench.1 has no '.SS $sc' section for the scenario '$sc'"
  line=$(printf '%s\n' "$help" | awk -v n="$sc" '$1 == n')
  for f in $(flags "$line"); do
    names "$f" "$text" || fail "evstore-bench.1, section '$sc', does not name $f (from 'evstore-bench --help')"
    checked=$((checked + 1))
  done
done
echo "man_test: 3 pages installed in ${man1#"$dest"}; $(printf '%s\n%s\n' "$listed" "$short" | sort -u | wc -l) inspect commands, $(printf '%s\n' "$scenarios" | wc -l) bench scenarios and $checked flags documented"
