# tests/e2e/lib.sh — shared helpers for the end-to-end tests; sourced, not run.
#
# Each test_*.sh is run by ctest with RENC_BIN (the reencrypt binary) and
# RENC_TESTS_DIR (the tests/ source folder) in its environment.  It sources
# this file, which gives it
#   $WORK            a private scratch folder, removed on exit
#   $STATE           the state folder every `renc` call uses (--state)
#   renc ARGS...     the binary with --state $STATE
#   run CMD...       runs CMD, keeping $RC, $WORK/out and $WORK/err
#                    (run_stdin FILE CMD... with FILE on standard input)
#   expect_exit CODE CMD...   runs CMD; passes when it exits CODE
#                    (expect_ok CMD...; expect_exit_stdin CODE FILE CMD...)
#   expect_msg WORDS...       the last run's stderr holds every WORD
#                             (fixed strings, case-insensitive)
#   expect_out WORDS...       the same for its stdout
#   pass/fail DESC   count a result; check DESC CMD... passes when CMD does
#   finish           prints "N passed, M failed" and exits non-zero on any
#                    failure; under Valgrind (RENC_BIN is valgrind-wrap.sh,
#                    the valgrind.* tests) it first fails on any memcheck
#                    error or leak of any process (valgrind_reports)
# and file helpers: mkdata, same/expect_same, file_mode/expect_mode,
# file_size, no_output_left/expect_no_output (no OUT and no .OUT.renc-tmp.*),
# no_temporaries, inspect_field; npm_ci_cached (npm packages, installed once).
#
# The scripts do not use `set -e`: a failed check is counted and the script
# goes on, so one run reports every broken case.

set -uo pipefail

if [ -z "${RENC_BIN:-}" ] || [ ! -x "$RENC_BIN" ]; then
  echo "RENC_BIN must name the reencrypt binary (got '${RENC_BIN:-}')" >&2
  exit 2
fi
: "${RENC_TESTS_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/renc-e2e.XXXXXX") || exit 2
trap 'chmod -R u+rwx "$WORK" 2>/dev/null; rm -rf "$WORK" "$WORK.vg"' EXIT
# Under Valgrind (the valgrind.* tests: RENC_BIN is tests/e2e/valgrind-wrap.sh)
# every process of the binary leaves its memcheck report in $WORK.vg, beside
# the scratch folder so that no test sees it; finish checks them all.
if [ -n "${RENC_VALGRIND_BIN:-}" ]; then
  export RENC_VG_LOGDIR=$WORK.vg
  mkdir -p "$RENC_VG_LOGDIR" || exit 2
fi
STATE=$WORK/state
export RENC_HOME=$STATE   # belt and braces: --state is passed as well
umask 022                 # what the tool must not rely on

PASSED=0
FAILED=0
RC=0

pass() {
  PASSED=$((PASSED + 1))
  [ -n "${E2E_VERBOSE:-}" ] && echo "ok: $*"
  return 0
}

fail() {
  FAILED=$((FAILED + 1))
  echo "FAIL: $*" >&2
  return 1
}

# check DESC CMD...: passes when CMD succeeds.
check() {
  local desc=$1
  shift
  if "$@"; then pass "$desc"; else fail "$desc"; fi
}

# renc CMD ARGS...: the binary, with the test's state folder.  The option goes
# right after the command so that it can never be taken for an operand.
renc() {
  local cmd=$1
  shift
  "$RENC_BIN" "$cmd" --state "$STATE" "$@"
}

# run CMD...: runs CMD with stdout and stderr kept for expect_msg; $RC is its
# exit status.
run() {
  "$@" >"$WORK/out" 2>"$WORK/err"
  RC=$?
  return 0
}

# run_stdin FILE CMD...: as run, with FILE on standard input.
run_stdin() {
  local in=$1
  shift
  "$@" <"$in" >"$WORK/out" 2>"$WORK/err"
  RC=$?
  return 0
}

_show_last() {
  sed 's/^/    stderr: /' "$WORK/err" >&2
  head -n 5 "$WORK/out" | sed 's/^/    stdout: /' >&2
}

# expect_exit CODE CMD...: runs CMD; passes when it exits CODE.
expect_exit() {
  local want=$1
  shift
  run "$@"
  if [ "$RC" -eq "$want" ]; then
    pass "exit $want: $*"
  else
    fail "exit $RC, wanted $want: $*"
    _show_last
    return 1
  fi
}

# expect_exit_stdin CODE FILE CMD...: expect_exit with FILE on stdin.
expect_exit_stdin() {
  local want=$1 in=$2
  shift 2
  run_stdin "$in" "$@"
  if [ "$RC" -eq "$want" ]; then
    pass "exit $want: $* < $in"
  else
    fail "exit $RC, wanted $want: $* < $in"
    _show_last
    return 1
  fi
}

# expect_ok CMD...: expect_exit 0.
expect_ok() {
  expect_exit 0 "$@"
}

# _has_words WHAT FILE WORDS...: every WORD (fixed string, any case) is in
# FILE.  Bash only, no grep: the e2e scripts run hundreds of these, and on a
# loaded machine every fork counts.
_has_words() {
  local what=$1 file=$2 text w missing=()
  shift 2
  IFS= read -r -d '' text <"$file"
  text=${text,,}
  for w in "$@"; do
    [[ $text == *"${w,,}"* ]] || missing+=("$w")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    pass "$what has: $*"
  else
    fail "$what lacks: ${missing[*]}"
    _show_last
    return 1
  fi
}

# expect_msg WORDS...: every WORD is in the last run's stderr.
expect_msg() {
  _has_words message "$WORK/err" "$@"
}

# expect_out WORDS...: every WORD is in the last run's stdout.
expect_out() {
  _has_words output "$WORK/out" "$@"
}

# mkdata FILE BYTES [random|text|zero]: a plaintext file of BYTES bytes.
mkdata() {
  local f=$1 n=$2 kind=${3:-random}
  case "$kind" in
    random) head -c "$n" /dev/urandom >"$f" ;;
    zero) head -c "$n" /dev/zero >"$f" ;;
    text) yes 'the quick brown fox jumps over the lazy dog 0123456789' | head -c "$n" >"$f" ;;
    *) echo "mkdata: unknown kind $kind" >&2; return 2 ;;
  esac
}

# same A B: the two files have the same bytes.
same() {
  cmp -s -- "$1" "$2"
}

# expect_same DESC A B
expect_same() {
  if cmp -s -- "$2" "$3"; then
    pass "$1"
  else
    fail "$1: $2 and $3 differ"
  fi
}

# file_mode PATH: the permission bits, in octal (e.g. 600).
file_mode() {
  stat -c %a -- "$1"
}

# expect_mode MODE PATH...: each PATH has exactly MODE.
expect_mode() {
  local want=$1 p m
  shift
  for p in "$@"; do
    m=$(file_mode "$p")
    if [ "$m" = "$want" ]; then
      pass "mode $want: $p"
    else
      fail "mode $m, wanted $want: $p"
    fi
  done
}

# file_size PATH
file_size() {
  stat -c %s -- "$1"
}

# no_output_left DIR NAME: neither DIR/NAME nor a temporary for it
# (DIR/.NAME.renc-tmp.*) exists.
no_output_left() {
  local dir=$1 name=$2
  [ ! -e "$dir/$name" ] || { echo "    $dir/$name exists" >&2; return 1; }
  if compgen -G "$dir/.$name.renc-tmp.*" >/dev/null; then
    echo "    temporary left: $(compgen -G "$dir/.$name.renc-tmp.*")" >&2
    return 1
  fi
  return 0
}

# expect_no_output DIR NAME: no_output_left, counted.
expect_no_output() {
  if no_output_left "$1" "$2"; then
    pass "no output left: $1/$2"
  else
    fail "output left behind: $1/$2"
  fi
}

# no_temporaries DIR: no *.renc-tmp.* file at all in DIR.
no_temporaries() {
  ! compgen -G "$1/.*.renc-tmp.*" >/dev/null
}

# inspect_field BLOB JQ: one value of `inspect`'s JSON (jq -r syntax).
inspect_field() {
  renc inspect "$1" | jq -r "$2"
}

# valgrind_reports: under Valgrind, fails once for every process whose
# memcheck report holds an error or a leak (its "==PID==" lines: with -q
# memcheck writes nothing else there), or a warning of an unhandled syscall
# or ioctl other than mlock2 (syscall 325: OpenSSL's secure heap then falls
# back to mlock) and openat2 (437, which Valgrind 3.19 does not know: the
# staged writes then resolve destinations folder by folder with O_NOFOLLOW,
# their documented fallback); shows the first such report in full.  Passes once when all
# are clean.  A process that a RENC_FAULT=OP:N:KILL hook killed wrote
# RENC_MEM_CRASH_MARK (common/memcheck.h) before memcheck's leak check of the
# simulated crash: what follows the mark is not looked at.
valgrind_reports() {
  local f bad=0 shown=
  for f in "$RENC_VG_LOGDIR"/vg.*.log; do
    [ -e "$f" ] || continue
    if sed '/renc: simulated crash (RENC_FAULT KILL): what follows is no leak$/q' "$f" |
      grep -q '^==[0-9]*==' ||
      grep -E '^--[0-9]+-- WARNING: unhandled' "$f" | grep -vqE 'syscall: (325|437)$'; then
      bad=$((bad + 1))
      if [ -z "$shown" ]; then
        shown=1
        echo "    memcheck report $f, of: $(cat "${f%.log}.cmd" 2>/dev/null)" >&2
        sed 's/^/    /' "$f" >&2
      fi
      if [ -n "${RENC_E2E_VG_KEEP:-}" ]; then
        mkdir -p "$RENC_E2E_VG_KEEP" && cp "$f" "${f%.log}.cmd" "$RENC_E2E_VG_KEEP/" 2>/dev/null
      fi
    fi
  done
  if [ "$bad" -eq 0 ]; then
    pass "memcheck: no error and no leak in $(compgen -G "$RENC_VG_LOGDIR/vg.*.log" | wc -l) processes"
  else
    fail "memcheck: $bad process(es) with errors or leaks (the first above)"
  fi
}

# slot_refs DIR: "REF COUNT" for each key ref the slots of the blobs under
# DIR name, sorted by ref; headers read by the independent reader
# (renc_check.py), so no key is needed and a locked environment counts too.
slot_refs() {
  find "$1" -type f ! -name '.*' | python3 -B -c '
import sys, collections
sys.path.insert(0, sys.argv[1])
import renc_check
count = collections.Counter()
for path in sys.stdin.read().split("\n"):
    if path:
        with open(path, "rb") as f:
            for alg, ref, wrapped in renc_check.parse_header(f.read(65536))["slots"]:
                count[ref] += 1
for ref in sorted(count):
    print(ref, count[ref])' "$RENC_TESTS_DIR/e2e"
}

# finish: the summary line, alone, and the exit status.
finish() {
  [ -n "${RENC_VG_LOGDIR:-}" ] && valgrind_reports
  echo "$PASSED passed, $FAILED failed"
  [ "$FAILED" -eq 0 ]
  exit $?
}

# ---- npm packages (test_akv_sdk.sh, azlib.sh) ---------------------------------

# npm_ci_cached SRC NAME: SRC's package.json and package-lock.json installed
# with `npm ci` into the cache folder RENC_SDK_CACHE (default
# ~/.cache/reencrypt-tests), as NAME-HASH (HASH: of those two files), once:
# later tests and runs reuse it.  Sets NPM_MODULES to its node_modules.
# Returns 77 when the npm registry cannot be reached, 1 when npm failed
# otherwise, and prints why.  One installer at a time (flock); a finished
# install is renamed into place whole, so a killed `npm ci` leaves no half.
npm_ci_cached() {
  local src=$1 name=$2
  local base=${RENC_SDK_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/reencrypt-tests}
  local lock_hash dir
  lock_hash=$(cat "$src/package.json" "$src/package-lock.json" | sha256sum | cut -c1-16)
  dir=$base/$name-$lock_hash
  mkdir -p "$base" || return 1
  (
    flock -w 600 9 || { echo "another install holds $base/.lock"; exit 1; }
    [ -e "$dir/.installed" ] && exit 0
    tmp=$(mktemp -d "$base/.install.XXXXXX") || exit 1
    cp "$src/package.json" "$src/package-lock.json" "$tmp/" || exit 1
    if ! (cd "$tmp" && npm ci --no-audit --no-fund --ignore-scripts --prefer-offline \
            --fetch-retries=1 --fetch-timeout=60000) >"$tmp/npm.log" 2>&1; then
      if ! npm ping --fetch-retries=0 --fetch-timeout=20000 >/dev/null 2>&1; then
        echo "the npm registry cannot be reached ($(npm config get registry)):" \
          "$(grep -m 3 -E 'npm error (code|errno|syscall|request|network)' "$tmp/npm.log" | tr '\n' ' ')"
        rm -rf "$tmp"
        exit 77
      fi
      echo "npm ci failed with the registry reachable:" && tail -n 20 "$tmp/npm.log"
      rm -rf "$tmp"
      exit 1
    fi
    touch "$tmp/.installed" && rm -rf "$dir" && mv "$tmp" "$dir"
  ) 9>"$base/.lock"
  local rc=$?
  [ $rc -eq 0 ] && NPM_MODULES=$dir/node_modules
  return $rc
}

# ---- bulk helpers (test_run.sh, test_run_big.sh) ----------------------------

# tree_hashes DIR: "SHA256  ./REL" for every regular file under DIR, sorted by
# path: two calls give identical output exactly when no file's bytes (and no
# file's name) changed.
tree_hashes() {
  (cd "$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum)
}

# temporaries DIR...: every *.renc-tmp.* file under each DIR, at any depth.
temporaries() {
  find "$@" -name '*.renc-tmp.*' 2>/dev/null
}

# expect_no_temporaries DESC DIR...
expect_no_temporaries() {
  local desc=$1 left
  shift
  left=$(temporaries "$@")
  if [ -z "$left" ]; then
    pass "$desc: no temporaries"
  else
    fail "$desc: temporaries left: $(head -n 3 <<<"$left" | tr '\n' ' ')"
  fi
}

# have_pycheck: python3 with the cryptography module, for renc_check.py (an
# independent RENC reader that checks a whole tree in one process).
have_pycheck() {
  [ -z "${RENC_E2E_NO_PY:-}" ] && command -v python3 >/dev/null 2>&1 &&
    python3 -c 'import cryptography.hazmat.primitives.ciphers.aead' 2>/dev/null
}

# renc_check ARGS...: tests/e2e/renc_check.py with the test's keyring.
renc_check() {
  python3 "$RENC_TESTS_DIR/e2e/renc_check.py" --keyring "$STATE/keyring" "$@"
}

# json_get FILE JQ: one value of a JSON file (jq -r syntax).
json_get() {
  jq -r "$2" "$1"
}

# flip_byte FILE OFFSET: inverts the low bit of the byte at OFFSET, in place.
flip_byte() {
  local f=$1 off=$2 b
  b=$(od -An -tu1 -j "$off" -N1 -- "$f" | tr -d ' ')
  [ -n "$b" ] || { echo "flip_byte: $f has no byte $off" >&2; return 2; }
  printf "\\x$(printf %02x $((b ^ 1)))" |
    dd of="$f" bs=1 seek="$off" conv=notrunc status=none
}

# blob_facts ROOT LIST [CHECK_ARGS...]: for each path of LIST (relative to
# ROOT, one a line) one tab-separated line
#   REL STATUS SHA256 SLOTS SALT NONCE_PREFIX HEADER_LEN DEK_ID
# STATUS ok, error or notrenc; SHA256 of the plaintext; SLOTS the slot refs
# joined with ','.  Uses renc_check.py when it can (CHECK_ARGS: --only REF,
# --all-slots), else the binary's decrypt and inspect for every blob: slower,
# DEK_ID is then '-' and CHECK_ARGS are ignored.
blob_facts() {
  local root=$1 list=$2
  shift 2
  if have_pycheck; then
    awk -v r="$root" '{ print r "/" $0 }' "$list" >"$WORK/facts.paths"
    renc_check --root "$root" --list "$WORK/facts.paths" "$@" |
      jq -r '[.rel, .status, (.sha256 // "-"), ((.slots // []) | join(",")),
              (.salt // "-"), (.nonce_prefix // "-"), (.header_len // "-" | tostring),
              (.dek_id // "-")] | @tsv'
    return 0
  fi
  local rel f st sha j
  while IFS= read -r rel; do
    f=$root/$rel
    if [ "$(head -c 4 -- "$f" 2>/dev/null)" != RENC ]; then
      printf '%s\tnotrenc\t-\t-\t-\t-\t-\t-\n' "$rel"
      continue
    fi
    rm -f "$WORK/facts.plain"
    st=error sha=-
    if "$RENC_BIN" decrypt --state "$STATE" "$f" "$WORK/facts.plain" >/dev/null 2>&1; then
      st=ok
      sha=$(sha256sum <"$WORK/facts.plain" | cut -d' ' -f1)
    fi
    j=$("$RENC_BIN" inspect --state "$STATE" "$f" 2>/dev/null) || j='{}'
    printf '%s\t%s\t%s\t%s\n' "$rel" "$st" "$sha" "$(jq -r '[((.slots // []) | map(.ref) | join(",")),
      (.salt // "-"), (.nonce_prefix // "-"), (.header_len // "-" | tostring), "-"] | @tsv' <<<"$j")"
  done <"$list"
  rm -f "$WORK/facts.plain"
}

# sanitizer_logs: sends AddressSanitizer, UndefinedBehaviorSanitizer and
# ThreadSanitizer reports of a sanitized binary to files under $WORK/san
# (whatever else their *_OPTIONS say), so that expect_no_sanitizer_reports can
# find every one, also from calls whose stderr a test does not look at.
sanitizer_logs() {
  mkdir -p "$WORK/san"
  export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$WORK/san/asan"
  export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=$WORK/san/ubsan"
  export TSAN_OPTIONS="${TSAN_OPTIONS:+$TSAN_OPTIONS:}log_path=$WORK/san/tsan"
}

# expect_no_sanitizer_reports: no report was written since sanitizer_logs;
# the first one is shown in full.
expect_no_sanitizer_reports() {
  local logs
  logs=$(find "$WORK/san" -type f 2>/dev/null | sort)
  if [ -z "$logs" ]; then
    pass "no sanitizer reports"
  else
    fail "sanitizer reports: $(wc -l <<<"$logs") files; the first:"
    sed 's/^/    /' "$(head -n 1 <<<"$logs")" >&2
    # Keep them for the caller when it asked (the scratch folder is removed).
    if [ -n "${RENC_E2E_SAN_KEEP:-}" ]; then
      mkdir -p "$RENC_E2E_SAN_KEEP" && cp $logs "$RENC_E2E_SAN_KEEP/"
    fi
  fi
}
