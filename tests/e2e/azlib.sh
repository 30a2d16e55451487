# tests/e2e/azlib.sh — bash helpers for tests that need blob storage: Azurite
# (Microsoft's local emulator of Azure Blob Storage), Microsoft's JavaScript
# blob client (tests/azurite/sdk.js) and the fault-injecting proxy
# (tests/e2e/blob_proxy.py).  Sourced after lib.sh, not run.
#
#   az_setup
#       Installs the pinned packages (tests/azurite/package-lock.json) with
#       `npm ci` into a cache folder (RENC_SDK_CACHE, default
#       ~/.cache/reencrypt-tests), once per lock file; later tests reuse it.
#       Sets AZ_MODULES.  Returns 77 after printing "SKIP: why" without
#       Node.js 20 or later, npm, openssl or the npm registry; 1 when npm
#       failed with the registry reachable.  Use: `az_setup || exit $?`, in
#       the test's own shell (not in $(...)): it also starts the SDK server
#       az_sdk uses (see there).
#   az_start [--https] [AZURITE ARGS...]
#       Starts Azurite's blob service on 127.0.0.1, a free port, memory only,
#       in a folder of its own under $WORK; waits until it answers (a couple
#       of seconds) and exports
#         AZ_PORT AZ_PID AZ_DIR AZ_LOG
#         AZ_ENDPOINT / AZ_URL_BASE  http(s)://127.0.0.1:PORT/devstoreaccount1
#                       (path style: a tool URL is $AZ_URL_BASE/CONTAINER[/PREFIX])
#         AZ_ACCOUNT AZ_ACCOUNT_KEY  the emulator's well-known dev account
#         AZURE_STORAGE_CONNECTION_STRING  explicit, with BlobEndpoint
#         AZ_CA         with --https: the PEM of a throw-away CA that signed
#                       the server's certificate for 127.0.0.1 and localhost
#                       (curl --cacert, RENC_CA_FILE for the tool); else empty
#       Each call starts another server (the AZ_* name the newest); all are
#       stopped by az_stop, which the EXIT trap runs.  A server also leaves by
#       itself when this shell is gone (tests/azurite/exit_with.js).
#       AZURITE ARGS go to azurite-blob as they are (--loose,
#       --skipApiVersionCheck, ...); AZURITE_ACCOUNTS in the environment adds
#       accounts; AZ_MEMORY_MB (default 2048) bounds the blob bytes it keeps.
#   az_stop        stops every server and proxy this shell started; safe to repeat
#   az_e2e_begin   the start of a test of the binary on blob storage: az_setup,
#                  python3 cryptography (77 without), RENC_BIN absolute, cd $WORK,
#                  section DESC (prints the time since), az_start
#   az_sdk ARGS... runs a command of tests/azurite/sdk.js (the SDK against
#                  AZURE_STORAGE_CONNECTION_STRING; trusts AZ_CA): stdout,
#                  stderr and exit status as if run alone.  Loading the SDK
#                  takes about half a second, so az_setup starts one
#                  `sdk.js serve` per test and az_sdk hands it each command
#                  (curl on a unix socket; one at a time, 120 s at most);
#                  AZ_SDK_DIRECT=1 runs a node process per command instead,
#                  as does a command naming /dev/stdout or another /dev file.
#   bp_start [UPSTREAM [CAFILE]]
#       Starts tests/e2e/blob_proxy.py in front of UPSTREAM (default: the
#       newest Azurite, http://127.0.0.1:AZ_PORT or https; CAFILE, default
#       AZ_CA, to trust over https) and exports
#         BP_PORT BP_PID BP_ORIGIN (http://127.0.0.1:BP_PORT)
#         BP_ENDPOINT / BP_URL_BASE  http://127.0.0.1:BP_PORT/devstoreaccount1
#         BP_CONNECTION_STRING       AZURE_STORAGE_CONNECTION_STRING through it
#       The proxy speaks plain HTTP to its clients whatever UPSTREAM is.
#       Its "overwrite" rules write with the key of the
#       AZURE_STORAGE_CONNECTION_STRING it was started with.
#   bp_rule JSON   adds a fault rule (see blob_proxy.py); prints its id
#   bp_stats       prints the proxy's counters (JSON); bp_stats_field KEY.FIELD
#   bp_log         prints the requests it saw (JSON lines)
#   bp_clear       drops every rule and zeroes the counters and the log
#
# Needs node (20 or later), npm, openssl, python3, curl and jq.

AZ_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../azurite" && pwd)
AZ_PROXY_PY=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/blob_proxy.py
AZ_ACCOUNT=devstoreaccount1
# The emulator's published development key (Azurite's README): not a secret.
AZ_ACCOUNT_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
AZ_CA=
_AZ_PIDS=()
_AZ_COUNT=0
_AZ_TRAP_SET=

# az_setup: see the header; the install is lib.sh's npm_ci_cached.
az_setup() {
  [ -n "${AZ_MODULES:-}" ] && [ -e "$AZ_MODULES/azurite" ] && return 0
  local tool
  for tool in node npm openssl python3 curl jq; do
    command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed"; return 77; }
  done
  node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)' ||
    { echo "SKIP: Node.js $(node --version) is older than 20, which @azure/storage-blob 12.32 needs"; return 77; }
  # Azurite 3.37 declares Node 22 but runs on 20 (what the machines have):
  # npm only warns, and the tests hold it to its work.
  local msg=${WORK:-${TMPDIR:-/tmp}}/npm-azurite.msg rc
  npm_ci_cached "$AZ_SRC" azurite >"$msg" 2>&1
  rc=$?
  case $rc in
    0) ;;
    77) echo "SKIP: $(cat "$msg")"; return 77 ;;
    *) cat "$msg"; return "$rc" ;;
  esac
  export AZ_MODULES=$NPM_MODULES
  [ -n "${AZ_SDK_DIRECT:-}" ] || _az_sdk_serve
}

# _az_sdk_serve: starts `sdk.js serve` on a socket in $WORK, trusting the
# test's CA (made now: every --https server of the test uses it).
_az_sdk_serve() {
  local parent=${WORK:-${TMPDIR:-/tmp}}
  _az_tls "$parent/azurite-tls" || return 1
  _AZ_SDK_DIR=$parent/sdk-serve
  _AZ_SDK_CA=$parent/azurite-tls/ca.pem
  mkdir -p "$_AZ_SDK_DIR" || return 1
  (NODE_PATH=$AZ_MODULES NODE_EXTRA_CA_CERTS=$_AZ_SDK_CA RENC_AZ_EXIT_WITH=$$ exec node \
     --require "$AZ_SRC/exit_with.js" "$AZ_SRC/sdk.js" serve "$_AZ_SDK_DIR/sock") \
     >"$_AZ_SDK_DIR/log" 2>&1 &
  local pid=$! i
  _AZ_PIDS+=("$pid")
  _az_install_trap
  for ((i = 0; i < 300; i++)); do
    [ -S "$_AZ_SDK_DIR/sock" ] && { _AZ_SDK_SOCK=$_AZ_SDK_DIR/sock; return 0; }
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  echo "az_setup: sdk.js serve did not start:" >&2
  cat "$_AZ_SDK_DIR/log" >&2
  return 1
}

# _az_tls DIR: a throw-away CA (DIR/ca.pem) and a server certificate it
# signed for 127.0.0.1 and localhost (DIR/server.pem, DIR/server.key); made
# once per test.  P-256 keys: fast to make, and every client takes them.
_az_tls() {
  local dir=$1
  [ -s "$dir/server.pem" ] && return 0
  mkdir -p "$dir" || return 1
  (
    cd "$dir" || exit 1
    umask 077
    openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
      -keyout ca.key -out ca.pem -days 2 -subj "/CN=renc test blob CA" \
      -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign &&
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
      -keyout server.key -out server.csr -subj "/CN=127.0.0.1" &&
    printf '%s\n' 'subjectAltName=IP:127.0.0.1,DNS:localhost' 'basicConstraints=CA:FALSE' \
      'keyUsage=critical,digitalSignature' 'extendedKeyUsage=serverAuth' >server.ext &&
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
      -days 2 -extfile server.ext -out server.pem &&
    chmod 644 ca.pem server.pem
  ) >"$dir/openssl.log" 2>&1 || { cat "$dir/openssl.log" >&2; return 1; }
}

az_start() {
  local https=
  if [ "${1-}" = --https ]; then https=1; shift; fi
  [ -n "${AZ_MODULES:-}" ] || { echo "az_start: run az_setup first" >&2; return 1; }
  local parent=${WORK:-${TMPDIR:-/tmp}}
  _AZ_COUNT=$((_AZ_COUNT + 1))
  local dir=$parent/azurite.$_AZ_COUNT
  mkdir -p "$dir" || return 1
  local args=(--blobHost 127.0.0.1 --blobPort 0 --inMemoryPersistence
              --extentMemoryLimit "${AZ_MEMORY_MB:-2048}" --silent --disableTelemetry)
  local scheme=http
  if [ -n "$https" ]; then
    _az_tls "$parent/azurite-tls" || { echo "az_start: could not make the TLS files" >&2; return 1; }
    args+=(--cert "$parent/azurite-tls/server.pem" --key "$parent/azurite-tls/server.key")
    scheme=https
  fi
  # --location is the folder for anything Azurite writes besides the blobs
  # (none with --inMemoryPersistence, but never the test's working folder).
  (cd "$dir" && RENC_AZ_EXIT_WITH=$$ exec node --require "$AZ_SRC/exit_with.js" \
     "$AZ_MODULES/azurite/dist/src/blob/main.js" "${args[@]}" "$@") >"$dir/azurite.log" 2>&1 &
  local pid=$!
  _AZ_PIDS+=("$pid")
  _az_install_trap

  # The log says "... successfully listens on http://127.0.0.1:NNNNN".
  local i line port=
  for ((i = 0; i < 300; i++)); do
    line=$(grep -m 1 -o 'successfully listens on https\?://127\.0\.0\.1:[0-9]*' "$dir/azurite.log")
    [ -n "$line" ] && { port=${line##*:}; break; }
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "az_start: Azurite exited; its output:" >&2
      cat "$dir/azurite.log" >&2
      return 1
    fi
    sleep 0.05
  done
  [ -n "$port" ] || { echo "az_start: no port in $dir/azurite.log after 15 s:" >&2; cat "$dir/azurite.log" >&2; return 1; }

  export AZ_PORT=$port AZ_PID=$pid AZ_DIR=$dir AZ_LOG=$dir/azurite.log
  export AZ_ENDPOINT=$scheme://127.0.0.1:$port/$AZ_ACCOUNT
  export AZ_URL_BASE=$AZ_ENDPOINT
  export AZ_CA=${https:+$parent/azurite-tls/ca.pem}
  export AZURE_STORAGE_CONNECTION_STRING="DefaultEndpointsProtocol=$scheme;AccountName=$AZ_ACCOUNT;AccountKey=$AZ_ACCOUNT_KEY;BlobEndpoint=$AZ_ENDPOINT;"

  # Listening is not yet answering: wait for any HTTP answer (an unsigned
  # request gets a 403, which is an answer).
  local code
  for ((i = 0; i < 100; i++)); do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 ${AZ_CA:+--cacert "$AZ_CA"} \
      "$AZ_ENDPOINT?comp=list")
    [ "$code" != 000 ] && return 0
    sleep 0.05
  done
  echo "az_start: Azurite on port $port does not answer:" >&2
  cat "$dir/azurite.log" >&2
  return 1
}

# Put az_stop in front of the EXIT trap already set, once (as vaultlib.sh).
_az_install_trap() {
  [ -n "$_AZ_TRAP_SET" ] && return 0
  local previous
  previous=$(trap -p EXIT)
  if [ -n "$previous" ]; then
    eval "set -- $previous"       # trap -- 'COMMAND' EXIT
    trap "az_stop; $3" EXIT
  else
    trap az_stop EXIT
  fi
  _AZ_TRAP_SET=1
}

az_stop() {
  local pid i
  for pid in "${_AZ_PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || continue
    for ((i = 0; i < 50; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.05
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  _AZ_PIDS=()
  return 0
}

az_sdk() {
  [ -n "${AZ_MODULES:-}" ] || { echo "az_sdk: run az_setup first" >&2; return 1; }
  # A file of this shell's (/dev/stdout, a /dev/fd/N of <(...)) means
  # nothing to the server: such a command runs in a process of its own.
  local direct=${AZ_SDK_DIRECT:-} a
  for a in "$@"; do
    case $a in /dev/* | /proc/*) direct=1 ;; esac
  done
  if [ -n "${_AZ_SDK_SOCK:-}" ] && [ -z "$direct" ] &&
     { [ -z "${AZ_CA:-}" ] || [ "$AZ_CA" = "$_AZ_SDK_CA" ]; }; then
    _az_sdk_send "$@"
    return
  fi
  if [ -n "${AZ_CA:-}" ]; then
    NODE_PATH=$AZ_MODULES NODE_EXTRA_CA_CERTS=$AZ_CA timeout 120 node "$AZ_SRC/sdk.js" "$@"
  else
    NODE_PATH=$AZ_MODULES timeout 120 node "$AZ_SRC/sdk.js" "$@"
  fi
}

# _az_sdk_send ARGS...: one command through the SDK server.
_az_sdk_send() {
  local out err code
  out=$(mktemp "$_AZ_SDK_DIR/out.XXXXXX") && err=$(mktemp "$_AZ_SDK_DIR/err.XXXXXX") || return 1
  code=$(jq -nc --arg cwd "$PWD" --arg out "$out" --arg err "$err" \
           --arg conn "${AZURE_STORAGE_CONNECTION_STRING-}" \
           '{args: $ARGS.positional, cwd: $cwd, conn: $conn, stdout: $out, stderr: $err}' --args -- "$@" |
         curl -s --max-time 120 --unix-socket "$_AZ_SDK_SOCK" --data-binary @- http://sdk/run)
  cat "$out"
  cat "$err" >&2
  rm -f "$out" "$err"
  [[ $code =~ ^[0-9]+$ ]] || { echo "az_sdk: the SDK server gave no answer (see $_AZ_SDK_DIR/log)" >&2; return 1; }
  return "$code"
}

bp_start() {
  local upstream=${1:-${AZ_ENDPOINT%/"$AZ_ACCOUNT"}} ca=${2:-${AZ_CA:-}}
  local dir=${WORK:-${TMPDIR:-/tmp}}/blob_proxy.$((++_AZ_COUNT))
  mkdir -p "$dir" || return 1
  python3 "$AZ_PROXY_PY" --upstream "$upstream" ${ca:+--cafile "$ca"} \
    --port-file "$dir/port" --exit-with $$ >"$dir/proxy.log" 2>&1 &
  local pid=$! i
  _AZ_PIDS+=("$pid")
  _az_install_trap
  for ((i = 0; i < 200; i++)); do
    [ -s "$dir/port" ] && break
    kill -0 "$pid" 2>/dev/null || { echo "bp_start: the proxy exited:" >&2; cat "$dir/proxy.log" >&2; return 1; }
    sleep 0.05
  done
  [ -s "$dir/port" ] || { echo "bp_start: no port after 10 s" >&2; return 1; }
  export BP_PORT=$(<"$dir/port") BP_PID=$pid BP_LOG=$dir/proxy.log
  export BP_ORIGIN=http://127.0.0.1:$BP_PORT
  export BP_ENDPOINT=$BP_ORIGIN/$AZ_ACCOUNT BP_URL_BASE=$BP_ORIGIN/$AZ_ACCOUNT
  export BP_CONNECTION_STRING="DefaultEndpointsProtocol=http;AccountName=$AZ_ACCOUNT;AccountKey=$AZ_ACCOUNT_KEY;BlobEndpoint=$BP_ENDPOINT;"
}

# _bp_call METHOD PATH [JSON]: the proxy's control API; prints the body,
# fails (body on stderr) unless 2xx.
_bp_call() {
  local out code
  out=$(curl -sS -X "$1" -w '\n%{http_code}' ${3:+-H 'Content-Type: application/json' --data-binary "$3"} \
    "$BP_ORIGIN/_proxy/$2") || return 1
  code=${out##*$'\n'}
  out=${out%$'\n'*}
  [ "${code:0:1}" = 2 ] || { echo "blob_proxy $1 $2: HTTP $code: $out" >&2; return 1; }
  printf '%s\n' "$out"
}

bp_rule() { _bp_call POST rules "${1:?bp_rule JSON}"; }
bp_stats() { _bp_call GET stats; }
bp_log() { _bp_call GET log; }
bp_clear() { _bp_call POST clear '{}' >/dev/null; }

# bp_stats_field KEY FIELD: one counter, e.g. `bp_stats_field "PUT block" bytes`; 0 when absent.
bp_stats_field() {
  bp_stats | python3 -c 'import json, sys
print(json.load(sys.stdin).get(sys.argv[1], {}).get(sys.argv[2], 0))' "${1:?KEY}" "${2:?FIELD}"
}

# az_e2e_begin: what every blob storage test of the binary starts with:
# the packages (77 without them), python3 cryptography for renc_check.py
# (77 without it), RENC_BIN made absolute, $WORK as the current folder, a
# section DESC helper that prints the time since, and one Azurite started.
az_e2e_begin() {
  az_setup || exit $?
  have_pycheck || { echo "SKIP: python3 cryptography is needed for renc_check.py"; exit 77; }
  RENC_BIN=$(realpath "$RENC_BIN")
  cd "$WORK" || exit 2
  T0=$SECONDS
  section() { echo "== $* ($((SECONDS - T0)) s)"; }
  az_start || { echo "FAIL: Azurite did not start"; cat "${AZ_LOG:-/dev/null}" >&2; exit 1; }
}
