#!/usr/bin/env bash
# Mixed-load benchmark of the CRM API: `examples/load_mix.rs` drives `leopard demo` with a
# weighted mix of realistic calls — client list (admin and branch-scoped consultant) and detail,
# task and college-application lists, note creation, college-application stage moves (PATCH),
# the visa and college dashboards, and logins — and prints requests/s, errors and p50/p90/p99
# per call.
#
#   scripts/bench-mix.sh [duration-seconds=30] [concurrency=16] [bulk-clients=5000]
#
# Builds the release binary and the example, starts `leopard demo` on a free port with a private
# data directory, adds `bulk-clients` clients and 2,000 tasks to tenant acme (`leopard seed crm`;
# 0 skips it), and runs the mix. Database: as scripts/lib/bench.sh says.
set -euo pipefail

DURATION="${1:-30}"
CONCURRENCY="${2:-16}"
BULK="${3:-5000}"
source "$(dirname "${BASH_SOURCE[0]}")/lib/bench.sh"

if [[ "$BULK" -gt 0 ]]; then
    echo "== seeding $BULK clients and 2,000 tasks"
    "$BIN" seed crm --tenant acme --clients "$BULK" --tasks 2000
fi
build_load_mix
echo "== server RSS before load: $(rss_kib) KiB"
run_load_mix "$DURATION" "$CONCURRENCY"
echo "server RSS after: $(rss_kib) KiB (peak $(peak_rss_kib) KiB)"
echo "== 5xx responses logged by the server: $(count_5xx)"
