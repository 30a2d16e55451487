#!/usr/bin/env bash
# Configures and builds one flavour of the tree.
#   scripts/build.sh [release|dist|asan|tsan|valgrind|fuzz|bench]   (default release)
# Build directories: build/ (release), build-dist/, build-asan/, build-tsan/,
# build-valgrind/, build-fuzz/, build-bench/.  release is the test build: it
# has the test seams (RENC_FAULT, RENC_ALLOC_FAIL) compiled in.  dist is the
# binary to deploy and install: optimised, no test seams, no tests.  valgrind: optimised with debug information, test
# hooks as in release, the memcheck annotations (common/memcheck.h) and the
# valgrind.* tests.
set -euo pipefail
cd "$(dirname "$0")/.."
flavour=${1:-release}
werror=${RENC_WERROR:-OFF}
[ -n "${CI:-}" ] && werror=ON
case "$flavour" in
  release) dir=build; args=(-DCMAKE_BUILD_TYPE=Release) ;;
  dist) dir=build-dist; args=(-DCMAKE_BUILD_TYPE=Release -DRENC_TEST_HOOKS=OFF -DRENC_BUILD_TESTS=OFF) ;;
  asan) dir=build-asan; args=(-DCMAKE_BUILD_TYPE=Debug "-DRENC_SANITIZE=address;undefined") ;;
  tsan) dir=build-tsan; args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DRENC_SANITIZE=thread) ;;
  valgrind) dir=build-valgrind; args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DRENC_VALGRIND=ON) ;;
  fuzz) dir=build-fuzz; args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang
                              -DCMAKE_CXX_COMPILER=clang++ -DRENC_BUILD_FUZZ=ON) ;;
  bench) dir=build-bench; args=(-DCMAKE_BUILD_TYPE=Release -DRENC_BUILD_BENCH=ON -DRENC_TEST_HOOKS=OFF -DRENC_BUILD_TESTS=OFF) ;;
  *) echo "usage: $0 [release|dist|asan|tsan|valgrind|fuzz|bench]" >&2; exit 2 ;;
esac
cmake -S . -B "$dir" -G Ninja -DRENC_WERROR="$werror" "${args[@]}" >/dev/null
cmake --build "$dir" -j"$(nproc)"
echo "$dir"
