#!/usr/bin/env bash
# tests/e2e/test_badinput.sh — the bad-input table: every way a user or a
# damaged file can hand the tool something wrong, run against the real binary.
#
# Each case is one line of the table:
#
#   T NAME EXIT WORD... :: COMMAND...
#
# and is checked four ways:
#   - the exit code (docs/CLI.md: 0 ok, 1 the work failed, 2 bad usage or bad
#     input);
#   - every WORD is in the message on standard error (fixed strings, any
#     case; a WORD written out:TEXT is looked for on standard output);
#   - nothing it reads changed: the input folder $IN, the environments' data
#     and the keyring are hashed (files and folder names; lock files, which
#     hold a pid, aside) before and after;
#   - no partial output: $O, where every case's OUT goes, is empty after it,
#     and no *.renc-tmp.* temporary is left anywhere under the scratch folder.
#
# Malformed blobs are made by tests/e2e/badinput_blobs.py from a real blob
# sealed by `reencrypt encrypt`: one defect each, the header re-sealed with the
# blob's own K_hdr so that the defect is the only thing wrong (FORMAT.md,
# "A reader rejects").  D NAME EXIT CAUSE [WORD...] is the decrypt row of
# variant NAME; CAUSE is also what verify and run must say about it when they
# meet it in a folder.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

T0=$SECONDS
IN=$WORK/in          # everything the cases read
O=$WORK/o            # every case's OUT: must stay empty
V=$IN/v              # the malformed blobs
DATA=$STATE/data
KR=$STATE/keyring
mkdir -p "$IN" "$O"

# R CMD ARGS...: the binary with the test's state, never allowed to hang.
R() {
  timeout 30 "$RENC_BIN" "$1" --state "$STATE" "${@:2}"
}

# in_dir DIR CMD...: CMD run from DIR.
in_dir() {
  (cd "$1" && shift && "$@")
}

# snapshot: what the cases must not change: every folder's name and every
# file's sha256 (lock files, which hold a pid, aside).  It runs around every
# case, so it keeps to few processes; and a case's "before" is the previous
# case's "after" when no file's inode, size or mtime moved in between
# (stamp), which the setup between cases does not allow to go unseen.
SNAP_DIRS=("$IN" "$KR")
snapshot() {
  {
    find "${SNAP_DIRS[@]}" -type d
    find "${SNAP_DIRS[@]}" -type f ! -name '*.lock' -exec sha256sum {} +
  } | LC_ALL=C sort
}
stamp() {
  find "${SNAP_DIRS[@]}" -printf '%p %y %i %s %T@\n'
}
LAST_STAMP=
LAST_SNAP=

# _words FILE WHAT WORD...: _has_words, silent when there is no WORD.
_words() {
  local file=$1 what=$2
  shift 2
  [ $# -eq 0 ] || _has_words "$what" "$file" "$@"
}

NCASES=0
# T NAME EXIT WORD... :: COMMAND...   (see the top of the file)
T() {
  local name=$1 want=$2 before after left
  shift 2
  local err_words=() out_words=()
  while [ $# -gt 0 ] && [ "$1" != "::" ]; do
    case $1 in
      out:*) out_words+=("${1#out:}") ;;
      *) err_words+=("$1") ;;
    esac
    shift
  done
  shift
  NCASES=$((NCASES + 1))
  if [ "$(stamp)" == "$LAST_STAMP" ]; then before=$LAST_SNAP; else before=$(snapshot); fi
  run "$@"
  if [ "$RC" -eq "$want" ]; then
    pass "[$name] exit $want"
  else
    fail "[$name] exit $RC, wanted $want: $(printf '%q ' "$@")"
    _show_last
  fi
  _words "$WORK/err" "[$name] message" "${err_words[@]}"
  _words "$WORK/out" "[$name] output" "${out_words[@]}"
  after=$(snapshot)
  LAST_SNAP=$after LAST_STAMP=$(stamp)
  if [ "$after" == "$before" ]; then
    pass "[$name] inputs unchanged"
  else
    fail "[$name] inputs changed:"
    diff <(echo "$before") <(echo "$after") | head -n 6 | sed 's/^/    /' >&2
  fi
  left=$(find "$WORK" \( -path "$O/*" -type f -o -name '*.renc-tmp.*' \) -print)
  if [ -z "$left" ]; then
    pass "[$name] no partial output"
  else
    fail "[$name] partial output left: $(head -n 3 <<<"$left" | tr '\n' ' ')"
  fi
  for left in "$O"/* "$O"/.[!.]*; do
    [ -e "$left" ] || [ -L "$left" ] || continue
    rm -rf "${O:?}"/* "$O"/.[!.]*
    break
  done
  return 0
}

# D NAME EXIT CAUSE [WORD...]: decrypting variant NAME exits EXIT, naming
# the file and then (after the file, whose name may hold the same word) CAUSE,
# and every WORD.
declare -A CAUSE
D() {
  local name=$1 want=$2 cause=$3 rest
  shift 3
  CAUSE[$name]=$cause
  T "decrypt-$name" "$want" "$V/$name: " "$@" :: R decrypt "$V/$name" "$O/$name.out"
  IFS= read -r -d '' rest <"$WORK/err"
  rest=${rest#*"$V/$name: "}
  if [[ ${rest,,} == *"${cause,,}"* ]]; then
    pass "[decrypt-$name] cause: $cause"
  else
    fail "[decrypt-$name] the cause is not '$cause': $rest"
  fi
}

# expect_causes DIR: the last command named each variant found in DIR (but
# magic, which is "not RENC" in a folder and only counted) on a line of its
# own, with its CAUSE.
expect_causes() {
  local dir=$1 name line found bad=()
  local lines=()
  mapfile -t lines <"$WORK/err"
  for name in "${!CAUSE[@]}"; do
    if [ ! -e "$dir/$name" ] || [ "$name" = magic ]; then continue; fi
    found=
    for line in "${lines[@]}"; do
      if [[ $line == *"$dir/$name: "* ]]; then
        found=$line
        break
      fi
    done
    if [ -z "$found" ]; then
      bad+=("$name: not named")
    else
      found=${found#*"$dir/$name: "} # the cause, after the path
      [[ ${found,,} == *"${CAUSE[$name],,}"* ]] || bad+=("$name: '$found' lacks '${CAUSE[$name]}'")
    fi
  done
  if [ ${#bad[@]} -eq 0 ]; then
    pass "every blob of $dir named with its cause"
  else
    fail "blobs of $dir not named with their cause:"
    printf '    %s\n' "${bad[@]}" >&2
  fi
}

# works NAME IN: a file with an odd name seals and opens back (round trip
# outside $O), with the name printed as it is.
works() {
  local name=$1 in=$2
  shift 2
  NCASES=$((NCASES + 1))
  mkdir -p "$WORK/rt"
  rm -f "$WORK/rt/"*
  run R encrypt --env t --key local:k "$@" "$in" "$in.renc"
  if [ "$RC" -eq 0 ] && R decrypt "$in.renc" "$WORK/rt/plain" >/dev/null 2>&1 &&
    same "$in" "$WORK/rt/plain"; then
    pass "[$name] round trip"
  else
    fail "[$name] does not round-trip (encrypt exit $RC)"
    _show_last
  fi
  _words "$WORK/out" "[$name] output" "$in"
  rm -f "$in.renc"
}

# ---- keys, a real blob, and the malformed ones ----------------------------------
R keys create k >/dev/null && R keys create k2 >/dev/null && R keys create r --type rsa2048 >/dev/null &&
  R keys create kd >/dev/null && R keys create kr >/dev/null || fail "keys create"
mkdata "$IN/plain" 10000 random
# 4 KiB segments: records of 4116, 4116 and 1828 bytes.
R encrypt --env t --key local:k --segment-size 4K "$IN/plain" "$IN/good.renc" >/dev/null ||
  fail "encrypt the good blob"
R encrypt --env t --key local:kd "$IN/plain" "$IN/disabled.renc" >/dev/null &&
  R encrypt --env t --key local:kr "$IN/plain" "$IN/revoked.renc" >/dev/null &&
  R keys disable kd/1 --force >/dev/null && R keys revoke kr >/dev/null || fail "disabled and revoked keys"

HAVE_GEN=1
if ! have_pycheck; then
  HAVE_GEN=
  echo "NOTE: no python3 cryptography: the crafted header and record cases are skipped"
elif ! python3 "$RENC_TESTS_DIR/e2e/badinput_blobs.py" "$KR/k/1.key" "$IN/good.renc" "$V" >/dev/null; then
  fail "badinput_blobs.py"
  HAVE_GEN=
fi

# ==== header and record rejections (FORMAT.md), decrypt =======================
if [ -n "$HAVE_GEN" ]; then
  D magic 2 "not a RENC file"
  D version 2 "version"
  D shift-low 2 "seg_shift"
  D shift-high 2 "seg_shift"
  D hlen-short 2 "header_len"
  D pad-nonzero 2 "padding"
  D flags-bit1 2 "flag"
  D flags-bit7 2 "flag"
  D ctx-order 2 "context" "canonical"
  D ctx-dup 2 "context" "canonical"
  D ctx-noenv 2 "env"
  D ctx-notutf8 2 "context"
  D ctx-nul 2 "context"
  D ctx-overrun 2 "header_len"
  D slots-0 2 "slot count"
  D slots-9 2 "slot count"
  D alg-5 2 "algorithm"
  D alg-0 2 "algorithm"
  D htag 2 "header authentication failed" "local:k/1"
  D ref-unparsable 2 "does not parse"
  D ref-nokey 1 "key not found" "local:nokey/1"
  D alg-rsa-on-aes 1 "key type" "local:k/1"
  D ref-rsa-key 1 "key type" "local:r/1"
  D rec-tag 2 "record authentication failed" "record 1"
  D rec-ct 2 "record authentication failed" "record 1"
  D swap-rec 2 "record authentication failed" "record 0"
  D word-gt-seg 2 "malformed record" "record 0"
  D word-bit31 2 "malformed record" "record 0"
  D cut-in-rec 2 "truncated" "record 1"
  D cut-after-rec 2 "truncated"
  D cut-in-hdr 2 "truncated"
  D cut-hdr-only 2 "truncated"
  D trailing 2 "trailing"
  D dup-last 2 "trailing"
  T inspect-noenv 2 "$V/ctx-noenv" "env" :: R inspect "$V/ctx-noenv"
  T inspect-slots-9 2 "$V/slots-9" "slot count" :: R inspect "$V/slots-9"

  # ---- the same over folders: verify, run rekey, run rewrap, run --out --------
  VS=("$V"/*)
  NV=${#VS[@]}
  check "every variant badinput_blobs.py made has its row ($NV files, ${#CAUSE[@]} rows)" \
    test "$NV" -eq "${#CAUSE[@]}"
  cp -r "$V" "$IN/badall"
  # A rewrap copies records as they are (FORMAT.md section 4): a tampered
  # record is not its business, so the rewrap folder has header and layout
  # defects only.
  cp -r "$V" "$IN/badhdr"
  rm -f "$IN/badhdr/rec-tag" "$IN/badhdr/rec-ct" "$IN/badhdr/swap-rec"
  NH=$((NV - 3))
  T verify-folder 1 out:"0 blobs verified, 1 not RENC, $((NV - 1)) failed" :: \
    R verify --progress=none "$IN/badall"
  expect_causes "$IN/badall"
  T run-rekey-folder 1 out:"0 blobs re-encrypted" out:"$((NV - 1)) failed" :: \
    R run --to local:k2 --mode rekey --no-journal --progress=none "$IN/badall"
  expect_causes "$IN/badall"
  T run-rewrap-folder 1 out:"0 blobs re-encrypted" out:"$((NH - 1)) failed" :: \
    R run --to local:k2 --progress=none "$IN/badhdr"
  expect_causes "$IN/badhdr"
  T run-out-folder 1 out:"$((NV - 1)) failed" :: \
    R run --to local:k2 --mode rekey --out "$O/mirror" --progress=none "$IN/badall"
  expect_causes "$IN/badall"
fi

# ==== files that are not what is expected ========================================
printf 'hello, world\n' >"$IN/notrenc.txt"
: >"$IN/empty"
mkdir -p "$IN/adir"
T not-renc 2 "$IN/notrenc.txt" "not a RENC file" :: R decrypt "$IN/notrenc.txt" "$O/x"
T empty-file 2 "$IN/empty" "not a RENC file" :: R decrypt "$IN/empty" "$O/x"
T missing-file 2 "$IN/nosuch" "no such file" :: R decrypt "$IN/nosuch" "$O/x"
T decrypt-in-dir 2 "$IN/adir" "directory" :: R decrypt "$IN/adir" "$O/x"
T encrypt-in-dir 2 "$IN/adir" "directory" :: R encrypt --env t --key local:k "$IN/adir" "$O/x"
mkdir -p "$O/outdir"
T encrypt-out-dir 2 "$O/outdir" "directory" :: R encrypt --env t --key local:k "$IN/plain" "$O/outdir"
mkdir -p "$O/outdir"
T decrypt-out-dir 2 "$O/outdir" "directory" :: R decrypt "$IN/good.renc" "$O/outdir"

# A tree with a link loop, a link to itself, a dangling link and a FIFO: the
# walk does not follow links nor open special files, so it ends.
mkdir -p "$IN/loop/sub"
cp "$IN/good.renc" "$IN/loop/sub/a.renc"
ln -s .. "$IN/loop/sub/up"
ln -s self "$IN/loop/self"
ln -s nowhere "$IN/loop/dangling"
mkfifo "$IN/loop/fifo"
T loop-verify 0 out:"4 symbolic links or special files left alone" out:"1 blobs verified" :: \
  R verify --progress=none "$IN/loop"
T loop-run 0 out:"4 symbolic links or special files left alone" out:"1 blobs re-encrypted" :: \
  R run --to local:k2 --out "$WORK/loopmirror" --progress=none "$IN/loop"
check "loop-run: the mirror holds the one blob" test "$(find "$WORK/loopmirror" -type f | wc -l)" -eq 1
# The loop named as a SOURCE: reported and failed (verify: exit 1 when any
# failed), naming the cause.
T loop-source-verify 1 "$IN/loop/self" "symbolic link" :: R verify --progress=none "$IN/loop/self"
T loop-source-run 1 "$IN/loop/self" "symbolic link" :: \
  R run --to local:k2 --no-journal --progress=none "$IN/loop/self"

# An unreadable file: root reads it anyway, so the case says so and passes.
cp "$IN/good.renc" "$IN/unreadable.renc"
chmod 000 "$IN/unreadable.renc"
if head -c 1 "$IN/unreadable.renc" >/dev/null 2>&1; then
  NCASES=$((NCASES + 1))
  echo "NOTE: running as root: chmod 000 does not stop reads; the unreadable-file case is skipped"
  pass "[unreadable] skipped as root"
else
  T unreadable 1 "$IN/unreadable.renc" "permission denied" :: R decrypt "$IN/unreadable.renc" "$O/x"
fi
chmod 600 "$IN/unreadable.renc"

# Odd names: a space, a newline, bytes that are not UTF-8.
mkdir -p "$IN/odd"
SP="$IN/odd/with space.bin"
NL="$IN/odd/new"$'\n'"line.bin"
NU="$IN/odd/bad"$'\xff\xfe'".bin"
for f in "$SP" "$NL" "$NU"; do cp "$IN/plain" "$f"; done
works name-space "$SP"
works name-newline "$NL"
works name-not-utf8-with-name "$NU" --name bad.bin
# Without --name the context's name would be the file's name, which is not
# UTF-8: bad input, to be named as such.
T name-not-utf8-encrypt 2 "$NU" "UTF-8" :: R encrypt --env t --key local:k "$NU" "$O/x.renc"
printf 'not a blob\n' >"$IN/odd/new"$'\n'"line.txt"
# A name's newline is printed escaped (\n): every message is one line.
T name-newline-notrenc 2 "$IN/odd/new"'\n'"line.txt" "not a RENC file" :: \
  R decrypt "$IN/odd/new"$'\n'"line.txt" "$O/x"
mkdir -p "$IN/oddtree"
cp "$IN/good.renc" "$IN/oddtree/sp ace.renc"
[ -z "$HAVE_GEN" ] || cp "$V/htag" "$IN/oddtree/new"$'\n'"line.renc"
[ -z "$HAVE_GEN" ] || cp "$V/trailing" "$IN/oddtree/bad"$'\xff'".renc"
[ -n "$HAVE_GEN" ] && T names-in-tree-verify 1 "$IN/oddtree/new"'\n'"line.renc: header authentication failed" \
  "$IN/oddtree/bad"$'\xff'".renc: trailing" out:"1 blobs verified" :: R verify --progress=none "$IN/oddtree"

# ==== keys ========================================================================
T keyref-garbage 2 "bogus" "key reference does not parse" :: R encrypt --env t --key bogus "$IN/plain" "$O/x"
T keyref-space 2 "local:a b" "does not parse" :: R encrypt --env t --key "local:a b" "$IN/plain" "$O/x"
T keyref-run-to 2 "local:" "does not parse" :: R run --to local: --progress=none "$IN/loop"
# Key names the keyring's layout reserves, or that cannot be names.
T key-name-lock 2 "'.lock'" "reserved" :: R keys create .lock
T key-name-dot 2 "'.k'" "reserved" :: R keys create .k
T key-name-empty 2 "empty" :: R keys create ''
T key-name-slash 2 "a/b/c" "'/'" :: R keys create a/b/c
T key-name-long 2 "longer than 128" :: R keys create "$(printf 'n%.0s' {1..129})"
T key-name-rotate-lock 2 "'.lock'" "reserved" :: R keys rotate .lock
T key-not-found 1 "key not found" "local:nosuch" :: R encrypt --env t --key local:nosuch "$IN/plain" "$O/x"
T key-version-not-found 1 "key not found" "local:k/9" :: R encrypt --env t --key local:k/9 "$IN/plain" "$O/x"
T key-disabled 1 "$IN/disabled.renc" "disabled" "local:kd/1" :: R decrypt "$IN/disabled.renc" "$O/x"
T key-revoked 1 "$IN/revoked.renc" "revoked" "local:kr/1" :: R decrypt "$IN/revoked.renc" "$O/x"
T target-revoked 1 "local:kr" "revoked" :: R run --to local:kr --no-journal --progress=none "$IN/loop"
chmod 755 "$KR"
T keyring-755 1 "$KR" "insecure permissions" :: R decrypt "$IN/good.renc" "$O/x"
chmod 700 "$KR"
chmod 644 "$KR/k/1.key"
T keyfile-644 1 "insecure permissions" "local:k/1" :: R decrypt "$IN/good.renc" "$O/x"
chmod 600 "$KR/k/1.key"

# ==== journals ======================================================================
# An unfinished run (one blob fails its header tag) leaves its journal.
mkdir -p "$IN/jr" "$IN/jt1" "$IN/jt2"
cp "$IN/good.renc" "$IN/jt2/a.renc"
if [ -n "$HAVE_GEN" ]; then
  cp "$V/htag" "$IN/jt1/h.renc"
  R run --to local:k2 --progress=none --journal "$IN/jr/run1.db" "$IN/jt1" >/dev/null 2>&1
  T journal-other-run 2 "$IN/jr/run1.db" "unfinished run" "other sources" "--restart" :: \
    R run --to local:k2 --progress=none --journal "$IN/jr/run1.db" "$IN/jt2"
  T journal-other-mode 2 "$IN/jr/run1.db" "unfinished run" "rekey" :: \
    R run --to local:k2 --mode rekey --progress=none --journal "$IN/jr/run1.db" "$IN/jt1"
  chmod 644 "$IN/jr/run1.db"
  T journal-644 1 "$IN/jr/run1.db" "insecure permissions" :: \
    R run --to local:k2 --progress=none --journal "$IN/jr/run1.db" "$IN/jt1"
  chmod 600 "$IN/jr/run1.db"
fi
printf 'not a journal\n' >"$IN/jr/text.db"
chmod 600 "$IN/jr/text.db"
T journal-not-journal 2 "$IN/jr/text.db" "not a reencrypt journal" :: \
  R run --to local:k2 --progress=none --journal "$IN/jr/text.db" "$IN/jt2"
check "a file refused as a journal gets no lock file beside it" [ ! -e "$IN/jr/text.db.lock" ]

# ==== manifests, options ===============================================================
mkdir -p "$IN/m"
cp "$IN/good.renc" "$IN/m/a.renc"
cp "$IN/good.renc" "$IN/m/b.renc"
printf '%s\n' "# a comment" "$IN/m/a.renc" "" "$IN/m/./a.renc" "$IN/m/missing.renc" "$IN/m/b.renc" \
  "$IN/m/../m/b.renc" >"$IN/manifest.txt"
T manifest-verify 1 "$IN/m/missing.renc" "no such file" \
  out:"2 manifest lines named a file already listed" out:"2 blobs verified" out:"1 failed" :: \
  R verify --progress=none --manifest "$IN/manifest.txt"
T manifest-run-dry 1 "$IN/m/missing.renc" "no such file" out:"2 blobs would change" :: \
  R run --to local:k2 --dry-run --progress=none --manifest "$IN/manifest.txt"
T manifest-missing 2 "$IN/nosuch.txt" "no such file" :: R verify --progress=none --manifest "$IN/nosuch.txt"
T memory-too-small-run 2 "--memory" "too small" :: R run --to local:k2 --memory 1M --progress=none "$IN/m"
T memory-too-small-verify 2 "--memory" "too small" :: R verify --memory 16M --progress=none "$IN/m"
T threads-0-run 2 "--threads" :: R run --to local:k2 --threads 0 --progress=none "$IN/m"
T threads-0-verify 2 "--threads" :: R verify --threads 0 --progress=none "$IN/m"
# More --memory than the machine has, written with a suffix or in bytes: the
# same value, the same answer (the limit named).
MEM_OVER_G=$(($(getconf _PHYS_PAGES) * $(getconf PAGESIZE) / 1073741824 + 1))
T memory-beyond-ram-suffix 2 "--memory ${MEM_OVER_G}G" "more than this machine's memory" "at most" :: \
  R verify --memory "${MEM_OVER_G}G" --progress=none "$IN/m"
T memory-beyond-ram-bytes 2 "--memory $((MEM_OVER_G << 30))" "more than this machine's memory" "at most" :: \
  R run --to local:k2 --memory $((MEM_OVER_G << 30)) --progress=none "$IN/m"
T memory-huge-bytes 2 "--memory" "more than this machine's memory" :: \
  R verify --memory 4000000000000 --progress=none "$IN/m"
# A value out of range is bad usage wherever the option is given, used or not.
T akv-rate-0-verify 2 "--akv-rate" "1..1000000" :: R verify --akv-rate 0 --progress=none "$IN/m"
T akv-rate-0-encrypt 2 "--akv-rate" "1..1000000" :: R encrypt --akv-rate 0 --env t --key local:k "$IN/plain" "$O/x"
T akv-rate-0-keys 2 "--akv-rate" "1..1000000" :: R keys list --akv-rate 0
T akv-inflight-300 2 "--akv-inflight" "1..256" :: R decrypt --akv-inflight 300 "$IN/good.renc" "$O/x"
# An option that takes one value, given twice: refused, not the last taken.
T to-twice 2 "--to" "twice" :: R run --to local:k2 --to local:k --progress=none "$IN/m"
T mode-twice 2 "--mode" "twice" :: R run --to local:k2 --mode rekey --mode rewrap --progress=none "$IN/m"
T threads-twice 2 "--threads" "twice" :: R verify --threads 1 --threads 2 --progress=none "$IN/m"
T memory-twice 2 "--memory" "twice" :: R verify --memory 64M --memory 128M --progress=none "$IN/m"
T report-twice 2 "--report" "twice" :: R verify --report "$O/r1" --report "$O/r2" --progress=none "$IN/m"
T keyring-twice 2 "--keyring" "twice" :: R verify --keyring "$KR" --keyring "$IN" --progress=none "$IN/m"
T state-twice 2 "--state" "twice" :: R keys list --state "$IN"
T plan-threads-twice 2 "--threads" "twice" :: R plan --threads 1 --threads 2 "$IN/m"
T encrypt-env-twice 2 "--env" "twice" :: R encrypt --env t --env u --key local:k "$IN/plain" "$O/x"
T keys-type-twice 2 "--type" "twice" :: R keys create kt --type aes256 --type rsa2048
T out-inside-source 2 "$IN/m/mirror" "inside a source" :: R run --to local:k2 --out "$IN/m/mirror" "$IN/m"
ln -s "$IN/m" "$WORK/mlink"
T out-inside-via-link 2 "inside a source" :: R run --to local:k2 --out "$WORK/mlink/mirror" "$IN/m"
T unknown-option 2 "--bogus" :: R decrypt --bogus "$IN/good.renc" "$O/x"
T missing-operand 2 "usage" :: R decrypt "$IN/good.renc"
T bad-segment-size 2 "--segment-size" :: R encrypt --env t --key local:k --segment-size 3000 "$IN/plain" "$O/x"

# ==== a full disk (the fault seam: the first write fails with ENOSPC) =================
mkdir -p "$IN/one"
cp "$IN/good.renc" "$IN/one/a.renc"
FULL=write:1:ENOSPC
RENC_FAULT=$FULL T full-encrypt 1 "$O/x.renc" "no space left" :: R encrypt --env t --key local:k "$IN/plain" "$O/x.renc"
RENC_FAULT=$FULL T full-decrypt 1 "$O/x" "no space left" :: R decrypt "$IN/good.renc" "$O/x"
RENC_FAULT=$FULL T full-run-rekey 1 "$IN/one/a.renc" "no space left" :: \
  R run --to local:k2 --mode rekey --no-journal --progress=none "$IN/one"
RENC_FAULT=$FULL T full-run-header 1 "$IN/one/a.renc" "no space left" :: \
  R run --to local:k2 --progress=none "$IN/one"

# ==== environments ======================================================================
R env create prod >/dev/null && SNAP_DIRS+=("$DATA") && R put --env prod "$IN/plain" "$IN/m/a.renc" >/dev/null &&
  R backup create --env prod --name bk.renc >/dev/null || fail "environment setup"
BK=$DATA/prod/backups/bk.renc
head -c $(($(file_size "$BK") - 100)) "$BK" >"$IN/bk-cut.renc"
cp "$BK" "$IN/bk-flip.renc"
flip_byte "$IN/bk-flip.renc" $(($(file_size "$BK") - 50))
{ cat "$BK"; printf 'junk'; } >"$IN/bk-trail.renc"
# A RENC backup (kind backup, source-env prod, the policy key) whose plaintext
# is not an archive: it opens, and must still be refused.
R encrypt --env prod --kind backup --source-env prod --key local:service-mmk "$IN/plain" \
  "$IN/bk-notarchive.renc" >/dev/null || fail "seal a non-archive backup"
# The catalog is a SQLite database with the journal's application_id: a copy
# of it given as a journal must be refused as not a journal, too.
cp "$STATE/catalog.db" "$IN/jr/catalog-copy.db" && chmod 600 "$IN/jr/catalog-copy.db"
T journal-is-catalog 2 "$IN/jr/catalog-copy.db" "not a reencrypt journal" :: \
  R run --to local:k2 --progress=none --journal "$IN/jr/catalog-copy.db" "$IN/jt2"
check "a catalog refused as a journal gets no lock file beside it" \
  [ ! -e "$IN/jr/catalog-copy.db.lock" ]
# The live catalog as a journal: refused, and nothing is left beside it.
R run --to local:k2 --progress=none --journal "$STATE/catalog.db" "$IN/jt2" >/dev/null 2>&1
check "the live catalog given as a journal gets no lock file" [ ! -e "$STATE/catalog.db.lock" ]
T env-unknown-put 2 "nosuch" "no such environment" :: R put --env nosuch "$IN/plain"
T env-unknown-run 2 "nosuch" "no such environment" :: R run --env nosuch --progress=none
T env-unknown-verify 2 "nosuch" "no such environment" :: R verify --env nosuch --progress=none
T env-unknown-restore 2 "nosuch" "no such environment" :: R restore "$BK" --target nosuch
T env-bad-id-create 2 "a/b" "not an environment id" :: R env create a/b
T env-bad-id-show 2 "../etc" "not an environment id" :: R env show ../etc
# An empty environment id: refused by one rule wherever an id is taken.
T env-empty-encrypt 2 "--env" "environment id is empty" :: R encrypt --env '' --key local:k "$IN/plain" "$O/x"
T env-empty-source-env 2 "--source-env" "environment id is empty" :: \
  R encrypt --env t --source-env '' --key local:k "$IN/plain" "$O/x"
T env-empty-put 2 "--env" "environment id is empty" :: R put --env '' "$IN/plain"
T env-empty-run 2 "--env" "environment id is empty" :: R run --env '' --progress=none
T env-empty-verify 2 "--env" "environment id is empty" :: R verify --env '' --progress=none
T env-empty-status 2 "--env" "environment id is empty" :: R status --env ''
T env-empty-restore 2 "--target" "environment id is empty" :: R restore "$BK" --target ''
T env-empty-create 2 "environment id is empty" :: R env create ''
T copy-to-twice 2 "--to" "twice" :: R copy --from prod --to prod --to other
T restore-not-backup 1 "$IN/good.renc" "not a backup" :: R restore "$IN/good.renc" --target prod
T restore-truncated 2 "$IN/bk-cut.renc" "truncated" "nothing was restored" :: R restore "$IN/bk-cut.renc" --target prod
T restore-tampered 2 "$IN/bk-flip.renc" "record authentication failed" "nothing was restored" :: \
  R restore "$IN/bk-flip.renc" --target prod
T restore-trailing 2 "$IN/bk-trail.renc" "trailing" "nothing was restored" :: R restore "$IN/bk-trail.renc" --target prod
T restore-not-archive 2 "$IN/bk-notarchive.renc" "archive" "nothing was restored" :: \
  R restore "$IN/bk-notarchive.renc" --target prod
T restore-check-tampered 1 out:"$IN/bk-flip.renc" out:"invalid" out:"record authentication failed" :: \
  R restore-check "$IN/bk-flip.renc" --target prod
RENC_FAULT=$FULL T full-put 1 "new.bin" "no space left" :: R put --env prod --name new.bin "$IN/plain"
RENC_FAULT=$FULL T full-backup 1 "full.renc" "no space left" :: R backup create --env prod --name full.renc
# put of a folder whose blob names cannot be: `..` (a name with a '..'
# component), and a folder holding a file whose name is not UTF-8 (blob
# names are UTF-8, FORMAT.md "Backups"); put is all-or-nothing.
mkdir -p "$IN/pdot/in"
cp "$IN/plain" "$IN/pdot/in/x.bin"
T put-dotdot 2 "cannot name a blob" :: in_dir "$IN/pdot/in" R put --env prod ..
mkdir -p "$IN/pbad/ok"
cp "$IN/plain" "$IN/pbad/ok/good.bin"
cp "$IN/plain" "$IN/pbad/ok/bad"$'\xfe'".bin"
T put-name-not-utf8 2 "$IN/pbad/ok/bad"$'\xfe'".bin" "UTF-8" :: R put --env prod "$IN/pbad"
T put-name-absolute 2 "/etc/x" "absolute" :: R put --env prod --name /etc/x "$IN/plain"
# put never seals the tool's own files: the state, the keyring, the data.
T put-holds-state 2 "$WORK" "holds the environments' data" "nothing is sealed" :: R put --env prod "$WORK"
T put-root 2 "holds the environments' data" "nothing is sealed" :: R put --env prod /
T put-inside-data 2 "$DATA/prod" "lies inside the environments' data" :: R put --env prod "$DATA/prod/blobs"
T put-inside-keyring 2 "lies inside the keyring" :: R put --env prod "$KR/k"

echo "$NCASES cases in $((SECONDS - T0)) s"
finish
