#!/bin/bash
# deploy/slurm/merge-reports.sh OUT REPORT... — the --report files of the N
# shards of one run (run --shard K/N) merged into one JSON at OUT: the blob
# counts, bytes and failures added up, the slowest shard's seconds, and the
# shards found.  Exit 0 when every shard 0..N-1 is there exactly once, all
# of the same N and the same listing, with no blob failed or left; 1 when
# not (OUT still written, with "complete": false and "problems"); 2 on bad
# usage.  Needs jq (Debian: jq).  Works for any engine's shards, not only
# Slurm's (the Kubernetes recipe's reports merge the same way).
set -uo pipefail
if [ $# -lt 2 ]; then
  echo "usage: merge-reports.sh OUT REPORT..." >&2
  exit 2
fi
out=$1
shift
jq -s '
  def problems:
    (map(.shard.count) | unique) as $n
    | (map(.shard.listed) | unique) as $l
    | (map(.shard.index) | sort) as $idx
    | [ (if any(.[]; .shard == null) then "a report is not of a shard (no shard)" else empty end),
        (if ($n | length) > 1 then "shards of different counts: \($n)" else empty end),
        (if ($l | length) > 1 then "shards saw different listings: \($l)" else empty end),
        (if ($n | length) == 1 and $idx != [range(0; $n[0])]
         then "shards found \($idx), not 0..\($n[0] - 1) once each" else empty end),
        (if (map(.blobs.failed) | add) > 0 then "\(map(.blobs.failed) | add) blobs failed" else empty end),
        (if (map(.blobs.pending) | add) > 0 then "\(map(.blobs.pending) | add) blobs not done" else empty end) ];
  problems as $p
  | { complete: ($p | length == 0), problems: $p,
      shards: (map(.shard.index) | sort), count: (.[0].shard.count),
      listed: (.[0].shard.listed),
      blobs: { total: (map(.blobs.total) | add), done: (map(.blobs.done) | add),
               skipped: (map(.blobs.skipped) | add), not_renc: (map(.blobs.not_renc) | add),
               failed: (map(.blobs.failed) | add), pending: (map(.blobs.pending) | add) },
      bytes: (map(.bytes) | add), seconds: (map(.seconds) | max),
      failures: (map(.failures) | add) }' "$@" >"$out.tmp" && mv "$out.tmp" "$out" || {
  rm -f "$out.tmp"
  echo "merge-reports: could not read the reports" >&2
  exit 1
}
if [ "$(jq -r .complete "$out")" = true ]; then
  echo "merge-reports: $(jq -r '"\(.count) shards, \(.blobs.total) blobs: \(.blobs.done) done, \(.blobs.skipped) skipped, \(.blobs.not_renc) not RENC"' "$out")"
  exit 0
fi
echo "merge-reports: incomplete: $(jq -r '.problems | join("; ")' "$out")" >&2
exit 1
