# Shared set-up of the scripts that check the running server (sourced, not run): builds the
# debug binary (or uses $LEOPARD_BIN), starts `leopard demo` on a free 127.0.0.1 port with a
# private data directory, and defines helpers.
#
# Database: with DATABASE_URL set, a fresh database `leopard_check_<pid>` is created on that
# server and dropped at the end; without it, the embedded cluster under the temporary data
# directory is used. After sourcing: $BIN, $PORT, $BASE (http://127.0.0.1:$PORT, the base
# host), $TENANT_HOST (acme.localhost:$PORT), $WORK (removed at the end), $SERVER_PID, and the
# function `login <username>` (prints an access token of tenant acme). Scripts may add their
# own clean-up to `EXTRA_CLEANUP` (a command run first at exit).

DEMO_PASSWORD="Leopard-Demo-2026"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

command -v curl >/dev/null || { echo "curl is required" >&2; exit 1; }

# Where cargo puts what it builds (honours CARGO_TARGET_DIR and the cargo config).
TARGET_DIR="$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
if [[ -n "${LEOPARD_BIN:-}" ]]; then
    BIN="$LEOPARD_BIN"
else
    echo "== building (cargo build -p leopard-server --bin leopard)"
    (cd "$ROOT" && cargo build -q -p leopard-server --bin leopard)
    BIN="$TARGET_DIR/debug/leopard"
fi

WORK="$(mktemp -d -t leopard-check.XXXXXX)"
SERVER_PID=""
CHECK_DB=""
ADMIN_URL=""
EXTRA_CLEANUP="${EXTRA_CLEANUP:-}"

# The embedded cluster's real directory: as root in a directory the postgres user cannot enter
# (mktemp -d is 0700), `leopard` keeps it under /var/lib/leopard/postgres/ and
# $WORK/data/postgres is a link to it (README, "Embedded PostgreSQL as root").
embedded_pg_dir() { readlink -f "$WORK/data/postgres" 2>/dev/null || true; }

# Stops the embedded cluster if a command left it running, and removes a relocated one.
stop_embedded_cluster() {
    local dir
    dir="$(embedded_pg_dir)"
    [[ -n "$dir" && -d "$dir" ]] || return 0
    if [[ -f "$dir/postmaster.pid" ]]; then
        local pg_ctl_bin
        pg_ctl_bin="$(ls /usr/lib/postgresql/*/bin/pg_ctl 2>/dev/null | tail -1)"
        if [[ -n "$pg_ctl_bin" ]]; then
            if [[ "$(id -u)" == 0 ]]; then
                (cd / && runuser -u postgres -- "$pg_ctl_bin" -D "$dir" -m fast -w stop) >/dev/null 2>&1
            else
                "$pg_ctl_bin" -D "$dir" -m fast -w stop >/dev/null 2>&1
            fi
        fi
    fi
    if [[ -L "$WORK/data/postgres" && "$dir" == /var/lib/leopard/postgres/* ]]; then
        rm -rf "$dir"
    fi
}

cleanup() {
    set +e
    if [[ -n "$EXTRA_CLEANUP" ]]; then eval "$EXTRA_CLEANUP"; fi
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID"
        wait "$SERVER_PID" 2>/dev/null
    fi
    if [[ -n "$CHECK_DB" ]]; then
        psql "$ADMIN_URL" -qX -c "DROP DATABASE IF EXISTS $CHECK_DB WITH (FORCE)" >/dev/null
    else
        stop_embedded_cluster
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

export LEOPARD_DATA_DIR="$WORK/data"
if [[ -n "${DATABASE_URL:-}" ]]; then
    ADMIN_URL="$DATABASE_URL"
    CHECK_DB="leopard_check_$$"
    psql "$ADMIN_URL" -qX -v ON_ERROR_STOP=1 -c "CREATE DATABASE $CHECK_DB" >/dev/null
    export LEOPARD_DATABASE_URL
    LEOPARD_DATABASE_URL="$(python3 -c 'import sys, urllib.parse as u
p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' "$ADMIN_URL" "$CHECK_DB")"
    echo "== database: $CHECK_DB on the DATABASE_URL server (dropped at the end)"
else
    unset LEOPARD_DATABASE_URL
    echo "== database: the embedded cluster of $WORK/data"
fi

PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
BASE="http://127.0.0.1:$PORT"
TENANT_HOST="acme.localhost:$PORT"
echo "== starting leopard demo on 127.0.0.1:$PORT (log: $WORK/server.log)"
"$BIN" demo --bind "127.0.0.1:$PORT" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 600); do
    if curl -fsS -o /dev/null "$BASE/health/" 2>/dev/null; then break; fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        echo "the server exited:" >&2; cat "$WORK/server.log" >&2; exit 1
    fi
    sleep 0.2
done
curl -fsS -o /dev/null "$BASE/health/" || { echo "the server never became healthy" >&2; exit 1; }
if [[ -z "${LEOPARD_DATABASE_URL:-}" ]]; then echo "== embedded cluster data: $(embedded_pg_dir)"; fi

login() {
    curl -fsS "$BASE/api/token/" -H "Host: $TENANT_HOST" -H 'content-type: application/json' \
        -d "{\"username\": \"$1\", \"password\": \"$DEMO_PASSWORD\"}" |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["access"])'
}
