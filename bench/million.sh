#!/usr/bin/env bash
# Memory over a million files (issue 17): `plan`, a shared `run` (a
# PostgreSQL journal, which takes the listing streamed), a named run in a
# journal file (--run NAME: listed into the file, claimed in rounds) and a
# plain run with a journal file (past RENC_LIST_HOLD blobs it goes the same
# way) over COUNT tiny files, each with its peak RSS (/usr/bin/time) beside
# --memory + 64 MiB.
#
#   bench/million.sh                    (1,000,000 files of 16 bytes)
#   COUNT=100000 bench/million.sh       (a quick one)
#
# The files are not RENC (what matters is the listing, not the content):
# each is listed, opened, found not RENC and noted.  PostgreSQL 15 is
# started in the work folder (tests/e2e/pglib.sh), fsync on.
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${COUNT:-1000000}
PER_DIR=${PER_DIR:-1000}
MEMORY=${MEMORY:-64M}
THREADS=${THREADS:-$(nproc)}

dir=${RENC_BENCH_BUILD:-$(scripts/build.sh bench | tail -n 1)}
R=$PWD/$dir/reencrypt/reencrypt
work=${RENC_BENCH_DIR:-$(mktemp -d /var/tmp/renc-million.XXXXXX)}
. tests/e2e/pglib.sh
trap 'pg_stop; rm -rf "$work"' EXIT
export RENC_HOME=$work/state
say() { printf '%s\n' "$*" >&2; }

pg_start "$work/pg" || exit $?
"$R" keys create t >/dev/null
say "== $COUNT files of 16 bytes, $PER_DIR a folder, under $work"
python3 - "$work/tree" "$COUNT" "$PER_DIR" <<'PY'
import os, sys
root, n, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(n):
    d = os.path.join(root, "d%05d" % (i // per))
    if i % per == 0:
        os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%07d" % i), "wb") as f:
        f.write(b"not a RENC blob\n")
PY
sync

# measure NAME CMD...: peak RSS (KiB) and seconds of CMD.
declare -A rss secs
measure() {
  local name=$1
  shift
  /usr/bin/time -f '%M %e' -o "$work/time.$name" "$@" >"$work/out.$name" 2>"$work/err.$name" || {
    say "$name failed:"; tail -5 "$work/err.$name" >&2; exit 1; }
  read -r rss[$name] secs[$name] <"$work/time.$name"
  say "  $name: peak RSS $((rss[$name] / 1024)) MiB, ${secs[$name]} s"
}
measure plan "$R" plan "$work/tree"
measure run_pg "$R" run --to local:t --memory "$MEMORY" --threads "$THREADS" --progress=none \
  --journal "$PG_URI" --run million "$work/tree"
grep -q "$COUNT of $COUNT blobs finished" "$work/out.run_pg" || {
  say "the shared run did not finish every file:"; tail -3 "$work/out.run_pg" >&2; exit 1; }
measure run_named "$R" run --to local:t --memory "$MEMORY" --threads "$THREADS" \
  --progress=none --journal "$work/named.db" --run million "$work/tree"
grep -q "$COUNT of $COUNT blobs finished" "$work/out.run_named" || {
  say "the named run did not finish every file:"; tail -3 "$work/out.run_named" >&2; exit 1; }
measure run_file "$R" run --to local:t --memory "$MEMORY" --threads "$THREADS" --progress=none \
  "$work/tree"

mem_kib=$(numfmt --from=iec "$MEMORY")
limit=$(((mem_kib >> 10) + 65536))
python3 - "$COUNT" "$MEMORY" "$limit" "${rss[plan]}" "${secs[plan]}" "${rss[run_pg]}" \
  "${secs[run_pg]}" "${rss[run_named]}" "${secs[run_named]}" "${rss[run_file]}" \
  "${secs[run_file]}" <<'PY'
import json, sys
n, mem, limit = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
rows = [("plan", int(sys.argv[4]), float(sys.argv[5])),
        ("run, journal on a server (listing streamed)", int(sys.argv[6]), float(sys.argv[7])),
        ("run --run NAME, journal file (listing streamed)", int(sys.argv[8]), float(sys.argv[9])),
        ("run, journal file (past RENC_LIST_HOLD: streamed)", int(sys.argv[10]),
         float(sys.argv[11]))]
print(f"{n:,} files, --memory {mem}: the bound is --memory + 64 MiB = {limit / 1024:.0f} MiB")
for name, kib, s in rows:
    print(f"  {name:<46} peak RSS {kib / 1024:7.1f} MiB  {'under' if kib <= limit else 'OVER'}"
          f" the bound   {s:7.1f} s  {n / s:9,.0f} files/s")
json.dump({"files": n, "memory": mem, "bound_kib": limit,
           "plan": {"rss_kib": rows[0][1], "seconds": rows[0][2]},
           "run_pg": {"rss_kib": rows[1][1], "seconds": rows[1][2]},
           "run_named": {"rss_kib": rows[2][1], "seconds": rows[2][2]},
           "run_file": {"rss_kib": rows[3][1], "seconds": rows[3][2]}},
          open("bench-million.json", "w"), indent=2)
PY
