#!/bin/sh
# Exports test: libevstore.so exports the API and nothing else: the C API
# (evs_*) and symbols of namespace evstore (functions, variables, typeinfo,
# vtables, thunks). Anything else, such as a standard library instantiation,
# means lib/evstore.map no longer applies; the test lists what leaked.
# Symbols that take or name an implementation type are not API either.
#
# usage: exports_test.sh LIBRARY
set -eu

[ $# -eq 1 ] || { echo "usage: $0 LIBRARY" >&2; exit 2; }
lib=$1
command -v nm >/dev/null || { echo "exports_test: skipped: nm not found (binutils)"; exit 77; }

syms=$(nm -D --defined-only "$lib" | awk '{print $NF}') ||
  { echo "exports_test: nm failed on $lib" >&2; exit 1; }
# The C++ part is tools/abi's: the symbol's outermost scope is evstore.
cxx='^_Z(T[VITS]|Th[n0-9_]+|Tv[n0-9_]+)?N[KVRO]*7evstore'
c_count=$(printf '%s\n' "$syms" | grep -c '^evs_' || true)
cxx_count=$(printf '%s\n' "$syms" | grep -cE "$cxx" || true)
other=$(printf '%s\n' "$syms" | grep -v '^evs_' | grep -vE "$cxx" || true)

status=0
if [ -n "$other" ]; then
  echo "exports_test: $lib exports symbols that are not evstore's API:"
  printf '%s\n' "$other" | c++filt | sed 's/^/  /'
  status=1
fi
# Nor does it export what takes or names an implementation type (the
# constructors from a pImpl are EVSTORE_INTERNAL): no host can call it, and
# it would tie the ABI to internals.
internal=$(printf '%s\n' "$syms" | grep -E "$cxx" | c++filt |
  grep -E 'evstore::(internal|cache_internal)::|::(Rep|Impl)\b' || true)
if [ -n "$internal" ]; then
  echo "exports_test: $lib exports symbols that take or name its internals:"
  printf '%s\n' "$internal" | sed 's/^/  /'
  status=1
fi
# The API itself must not be hidden by a pattern gone wrong.
for required in evs_store_open _ZN7evstore5Store4openESt17basic_string_viewIcSt11char_traitsIcEERKNS_7OptionsE; do
  printf '%s\n' "$syms" | grep -qx "$required" || {
    echo "exports_test: $lib does not export $(echo "$required" | c++filt)"
    status=1
  }
done
echo "exports_test: $c_count C functions, $cxx_count C++ symbols of namespace evstore"
exit $status
