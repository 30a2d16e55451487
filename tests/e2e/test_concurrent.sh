#!/usr/bin/env bash
# Other writers and hostile trees: a run replaces exactly what it read.
#   - another writer replacing blobs by rename while in-place rewraps and
#     rekeys go: no blob gets another's header, none is overwritten with
#     stale content; the blobs it changed are reported and the next run
#     takes them
#   - runs over overlapping trees exclude each other (a tree and a folder,
#     a file, a manifest or a parent of it; a tree run over an environment's
#     data beside run --env); runs over disjoint folders go together
#   - names that merely contain ".renc-tmp." are data; a reserved temporary
#     name this run did not make is left alone and reported
#   - a symbolic link among an --out mirror's folders is never written
#     through
#   - a rekey keeps the blob's owner, group, mode, extended attributes and
#     mtime; a blob with other hard links is left alone
. "$(dirname "$0")/lib.sh"

renc keys create k >/dev/null || exit 2
renc keys create t >/dev/null || exit 2

# The corpus, sealed once: N small blobs BASE/dK/fI.renc under local:k with
# plaintext "orig NAME" (2 KiB), and the writer's versions W/NAME saying
# "writer NAME".  Each trial works on a copy.
N=600
mkdir -p "$WORK/plain"
for ((i = 0; i < N; i++)); do
  name=d$((i % 10))/f$i.renc
  mkdir -p "$WORK/plain/orig/d$((i % 10))" "$WORK/plain/writer/d$((i % 10))"
  printf 'orig %s %02048d' "$name" 0 >"$WORK/plain/orig/$name"
  printf 'writer %s %02048d' "$name" 0 >"$WORK/plain/writer/$name"
done
# One put seals them all (the environment's key is in the keyring).
renc env create corpus >/dev/null || exit 2
renc put --env corpus "$WORK/plain/orig" "$WORK/plain/writer" >/dev/null || exit 2
BASE=$STATE/data/corpus/blobs/orig
W=$STATE/data/corpus/blobs/writer
(cd "$WORK/plain/writer" && find . -type f -printf '%P\n' | LC_ALL=C sort |
  while IFS= read -r f; do printf '%s\t%s\n' "$f" "$(sha256sum <"$f" | cut -d' ' -f1)"; done
) >"$WORK/writer.sha"

# writer DIR N LOG STOP: replaces random blobs of DIR by rename (copy to a
# private name, rename over: what other tools and the platform do) as fast
# as it can until the file STOP exists; each replaced name goes to LOG.
writer() {
  python3 - "$1" "$2" "$3" "$4" "$W" <<'PY'
import os, random, shutil, sys
d, n, log, stop, src = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
done = set()
while not os.path.exists(stop):
    i = random.randrange(n)
    name = "d%d/f%d.renc" % (i % 10, i)
    part = os.path.join(d, "d%d" % (i % 10), ".writer.part")
    shutil.copyfile(os.path.join(src, name), part)
    os.replace(part, os.path.join(d, name))
    done.add(name)
    if len(done) == 1:
        open(stop + ".ready", "w").close()
with open(log, "w") as f:
    f.write("".join(x + "\n" for x in sorted(done)))
PY
}

# check_tree DIR N LOG: every blob opens (verify); each one the writer
# replaced holds the writer's plaintext, not the original re-encrypted
# (blob_facts: one process for all when it can).
check_tree() {
  local dir=$1 n=$2 log=$3 bad
  if ! renc verify --progress=none "$dir" >"$WORK/v.out" 2>&1; then
    head -n 4 "$WORK/v.out" | sed 's/^/    /' >&2
    return 1
  fi
  blob_facts "$dir" "$log" | cut -f1,3 | LC_ALL=C sort >"$WORK/got.sha"
  bad=$(LC_ALL=C join -t $'\t' "$WORK/got.sha" "$WORK/writer.sha" | awk -F'\t' '$2 != $3' | wc -l)
  bad=$((bad + $(wc -l <"$log") - $(LC_ALL=C join -t $'\t' "$WORK/got.sha" "$WORK/writer.sha" | wc -l)))
  echo "    $(wc -l <"$log") blobs replaced by the writer, $bad of them lost the writer's content" >&2
  [ "$bad" -eq 0 ]
}

# ---- another writer replacing blobs by rename during runs -----------------
for mode in rewrap rekey; do
  for trial in 1 2 3; do
    T=$WORK/w-$mode-$trial
    cp -a "$BASE" "$T"
    log=$WORK/writer-$mode-$trial.log
    : >"$log"
    rm -f "$WORK/stop" "$WORK/stop.ready"
    writer "$T" $N "$log" "$WORK/stop" &
    wpid=$!
    for _ in $(seq 1 500); do [ -e "$WORK/stop.ready" ] && break; sleep 0.01; done
    run renc run --mode $mode --to local:t --threads 2 --progress=none "$T"
    touch "$WORK/stop"
    wait $wpid
    changed=$(grep -c "changed during the run" "$WORK/err")
    echo "    $mode trial $trial: exit $RC, $changed blobs reported changed during the run" >&2
    check "$mode with a writer replacing blobs (trial $trial): every blob holds its own or the writer's content" \
      check_tree "$T" $N "$log"
    if [ "$changed" -gt 0 ]; then
      check "$mode: blobs changed during the run fail the run (exit 1)" test "$RC" -eq 1
    fi
    # The next run (no writer) takes what was changed: all under t.
    # The next attempt retries them; a new run then takes the blobs the
    # writer replaced after this run had done them (new data under k).
    expect_ok renc run --mode $mode --to local:t --progress=none "$T"
    expect_ok renc run --mode $mode --to local:t --progress=none "$T"
    expect_ok renc run --mode $mode --to local:t --progress=none "$T"
    expect_out "0 blobs re-encrypted, $N skipped"
    check "$mode: and still holds the right content" check_tree "$T" $N "$log"
    check "$mode: no temporaries left" test -z "$(temporaries "$T")"
  done
done

echo "    [${SECONDS}s] writers done" >&2
# ---- overlapping runs exclude each other ----------------------------------
O=$WORK/ov
mkdir -p "$O"
for k in 0 1 2 3 4; do cp -a "$BASE" "$O/c$k"; done
# The binary itself in the background (not the renc function), so that $!
# is its pid.
"$RENC_BIN" run --state "$STATE" --mode rekey --to local:t --threads 1 --progress=none "$O" \
  >"$WORK/a.out" 2>&1 &
apid=$!
# Wait until it holds its locks (its tree's, then its journal's: any
# exclusive flock of its pid in /proc/locks; probing with flock(1) would
# race with it), then freeze it there.
holds_locks() {
  grep -Eq "FLOCK +ADVISORY +WRITE +$1 " /proc/locks
}
for _ in $(seq 1 3000); do
  holds_locks $apid && break
  sleep 0.01
done
kill -STOP $apid
if kill -0 $apid 2>/dev/null && holds_locks $apid; then
  printf '%s\n' "$O/c1/d1/f1.renc" "$O/c2/d2/f2.renc" >"$WORK/m.txt"
  for src in "$O/c3" "$O/c3/d3/f3.renc" "$WORK" "--manifest $WORK/m.txt"; do
    # shellcheck disable=SC2086
    expect_exit 1 renc run --mode rewrap --to local:k --progress=none $src
    expect_msg "another run is working on it"
  done
  kill -CONT $apid
else
  kill -CONT $apid 2>/dev/null
  fail "the first run did not hold its lock long enough to test"
fi
wait $apid
check "the first run finished unharmed" grep -q "0 failed" "$WORK/a.out" ||
  sed 's/^/    first run: /' "$WORK/a.out" >&2
# Disjoint folders go together.
renc run --mode rekey --to local:k --progress=none "$O/c1" >"$WORK/b1.out" 2>&1 &
b1=$!
expect_ok renc run --mode rekey --to local:k --progress=none "$O/c2"
wait $b1
check "runs over disjoint folders go together" test $? -eq 0

# A tree run over an environment's data beside run --env.
expect_ok renc env create prod
mkdir -p "$WORK/in"
for i in $(seq 1 2000); do printf 'p%d' "$i" >"$WORK/in/p$i"; done
expect_ok renc put --env prod "$WORK/in"
expect_ok renc keys create cmk
"$RENC_BIN" run --state "$STATE" --mode rekey --to local:t --threads 1 --progress=none \
  "$STATE/data/prod" >"$WORK/c.out" 2>&1 &
cpid=$!
for _ in $(seq 1 3000); do
  holds_locks $cpid && break
  sleep 0.01
done
kill -STOP $cpid
if kill -0 $cpid 2>/dev/null && holds_locks $cpid; then
  expect_ok renc env set-policy prod --cmk local:cmk
  expect_exit 1 renc run --env prod --progress=none
  expect_msg "another run is working on it"
else
  fail "the tree run over prod's data did not hold its lock long enough to test"
fi
kill -CONT $cpid
wait $cpid

echo "    [${SECONDS}s] overlaps done" >&2
# ---- names like temporaries ------------------------------------------------
X=$WORK/names
mkdir -p "$X"
printf 'keep me' >"$WORK/keep.plain"
renc encrypt --env e --key local:k "$WORK/keep.plain" "$X/keep.renc-tmp.00000000000000ab" >/dev/null
printf 'notes' >"$X/notes.renc-tmp.77777"
renc encrypt --env e --key local:k "$WORK/keep.plain" "$X/.y.renc-tmp.0123456789abcdef" >/dev/null
expect_ok renc run --mode rekey --to local:t --progress=none "$X"
expect_out "left alone 1 files named like temporaries"
check "a blob named *.renc-tmp.<hex> is data: re-encrypted" \
  bash -c "'$RENC_BIN' inspect '$X/keep.renc-tmp.00000000000000ab' | grep -q 'local:t/'"
check "a user's file named *.renc-tmp.<digits> is kept" test "$(cat "$X/notes.renc-tmp.77777")" = notes
check "a reserved name this run did not make is left alone" test -f "$X/.y.renc-tmp.0123456789abcdef"

# ---- no writing through a link in an --out mirror --------------------------
S=$WORK/src
mkdir -p "$S/sub" "$WORK/mirror" "$WORK/outside"
renc encrypt --env e --key local:k "$WORK/keep.plain" "$S/sub/a.renc" >/dev/null
renc encrypt --env e --key local:k "$WORK/keep.plain" "$S/b.renc" >/dev/null
ln -s "$WORK/outside" "$WORK/mirror/sub"
expect_exit 1 renc run --mode rekey --to local:t --out "$WORK/mirror" --progress=none "$S"
check "nothing written through the mirror's link" test -z "$(ls -A "$WORK/outside")"
check "the other blob is mirrored" test -f "$WORK/mirror/b.renc"

# ---- attributes and hard links ---------------------------------------------
A=$WORK/attrs
mkdir -p "$A"
renc encrypt --env e --key local:k "$WORK/keep.plain" "$A/a.renc" >/dev/null
chmod 0640 "$A/a.renc"
touch -d '2020-01-02 03:04:05' "$A/a.renc"
xattr_ok=0
if setfattr -n user.origin -v lab "$A/a.renc" 2>/dev/null; then xattr_ok=1; fi
as_root=0
if [ "$(id -u)" -eq 0 ]; then chown nobody:nogroup "$A/a.renc" && as_root=1; fi
before=$(stat -c '%U:%G %a %Y' "$A/a.renc")
expect_ok renc run --mode rekey --to local:t --progress=none --out "$WORK/amirror" "$A"
expect_ok renc run --mode rekey --to local:t --progress=none "$A"
for f in "$A/a.renc" "$WORK/amirror/a.renc"; do
  check "rekey keeps owner, group, mode and mtime of $f" \
    test "$(stat -c '%U:%G %a %Y' "$f")" = "$before"
  if [ $xattr_ok -eq 1 ]; then
    check "rekey keeps extended attributes of $f" \
      test "$(getfattr --only-values -n user.origin "$f" 2>/dev/null)" = lab
  fi
done
[ $as_root -eq 1 ] || echo "    (not root: the owner part ran with the user's own files)" >&2

for mode in rewrap rekey; do
  H=$WORK/hl-$mode
  mkdir -p "$H"
  renc encrypt --env e --key local:k "$WORK/keep.plain" "$H/h.renc" >/dev/null
  ln -f "$H/h.renc" "$WORK/elsewhere.renc"
  cp "$H/h.renc" "$WORK/h.before"
  expect_exit 1 renc run --mode $mode --to local:t --progress=none "$H"
  expect_msg "other hard links"
  check "$mode: a blob with other hard links is left as it is" cmp -s "$H/h.renc" "$WORK/h.before"
  check "$mode: its other name too" cmp -s "$WORK/elsewhere.renc" "$WORK/h.before"
done

finish
