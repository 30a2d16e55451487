# tests/e2e/pglib.sh — a private PostgreSQL for a test or a benchmark;
# sourced.  Debian's postgresql-15 server binaries, a cluster made by initdb
# in DIR, listening only on a Unix socket in DIR (as the postgres user when
# root: initdb refuses root).
#   pg_start DIR [nosync]   starts it (nosync: fsync off, for tests that
#                  need no durability); sets PG_URI
#                  (postgresql:///postgres?host=DIR&user=renc); returns 77
#                  (saying why) when it cannot be had here
#   pg_stop        stops it (call it from the caller's EXIT trap)
PG_DIR=
PG_AS=()

pg_start() {
  PG_DIR=$1
  local sync=""
  [ "${2:-}" = nosync ] && sync=" -F"
  PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  if [ -z "$PGBIN" ] || [ ! -x "$PGBIN/initdb" ]; then
    echo "SKIP: PostgreSQL's server is not installed (Debian: postgresql-15)"
    return 77
  fi
  mkdir -p "$PG_DIR"
  if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || { echo "SKIP: root, and no postgres user for the server"; return 77; }
    chown postgres "$PG_DIR"
    chmod 755 "$(dirname "$PG_DIR")"
    PG_AS=(runuser -u postgres --)
  fi
  "${PG_AS[@]}" "$PGBIN/initdb" -D "$PG_DIR/data" -A trust -U renc --no-sync \
    >"$PG_DIR/initdb.log" 2>&1 || { cat "$PG_DIR/initdb.log" >&2; return 2; }
  "${PG_AS[@]}" "$PGBIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w \
    -o "-k $PG_DIR -c listen_addresses=''$sync" start >/dev/null || { cat "$PG_DIR/log" >&2; return 2; }
  PG_URI="postgresql:///postgres?host=$PG_DIR&user=renc"
}

pg_stop() {
  [ -n "$PG_DIR" ] && [ -d "$PG_DIR/data" ] &&
    "${PG_AS[@]}" "$PGBIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w stop >/dev/null 2>&1
  return 0
}
