#!/usr/bin/env bash
# tests/e2e/test_names.sh — names with control characters in messages.
#
# A blob whose name holds a newline, a tab, an ESC and a backslash fails a
# run (it is truncated).  Every message that names it — the run's failure
# line, `status`'s failure list, `verify` — is one line, with the name's
# control characters and backslash escaped C-style (\n, \t, \x1b, \\); the
# JSON report and `status --json` keep the name exact.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RENC_BIN=$(realpath "$RENC_BIN")
cd "$WORK" || exit 2
sanitizer_logs
expect_ok renc keys create a
expect_ok renc keys create b

SRC=$WORK/src
mkdir -p "$SRC"
name=$'bad\nname\twith\033esc\\slash.renc'
shown='bad\nname\twith\x1besc\\slash.renc'
mkdata "$WORK/plain" 70000
renc encrypt --env t --key local:a --segment-size 4K "$WORK/plain" "$SRC/ok.renc" >/dev/null
renc encrypt --env t --key local:a --segment-size 4K "$WORK/plain" "$SRC/$name" >/dev/null
check "the blob with the odd name is there" test -f "$SRC/$name"
truncate -s -5000 "$SRC/$name" # its last records gone: a rekey must fail it

# ---- run: one failure line, escaped ----------------------------------------
run renc run --to local:b --mode rekey --progress=none --report "$WORK/r.json" "$SRC"
check "the run fails on the truncated blob (exit $RC)" test "$RC" -eq 1
check "stderr has one line per message (got $(wc -l <"$WORK/err"))" test "$(wc -l <"$WORK/err")" -eq 1
expect_msg "$SRC/$shown: "
check "no raw newline or ESC of the name in stderr" \
  test "$(grep -c $'\033' "$WORK/err")" -eq 0
check "the report keeps the exact name" \
  test "$(jq -r '.failures[0].path' "$WORK/r.json")" = "$SRC/$name"

# ---- status: the failure list, escaped; JSON exact -------------------------
run renc status
check "status exits 0" test "$RC" -eq 0
expect_out "  $SRC/$shown: "
check "status lists the failure on one line" \
  test "$(grep -c 'bad' "$WORK/out")" -eq 1
renc status --json >"$WORK/st.json"
check "status --json keeps the exact name" \
  test "$(jq -r '.failures[0].path' "$WORK/st.json")" = "$SRC/$name"

# ---- verify: the same ------------------------------------------------------
run renc verify --progress=none "$SRC"
check "verify fails on it (exit $RC)" test "$RC" -eq 1
check "verify's stderr is one line" test "$(wc -l <"$WORK/err")" -eq 1
expect_msg "$SRC/$shown: "

# ---- a source named with a newline ---------------------------------------------
dir=$WORK/$'two\nlines'
mkdir -p "$dir"
cp "$SRC/ok.renc" "$dir/x.renc"
run renc run --to local:b --mode rekey --progress=none "$dir"
check "a source folder with a newline in its name is rekeyed (exit $RC)" test "$RC" -eq 0
check "its journal line is one line" \
  test "$(grep -c '^run: journal ' "$WORK/out")" -eq 1
run renc status
expect_out 'sources   '"$WORK"'/two\nlines'

expect_no_sanitizer_reports
finish
