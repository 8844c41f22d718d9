#!/usr/bin/env bash
# Acceptance benchmark: `GET /api/v1/users/` throughput with 1,000 seeded users.
#
#   scripts/bench-users.sh [duration=20s] [connections=32]
#
# Builds the release binary, starts `leopard demo` on a free port with a private data directory,
# seeds 1,000 consultants at "Head Office" in tenant acme (`leopard seed users`), logs in and runs
# wrk (`--latency`) against the user list three times: the super admin (page of 25), the super
# admin with `?page_size=100`, and the branch admin (scoped to its branch).
#
# Database: with DATABASE_URL set, a fresh database `leopard_bench_<pid>` is created on that
# server and dropped at the end; without it, the embedded cluster under the temporary data
# directory is used. LEOPARD_LOG is passed through (default: the server's own, per-request INFO
# lines, written to a file in the temporary directory).
set -euo pipefail

DURATION="${1:-20s}"
CONNECTIONS="${2:-32}"
THREADS=2
PASSWORD="Leopard-Demo-2026"
HOST="acme.localhost"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="$ROOT/target/release/leopard"

command -v wrk >/dev/null || { echo "wrk is required (apt-get install wrk)" >&2; exit 1; }
command -v curl >/dev/null || { echo "curl is required" >&2; exit 1; }
command -v jq >/dev/null || { echo "jq is required" >&2; exit 1; }

echo "== building (cargo build --release -p leopard-server)"
(cd "$ROOT" && cargo build --release -p leopard-server)

WORK="$(mktemp -d -t leopard-bench.XXXXXX)"
SERVER_PID=""
BENCH_DB=""
ADMIN_URL=""

cleanup() {
    set +e
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID"
        wait "$SERVER_PID" 2>/dev/null
    fi
    if [[ -n "$BENCH_DB" ]]; then
        psql "$ADMIN_URL" -qX -c "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)" >/dev/null
    elif [[ -f "$WORK/data/postgres/postmaster.pid" ]]; then
        # The seed command may have left the embedded cluster running: stop it.
        pg_ctl_bin="$(ls /usr/lib/postgresql/*/bin/pg_ctl 2>/dev/null | tail -1)"
        if [[ -n "$pg_ctl_bin" ]]; then
            if [[ "$(id -u)" == 0 ]]; then
                su postgres -s /bin/sh -c "$pg_ctl_bin -D '$WORK/data/postgres' -m fast stop" >/dev/null 2>&1
            else
                "$pg_ctl_bin" -D "$WORK/data/postgres" -m fast stop >/dev/null 2>&1
            fi
        fi
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

export LEOPARD_DATA_DIR="$WORK/data"
if [[ -n "${DATABASE_URL:-}" ]]; then
    ADMIN_URL="$DATABASE_URL"
    BENCH_DB="leopard_bench_$$"
    psql "$ADMIN_URL" -qX -v ON_ERROR_STOP=1 -c "CREATE DATABASE $BENCH_DB" >/dev/null
    # Same server, the new database: replace the path of the URL (keeping any query string).
    export LEOPARD_DATABASE_URL
    LEOPARD_DATABASE_URL="$(python3 -c 'import sys, urllib.parse as u
p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' "$ADMIN_URL" "$BENCH_DB")"
    echo "== database: $BENCH_DB on the DATABASE_URL server (dropped at the end)"
else
    unset LEOPARD_DATABASE_URL
    echo "== database: embedded cluster under $WORK/data"
fi

PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
BASE="http://127.0.0.1:$PORT"
echo "== starting leopard demo on 127.0.0.1:$PORT (log: $WORK/server.log)"
"$BIN" demo --bind "127.0.0.1:$PORT" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 300); do
    if curl -fsS -o /dev/null "$BASE/health/" 2>/dev/null; then break; fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        echo "the server exited:" >&2; cat "$WORK/server.log" >&2; exit 1
    fi
    sleep 0.2
done
curl -fsS -o /dev/null "$BASE/health/" || { echo "the server never became healthy" >&2; exit 1; }

SQL_URL="${LEOPARD_DATABASE_URL:-}"
if [[ -z "$SQL_URL" ]]; then
    SQL_URL="postgres://postgres@127.0.0.1:$(sed -n 4p "$WORK/data/postgres/postmaster.pid" | tr -d ' ')/leopard"
fi
echo "== raising acme's max_users to 5000"
psql "$SQL_URL" -qX -v ON_ERROR_STOP=1 \
    -c "UPDATE public.leopard_tenants SET max_users = 5000 WHERE slug = 'acme'" >/dev/null
echo "== seeding 1,000 users"
"$BIN" seed users --tenant acme --count 1000 --branch "Head Office"

login() {
    curl -fsS "$BASE/api/token/" -H "Host: $HOST" -H 'content-type: application/json' \
        -d "{\"username\": \"$1\", \"password\": \"$PASSWORD\"}" | jq -r .access
}
# The registry reloads max_users etc. on NOTIFY; logins do not depend on it.
ADMIN_TOKEN="$(login admin)"
BRANCH_TOKEN="$(login branch.admin)"

count() {
    curl -fsS "$BASE/api/v1/users/?page_size=1" -H "Host: $HOST" -H "Authorization: Bearer $1" | jq .count
}
echo "== users visible: super admin $(count "$ADMIN_TOKEN"), branch admin $(count "$BRANCH_TOKEN")"

run() {
    local label="$1" token="$2" path="$3"
    echo
    echo "== $label: GET $path ($DURATION, $CONNECTIONS connections, $THREADS threads)"
    echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency -H \"Host: $HOST\" -H \"Authorization: Bearer \$TOKEN\" \"$BASE$path\""
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency \
        -H "Host: $HOST" -H "Authorization: Bearer $token" "$BASE$path"
}
run "super admin, page of 25" "$ADMIN_TOKEN" "/api/v1/users/"
run "super admin, page of 100" "$ADMIN_TOKEN" "/api/v1/users/?page_size=100"
run "branch admin (scoped), page of 25" "$BRANCH_TOKEN" "/api/v1/users/"

echo
echo "== non-2xx responses logged by the server: $(grep -c 'status=[45]' "$WORK/server.log" || true)"
