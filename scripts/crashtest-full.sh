#!/usr/bin/env bash
# The full crash-test set: builds, then runs tests/e2e/test_crash.sh with 20
# kill points per configuration (CI runs 5), and test_resume.sh.
#   scripts/crashtest-full.sh [release|asan]     (default release)
# Environment: RENC_CRASH_POINTS (default 20), RENC_CRASH_SEED (repeat a
# run: each run prints its seed), RENC_CRASH_ONLY=ERE (configurations by
# name, e.g. 'small header'), RENC_BIN (an existing binary: no build),
# RENC_CRASH_NO_RESUME=1 (test_crash.sh only), RENC_CRASH_BARRIERS (the
# --barrier modes test_crash.sh runs every configuration in, one pass each:
# default "file batch").
set -euo pipefail
cd "$(dirname "$0")/.."
flavour=${1:-release}
if [ -z "${RENC_BIN:-}" ]; then
  dir=$(scripts/build.sh "$flavour" | tail -n 1)
  RENC_BIN=$PWD/$dir/reencrypt/reencrypt
fi
export RENC_BIN RENC_TESTS_DIR=$PWD/tests
export RENC_CRASH_POINTS=${RENC_CRASH_POINTS:-20}
if [ "$flavour" = asan ]; then
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
fi
status=0
start=$SECONDS
for barrier in ${RENC_CRASH_BARRIERS:-file batch}; do
  echo "=== test_crash.sh, $RENC_CRASH_POINTS kill points per configuration, --barrier $barrier ($RENC_BIN) ==="
  RENC_CRASH_BARRIER=$barrier bash tests/e2e/test_crash.sh || status=1
done
if [ -z "${RENC_CRASH_NO_RESUME:-}" ]; then
  echo "=== test_resume.sh ==="
  bash tests/e2e/test_resume.sh || status=1
fi
echo "=== $((SECONDS - start)) s; $([ $status -eq 0 ] && echo passed || echo FAILED) ==="
exit $status
