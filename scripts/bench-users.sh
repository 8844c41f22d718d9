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
source "$(dirname "${BASH_SOURCE[0]}")/lib/bench.sh"

echo "== raising acme's max_users to 5000"
psql "$SQL_URL" -qX -v ON_ERROR_STOP=1 \
    -c "UPDATE public.leopard_tenants SET max_users = 5000 WHERE slug = 'acme'" >/dev/null
echo "== seeding 1,000 users"
"$BIN" seed users --tenant acme --count 1000 --branch "Head Office"

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
