#!/usr/bin/env bash
# The chaos and soak suite (issue 17): a private PostgreSQL cluster, two `leopard` processes on
# it, bounded load on 127.0.0.1 only, one fault per scenario, invariants checked with SQL.
# Each scenario prints `scenario: held|broken — figures`; the exit status says whether all held.
#
#   scripts/chaos.sh [--short] [--only pg_restart|sigkill|overload|hostile_clients|graceful_shutdown|isolation_soak]...
#
# Builds the release binary unless LEOPARD_BIN names one (CI's short form runs the debug
# binary `cargo test` built). Needs the PostgreSQL server binaries, psql and python3. Figures
# of a full run are in docs/reliability.md.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ -z "${LEOPARD_BIN:-}" ]]; then
    echo "== building (cargo build --release -p leopard-server)"
    (cd "$ROOT" && cargo build --release -p leopard-server)
    TARGET_DIR="$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps \
        | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
    LEOPARD_BIN="$TARGET_DIR/release/leopard"
fi
# 10,000 idle connections need as many descriptors in the servers (children inherit this).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
exec python3 "$ROOT/scripts/lib/chaos.py" --bin "$LEOPARD_BIN" "$@"
