#!/usr/bin/env bash
# Acceptance benchmark of the CRM core: requests/s, p50 and p99 and the server's RSS for
#
#   GET  /api/v1/clients/          (page of 25 out of 5,000 clients, super admin and consultant)
#   GET  /api/v1/clients/{id}/
#   GET  /api/v1/tasks/            (page of 25 out of the seeded tasks)
#   POST /api/token/               (argon2id password check)
#   GET  /api/v1/regions/          (a one-row authenticated list: the fixed cost of a request)
#   GET  /health/                  (the ceiling of the box: no authentication, one ping)
#
#   scripts/bench-crm.sh [duration=20s] [connections=16]
#
# Builds the release binary, starts `leopard demo` on a free port with a private data
# directory, seeds 5,000 clients and 2,000 tasks into tenant acme (`leopard seed crm`), and runs
# wrk (`--latency`) once per call. The server's RSS is read from /proc after each run (current
# and high-water mark). Database: as scripts/lib/bench.sh says.
set -euo pipefail

DURATION="${1:-20s}"
CONNECTIONS="${2:-16}"
source "$(dirname "${BASH_SOURCE[0]}")/lib/bench.sh"

echo "== seeding 5,000 clients and 2,000 tasks"
"$BIN" seed crm --tenant acme --clients 5000 --tasks 2000

ADMIN_TOKEN="$(login admin)"
CONSULTANT_TOKEN="$(login consultant)"
CLIENT_ID="$(curl -fsS "$BASE/api/v1/clients/?page_size=1" -H "Host: $HOST" \
    -H "Authorization: Bearer $ADMIN_TOKEN" | jq .results[0].id)"
count() {
    curl -fsS "$BASE$2?page_size=1" -H "Host: $HOST" -H "Authorization: Bearer $1" | jq .count
}
echo "== visible: clients $(count "$ADMIN_TOKEN" /api/v1/clients/) (admin)," \
    "$(count "$CONSULTANT_TOKEN" /api/v1/clients/) (consultant); tasks $(count "$ADMIN_TOKEN" /api/v1/tasks/)"
echo "== server RSS before load: $(rss_kib) KiB"

run() {
    local label="$1"
    shift
    echo
    echo "== $label ($DURATION, $CONNECTIONS connections, $THREADS threads)"
    echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency $*" | sed "s/Bearer [^\"]*/Bearer \$TOKEN/"
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$@"
    echo "server RSS after: $(rss_kib) KiB (peak $(peak_rss_kib) KiB)"
}
run "GET /api/v1/clients/ (super admin, page of 25 of 5,000)" \
    -H "Host: $HOST" -H "Authorization: Bearer $ADMIN_TOKEN" "$BASE/api/v1/clients/"
run "GET /api/v1/clients/ (consultant, scoped to its branch)" \
    -H "Host: $HOST" -H "Authorization: Bearer $CONSULTANT_TOKEN" "$BASE/api/v1/clients/"
run "GET /api/v1/clients/$CLIENT_ID/" \
    -H "Host: $HOST" -H "Authorization: Bearer $ADMIN_TOKEN" "$BASE/api/v1/clients/$CLIENT_ID/"
run "GET /api/v1/tasks/ (super admin, page of 25)" \
    -H "Host: $HOST" -H "Authorization: Bearer $ADMIN_TOKEN" "$BASE/api/v1/tasks/"
run "GET /api/v1/regions/ (super admin, one-row list)" \
    -H "Host: $HOST" -H "Authorization: Bearer $ADMIN_TOKEN" "$BASE/api/v1/regions/"
run "GET /health/ (the box's ceiling)" -H "Host: $HOST" "$BASE/health/"
run "POST /api/token/" \
    -H "Host: $HOST" -s "$(dirname "${BASH_SOURCE[0]}")/wrk/login.lua" "$BASE/api/token/"

echo
echo "== non-2xx responses logged by the server: $(grep -c 'status=[45]' "$WORK/server.log" || true)"
