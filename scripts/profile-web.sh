#!/usr/bin/env bash
# Where the time of a web page goes, against the JSON it is built on: for each URL of
# scripts/bench-web.sh, a wrk run at the given concurrency, then per request
#
#   - the server's CPU (utime + stime of the `leopard` process, /proc/<pid>/stat),
#   - the CPU of the PostgreSQL backends serving the bench database (their /proc/<pid>/stat),
#   - the transactions committed or rolled back in that database (pg_stat_database).
#
# With PROFILE_SQL=1 the server logs every statement (`sqlx::query=debug`) and the script
# prints, instead of the load runs, the statements of one request of each URL (after a warm-up
# request).
#
#   scripts/profile-web.sh [duration=10s] [connections=16]
set -euo pipefail

DURATION="${1:-10s}"
CONNECTIONS="${2:-16}"
if [[ "${PROFILE_SQL:-}" == 1 ]]; then
    export LEOPARD_LOG="info,sqlx=warn,sqlx::query=debug"
fi
source "$(dirname "${BASH_SOURCE[0]}")/lib/bench.sh"

echo "== seeding 5,000 clients and 2,000 tasks"
"$BIN" seed crm --tenant acme --clients 5000 --tasks 2000 >/dev/null

TOKEN="$(login admin)"
CLIENT_ID="$(curl -fsS "$BASE/api/v1/clients/?page_size=1" -H "Host: $HOST" \
    -H "Authorization: Bearer $TOKEN" | jq .results[0].id)"
SESSION="$(web_login admin)"
DB="$(psql "$SQL_URL" -AtX -c 'SELECT current_database()')"
TICK="$(getconf CLK_TCK)"

# utime + stime (clock ticks) of the processes `pids`.
ticks() {
    local total=0 pid
    for pid in "$@"; do
        if [[ -r "/proc/$pid/stat" ]]; then
            total=$((total + $(sed 's/^.*) //' "/proc/$pid/stat" | awk '{ print $12 + $13 }')))
        fi
    done
    echo "$total"
}
backends() {
    psql "$SQL_URL" -AtX -c "SELECT pid FROM pg_stat_activity WHERE datname = '$DB' AND pid <> pg_backend_pid()"
}
xacts() {
    psql "$SQL_URL" -AtX -c "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = '$DB'"
}

URLS=(
    "json-list|Authorization: Bearer $TOKEN|$BASE/api/v1/clients/"
    "page-list|Cookie: leopard_session=$SESSION|$BASE/clients/"
    "json-client|Authorization: Bearer $TOKEN|$BASE/api/v1/clients/$CLIENT_ID/"
    "page-client|Cookie: leopard_session=$SESSION|$BASE/clients/$CLIENT_ID/"
)

if [[ "${PROFILE_SQL:-}" == 1 ]]; then
    for entry in "${URLS[@]}"; do
        IFS='|' read -r label auth url <<<"$entry"
        curl -fsS -o /dev/null -H "Host: $HOST" -H "$auth" "$url"
        before="$(wc -l <"$WORK/server.log")"
        curl -fsS -o /dev/null -H "Host: $HOST" -H "$auth" "$url"
        sleep 0.2
        echo
        echo "== $label: statements of one request"
        tail -n +"$((before + 1))" "$WORK/server.log" | grep 'sqlx::query' \
            | sed 's/\x1b\[[0-9;]*m//g; s/^.*summary="//; s/" db.statement=.*rows_returned=/ rows=/; s/ rows_affected=[0-9]*//' \
            | cat -n
    done
    exit 0
fi

printf '\n%-12s %8s %9s %14s %15s %9s\n' label req/s p99 "server µs/req" "backend µs/req" "tx/req"
for entry in "${URLS[@]}"; do
    IFS='|' read -r label auth url <<<"$entry"
    # A warm-up run opens the pool's connections before anything is counted.
    wrk -t"$THREADS" -c"$CONNECTIONS" -d2s -H "Host: $HOST" -H "$auth" "$url" >/dev/null
    mapfile -t pids < <(backends)
    s0="$(ticks "$SERVER_PID")"
    b0="$(ticks "${pids[@]}")"
    x0="$(xacts)"
    out="$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -H "Host: $HOST" -H "$auth" "$url")"
    s1="$(ticks "$SERVER_PID")"
    mapfile -t after < <(backends)
    # Backends opened during the run count from zero.
    b1="$(ticks "${after[@]}")"
    sleep 11 # backends report their transaction counts when idle (at most every 10 s)
    x1="$(xacts)"
    n="$(awk '/requests in/ { print $1 }' <<<"$out")"
    rps="$(awk '/Requests\/sec/ { print $2 }' <<<"$out")"
    p99="$(awk '$1 == "99%" { print $2 }' <<<"$out")"
    awk -v l="$label" -v r="$rps" -v p="$p99" -v n="$n" -v s=$((s1 - s0)) -v b=$((b1 - b0)) \
        -v x=$((x1 - x0)) -v t="$TICK" \
        'BEGIN { printf "%-12s %8.0f %9s %14.0f %15.0f %9.2f\n", l, r, p, s / t * 1e6 / n, b / t * 1e6 / n, x / n }'
done
