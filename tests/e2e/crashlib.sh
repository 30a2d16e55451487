# tests/e2e/crashlib.sh — helpers shared by test_crash.sh and test_resume.sh;
# sourced after lib.sh, not run.
#
# Corpora: make_small NAME N and make_big NAME build $WORK/pristine/NAME, a
# tree that is never changed afterwards, and beside it
#   $WORK/NAME.exp     REL<TAB>SHA256-of-plaintext for every blob
#   $WORK/NAME.others  REL of every non-RENC file
#   $WORK/NAME.sha     tree_hashes of the pristine tree
# restore NAME DIR puts a fresh copy of it at DIR.
#
# Checks (each counted with pass/fail):
#   expect_tree DESC ROOT NAME REF [--mirror]   every blob of NAME under ROOT
#                       opens to its plaintext and has exactly one slot, REF;
#                       --mirror: ROOT holds nothing else
#   expect_pristine DESC DIR NAME     DIR is byte for byte the pristine corpus
#   expect_status DESC STATE NAME [--journal FILE]   `status --json` says STATE
#                       with every file of NAME finished, nothing left
#   san_text DESC FILE  a run's standard error holds no sanitizer report
#   expect_no_temporaries (lib.sh)
# Runs of one configuration (CORPUS, ARGS, CFG set by the test):
#   fresh               the pristine corpus in $SRC; no mirror, no journal
#   probe OP N          a fresh run killed at the N-th OP (RENC_FAULT=OP:N:KILL)
#   ops_total OP        TOTAL := the OP operations of a whole run
#
# Blobs are checked with renc_check.py (an independent reader: one process for
# the whole tree) and the tool's own `verify` (every record of every blob,
# one process), plus the tool's `decrypt` on a sample; without python3
# cryptography, with one `decrypt` and one `inspect` per blob (slow).

KiB=1024
MiB=$((1024 * 1024))
# The engine options of every run: with 20 MiB and 2 threads a blob above
# 2.5 MiB takes the big-blob path (chunks spread over the workers), smaller
# ones go through batches of up to 32.
RUNOPTS=(--threads 2 --memory 20M --progress=none)
# RENC_CRASH_BARRIER=file|batch: set_config's runs with that --barrier (a
# run option only: verify takes RUNOPTS too).
BARRIEROPTS=()
[ -n "${RENC_CRASH_BARRIER:-}" ] && BARRIEROPTS=(--barrier "$RENC_CRASH_BARRIER")
# The engine's default --barrier: batch on Linux 5.8 and later (where
# syncfs reports write-back errors), file before (run/engine.c).
default_barrier() {
  local major minor
  IFS=. read -r major minor _ <<<"$(uname -r)"
  minor=${minor%%[!0-9]*}
  if [ "$major" -gt 5 ] || { [ "$major" -eq 5 ] && [ "${minor:-0}" -ge 8 ]; }; then
    echo batch
  else
    echo file
  fi
}
SAMPLE_SEQ=0
# python3 cryptography, looked up once (lib.sh's have_pycheck starts python).
PYCHECK=0
have_pycheck && PYCHECK=1

section() {
  echo "== $* ($((SECONDS - T0)) s)"
}

sha_of() {
  sha256sum <"$1" | cut -d' ' -f1
}

# ms_now: wall clock in milliseconds.
ms_now() {
  local t=${EPOCHREALTIME/./}
  echo $((t / 1000))
}

# make_small NAME N [KEY]: N blobs of 1-20 KiB under KEY (default local:a)
# in two folders, the first 24 sealed by the tool (every 4th compressed,
# some with 4K segments), the others by renc_check.py (a second writer; the
# tool when python3 cryptography is missing); and two non-RENC files.
make_small() {
  local name=$1 n=$2 key=${3:-local:a} i sz rel root=$WORK/pristine/$1
  local pl=$WORK/plain/$1
  mkdir -p "$root/d0" "$root/d1/sub" "$pl"
  : >"$WORK/$name.exp"
  : >"$WORK/$name.seal"
  for ((i = 0; i < n; i++)); do
    sz=$((1 + (i * 7919 + 1000) % (20 * KiB)))
    rel=d$((i % 2))/b$(printf %04d $i).renc
    [ $((i % 5)) -eq 3 ] && rel=d1/sub/b$(printf %04d $i).renc
    if [ $i -lt 24 ] || [ $PYCHECK = 0 ]; then
      local args=(--key "$key")
      if [ $((i % 4)) -eq 1 ]; then
        mkdata "$pl/$i" "$sz" text
        args+=(--compress)
      else
        mkdata "$pl/$i" "$sz" random
      fi
      [ $((i % 6)) -eq 5 ] && args+=(--segment-size 4K)
      if renc encrypt --env crash "${args[@]}" "$pl/$i" "$root/$rel" >/dev/null 2>"$WORK/err"; then
        printf '%s\t%s\n' "$rel" "$(sha_of "$pl/$i")" >>"$WORK/$name.exp"
      else
        fail "seal $name/$rel"
        cat "$WORK/err" >&2
      fi
      rm -f "$pl/$i"
    else
      printf '%s\t%s/1\t%s\n' "$root/$rel" "$key" "$sz" >>"$WORK/$name.seal"
    fi
  done
  if [ -s "$WORK/$name.seal" ]; then
    if renc_check --seal "$WORK/$name.seal" >"$WORK/$name.sealed"; then
      awk -F'\t' -v r="$root/" '{ sub("^" r, "", $1); print $1 "\t" $2 }' \
        "$WORK/$name.sealed" >>"$WORK/$name.exp"
    else
      fail "renc_check.py --seal for $name"
    fi
  fi
  echo "not a blob" >"$root/d0/notes.txt"
  : >"$root/d1/empty.dat"
  printf '%s\n' d0/notes.txt d1/empty.dat >"$WORK/$name.others"
  _corpus_done "$name"
}

# make_big NAME [KEY]: three blobs of 5-6 MiB with 64 KiB segments (one in
# a subfolder, one compressed: base64 text compresses to about 3/4), and
# one non-RENC file.
make_big() {
  local name=$1 key=${2:-local:a} root=$WORK/pristine/$1 pl=$WORK/plain/$1
  mkdir -p "$root/sub" "$pl"
  : >"$WORK/$name.exp"
  mkdata "$pl/b0" $((5 * MiB + 17))
  mkdata "$pl/b1" $((5 * MiB + MiB / 2))
  head -c $((4800 * KiB)) /dev/urandom | base64 -w 76 | head -c $((6 * MiB)) >"$pl/b2"
  local spec
  for spec in "b0 b0.renc" "b1 sub/b1.renc" "b2 b2z.renc --compress"; do
    set -- $spec
    if renc encrypt --env crash --key "$key" --segment-size 64K "${@:3}" "$pl/$1" "$root/$2" \
      >/dev/null 2>"$WORK/err"; then
      printf '%s\t%s\n' "$2" "$(sha_of "$pl/$1")" >>"$WORK/$name.exp"
    else
      fail "seal $name/$2"
      cat "$WORK/err" >&2
    fi
    rm -f "$pl/$1"
  done
  echo "readme" >"$root/README"
  echo README >"$WORK/$name.others"
  _corpus_done "$name"
}

_corpus_done() {
  local name=$1
  LC_ALL=C sort -o "$WORK/$name.exp" "$WORK/$name.exp"
  cut -f1 "$WORK/$name.exp" >"$WORK/$name.blobs"
  tree_hashes "$WORK/pristine/$name" >"$WORK/$name.sha"
  local nb no
  nb=$(wc -l <"$WORK/$name.exp")
  no=$(wc -l <"$WORK/$name.others")
  check "corpus $name: $nb blobs and $no other files" \
    test "$((nb + no))" -eq "$(wc -l <"$WORK/$name.sha")"
}

nblobs() { wc -l <"$WORK/$1.exp"; }
nothers() { wc -l <"$WORK/$1.others"; }

# restore NAME DIR: DIR becomes a fresh copy of the pristine corpus.
restore() {
  rm -rf "$2"
  cp -a "$WORK/pristine/$1" "$2"
}

# _facts ROOT NAME: "REL<TAB>STATUS<TAB>SHA<TAB>SLOTS" for every blob of NAME
# under ROOT (SLOTS: refs joined with ',').
_facts() {
  local root=$1 name=$2
  if [ $PYCHECK = 1 ]; then
    awk -v r="$root" '{ print r "/" $0 }' "$WORK/$name.blobs" >"$WORK/facts.paths"
    renc_check --root "$root" --list "$WORK/facts.paths" |
      jq -r '[.rel, .status, (.sha256 // "-"), ((.slots // []) | join(","))] | @tsv'
    return 0
  fi
  local rel st sha
  while IFS= read -r rel; do
    rm -f "$WORK/facts.plain"
    st=error sha=-
    if renc decrypt "$root/$rel" "$WORK/facts.plain" >/dev/null 2>&1; then
      st=ok
      sha=$(sha_of "$WORK/facts.plain")
    fi
    printf '%s\t%s\t%s\t%s\n' "$rel" "$st" "$sha" \
      "$(renc inspect "$root/$rel" 2>/dev/null | jq -r '[.slots[].ref] | join(",")' 2>/dev/null)"
  done <"$WORK/$name.blobs"
  rm -f "$WORK/facts.plain"
}

# _tree_problems ROOT NAME SLOTS: what is wrong with the blobs (SLOTS an ERE
# the joined slot refs must match wholly).
_tree_problems() {
  local root=$1 name=$2 slots=$3
  _facts "$root" "$name" | awk -F'\t' -v want="$slots" '
    FILENAME == ARGV[1] { sha[$1] = $2; next }
    {
      seen[$1] = 1
      if ($2 != "ok") print $1 ": " $2
      else if ($3 != sha[$1]) print $1 ": plaintext differs"
      else if ($4 !~ ("^(" want ")$")) print $1 ": slots " $4
    }
    END { for (r in sha) if (!(r in seen)) print r ": not checked" }' "$WORK/$name.exp" -
}

# expect_tree DESC ROOT NAME REF [--mirror]: every blob of NAME under ROOT
# opens to its plaintext under the single slot REF; the tool's verify opens
# every record of the tree; the tool's decrypt opens one sampled blob to its
# plaintext.  --mirror: ROOT holds exactly the blobs (an --out tree).
expect_tree() {
  local desc=$1 root=$2 name=$3 ref=$4 mirror=${5:-} problems n vpid
  n=$(nblobs "$name")
  # The tool's verify runs beside the independent reader (two cores).
  "$RENC_BIN" verify --state "$STATE" "${RUNOPTS[@]}" "$root" >"$WORK/verify.out" 2>&1 &
  vpid=$!
  problems=$(_tree_problems "$root" "$name" "${ref//./\\.}")
  if [ -z "$problems" ]; then
    pass "$desc: $n blobs open to their plaintext, slots $ref only"
  else
    fail "$desc: $(wc -l <<<"$problems") of $n blobs wrong"
    head -n 6 <<<"$problems" | sed 's/^/    /' >&2
  fi
  wait $vpid
  local vrc=$? want="verify: $n blobs verified, "
  san_text "$desc: verify" "$WORK/verify.out"
  [ -n "$mirror" ] && want+="0 not RENC" || want+="$(nothers "$name") not RENC"
  if [ $vrc -eq 0 ] && grep -qF "$want, 0 failed" "$WORK/verify.out"; then
    pass "$desc: verify opens every record"
  else
    fail "$desc: verify exit $vrc, wanted 0 and '$want, 0 failed'"
    head -n 5 "$WORK/verify.out" | sed 's/^/    /' >&2
  fi
  # One blob, a different one each time, with the tool's decrypt.
  local rel sha
  SAMPLE_SEQ=$((SAMPLE_SEQ + 1))
  IFS=$'\t' read -r rel sha < <(sed -n "$((SAMPLE_SEQ % n + 1))p" "$WORK/$name.exp")
  rm -f "$WORK/sample.plain"
  if renc decrypt "$root/$rel" "$WORK/sample.plain" >/dev/null 2>"$WORK/sample.err" &&
    [ "$(sha_of "$WORK/sample.plain")" = "$sha" ]; then
    pass "$desc: decrypt $rel"
  else
    fail "$desc: decrypt $rel: $(head -c 300 "$WORK/sample.err")"
  fi
  rm -f "$WORK/sample.plain"
  if [ -n "$mirror" ]; then
    if (cd "$root" && find . -type f | sed 's|^\./||' | LC_ALL=C sort) | cmp -s - "$WORK/$name.blobs"; then
      pass "$desc: the mirror holds exactly the $n blobs"
    else
      fail "$desc: the mirror's files differ from the blob list"
      (cd "$root" && find . -type f | sed 's|^\./||' | LC_ALL=C sort) | diff "$WORK/$name.blobs" - |
        head -n 6 | sed 's/^/    /' >&2
    fi
  fi
}

# blob_state PATH: "ok REFS" (REFS its slot refs joined with ',') when the
# blob opens (header and every record), else "error".
blob_state() {
  if [ $PYCHECK = 1 ]; then
    renc_check "$1" 2>/dev/null | jq -r 'if .status == "ok" then "ok \(.slots | join(","))" else "error" end'
  elif renc decrypt "$1" "$WORK/state.plain" >/dev/null 2>&1; then
    echo "ok $(renc inspect "$1" | jq -r '[.slots[].ref] | join(",")')"
  else
    echo error
  fi
  rm -f "$WORK/state.plain"
}

# expect_pristine DESC DIR NAME: DIR is byte for byte the pristine corpus.
expect_pristine() {
  if tree_hashes "$2" | cmp -s - "$WORK/$3.sha"; then
    pass "$1: unchanged"
  else
    fail "$1: files changed"
    tree_hashes "$2" | diff "$WORK/$3.sha" - | head -n 6 | sed 's/^/    /' >&2
  fi
}

# status_json [ARGS...]: `status --json` into $WORK/status.json; its exit
# status.
status_json() {
  renc status --json "$@" >"$WORK/status.json" 2>"$WORK/status.err"
}

# expect_status DESC STATE NAME [--journal FILE]: `status --json` says the
# run is STATE with no blob pending or failed, no header intent left, and
# done + skipped = the blobs of NAME, not_renc = its other files.
expect_status() {
  local desc=$1 want_state=$2 name=$3 got want rc
  shift 3
  status_json "$@"
  rc=$?
  if [ $rc -ne 0 ]; then
    fail "$desc: status --json $*: exit $rc: $(head -c 300 "$WORK/status.err")"
    return 1
  fi
  got=$(jq -r '"\(.state) pending=\(.blobs.pending) failed=\(.blobs.failed) intents=\(.header_intents) finished=\(.blobs.done + .blobs.skipped) not_renc=\(.blobs.not_renc) total=\(.blobs.total) left=\(.bytes.left)"' \
    "$WORK/status.json" 2>&1)
  want="$want_state pending=0 failed=0 intents=0 finished=$(nblobs "$name") not_renc=$(nothers "$name") total=$(($(nblobs "$name") + $(nothers "$name"))) left=0"
  if [ "$got" = "$want" ]; then
    pass "$desc: status $want"
  else
    fail "$desc: status '$got', wanted '$want'"
  fi
}

# journal_of: the one journal under $STATE/journals (the tests keep one).
journal_of() {
  local j
  j=$(compgen -G "$STATE/journals/*.db")
  [ "$(wc -l <<<"$j")" -eq 1 ] && echo "$j"
}

# ---- runs of one configuration --------------------------------------------------
# A test sets CORPUS (a corpus name), ARGS (everything after `run`), and
# CFG (a name for messages).

SRC=$WORK/src      # the tree the runs work on
OUT=$WORK/mirror   # --out, where a configuration has one
CFG=""
CORPUS=""
ARGS=()
DUR_MS=300         # a whole run's time, measured by probe

# set_config CORPUS rekey|copy|header in|out [RUN OPTIONS...]: the run
# rekeys, rewraps by copy or rewraps headers in place, into the sources or a
# mirror; the options default to RUNOPTS.
set_config() {
  CFG="$1 $2 $3"
  CORPUS=$1
  ARGS=(--to local:b)
  case "$2" in
    rekey) ARGS+=(--mode rekey) ;;
    copy) ARGS+=(--mode rewrap --copy) ;;
    header) ARGS+=(--mode rewrap) ;;
  esac
  ROOT=$SRC
  if [ "$3" = out ]; then
    ARGS+=(--out "$OUT")
    ROOT=$OUT
  fi
  shift 3
  if [ $# -gt 0 ]; then ARGS+=("$@"); else ARGS+=("${RUNOPTS[@]}" "${BARRIEROPTS[@]}"); fi
  ARGS+=("$SRC")
}

# fresh: the pristine corpus in $SRC, no mirror, no journal.
fresh() {
  restore "$CORPUS" "$SRC"
  rm -rf "$OUT" "$STATE/journals"
}

# probe OP N: a fresh run with RENC_FAULT=OP:N:KILL; succeeds when it was
# killed.  A run that was not killed must have succeeded (then DUR_MS is its
# time, and on_whole_run is called when the test defines it).
probe() {
  local op=$1 n=$2 t rc
  fresh
  t=$(ms_now)
  # (The braces keep bash's "Killed" notice out of the log.)
  { RENC_FAULT=$op:$n:KILL "$RENC_BIN" run --state "$STATE" "${ARGS[@]}" \
    >"$WORK/probe.out" 2>"$WORK/probe.err"; } 2>/dev/null
  rc=$?
  san_text "$CFG: RENC_FAULT=$op:$n:KILL" "$WORK/probe.err"
  [ $rc -eq 137 ] && return 0
  if [ $rc -eq 0 ]; then
    DUR_MS=$(($(ms_now) - t))
    if declare -F on_whole_run >/dev/null; then on_whole_run; fi
  else
    fail "$CFG: run with RENC_FAULT=$op:$n:KILL exited $rc (wanted 137, or 0)"
    sed 's/^/    /' "$WORK/probe.err" | head -n 5 >&2
  fi
  return 1
}

declare -A LAST_TOTAL  # CORPUS:OP -> the previous configuration's count

# ops_total OP: sets TOTAL to how many OP operations a whole run of the
# configuration does: the largest N at which RENC_FAULT=OP:N:KILL still
# kills.  An exponential search from the previous configuration's count
# (often the same, or close) or the number of blobs (each blob needs at least
# one write and one barrier), then a bisection.
ops_total() {
  local op=$1 lo=0 hi=0 m step=1 hint
  hint=$(nblobs "$CORPUS")
  [ "$op" = journal ] && hint=1
  hint=${LAST_TOTAL[$CORPUS:$op]:-$hint}
  if probe "$op" "$hint"; then
    lo=$hint
    while :; do
      m=$((lo + step))
      if probe "$op" "$m"; then lo=$m; step=$((step * 2)); else hi=$m; break; fi
    done
  else
    hi=$hint
    while [ "$hi" -gt 1 ]; do
      m=$((hi - step))
      [ "$m" -lt 1 ] && m=1
      if probe "$op" "$m"; then lo=$m; break; fi
      hi=$m
      step=$((step * 2))
    done
  fi
  while [ $((hi - lo)) -gt 1 ]; do
    m=$(((lo + hi) / 2))
    if probe "$op" "$m"; then lo=$m; else hi=$m; fi
  done
  LAST_TOTAL[$CORPUS:$op]=$lo
  TOTAL=$lo
}

# rand_below N: sets R to a random 0..N-1 (no subshell: $RANDOM follows the
# seed).
rand_below() {
  R=$((((RANDOM << 15) | RANDOM) % $1))
}

# san_text DESC FILE: fails when FILE (a run's standard error) holds a
# sanitizer report.  UBSan's reports in the ASan build go to standard error
# whatever log_path says, so expect_no_sanitizer_reports does not see them.
san_text() {
  if grep -qE "runtime error:|ERROR: (Address|Leak)Sanitizer|WARNING: ThreadSanitizer" "$2" 2>/dev/null; then
    fail "$1: a sanitizer report:"
    grep -m 1 -A 4 -E "runtime error:|Sanitizer" "$2" | sed 's/^/    /' >&2
  fi
}
