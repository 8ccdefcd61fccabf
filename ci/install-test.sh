#!/usr/bin/env bash
# Installs the library from a build tree into a temporary prefix and builds an outside
# project against it both ways — CMake find_package(squall) and pkg-config — then runs
# each build (an HTTPServer and an AsyncHTTPClient over loopback). Also checks that every
# installed header compiles from the prefix alone and that the installed programs run.
#   ci/install-test.sh [BUILD_DIR]     (default build/release; built first if stale,
#                                       unless SQUALL_INSTALL_TEST_SKIP_BUILD=1, as CTest
#                                       runs it: test install_outside_project)
# Writes only under a temporary directory, removed at exit.
set -euo pipefail
cd "$(dirname "$0")/.."

build=${1:-build/release}
outside=reference/tests/install/outside_project
tmp=$(mktemp -d "${TMPDIR:-/tmp}/squall-install-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
step() { echo "-- install test: $1"; }
loads_from_prefix() {  # a program linked with a shared libsquall loads the prefix's copy
  local libs
  libs=$(ldd "$1")
  [[ $libs == *"=> $prefix/"*libsquall.so* ]] || { echo "$1 loads: $libs" >&2; return 1; }
}

if [[ ${SQUALL_INSTALL_TEST_SKIP_BUILD:-0} != 1 ]]; then
  step "build $build (no-op when up to date)"
  cmake --build "$build" >/dev/null
fi
shared=false
[[ $(sed -n 's/^BUILD_SHARED_LIBS:[A-Z]*=//p' "$build/CMakeCache.txt") =~ ^(ON|on|1|TRUE|true|YES|yes)$ ]] && shared=true
step "cmake --install $build --prefix <tmp> (shared library: $shared)"
cmake --install "$build" --prefix "$prefix" >/dev/null

pc_file=$(find "$prefix" -name squall.pc -path '*/pkgconfig/*')
libdir=$(dirname "$(dirname "$pc_file")")  # lib, or lib/<multiarch> under /usr
test -f "$libdir/cmake/squall/squallConfig.cmake" -a -f "$libdir/cmake/squall/squallConfigVersion.cmake"
ls "$libdir"/libsquall.* >/dev/null

step "every installed header compiles from the prefix alone"
export PKG_CONFIG_PATH=$libdir/pkgconfig
for header in "$prefix"/include/squall/*.h "$prefix"/include/squall/detail/*.h; do
  echo "#include <${header#"$prefix"/include/}>"
done >"$tmp/all_headers.cc"
# The flags name the prefix alone: a header that needs one left out of the install fails.
g++ -std=c++20 -fsyntax-only $(pkg-config --cflags squall) "$tmp/all_headers.cc"

step "installed programs start (squall-fetch --help, squall-contract-app --help)"
if $shared; then
  # A shared libsquall: every program must load the prefix's copy, not the build tree's.
  for program in "$prefix/bin/squall-fetch" "$prefix/bin/squall-contract-app"; do
    loads_from_prefix "$program"
  done
fi
"$prefix/bin/squall-fetch" --help >/dev/null
"$prefix/bin/squall-contract-app" --help >/dev/null

step "outside project, CMake find_package(squall)"
# With a static libsquall the program links the library's code: it takes the package's
# request-path layout, whose section then holds the library's path.
layout=OFF
$shared || layout=ON
cmake -S "$outside" -B "$tmp/cmake-build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_PREFIX_PATH="$prefix" -DWITH_REQUEST_PATH_LAYOUT=$layout >/dev/null
cmake --build "$tmp/cmake-build" >/dev/null
timeout -k 5 30 "$tmp/cmake-build/hello_roundtrip"
test -f "$prefix/share/squall/request_path.ld"
if [[ $layout == ON ]]; then
  readelf -SW "$tmp/cmake-build/hello_roundtrip" | grep -q " .text.squall_request_path " ||
    { echo "hello_roundtrip has no .text.squall_request_path section" >&2; exit 1; }
fi

step "outside project, pkg-config ($(pkg-config --libs squall))"
mkdir "$tmp/pkg-config-build"
make -s -f "$outside/Makefile" OUT="$tmp/pkg-config-build"
timeout -k 5 30 "$tmp/pkg-config-build/hello_roundtrip"
if $shared; then
  loads_from_prefix "$tmp/pkg-config-build/hello_roundtrip"
fi
# Static linking needs every dependency: from Requires.private / Libs.private when shared.
static_libs=" $(pkg-config --libs --static squall) "
for lib in -lsquall -lfmt -lssl -lcrypto -lre2 -lz -pthread; do
  [[ $static_libs == *" $lib "* ]] || { echo "pkg-config --static lacks $lib: $static_libs" >&2; exit 1; }
done

step "passed"
