#!/usr/bin/env bash
# Checks the dist build (scripts/build.sh dist), the binary to deploy: it
# says it is not a test build, the test seams are not in it (a fault or an
# allocation failure asked for through the environment does not happen), it
# installs, and the test build refuses to install.
#   scripts/dist-check.sh [DIST_DIR [TEST_BUILD_DIR]]   (default build-dist, build)
set -uo pipefail
cd "$(dirname "$0")/.."
dist=${1:-build-dist}
testbuild=${2:-build}
bin=$dist/reencrypt/reencrypt
work=$(mktemp -d /tmp/renc-dist.XXXXXX)
trap 'rm -rf "$work"' EXIT
passed=0 failed=0
check() {
  local what=$1
  shift
  if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: $what" >&2; fi
}
export RENC_HOME=$work/state
check "the dist binary is not a test build" \
  bash -c "'$bin' --version | grep -q 'RENC v1' && ! '$bin' --version | grep -q 'test'"
"$bin" keys create k >/dev/null || failed=$((failed + 1))
head -c 100000 /dev/urandom >"$work/plain"
check "RENC_FAULT does nothing in the dist build" \
  env RENC_FAULT=write:1:ENOSPC "$bin" encrypt --env dist --key local:k "$work/plain" "$work/a.renc"
# A seal makes hundreds of allocations: the first failing would stop it.
check "RENC_ALLOC_FAIL does nothing in the dist build" \
  env RENC_ALLOC_FAIL=1 "$bin" encrypt --env dist --key local:k "$work/plain" "$work/b.renc"
"$bin" decrypt "$work/a.renc" "$work/a.out" >/dev/null || failed=$((failed + 1))
check "the dist binary round-trips" cmp -s "$work/plain" "$work/a.out"
check "the dist build installs" \
  bash -c "cmake --install '$dist' --prefix '$work/prefix' >/dev/null && [ -x '$work/prefix/bin/reencrypt' ]"
if [ -d "$testbuild" ]; then
  check "the test build says it is one" bash -c "'$testbuild/reencrypt/reencrypt' --version | grep -q 'test build'"
  check "the test build refuses to install" \
    bash -c "! cmake --install '$testbuild' --prefix '$work/prefix2' >/dev/null 2>&1 && [ ! -e '$work/prefix2/bin/reencrypt' ]"
fi
echo "dist check: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
