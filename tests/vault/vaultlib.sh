# tests/vault/vaultlib.sh — bash helpers for tests that need the local key
# vault test double (vault_server.py); sourced, not run.
#
#   vault_start DIR [SERVER ARGS...]
#       Makes a client secret (DIR/client.secret, 0600), starts the server on
#       free ports with --client renc-test=DIR/client.secret, waits up to 20 s
#       for DIR/ready.json and exports
#         VAULT_URL VAULT_CA VAULT_PORT VAULT_HTTP_PORT VAULT_PID VAULT_DIR
#         VAULT_LOG (the request log) VAULT_IMDS_ENDPOINT
#         VAULT_IDENTITY_ENDPOINT VAULT_IDENTITY_HEADER (App Service identity)
#         AZURE_TENANT_ID AZURE_CLIENT_ID AZURE_CLIENT_SECRET_FILE
#         AZURE_AUTHORITY_HOST (https://127.0.0.1:PORT: the server issues tokens too)
#         VAULT_RESOURCE (the token audience the challenge names)
#       With --vault-host NAME (e.g. localvault.vault.localhost) VAULT_URL is
#       https://NAME:PORT and VAULT_RESOURCE its parent domain.
#       The server is stopped when the shell exits: the EXIT trap gains a
#       vault_stop in front of whatever it already did (tests/e2e/lib.sh's
#       clean-up, for one; source lib.sh first).  --exit-with makes the server
#       leave by itself if the shell dies without running its trap.
#   vault_stop                 stops every server this shell started; safe to repeat
#   vault_admin METHOD PATH [JSON]
#       Calls the admin API (PATH with or without the /_admin prefix), prints
#       the response body; returns 1 (body on stderr) unless the status is 2xx.
#   vault_stats_field NAME     prints one field of /_admin/stats (a.b for nested)
#   vault_create_key NAME [KTY [SIZE]]
#       Creates a new version of key NAME (RSA 2048 by default), prints its kid.
#
# Needs python3 (the first on PATH runs the server) and curl.

VAULT_SERVER_PY=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/vault_server.py
_VAULT_PIDS=()
_VAULT_TRAP_SET=

vault_start() {
  local dir=${1:?vault_start DIR [args...]}
  shift
  mkdir -p "$dir" || return 1
  dir=$(cd "$dir" && pwd)
  rm -f "$dir/ready.json"

  # Secrets travel in files, never on a command line.  No trailing newline:
  # the file holds exactly the secret (curl's @file and clients read it as is).
  (umask 077 && python3 -c 'import secrets, sys; sys.stdout.write(secrets.token_urlsafe(32))' \
     >"$dir/client.secret") || return 1
  local identity_header
  identity_header=$(python3 -c 'import secrets; print(secrets.token_hex(16))') || return 1

  python3 "$VAULT_SERVER_PY" --dir "$dir" --port 0 --http-port 0 \
    --client "renc-test=$dir/client.secret" --identity-header "$identity_header" \
    --log "$dir/vault.log" --exit-with "$$" "$@" \
    >"$dir/server.out" 2>&1 &
  local pid=$!
  _VAULT_PIDS+=("$pid")
  _vault_install_trap

  local i
  for ((i = 0; i < 200; i++)); do
    [ -s "$dir/ready.json" ] && break
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "vault_start: the server exited; its output:" >&2
      cat "$dir/server.out" >&2
      return 1
    fi
    sleep 0.1
  done
  if [ ! -s "$dir/ready.json" ]; then
    echo "vault_start: no $dir/ready.json after 20 s; server output:" >&2
    cat "$dir/server.out" >&2
    return 1
  fi

  local fields
  fields=$(python3 -c 'import json, sys
r = json.load(open(sys.argv[1]))
print(r["vault"], r["ca"], r["port"], r["http_port"], r["tenant"],
      r["imds_endpoint"], r["identity_endpoint"], r["authority"], r["resource"])' \
    "$dir/ready.json") || return 1
  read -r VAULT_URL VAULT_CA VAULT_PORT VAULT_HTTP_PORT AZURE_TENANT_ID \
    VAULT_IMDS_ENDPOINT VAULT_IDENTITY_ENDPOINT AZURE_AUTHORITY_HOST VAULT_RESOURCE <<<"$fields"
  export VAULT_URL VAULT_CA VAULT_PORT VAULT_HTTP_PORT AZURE_TENANT_ID \
    VAULT_IMDS_ENDPOINT VAULT_IDENTITY_ENDPOINT
  export VAULT_PID=$pid VAULT_DIR=$dir VAULT_LOG=$dir/vault.log
  export VAULT_IDENTITY_HEADER=$identity_header
  export AZURE_CLIENT_ID=renc-test
  export AZURE_CLIENT_SECRET_FILE=$dir/client.secret
  export AZURE_AUTHORITY_HOST VAULT_RESOURCE
}

# Put vault_stop in front of the EXIT trap already set, once.  `trap -p`
# prints the command quoted for the shell; `eval set --` unquotes it.
_vault_install_trap() {
  [ -n "$_VAULT_TRAP_SET" ] && return 0
  local previous
  previous=$(trap -p EXIT)
  if [ -n "$previous" ]; then
    eval "set -- $previous"       # trap -- 'COMMAND' EXIT
    trap "vault_stop; $3" EXIT
  else
    trap vault_stop EXIT
  fi
  _VAULT_TRAP_SET=1
}

vault_stop() {
  local pid i
  for pid in "${_VAULT_PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || continue
    for ((i = 0; i < 50; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  _VAULT_PIDS=()
  return 0
}

vault_admin() {
  local method=${1:?vault_admin METHOD PATH [JSON]} path=${2:?vault_admin METHOD PATH [JSON]}
  local json=${3-}
  [ "${path#/_admin}" = "$path" ] && path=/_admin$path
  local body status
  body=$(mktemp "${VAULT_DIR:-${TMPDIR:-/tmp}}/admin.XXXXXX") || return 1
  local args=(-sS --cacert "$VAULT_CA" -X "$method" -o "$body" -w '%{http_code}')
  [ -n "$json" ] && args+=(-H 'Content-Type: application/json' --data-binary "$json")
  status=$(curl "${args[@]}" "$VAULT_URL$path")
  local rc=$?
  if [ $rc -ne 0 ] || [ "${status:0:1}" != 2 ]; then
    echo "vault_admin $method $path: curl exit $rc, HTTP ${status:-none}" >&2
    cat "$body" >&2 && echo >&2
    rm -f "$body"
    return 1
  fi
  cat "$body"
  echo
  rm -f "$body"
}

vault_stats_field() {
  local name=${1:?vault_stats_field NAME}
  vault_admin GET /stats | python3 -c 'import json, sys
value = json.load(sys.stdin)
for part in sys.argv[1].split("."):
    if not isinstance(value, dict) or part not in value:
        sys.exit("vault_stats_field: no field %s in /_admin/stats" % sys.argv[1])
    value = value[part]
print(json.dumps(value) if isinstance(value, (dict, list)) else value)' "$name"
}

vault_create_key() {
  local name=${1:?vault_create_key NAME [KTY [SIZE]]} kty=${2:-RSA} size=${3-}
  local json="{\"kty\":\"$kty\"${size:+,\"size\":$size}}"
  vault_admin POST "/keys/$name" "$json" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["key"]["kid"])'
}

# vault_federated_token FILE CLIENT [LIFETIME_S]
#   Mints a service-account token for CLIENT (the double is the cluster's
#   OIDC issuer: POST /_admin/federated/token), writes it to FILE as the
#   kubelet does (a new file renamed over the old one, mode 0600) and prints
#   its jti (for POST /_admin/federated/revoke).
vault_federated_token() {
  local file=${1:?vault_federated_token FILE CLIENT [LIFETIME_S]} client=${2:?client}
  local lifetime=${3:-3600}
  vault_admin POST /federated/token "{\"client\":\"$client\",\"lifetime\":$lifetime}" |
    python3 -c 'import json, os, sys
answer = json.load(sys.stdin)
path = sys.argv[1]
tmp = path + ".new"
fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
os.write(fd, answer["token"].encode() + b"\n")
os.close(fd)
os.replace(tmp, path)
print(answer["jti"])' "$file"
}

# vault_grants_field NAME   one count of GET /_admin/grants: "client_secret",
#   "certificate", "federated", or "KIND:CLIENT"; 0 when none.
vault_grants_field() {
  vault_admin GET /grants | python3 -c 'import json, sys
print(json.load(sys.stdin).get(sys.argv[1], 0))' "${1:?vault_grants_field NAME}"
}
