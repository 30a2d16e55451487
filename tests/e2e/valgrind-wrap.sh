#!/usr/bin/env bash
# tests/e2e/valgrind-wrap.sh — the reencrypt binary under Valgrind memcheck,
# for the valgrind.* end-to-end tests (tests/CMakeLists.txt sets RENC_BIN to
# this script and RENC_VALGRIND_BIN to the binary).
#
#   RENC_VALGRIND_BIN=path/to/reencrypt valgrind-wrap.sh ARGS...
#
# The process becomes valgrind (exec: same pid, so the tests' signals reach
# the binary), and the binary's own exit status passes through untouched
# unless memcheck found an error or a leak: then the status is 99, which the
# binary never uses (it exits 0, 1, 2 or 130).  A test may expect a non-zero
# exit, so the status alone would not always show an error: every process
# also writes its report to RENC_VG_LOGDIR/vg.PID.log, and lib.sh's finish
# fails the test when any report holds an error (see valgrind_reports).
# Without RENC_VG_LOGDIR the report goes to stderr.
#
# Leaks: definite, indirect and possible are errors; "still reachable"
# (memory the process still points to at exit, such as OpenSSL's and the
# ipsec-mb manager's once-per-process state) is not.  A process killed by
# another (kill -KILL) gets no leak check; one that kills itself at a
# RENC_FAULT=OP:N:KILL point gets one, of the simulated crash, which lib.sh
# ignores (common/memcheck.h).
# RENC_VALGRIND_OPTS adds options (e.g. --track-origins=yes when chasing an
# uninitialised value).
set -u
: "${RENC_VALGRIND_BIN:?RENC_VALGRIND_BIN must name the reencrypt binary}"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

log=(--log-fd=2)
if [ -n "${RENC_VG_LOGDIR:-}" ]; then
  log=("--log-file=$RENC_VG_LOGDIR/vg.%p.log")
  # exec keeps the pid: vg.PID.cmd names the command of vg.PID.log (with
  # the test hooks' variables).
  printf '%q ' ${RENC_FAULT:+"RENC_FAULT=$RENC_FAULT"} ${RENC_ALLOC_FAIL:+"RENC_ALLOC_FAIL=$RENC_ALLOC_FAIL"} \
    "$RENC_VALGRIND_BIN" "$@" >"$RENC_VG_LOGDIR/vg.$$.cmd"
fi

# shellcheck disable=SC2086  # RENC_VALGRIND_OPTS is a list of options
exec "${RENC_VALGRIND_EXE:-valgrind}" --tool=memcheck -q \
  --error-exitcode=99 \
  --leak-check=full --show-leak-kinds=definite,indirect,possible \
  --errors-for-leak-kinds=definite,indirect,possible \
  --track-fds=no --num-callers=30 --vgdb=no \
  --suppressions="$here/../valgrind.supp" \
  "${log[@]}" ${RENC_VALGRIND_OPTS:-} \
  "$RENC_VALGRIND_BIN" "$@"
