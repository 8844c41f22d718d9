#!/usr/bin/env bash
# A/B comparison of two server binaries on the same data: the way to tell a change of 10 % from
# the noise of this 2-core box (single runs of bench-crm.sh vary by ±15 % even on /health/).
#
#   scripts/bench-ab.sh <rounds> <seconds> <binary A> <binary B> <path>...
#   e.g. scripts/bench-ab.sh 3 5 /tmp/base/leopard target/release/leopard \
#            /api/v1/clients/15/ /api/v1/regions/ /health/
#
# Creates database leopard_ab_<pid> on the DATABASE_URL server (required; dropped at the end),
# runs A's `leopard demo` once to migrate and seed it (`seed crm --tenant acme --clients 5000
# --tasks 2000`), then for each round starts A, then B, on the same database, logs in as the
# demo's admin (tenant acme) and runs `wrk -t2 -c16` for each path (1 s warm-up, then <seconds>).
# Prints every run, then per binary and path the median requests/s over the rounds, and B/A.
# `LEOPARD_AB_HOST` sets the Host header (default acme.localhost), `LEOPARD_AB_CONNECTIONS` the
# connection count (default 16). Binaries must share the database schema (same migrations).
set -euo pipefail

if (($# < 5)); then
    sed -n '2,16p' "$0" >&2
    exit 2
fi
ROUNDS="$1"
SECS="$2"
BIN_A="$(readlink -f "$3")"
BIN_B="$(readlink -f "$4")"
shift 4
PATHS=("$@")
HOST="${LEOPARD_AB_HOST:-acme.localhost}"
CONNS="${LEOPARD_AB_CONNECTIONS:-16}"
PASSWORD="Leopard-Demo-2026"
: "${DATABASE_URL:?bench-ab.sh needs DATABASE_URL (a server it may create a database on)}"
for tool in wrk jq curl psql python3; do
    command -v "$tool" >/dev/null || { echo "bench-ab.sh needs $tool" >&2; exit 2; }
done

WORK="$(mktemp -d)"
DB="leopard_ab_$$"
SERVER_PID=""
stop_server() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID"
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    SERVER_PID=""
}
cleanup() {
    set +e
    stop_server
    psql "$DATABASE_URL" -qX -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

psql "$DATABASE_URL" -qX -v ON_ERROR_STOP=1 -c "CREATE DATABASE $DB" >/dev/null
export LEOPARD_DATABASE_URL
LEOPARD_DATABASE_URL="$(python3 -c 'import sys, urllib.parse as u
p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' "$DATABASE_URL" "$DB")"
export LEOPARD_DATA_DIR="$WORK/data"
PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
BASE="http://127.0.0.1:$PORT"

# start_server <binary>: `demo` on $PORT, waits for /health/.
start_server() {
    "$1" demo --bind "127.0.0.1:$PORT" >>"$WORK/server.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 1 300); do
        if curl -fsS -o /dev/null "$BASE/health/" 2>/dev/null; then return 0; fi
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            echo "the server exited:" >&2
            tail -20 "$WORK/server.log" >&2
            exit 1
        fi
        sleep 0.2
    done
    echo "the server never became healthy" >&2
    exit 1
}

echo "== seeding $DB with $BIN_A"
start_server "$BIN_A"
stop_server
"$BIN_A" seed crm --tenant acme --clients 5000 --tasks 2000 >>"$WORK/server.log" 2>&1

cat >"$WORK/auth.lua" <<'EOF'
wrk.headers["Authorization"] = "Bearer " .. os.getenv("AB_TOKEN")
wrk.headers["Host"] = os.getenv("AB_HOST")
EOF

declare -A RESULTS
for round in $(seq 1 "$ROUNDS"); do
    for side in A B; do
        bin="$BIN_A"
        [[ "$side" == B ]] && bin="$BIN_B"
        start_server "$bin"
        token="$(curl -fsS "$BASE/api/token/" -H "Host: $HOST" -H 'content-type: application/json' \
            -d "{\"username\": \"admin\", \"password\": \"$PASSWORD\"}" | jq -r .access)"
        for path in "${PATHS[@]}"; do
            AB_TOKEN="$token" AB_HOST="$HOST" wrk -t2 -c"$CONNS" -d1s -s "$WORK/auth.lua" \
                "$BASE$path" >/dev/null
            rps="$(AB_TOKEN="$token" AB_HOST="$HOST" wrk -t2 -c"$CONNS" -d"${SECS}s" \
                -s "$WORK/auth.lua" "$BASE$path" | awk '/^Requests\/sec:/ {print $2}')"
            echo "round $round $side $path $rps req/s"
            RESULTS["$side $path"]+="$rps "
        done
        stop_server
    done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
echo
echo "| path | A median req/s | B median req/s | B/A |"
echo "|---|---|---|---|"
for path in "${PATHS[@]}"; do
    a="$(echo "${RESULTS["A $path"]}" | median)"
    b="$(echo "${RESULTS["B $path"]}" | median)"
    echo "| \`$path\` | $a | $b | $(python3 -c "print(f'{$b / $a:.2f}')") |"
done
