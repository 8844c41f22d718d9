# Shared set-up of the load-test scripts (sourced, not run): builds the release binary, starts
# `leopard demo` on a free port with a private data directory, and defines helpers.
#
# Database: with DATABASE_URL set, a fresh database `leopard_bench_<pid>` is created on that
# server and dropped at the end; without it, the embedded cluster under the temporary data
# directory is used. After sourcing: $BIN, $TARGET_DIR, $BASE, $HOST, $WORK, $SERVER_PID,
# $SQL_URL (a URL of the server's database), and the functions `login <username>` (prints an
# access token), `web_login <username>` (prints a web session cookie), `rss_kib` (the server's
# resident set, KiB), `peak_rss_kib` (its high-water mark), `build_load_mix` (builds
# examples/load_mix.rs and sets $LOAD_MIX), `run_load_mix <seconds> <concurrency>`, `count_5xx`
# (5xx responses the server logged so far) and the wrk-output parsers `wrk_rps <file>` and
# `wrk_latency_ms <file> <percentile>` (e.g. 99%).

THREADS=2
PASSWORD="Leopard-Demo-2026"
HOST="acme.localhost"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# Where cargo puts what it builds (honours CARGO_TARGET_DIR and the cargo config).
TARGET_DIR="$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
# LEOPARD_BENCH_BIN runs a binary already built (CI's smoke run uses the debug one: the figures
# of such a run say nothing; the point is that the script runs to the end).
BIN="${LEOPARD_BENCH_BIN:-$TARGET_DIR/release/leopard}"

command -v wrk >/dev/null || { echo "wrk is required (apt-get install wrk)" >&2; exit 1; }
command -v curl >/dev/null || { echo "curl is required" >&2; exit 1; }
command -v jq >/dev/null || { echo "jq is required" >&2; exit 1; }

if [[ -z "${LEOPARD_BENCH_BIN:-}" ]]; then
    echo "== building (cargo build --release -p leopard-server)"
    (cd "$ROOT" && cargo build --release -p leopard-server)
fi

WORK="$(mktemp -d -t leopard-bench.XXXXXX)"
SERVER_PID=""
BENCH_DB=""
ADMIN_URL=""

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
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID"
        wait "$SERVER_PID" 2>/dev/null
    fi
    if [[ -n "$BENCH_DB" ]]; then
        psql "$ADMIN_URL" -qX -c "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)" >/dev/null
    else
        stop_embedded_cluster
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
    echo "== database: the embedded cluster of $WORK/data"
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
if [[ -z "${LEOPARD_DATABASE_URL:-}" ]]; then echo "== embedded cluster data: $(embedded_pg_dir)"; fi

SQL_URL="${LEOPARD_DATABASE_URL:-}"
if [[ -z "$SQL_URL" ]]; then
    SQL_URL="postgres://postgres@127.0.0.1:$(sed -n 4p "$(embedded_pg_dir)/postmaster.pid" | tr -d ' ')/leopard"
fi

login() {
    curl -fsS "$BASE/api/token/" -H "Host: $HOST" -H 'content-type: application/json' \
        -d "{\"username\": \"$1\", \"password\": \"$PASSWORD\"}" | jq -r .access
}

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$SERVER_PID/status"; }
peak_rss_kib() { awk '/^VmHWM/ {print $2}' "/proc/$SERVER_PID/status"; }

# web_login <username>: signs in through the login form (its CSRF cookie, then the form) and
# prints the `leopard_session` cookie's value.
web_login() {
    local jar="$WORK/cookies-$1" csrf session
    csrf="$(curl -fsS -c "$jar" -H "Host: $HOST" "$BASE/login/" | grep -o 'name="csrf" value="[^"]*"' | sed 's/.*value="//; s/"$//')"
    curl -fsS -o /dev/null -b "$jar" -c "$jar" -H "Host: $HOST" "$BASE/login/" \
        --data-urlencode "csrf=$csrf" --data-urlencode "username=$1" --data-urlencode "password=$PASSWORD"
    session="$(awk '$6 == "leopard_session" { print $7 }' "$jar")"
    [[ -n "$session" ]] || { echo "the web login of $1 failed" >&2; return 1; }
    echo "$session"
}

# build_load_mix: builds the mixed-load harness (examples/load_mix.rs) and sets $LOAD_MIX. The
# release build unless LEOPARD_BENCH_BIN is set (then the debug one).
build_load_mix() {
    if [[ -z "${LEOPARD_BENCH_BIN:-}" ]]; then
        echo "== building the harness (cargo build --release --example load_mix)"
        (cd "$ROOT" && cargo build --release --example load_mix)
        LOAD_MIX="$TARGET_DIR/release/examples/load_mix"
    else
        LOAD_MIX="$TARGET_DIR/debug/examples/load_mix"
        # `cargo test` builds the examples too: reuse that one while it is newer than its source.
        if [[ -x "$LOAD_MIX" && "$LOAD_MIX" -nt "$ROOT/examples/load_mix.rs" ]]; then
            echo "== the harness: $LOAD_MIX (already built)"
        else
            echo "== building the harness (cargo build --example load_mix)"
            (cd "$ROOT" && cargo build --example load_mix)
        fi
    fi
}

# run_load_mix <seconds> <concurrency>: runs the harness against the server (tenant acme).
run_load_mix() {
    echo "== $LOAD_MIX --base $BASE --host $HOST --duration $1 --concurrency $2"
    "$LOAD_MIX" --base "$BASE" --host "$HOST" --duration "$1" --concurrency "$2" \
        --password "$PASSWORD"
}

# count_5xx: how many 5xx responses the server has logged so far.
count_5xx() { grep -c 'status=5' "$WORK/server.log" || true; }

# wrk_rps <file>: the requests/s of a saved `wrk` output.
wrk_rps() { awk '/^Requests\/sec:/ {print $2}' "$1"; }

# wrk_latency_ms <file> <percentile>: a latency of the distribution `wrk --latency` printed
# ("  99%   12.34ms"), in milliseconds (wrk's units: us, ms, s, m).
wrk_latency_ms() {
    awk -v p="$2" '$1 == p && $2 ~ /^[0-9.]+(us|ms|s|m)$/ {
        v = $2; u = v; sub(/^[0-9.]+/, "", u); sub(/[a-z]+$/, "", v)
        f = (u == "us") ? 0.001 : (u == "ms") ? 1 : (u == "s") ? 1000 : 60000
        printf "%.2f\n", v * f; exit
    }' "$1"
}
