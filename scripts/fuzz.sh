#!/usr/bin/env bash
# Builds the fuzz flavour (clang, libFuzzer) and fuzzes one or every target.
#   scripts/fuzz.sh [TARGET|all] [SECONDS]     (default: all, 180 s per target)
# TARGET is the <target> of tests/fuzz/fuzz_<target>.c: header, record, blob,
# keyring (state file and key material files), manifest (run/plan/verify
# --manifest), roundtrip (seal then open, records and whole blobs), archive
# (the backup archive reader, fed in two chunks), akv (what a key vault
# answers: the 401 challenge, error bodies, KeyBundles, base64url), tmpname
# (the temporary-name rule: what is reserved, parse inverting make), keyref
# (key references: round trip, the same key), entra (the Azure CLI's
# get-access-token output, the authority's token URL), blobxml (the blob
# service's XML answers fed in pieces, blob URLs and their redaction).
#
# Each target runs on a scratch corpus seeded from the checked-in one,
# tests/fuzz/corpus/<target>/; afterwards the scratch corpus is merged
# (-merge=1: only inputs that add coverage) back into the checked-in one.
# -max_len: 4096 for header, 8192 for manifest (room for one PATH_MAX line),
# 32768 otherwise (FUZZ_MAX_LEN overrides).
# Crashes are kept in build-fuzz/fuzz-artifacts/<target>/ and make the script
# exit 1.  Extra libFuzzer flags: FUZZ_FLAGS="-jobs=2 -workers=2".
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:-all}
seconds=${2:-180}
dir=build-fuzz

# The fuzz_<target> binaries get -fsanitize=fuzzer from tests/CMakeLists.txt,
# but the libraries they test must be instrumented too, or libFuzzer sees no
# coverage inside the parsers and ASan checks none of their loads and stores.
# fuzzer-no-link adds the coverage hooks without a second main().  The flags
# stay in build-fuzz/'s cache, so a later scripts/build.sh fuzz keeps them.
san="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DRENC_BUILD_FUZZ=ON \
  -DRENC_WERROR="${RENC_WERROR:-OFF}" "-DCMAKE_C_FLAGS=$san" >/dev/null

if [ "$target" = all ]; then
  targets=$(ls tests/fuzz/fuzz_*.c | sed 's|.*/fuzz_||; s|\.c$||')
else
  targets=$target
fi
for t in $targets; do
  [ -f "tests/fuzz/fuzz_$t.c" ] || { echo "no such target: $t" >&2; exit 2; }
  cmake --build "$dir" --target "fuzz_$t"
done

export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
status=0
for t in $targets; do
  corpus=tests/fuzz/corpus/$t
  scratch=$(mktemp -d "${TMPDIR:-/tmp}/renc-fuzz-$t.XXXXXX")
  artifacts=$dir/fuzz-artifacts/$t
  # Headers are small; a manifest needs room for a line of PATH_MAX; records,
  # blobs and round trips need room for a few segments (8 of 4 KiB), key
  # files for an RSA-8192 PEM.  Every checked-in input stays under 64 KiB.
  case $t in
    header) max_len=${FUZZ_MAX_LEN:-4096} ;;
    manifest) max_len=${FUZZ_MAX_LEN:-8192} ;;
    *) max_len=${FUZZ_MAX_LEN:-32768} ;;
  esac
  mkdir -p "$corpus" "$artifacts"
  cp -r "$corpus/." "$scratch/"
  echo "== fuzz_$t: ${seconds}s, corpus $(ls "$corpus" | wc -l) inputs"
  # $FUZZ_FLAGS unquoted on purpose: several flags.
  # shellcheck disable=SC2086
  # The run's status is judged from its log below, not its exit code.
  # An absolute artifact prefix: fuzz_manifest runs each input inside its
  # fixture folder, and a crash there must still land in $artifacts.
  "$dir/tests/fuzz_$t" -max_total_time="$seconds" -max_len="$max_len" \
    -print_final_stats=1 -artifact_prefix="$PWD/$artifacts/" ${FUZZ_FLAGS:-} "$scratch" \
    >"$artifacts/last-run.log" 2>&1 || true
  grep -E '(INITED|DONE) |^stat::(number_of_executed_units|average_exec_per_sec)|==[0-9]+==|SUMMARY|Test unit written' \
    "$artifacts/last-run.log" || true
  if grep -qE 'ERROR: (libFuzzer|AddressSanitizer|LeakSanitizer)|runtime error|Test unit written' \
       "$artifacts/last-run.log"; then
    echo "fuzz_$t: CRASH, see $artifacts/ and $artifacts/last-run.log" >&2
    status=1
  fi
  # Only inputs that add coverage go back into the checked-in corpus.
  "$dir/tests/fuzz_$t" -merge=1 -max_len="$max_len" "$corpus" "$scratch" 2>&1 \
    | grep -E 'MERGE-OUTER: [0-9]+ new files' || true
  rm -rf "$scratch"
  echo "   corpus now $(ls "$corpus" | wc -l) inputs, $(du -sh "$corpus" | cut -f1)"
done
exit $status
