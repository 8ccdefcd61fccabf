#!/usr/bin/env bash
# Builds every fuzz target as a libFuzzer binary into $OUT, in the style of an OSS-Fuzz
# build.sh. Honours:
#   CC, CXX              compilers                  (default clang, clang++)
#   CFLAGS, CXXFLAGS     flags for the whole tree   (default ASan + UBSan + fuzzer-no-link)
#   LIB_FUZZING_ENGINE   how targets link the engine (default -fsanitize=fuzzer)
#   OUT                  where the binaries go       (default build/fuzz/out)
#   WORK                 the CMake build directory   (default build/fuzz/work)
# Besides each <name>_fuzzer it copies fuzz/http.dict to <name>_fuzzer.dict, the
# per-target .options file if any, and the seeds as <name>_fuzzer_seed_corpus.zip (when
# `zip` is installed), which is where OSS-Fuzz looks for them.
set -euo pipefail
cd "$(dirname "$0")/.."
src=$(pwd)

export CC=${CC:-clang}
export CXX=${CXX:-clang++}
# -fsanitize=function (part of `undefined` in clang 14) makes clang 14 fail on coroutine
# code with "Cannot represent a difference across sections" when combined with
# -fsanitize=fuzzer-no-link and ASan, so it is left out.
default_flags="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined,fuzzer-no-link -fno-sanitize=function -fno-sanitize-recover=undefined"
CFLAGS=${CFLAGS:-$default_flags}
CXXFLAGS=${CXXFLAGS:-$default_flags}
LIB_FUZZING_ENGINE=${LIB_FUZZING_ENGINE:--fsanitize=fuzzer}
OUT=${OUT:-$src/build/fuzz/out}
WORK=${WORK:-$src/build/fuzz/work}
mkdir -p "$OUT" "$WORK"
OUT=$(cd "$OUT" && pwd)  # absolute: the seed zips are written from inside the corpus dirs

cmake -S "$src" -B "$WORK" -G Ninja \
  -DCMAKE_BUILD_TYPE=None \
  -DCMAKE_C_COMPILER="$CC" -DCMAKE_CXX_COMPILER="$CXX" \
  -DCMAKE_C_FLAGS="$CFLAGS" -DCMAKE_CXX_FLAGS="$CXXFLAGS" \
  -DSQUALL_FUZZ=ON -DSQUALL_FUZZ_ENGINE="$LIB_FUZZING_ENGINE" \
  -DSQUALL_BUILD_BENCH=OFF >/dev/null
ninja -C "$WORK" fuzzers

for bin in "$WORK"/fuzz/*_fuzzer; do
  name=$(basename "$bin")
  short=${name%_fuzzer}
  cp "$bin" "$OUT/$name"
  cp fuzz/http.dict "$OUT/$name.dict"
  [ -f "fuzz/options/$short.options" ] && cp "fuzz/options/$short.options" "$OUT/$name.options"
  if command -v zip >/dev/null; then
    rm -f "$OUT/${name}_seed_corpus.zip"
    (cd "fuzz/corpus/$short" && zip -q -r "$OUT/${name}_seed_corpus.zip" .)
  fi
done
echo "fuzz/build.sh: $(ls "$OUT"/*_fuzzer | wc -l) targets in $OUT"
