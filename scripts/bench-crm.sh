#!/usr/bin/env bash
# Acceptance benchmark of the CRM core (issue 16): one run of this script gives every figure,
# with /health/ as the ceiling of the box. Requests/s, p50, p99 and the server's RSS for
#
#   GET  /api/v1/clients/          (page of 25 out of 5,000 clients, super admin and consultant)
#   GET  /api/v1/clients/{id}/
#   GET  /api/v1/tasks/            (page of 25 out of the seeded tasks)
#   GET  /api/v1/regions/          (a one-row authenticated list: the fixed cost of a request)
#   GET  /health/                  (the ceiling of the box: no authentication, one ping)
#   POST /api/token/               (argon2id password check)
#   GET  /api/v1/clients/          over N tenants, a random tenant (Host, token) per request
#   GET  /api/v1/clients/          (super admin) at 256 and 1,024 connections, with the 5xx count
#   the mixed load of examples/load_mix.rs (scripts/bench-mix.sh's harness)
#
#   scripts/bench-crm.sh [duration=20s] [connections=16]
#
# Builds the release binary (and the load_mix example), starts `leopard demo` on a free port with
# a private data directory, seeds 5,000 clients and 2,000 tasks into tenant acme (`leopard seed
# crm`), provisions N tenants through the platform API (in parallel; the time it took is printed)
# and logs in as each one's `admin`, then runs wrk (`--latency`) once per call and the mix for the same duration at
# the same connection count. The server's RSS is read from /proc after each run (current and
# high-water mark). It ends with a markdown summary table of every figure and the ratios
# regions/health, random-tenants/single-tenant, 256/16 and 1024/16. Database: as
# scripts/lib/bench.sh says.
#
# Environment:
#   LEOPARD_BENCH_TENANTS          N, the tenants of the spread run (default 1000; 5 when
#                                  LEOPARD_BENCH_BIN is set, CI's smoke run)
#   LEOPARD_BENCH_TENANT_CLIENTS   clients of each of those tenants (default 25: a full page)
#   LEOPARD_BENCH_SETUP_JOBS       tenants set up at a time (default 4)
#   LEOPARD_BENCH_HIGH_CONNECTIONS the high-concurrency runs (default "256 1024"; "32 64" when
#                                  LEOPARD_BENCH_BIN is set)
#   LEOPARD_BENCH_SOAK_SECS        after everything, run the mix that long, sampling VmRSS every
#                                  30 s (default 0: no soak)
#   LEOPARD_BENCH_BIN              a binary already built (the debug one in CI: the figures of
#                                  such a run say nothing; the point is that it runs to the end)
set -euo pipefail

DURATION="${1:-20s}"
CONNECTIONS="${2:-16}"
SCRIPTS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [[ -n "${LEOPARD_BENCH_BIN:-}" ]]; then
    TENANTS="${LEOPARD_BENCH_TENANTS:-5}"
    HIGH_CONNECTIONS="${LEOPARD_BENCH_HIGH_CONNECTIONS:-32 64}"
else
    TENANTS="${LEOPARD_BENCH_TENANTS:-1000}"
    HIGH_CONNECTIONS="${LEOPARD_BENCH_HIGH_CONNECTIONS:-256 1024}"
fi
SETUP_JOBS="${LEOPARD_BENCH_SETUP_JOBS:-4}"
TENANT_CLIENTS="${LEOPARD_BENCH_TENANT_CLIENTS:-25}"
SOAK_SECS="${LEOPARD_BENCH_SOAK_SECS:-0}"
# wrk needs a descriptor per connection, and the server (started by lib/bench.sh, so raised
# before it) one per accepted connection.
max_connections=$CONNECTIONS
for c in $HIGH_CONNECTIONS; do
    if ((c > max_connections)); then max_connections=$c; fi
done
want_files=$((max_connections * 2 + 1024))
if [[ "$(ulimit -n)" != unlimited ]] && (($(ulimit -n) < want_files)); then
    ulimit -n "$want_files" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
fi
# shellcheck source=lib/bench.sh
source "$SCRIPTS/lib/bench.sh"

echo "== open files limit: $(ulimit -n)"

build_load_mix

echo "== seeding 5,000 clients and 2,000 tasks"
"$BIN" seed crm --tenant acme --clients 5000 --tasks 2000

ADMIN_TOKEN="$(login admin)"
CONSULTANT_TOKEN="$(login consultant)"
CLIENT_ID="$(curl -fsS "$BASE/api/v1/clients/?page_size=1" -H "Host: $HOST" \
    -H "Authorization: Bearer $ADMIN_TOKEN" | jq .results[0].id)"
count() {
    curl -fsS "$BASE$2?page_size=1" -H "Host: ${3:-$HOST}" -H "Authorization: Bearer $1" | jq .count
}
echo "== visible: clients $(count "$ADMIN_TOKEN" /api/v1/clients/) (admin)," \
    "$(count "$CONSULTANT_TOKEN" /api/v1/clients/) (consultant); tasks $(count "$ADMIN_TOKEN" /api/v1/tasks/)"

# The N tenants, provisioned through the platform API (one request each: schema, migrations,
# domains and a Super Admin `admin`; about half the time of `leopard tenant clone`), then logged
# into, given $TENANT_CLIENTS clients each (POST /api/v1/clients/); in parallel. $WORK/tenants.txt
# gets one "<host> <token>" line per tenant.
echo
echo "== creating $TENANTS tenants (POST /api/platform/tenants/ bench-NNNN with $TENANT_CLIENTS" \
    "clients each, $SETUP_JOBS at a time)"
"$BIN" platform-admin create --username benchops --email benchops@example.com \
    --password "$PASSWORD" >/dev/null
platform_token() {
    curl -fsS "$BASE/api/platform/token/" -H "Host: localhost" \
        -H 'content-type: application/json' \
        -d "{\"username\": \"benchops\", \"password\": \"$PASSWORD\"}" | jq -er .access
}
export BASE PASSWORD TENANT_CLIENTS
setup_started=$SECONDS
seq -f 'bench-%04g' 1 "$TENANTS" >"$WORK/slugs.txt"
# Batches of 100, each with a fresh platform token: 1,000 tenants take longer than a token lives.
split -l 100 "$WORK/slugs.txt" "$WORK/slugs-"
: >"$WORK/tenants.txt"
for batch in "$WORK"/slugs-*; do
    PLATFORM_TOKEN="$(platform_token)"
    export PLATFORM_TOKEN
    # shellcheck disable=SC2016 # expanded by the sh -c child
    xargs -P "$SETUP_JOBS" -I{} sh -c 'set -e; json="content-type: application/json"
        curl -fsS -o /dev/null "$BASE/api/platform/tenants/" -H "Host: localhost" -H "$json" \
            -H "Authorization: Bearer $PLATFORM_TOKEN" -d "{\"slug\": \"$1\", \"name\": \"Bench $1\",
            \"admin\": {\"username\": \"admin\", \"email\": \"admin@$1.example.com\",
            \"password\": \"$PASSWORD\"}}" || { echo "creating $1 failed" >&2; exit 255; }
        token="$(curl -fsS "$BASE/api/token/" -H "Host: $1.localhost" -H "$json" \
            -d "{\"username\": \"admin\", \"password\": \"$PASSWORD\"}" | jq -er .access)" \
            || { echo "login on $1 failed" >&2; exit 255; }
        i=0; while [ "$i" -lt "$TENANT_CLIENTS" ]; do i=$((i + 1))
            curl -fsS -o /dev/null "$BASE/api/v1/clients/" -H "Host: $1.localhost" -H "$json" \
                -H "Authorization: Bearer $token" \
                -d "{\"first_name\": \"Client $i\", \"gender\": \"OTHER\", \"country\": \"AU\"}" \
                || { echo "creating a client on $1 failed" >&2; exit 255; }
        done
        echo "$1.localhost $token"' _ {} <"$batch" >>"$WORK/tenants.txt"
done
SETUP_SECS=$((SECONDS - setup_started))
read -r first_host first_token <"$WORK/tenants.txt"
first_count="$(count "$first_token" /api/v1/clients/ "$first_host")"
((first_count > 0)) || { echo "tenant $first_host lists no clients" >&2; exit 1; }
echo "== $(wc -l <"$WORK/tenants.txt") tenants ready in ${SETUP_SECS}s; $first_host lists" \
    "$first_count clients"
echo "== server RSS before load: $(rss_kib) KiB"

# Figures of the summary: one "label|req/s|p50|p99|rss|peak|5xx" line per run.
SUMMARY="$WORK/summary.txt"
: >"$SUMMARY"

# run <label> <connections> <wrk args...>: one wrk run, its output saved and parsed.
RUNS=0
run() {
    local label="$1" conns="$2"
    shift 2
    RUNS=$((RUNS + 1))
    local out="$WORK/wrk-$RUNS.txt" before after rps p50 p99 non2xx sockerr
    echo
    echo "== $label ($DURATION, $conns connections, $THREADS threads)"
    echo "wrk -t$THREADS -c$conns -d$DURATION --latency $*" | sed "s/Bearer [^\"]*/Bearer \$TOKEN/"
    before="$(count_5xx)"
    wrk -t"$THREADS" -c"$conns" -d"$DURATION" --timeout 10s --latency "$@" | tee "$out"
    after="$(count_5xx)"
    rps="$(wrk_rps "$out")"
    p50="$(wrk_latency_ms "$out" 50%)"
    p99="$(wrk_latency_ms "$out" 99%)"
    non2xx="$(awk -F: '/Non-2xx or 3xx responses/ {gsub(/ /, "", $2); print $2}' "$out")"
    # "Socket errors: connect 0, read 0, write 0, timeout 12": their sum.
    sockerr="$(awk '/Socket errors:/ {gsub(/,/, ""); print $4 + $6 + $8 + $10}' "$out")"
    echo "server RSS after: $(rss_kib) KiB (peak $(peak_rss_kib) KiB); 5xx logged: $((after - before));" \
        "non-2xx/3xx: ${non2xx:-0}; socket errors: ${sockerr:-0}"
    echo "$label|${rps:-?}|${p50:-?}|${p99:-?}|$(rss_kib)|$(peak_rss_kib)|$((after - before))|${non2xx:-0}/${sockerr:-0}" \
        >>"$SUMMARY"
}
run "GET /api/v1/clients/ (super admin, page of 25 of 5,000)" "$CONNECTIONS" \
    -H "Host: $HOST" -H "Authorization: Bearer $ADMIN_TOKEN" "$BASE/api/v1/clients/"
run "GET /api/v1/clients/ (consultant, scoped to its branch)" "$CONNECTIONS" \
    -H "Host: $HOST" -H "Authorization: Bearer $CONSULTANT_TOKEN" "$BASE/api/v1/clients/"
run "GET /api/v1/clients/$CLIENT_ID/" "$CONNECTIONS" \
    -H "Host: $HOST" -H "Authorization: Bearer $ADMIN_TOKEN" "$BASE/api/v1/clients/$CLIENT_ID/"
run "GET /api/v1/tasks/ (super admin, page of 25)" "$CONNECTIONS" \
    -H "Host: $HOST" -H "Authorization: Bearer $ADMIN_TOKEN" "$BASE/api/v1/tasks/"
run "GET /api/v1/regions/ (super admin, one-row list)" "$CONNECTIONS" \
    -H "Host: $HOST" -H "Authorization: Bearer $ADMIN_TOKEN" "$BASE/api/v1/regions/"
run "GET /health/ (the box's ceiling)" "$CONNECTIONS" -H "Host: $HOST" "$BASE/health/"
run "POST /api/token/" "$CONNECTIONS" \
    -H "Host: $HOST" -s "$SCRIPTS/wrk/login.lua" "$BASE/api/token/"
log_lines="$(wc -l <"$WORK/server.log")"
run "GET /api/v1/clients/ over $TENANTS tenants of $TENANT_CLIENTS clients (random tenant per request)" "$CONNECTIONS" \
    -s "$SCRIPTS/wrk/random_tenant.lua" "$BASE/api/v1/clients/" -- "$WORK/tenants.txt"
# The request spans carry the tenant: how many of the N this run reached.
echo "tenants reached: $(tail -n +"$((log_lines + 1))" "$WORK/server.log" \
    | grep -oE 'tenant="?bench-[0-9]+' | sort -u | wc -l) of $TENANTS"
for c in $HIGH_CONNECTIONS; do
    run "GET /api/v1/clients/ (super admin) at $c connections" "$c" \
        -H "Host: $HOST" -H "Authorization: Bearer $ADMIN_TOKEN" "$BASE/api/v1/clients/"
done

# The mixed load, same duration and connections (it writes notes and moves stages: last).
echo
MIX_SECS="${DURATION%s}"
if [[ ! "$MIX_SECS" =~ ^[0-9]+$ ]]; then
    echo "the mix takes whole seconds; duration $DURATION" >&2
    exit 1
fi
before="$(count_5xx)"
mix_rc=0
run_load_mix "$MIX_SECS" "$CONNECTIONS" | tee "$WORK/mix.txt" || mix_rc=$?
after="$(count_5xx)"
echo "server RSS after: $(rss_kib) KiB (peak $(peak_rss_kib) KiB); 5xx logged: $((after - before));" \
    "harness exit $mix_rc"
# The harness's last row: | **all** | 100 % | req/s | errors | p50 | p90 | p99 | max |
mix_row="$(grep -F '| **all** |' "$WORK/mix.txt" | tail -1)"
IFS='|' read -r _ _ _ mix_rps mix_errors mix_p50 _ mix_p99 _ <<<"$mix_row"
echo "mix (load_mix, $CONNECTIONS workers)|${mix_rps// /}|${mix_p50// /}|${mix_p99// /}|$(rss_kib)|$(peak_rss_kib)|$((after - before))|${mix_errors// /}" >>"$SUMMARY"

if ((SOAK_SECS > 0)); then
    echo
    echo "== soak: the mix for ${SOAK_SECS}s, VmRSS every 30 s"
    run_load_mix "$SOAK_SECS" "$CONNECTIONS" >"$WORK/soak.txt" 2>&1 &
    soak_pid=$!
    soak_started=$SECONDS
    samples=()
    while kill -0 "$soak_pid" 2>/dev/null; do
        samples+=("$((SECONDS - soak_started))s:$(rss_kib)")
        echo "soak t=$((SECONDS - soak_started))s VmRSS $(rss_kib) KiB"
        for _ in $(seq 1 30); do kill -0 "$soak_pid" 2>/dev/null && sleep 1; done
    done
    soak_rc=0
    wait "$soak_pid" || soak_rc=$?
    samples+=("end:$(rss_kib)")
    grep -F '| **all** |' "$WORK/soak.txt" || cat "$WORK/soak.txt"
    echo "== soak VmRSS samples (KiB): ${samples[*]} (harness exit $soak_rc)"
fi

echo
echo "== non-2xx responses logged by the server: $(grep -c 'status=[45]' "$WORK/server.log" || true)"
echo "== 5xx responses logged by the server: $(count_5xx)"

# ratio <numerator> <denominator>
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0 && a + 0 > 0) printf "%.2f", a / b; else print "?" }'; }
figure() { awk -F'|' -v n="$1" 'NR == n {print $2}' "$SUMMARY"; }
echo
echo "== summary ($DURATION per run, $CONNECTIONS connections unless said, $THREADS wrk threads," \
    "$TENANTS tenants set up in ${SETUP_SECS}s)"
echo
echo "| call | req/s | p50 ms | p99 ms | RSS after KiB | peak KiB | 5xx logged | non-2xx/socket errors |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
awk -F'|' '{printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8}' "$SUMMARY"
echo
single="$(figure 1)"
echo "| ratio | value |"
echo "| --- | --- |"
echo "| regions / health | $(ratio "$(figure 5)" "$(figure 6)") |"
echo "| random of $TENANTS tenants / single tenant (clients list) | $(ratio "$(figure 8)" "$single") |"
n=9
for c in $HIGH_CONNECTIONS; do
    echo "| clients list $c / $CONNECTIONS connections | $(ratio "$(figure "$n")" "$single") |"
    n=$((n + 1))
done
echo
if ((mix_rc != 0)); then echo "== the mix failed (exit $mix_rc): see its output above"; fi
echo "== max VmHWM (server peak RSS): $(peak_rss_kib) KiB; max VmRSS after a run:" \
    "$(awk -F'|' '$5 > m {m = $5} END {print m}' "$SUMMARY") KiB"
exit "$mix_rc"
