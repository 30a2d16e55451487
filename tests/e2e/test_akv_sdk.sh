#!/usr/bin/env bash
# tests/e2e/test_akv_sdk.sh — the key vault test double held to Microsoft's
# own client: @azure/keyvault-keys and @azure/identity (npm; the versions
# pinned in tests/vault/sdk/package-lock.json) run against
# tests/vault/vault_server.py, served as https://localvault.vault.localhost:PORT
# (a vault under a parent domain, as the service's are).  The SDK, unmodified,
# gets its token with ClientSecretCredential (the client secret the binary
# uses too), reads a key, pages through its 30 versions, wraps and unwraps in
# every algorithm the double serves, rides out a 429 with Retry-After, and
# meets a disabled key.  Blobs then cross both ways: the Node side seals RENC
# v1 blobs (tests/vault/sdk/renc.js, from FORMAT.md) whose DEK the SDK
# wrapped, and the binary opens them under their akv: slot; the binary seals
# blobs that the Node side opens with the SDK's unwrapKey.
#
# Last, in a private network namespace where it may take port 443, the double
# serves the service's exact URL form: https://localvault.vault.localhost
# with no port in kids and :443 in nextLink (skipped, with a note, where no
# namespace can be made).
#
# The SDK is installed with `npm ci` into a cache folder (RENC_SDK_CACHE,
# default ~/.cache/reencrypt-tests), once per package-lock.json.  Without
# Node.js 20 or later, or when the npm registry cannot be reached, the test
# is skipped (exit 77) and says why.
source "$(dirname "$0")/lib.sh"
source "$RENC_TESTS_DIR/vault/vaultlib.sh"

SDK_SRC=$RENC_TESTS_DIR/vault/sdk
VAULT_HOST=localvault.vault.localhost

skip() {
  echo "SKIP: $*"
  exit 77
}

# _sdk_install: sets SDK_MODULES to the node_modules folder of the pinned SDK,
# installing it first when the cache has none for this package-lock.json.
# Returns 77 when it cannot be installed for want of Node.js or of the
# registry, 1 when npm failed otherwise, and prints why.
_sdk_install() {
  command -v node >/dev/null && command -v npm >/dev/null ||
    { echo "Node.js and npm are not installed"; return 77; }
  node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)' ||
    { echo "Node.js $(node --version) is older than 20, which @azure/identity 4.13 needs"; return 77; }
  npm_ci_cached "$SDK_SRC" vault-sdk || return $?
  SDK_MODULES=$NPM_MODULES
}

# sdk ARGS...: conformance.js with the SDK, resolving *.localhost to loopback.
# Each call takes a few seconds; 300 s is a bound for a stuck one, not a pace.
sdk() {
  NODE_PATH=$SDK_MODULES timeout 300 node --require "$SDK_SRC/loopback.js" \
    "$SDK_SRC/conformance.js" "$@"
}

# sdk_checks WHAT ARGS...: runs `sdk ARGS...`, counting each of its
# "ok:"/"FAIL:" lines as a pass or a failure here; its exit status must agree.
sdk_checks() {
  local what=$1 line oks=0 fails=0
  shift
  run sdk "$@"
  while IFS= read -r line; do
    case $line in
      ok:*) pass "sdk ${line#ok: }"; oks=$((oks + 1)) ;;
      FAIL:*) fail "sdk ${line#FAIL: }"; fails=$((fails + 1)) ;;
    esac
  done <"$WORK/out"
  if [ "$RC" -ne 0 ] && [ "$fails" -eq 0 ] || [ "$oks" -eq 0 ]; then
    fail "$what: conformance.js exit $RC with $oks checks passed"
    _show_last
  fi
}

# port_443: the service's URL form (run by this script inside `unshare -n`,
# with SDK_MODULES set): the SDK and the binary page through nextLinks that
# spell :443 for a vault URL without a port, the binary names the vault and
# key in other spellings (host case, :443, name case), and a blob crosses
# from the binary to the SDK under that vault.
port_443() {
  ip link set lo up || { fail "no loopback in the namespace"; finish; }
  vault_start "$WORK/vault" --port 443 --vault-host "$VAULT_HOST" ||
    { fail "the vault server did not start on 443"; finish; }
  check "served as https://$VAULT_HOST, no port" [ "$VAULT_URL" = "https://$VAULT_HOST" ]
  export RENC_CA_FILE=$VAULT_CA NODE_EXTRA_CA_CERTS=$VAULT_CA
  make_paged_key
  vault_create_key sdk-rsa RSA 2048 >/dev/null || fail "create sdk-rsa"
  sdk_checks "SDK paging on 443" paging sdk
  local token next
  token=$(curl -sS --cacert "$VAULT_CA" --data-urlencode "client_secret@$AZURE_CLIENT_SECRET_FILE" \
    -d "client_id=$AZURE_CLIENT_ID" -d grant_type=client_credentials \
    --data-urlencode "scope=$VAULT_RESOURCE/.default" \
    "$AZURE_AUTHORITY_HOST/$AZURE_TENANT_ID/oauth2/v2.0/token" | jq -r .access_token)
  next=$(curl -sS --cacert "$VAULT_CA" -H "Authorization: Bearer $token" \
    "$VAULT_URL/keys/sdk-paged/versions?api-version=7.4&maxresults=25" | jq -r .nextLink)
  check "nextLink spells :443 as the service does ($next)" \
    [ "${next%%/versions\?*}" = "https://$VAULT_HOST:443/keys/sdk-Paged" ]
  # The binary, on the same vault: every version through nextLink's :443
  # (issue 14, fault 2), whatever the spelling of host and name (fault 4).
  local ref
  for ref in "akv:$VAULT_URL/keys/sdk-Paged" "akv:https://LocalVault.vault.localhost/keys/SDK-PAGED" \
             "akv:https://$VAULT_HOST:443/keys/sdk-paged"; do
    expect_ok renc keys versions "$ref"
    check "keys versions $ref lists all 30 versions" \
      [ "$(grep -c "^akv:https://$VAULT_HOST/keys/sdk-Paged/[0-9a-f]\{32\} " "$WORK/out")" = 30 ]
  done
  mkdata "$WORK/p" 5000
  expect_ok renc encrypt --env sdkenv --key "akv:https://$VAULT_HOST:443/keys/SDK-RSA" "$WORK/p" "$WORK/p.renc"
  check "the slot keeps the service's spelling: no port, the stored name" \
    grep -q "^akv:https://$VAULT_HOST/keys/sdk-rsa/[0-9a-f]\{32\}$" < <(inspect_field "$WORK/p.renc" '.slots[0].ref')
  sdk_checks "SDK opens on 443" open "$WORK/p.renc" "$WORK/p.out"
  expect_same "the SDK side opens the binary's blob under a port-less vault URL" "$WORK/p" "$WORK/p.out"
  finish
}

# make_paged_key: sdk-Paged with 30 versions (pages of 25), the later 29 made
# under another spelling: the service keeps the spelling a key was created with.
make_paged_key() {
  local i name
  for i in $(seq 1 30); do
    name=sdk-Paged
    [ "$i" -gt 1 ] && name=SDK-paged
    vault_admin POST "/keys/$name" '{"kty":"oct-HSM","size":128}' >/dev/null || fail "sdk-Paged version $i"
  done
}

if [ "${1:-}" = --port-443 ]; then
  port_443
fi

started=$SECONDS
SDK_MODULES=
_sdk_install >"$WORK/sdk-install.msg" 2>&1
case $? in
  0) ;;
  77) skip "$(cat "$WORK/sdk-install.msg")" ;;
  *) fail "npm ci of tests/vault/sdk: $(cat "$WORK/sdk-install.msg")"; finish ;;
esac
echo "SDK ready in $((SECONDS - started)) s ($SDK_MODULES)"

# ---- the double, as a named vault, with a second client that may not read keys
(umask 077 && python3 -c 'import secrets, sys; sys.stdout.write(secrets.token_urlsafe(32))' \
   >"$WORK/remote.secret") || { fail "remote client secret"; finish; }
vault_start "$WORK/vault" --vault-host "$VAULT_HOST" --client "sdk-remote=$WORK/remote.secret" ||
  { fail "the vault server did not start"; finish; }
check "the vault is served under its name" [ "$VAULT_URL" = "https://$VAULT_HOST:$VAULT_PORT" ]
check "its challenge resource is the parent domain" [ "$VAULT_RESOURCE" = "https://vault.localhost" ]
export RENC_CA_FILE=$VAULT_CA NODE_EXTRA_CA_CERTS=$VAULT_CA
export SDK_REMOTE_CLIENT_ID=sdk-remote SDK_REMOTE_SECRET_FILE=$WORK/remote.secret
# Without get the SDK cannot read the key, so it sends every operation to the vault.
vault_admin POST /access '{"client":"sdk-remote","permissions":["wrapKey","unwrapKey"]}' >/dev/null ||
  fail "access for sdk-remote"

make_paged_key
RSA_KID=$(vault_create_key sdk-rsa RSA 2048) || fail "create sdk-rsa"
HSM_KID=$(vault_create_key sdk-rsahsm RSA-HSM 2048) || fail "create sdk-rsahsm"
vault_create_key sdk-oct128 oct-HSM 128 >/dev/null || fail "create sdk-oct128"
vault_create_key sdk-oct192 oct-HSM 192 >/dev/null || fail "create sdk-oct192"
OCT_KID=$(vault_create_key sdk-oct256 oct-HSM 256) || fail "create sdk-oct256"
vault_admin POST /keys/sdk-disabled '{"kty":"RSA","enabled":false}' >/dev/null ||
  fail "create sdk-disabled"

# ---- the SDK against the double ----------------------------------------------
vault_admin POST /stats/reset >/dev/null
sdk_checks "SDK checks" checks sdk
check "the SDK asked for the tenant's OpenID configuration" \
  grep -q "GET /$AZURE_TENANT_ID/v2.0/.well-known/openid-configuration 200" "$VAULT_LOG"
check "the SDK followed a nextLink" grep -q 'GET /keys/sdk-Paged/versions?.*skiptoken=\*.* 200 ' "$VAULT_LOG"
check "the SDK sent api-version 2025-07-01 by default" grep -q 'api-version=2025-07-01' "$VAULT_LOG"
check "no request of the SDK met a 404 (a route the double lacks, or a key it lost)" \
  [ "$(vault_stats_field by_status | jq '."404" // 0')" = 0 ]

vault_admin POST /stats/reset >/dev/null
sdk_checks "SDK through a 429" retry "$RSA_KID"
check "the double answered one 429" [ "$(vault_stats_field by_status | jq '."429" // 0')" = 1 ]

# ---- blobs sealed by the SDK side, opened by the binary -------------------------
mkdir -p "$WORK/fromsdk" "$WORK/frombin"
sdk_checks "SDK seals" seal \
  "$WORK/fromsdk/a.renc" "$RSA_KID" 2 12 10000 sdkenv \
  "$WORK/fromsdk/b.renc" "$HSM_KID" 3 20 5000 sdkenv \
  "$WORK/fromsdk/c.renc" "$OCT_KID" 4 12 0 sdkenv
check "a's slot is the versioned kid, alg 2 (RSA-OAEP-256)" \
  [ "$(inspect_field "$WORK/fromsdk/a.renc" '.slots[0] | "\(.ref) \(.alg)"')" = "akv:$RSA_KID 2" ]
for b in a b c; do
  expect_ok renc decrypt "$WORK/fromsdk/$b.renc" "$WORK/fromsdk/$b.out"
  expect_same "the binary opens the SDK's blob $b" "$WORK/fromsdk/$b.renc.plain" "$WORK/fromsdk/$b.out"
done
expect_ok renc verify --progress=none "$WORK/fromsdk/a.renc" "$WORK/fromsdk/b.renc" "$WORK/fromsdk/c.renc"
expect_out "3 blobs verified" "0 failed"

# ---- blobs sealed by the binary, opened by the SDK side -------------------------
mkdata "$WORK/frombin/p1" 10000
mkdata "$WORK/frombin/p2" 70000
mkdata "$WORK/frombin/p3" 3000
expect_ok renc encrypt --env sdkenv --key "akv:$VAULT_URL/keys/sdk-rsa" --segment-size 4K \
  "$WORK/frombin/p1" "$WORK/frombin/p1.renc"
expect_ok renc encrypt --env sdkenv --key "akv:$VAULT_URL/keys/sdk-oct256" \
  "$WORK/frombin/p2" "$WORK/frombin/p2.renc"
expect_exit_stdin 0 "$WORK/frombin/p3" renc encrypt --env sdkenv --key "akv:$VAULT_URL/keys/sdk-rsahsm" \
  --segment-size 4K - "$WORK/frombin/p3.renc"
check "the binary's slot names the version the vault answered, alg 4 on oct-HSM" \
  [ "$(inspect_field "$WORK/frombin/p2.renc" '.slots[0] | "\(.ref) \(.alg)"')" = "akv:$OCT_KID 4" ]
check "p3 was sealed from a stream (length unknown)" \
  [ "$(inspect_field "$WORK/frombin/p3.renc" '.plaintext_len')" = null ]
sdk_checks "SDK opens" open \
  "$WORK/frombin/p1.renc" "$WORK/frombin/p1.out" \
  "$WORK/frombin/p2.renc" "$WORK/frombin/p2.out" \
  "$WORK/frombin/p3.renc" "$WORK/frombin/p3.out"
for p in p1 p2 p3; do
  expect_same "the SDK side opens the binary's blob $p" "$WORK/frombin/$p" "$WORK/frombin/$p.out"
done

# ---- the service's URL form, on port 443 in a network namespace of its own -------
ns=()
if unshare -n true 2>/dev/null; then
  ns=(unshare -n)
elif unshare -rn true 2>/dev/null; then
  ns=(unshare -rn)
fi
if [ ${#ns[@]} -eq 0 ] || ! command -v ip >/dev/null; then
  echo "note: no network namespace (unshare -n) or no ip(8) here: the port-443 form is not checked"
else
  run env SDK_MODULES="$SDK_MODULES" "${ns[@]}" bash "$0" --port-443
  if [ "$RC" -eq 0 ]; then
    pass "the port-443 form: $(tail -n 1 "$WORK/out")"
  else
    fail "the port-443 form (in ${ns[*]}): exit $RC"
    sed 's/^/    /' "$WORK/out" "$WORK/err" >&2
  fi
fi

echo "test_akv_sdk: $((SECONDS - started)) s in all"
finish
