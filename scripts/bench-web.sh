#!/usr/bin/env bash
# Benchmark of the web interface against the JSON API it is built on: requests/s, p50 and p99
# at the same concurrency for
#
#   GET /api/v1/clients/        vs  GET /clients/        (page of 25 of 5,000, super admin)
#   GET /api/v1/clients/{id}/   vs  GET /clients/{id}/   (the client page, overview tab)
#
#   scripts/bench-web.sh [duration=20s] [connections=16]
#
# The page numbers include everything a page does beyond the API call: the session lookup
# (one statement, the principal from the principal cache, the unread count), the branch and
# assignee options of the filter bar (cached per user, web/options.rs), and rendering.
# scripts/profile-web.sh shows where the time goes (docs/performance.md). Builds the release binary and seeds like scripts/bench-crm.sh.
set -euo pipefail

DURATION="${1:-20s}"
CONNECTIONS="${2:-16}"
source "$(dirname "${BASH_SOURCE[0]}")/lib/bench.sh"

echo "== seeding 5,000 clients and 2,000 tasks"
"$BIN" seed crm --tenant acme --clients 5000 --tasks 2000

TOKEN="$(login admin)"
CLIENT_ID="$(curl -fsS "$BASE/api/v1/clients/?page_size=1" -H "Host: $HOST" \
    -H "Authorization: Bearer $TOKEN" | jq .results[0].id)"

SESSION="$(web_login admin)"
status="$(curl -s -o "$WORK/page.html" -w '%{http_code}' -H "Host: $HOST" -H "Cookie: leopard_session=$SESSION" "$BASE/clients/")"
[[ "$status" == 200 ]] || { echo "GET /clients/ answered $status" >&2; exit 1; }
echo "== /clients/ page: $(wc -c <"$WORK/page.html") bytes, $(grep -o 'data-href=' "$WORK/page.html" | wc -l) rows"

run() {
    local label="$1"
    shift
    echo
    echo "== $label ($DURATION, $CONNECTIONS connections, $THREADS threads)"
    echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency $*" | sed "s/Bearer [^ \"]*/Bearer \$TOKEN/; s/leopard_session=[0-9a-f]*/leopard_session=\$SESSION/"
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$@"
    echo "server RSS after: $(rss_kib) KiB (peak $(peak_rss_kib) KiB)"
}
run "GET /api/v1/clients/ (JSON, page of 25 of 5,000)" \
    -H "Host: $HOST" -H "Authorization: Bearer $TOKEN" "$BASE/api/v1/clients/"
run "GET /clients/ (page, 25 of 5,000)" \
    -H "Host: $HOST" -H "Cookie: leopard_session=$SESSION" "$BASE/clients/"
run "GET /api/v1/clients/$CLIENT_ID/ (JSON)" \
    -H "Host: $HOST" -H "Authorization: Bearer $TOKEN" "$BASE/api/v1/clients/$CLIENT_ID/"
run "GET /clients/$CLIENT_ID/ (page)" \
    -H "Host: $HOST" -H "Cookie: leopard_session=$SESSION" "$BASE/clients/$CLIENT_ID/"

echo
echo "== non-2xx responses logged by the server: $(grep -c 'status=[45]' "$WORK/server.log" || true)"
