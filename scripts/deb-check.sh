#!/usr/bin/env bash
# Builds the Debian package of the dist build (cmake/RencPackage.cmake),
# installs it with apt-get as a node would, runs the installed binary
# (--version, then one small run: blobs sealed under one key, rekeyed to
# another, each decrypted and compared), and removes it.  Needs root and
# changes the machine's packages: scripts/test.sh runs it in CI only
# (CI=true, as root); by hand, on a machine of your own:
#   scripts/deb-check.sh [DIST_DIR]        (default build-dist)
# Exit 77 (skipped) when not root, or when a reencrypt package is already
# installed (it is not ours to replace).
set -uo pipefail
cd "$(dirname "$0")/.."
dist=$(realpath "${1:-build-dist}")
if [ "$(id -u)" -ne 0 ]; then
  echo "deb check: skipped: installing a package needs root" >&2
  exit 77
fi
if dpkg-query -W -f='${Status}' reencrypt 2>/dev/null | grep -q "install ok installed"; then
  echo "deb check: skipped: a reencrypt package is installed already; not replacing it" >&2
  exit 77
fi
work=$(mktemp -d /tmp/renc-deb.XXXXXX)
installed=0
cleanup() {
  [ $installed -eq 1 ] && DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq reencrypt >/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
passed=0 failed=0
check() {
  local what=$1
  shift
  if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: $what" >&2; fi
}
rm -f "$dist"/reencrypt_*.deb
(cd "$dist" && cpack -G DEB >"$work/cpack.log" 2>&1) || { cat "$work/cpack.log" >&2; exit 1; }
deb=$(ls "$dist"/reencrypt_*.deb)
check "one package built ($deb)" [ -f "$deb" ]
deps=$(dpkg-deb -f "$deb" Depends)
for lib in libc6 libssl3 liburing2 libzstd1 libsqlite3-0 libpq5 libcurl4 libjansson4 libexpat1; do
  check "the package depends on $lib" grep -q "$lib" <<<"$deps"
done
# apt-get takes a local package given as a path with a slash in it.
cp "$deb" "$work/" && deb=$work/$(basename "$deb")
if DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$deb" >"$work/apt.log" 2>&1; then
  installed=1
  pass=1
else
  cat "$work/apt.log" >&2
  pass=0
fi
check "apt-get installs the package" [ $pass -eq 1 ]
bin=/usr/bin/reencrypt
check "the installed binary says its version" bash -c "'$bin' --version | grep -q 'RENC v1'"
check "the installed binary finds every library" bash -c "! ldd '$bin' | grep -q 'not found'"
export RENC_HOME=$work/state
"$bin" keys create old >/dev/null && "$bin" keys create new >/dev/null ||
  failed=$((failed + 1))
mkdir -p "$work/plain" "$work/tree/sub"
for i in $(seq 1 20); do
  head -c $((i * 997)) /dev/urandom >"$work/plain/f$i"
  "$bin" encrypt --env deb --key local:old "$work/plain/f$i" "$work/tree/sub/f$i.renc" >/dev/null ||
    failed=$((failed + 1))
done
check "the installed binary runs a rekey" \
  "$bin" run --to local:new --mode rekey --progress=none "$work/tree"
check "the old key is revoked (the new one alone must open them)" \
  "$bin" keys revoke old >/dev/null
ok=1
for i in $(seq 1 20); do
  "$bin" decrypt "$work/tree/sub/f$i.renc" "$work/out" >/dev/null 2>&1 &&
    cmp -s "$work/out" "$work/plain/f$i" || ok=0
done
check "every blob opens under the new key to its plaintext" [ $ok -eq 1 ]
if DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq reencrypt >/dev/null 2>&1; then
  installed=0
fi
check "apt-get removes it" [ ! -e "$bin" ]
echo "deb check: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
