#!/usr/bin/env bash
# Runs every test: installs what is missing, then builds and runs the whole
# suite (unit, fuzz-corpus replay, end-to-end) in a normal build and again
# under AddressSanitizer + UndefinedBehaviorSanitizer, then the pipeline tests
# (ring, pool, the run engine end to end) under ThreadSanitizer, then a set of
# end-to-end tests with the binary under Valgrind memcheck (no error, no leak;
# tests/CMakeLists.txt says which and why).  The dist build (the binary to
# deploy) is checked to have no test seams and to install.
#   scripts/test.sh            everything
#   scripts/test.sh quick      the normal build only
#   scripts/test.sh valgrind   the memcheck pass only
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  "" | quick | valgrind) ;;
  *) echo "usage: $0 [quick|valgrind]" >&2; exit 2 ;;
esac
scripts/bootstrap.sh
# The layering first, like curl's checksrc: seconds, and no build needed.
if ! scripts/check-layers.sh; then
  echo "scripts/check-layers.sh: fix the includes above (README.md, Architecture)" >&2
  exit 1
fi

flavours=(release asan)
[ "${1:-}" = quick ] && flavours=(release)
[ "${1:-}" = valgrind ] && flavours=()

status=0
for f in "${flavours[@]}"; do
  echo "=== $f build ==="
  dir=$(scripts/build.sh "$f" | tail -n 1)
  echo "=== $f tests ==="
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
  # The allocation-failure sweep tries every 8th N in the release build and
  # every 32nd under the sanitizers, to stay within CI's time (each try is a
  # few processes: at 4 and 16 it took 8 and 6.5 of CI's 60 minutes;
  # RENC_ALLOCFAIL_STRIDE=1 tries every N, about 30 minutes: run it by hand
  # after a change to the allocation paths).
  if [ "$f" = asan ]; then export RENC_ALLOCFAIL_STRIDE=32; else export RENC_ALLOCFAIL_STRIDE=8; fi
  # The key vault scale test moves 10,000 blobs in the release build and
  # 2,000 under the sanitizers (its time is the vault's pacing either way).
  if [ "$f" = asan ]; then export RENC_AKV_SCALE_BLOBS=2000; else export RENC_AKV_SCALE_BLOBS=10000; fi
  # The blob storage crash test kills a run at 7 points in the release
  # build and at 4 under the sanitizers.
  if [ "$f" = asan ]; then export RENC_BLOB_CRASH_POINTS="write:4 fsync:9 journal:2 after:1.2"; else unset RENC_BLOB_CRASH_POINTS; fi
  # The shared-run kill test: 1,600 blobs in the release build, 800 under
  # the sanitizers (slower there: still in flight when the kills come).
  if [ "$f" = asan ]; then export RENC_SHARED_N=800; else unset RENC_SHARED_N; fi
  # The named-run test: 2,600 blobs in release, 2,100 under the sanitizers
  # (its listing must still come in two parts of 2,000).
  if [ "$f" = asan ]; then export RENC_NAMED_N=2100; else unset RENC_NAMED_N; fi
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  # Not under the sanitizers: the deployment recipes (shell around the same
  # --shard runs test_shard covers there, and a Slurm of their own) and the
  # page-cache check (the kernel's behaviour, not the binary's memory).
  skip=()
  [ "$f" = asan ] && skip=(-E '^e2e\.(test_slurm|test_recipes|test_cache)$')
  if ! ctest --test-dir "$dir" --output-on-failure -j"$(nproc)" "${skip[@]}"; then
    status=1
  fi
done
if [ "${1:-}" != valgrind ]; then
  # The binary to deploy: no test seams in it, and it installs.
  echo "=== dist build ==="
  dir=$(scripts/build.sh dist | tail -n 1)
  if ! scripts/dist-check.sh "$dir" build; then
    status=1
  fi
  # Its Debian package, installed with apt-get, run and removed (CI only:
  # it changes the machine's packages; about 15 s).
  if [ "${CI:-}" = true ] && [ "$(id -u)" -eq 0 ]; then
    echo "=== Debian package ==="
    scripts/deb-check.sh "$dir"
    rc=$?
    if [ $rc -eq 77 ]; then
      echo "deb check skipped (said why above)"
    elif [ $rc -ne 0 ]; then
      status=1
    fi
  fi
fi
if [ -z "${1:-}" ]; then
  echo "=== tsan build (pipeline tests) ==="
  dir=$(scripts/build.sh tsan | tail -n 1)
  export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
  # The key vault scale test: 16 workers sharing the provider's connection
  # pool, pacer and token cache, under 429s and faults.
  export RENC_AKV_SCALE_BLOBS=1000
  # And the streamed path on blob storage: many workers sharing a blob's
  # chunks, the store's connection pool and one retry policy.  And the data
  # commands' work queue (test_workq, then put/copy/backup/restore on
  # several threads: test_env_parallel, about a minute under TSan).
  if ! ctest --test-dir "$dir" --output-on-failure -j"$(nproc)" -R '^(unit\.test_ring|unit\.test_pool|unit\.test_workq|e2e\.test_env_parallel|unit\.test_journal|unit\.test_pace|e2e\.test_run.*|e2e\.test_resume|e2e\.test_akv_scale|e2e\.test_blob_run)$'; then
    status=1
  fi
fi
if [ -z "${1:-}" ] || [ "$1" = valgrind ]; then
  # About 12 minutes on 2 cores: each test runs one process at a time, and
  # memcheck runs a process's threads one at a time, so -j(cores).
  echo "=== valgrind build (end-to-end tests under memcheck) ==="
  dir=$(scripts/build.sh valgrind | tail -n 1)
  if ! ctest --test-dir "$dir" --output-on-failure -j"$(nproc)" -L '^valgrind-ci$'; then
    status=1
  fi
fi
exit $status
