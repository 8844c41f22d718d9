#!/usr/bin/env bash
# A bounded Schemathesis run over every operation of /api/schema/ against `leopard demo`:
# validates the document (openapi-spec-validator), then fuzzes the tenant operations on the
# demo tenant acme with its Super Admin's token, and the platform operations on the base host
# with a platform admin's token. Fails on any 5xx (check not_a_server_error).
#
#   scripts/fuzz-api.sh                          # 20 examples per operation
#   FUZZ_EXAMPLES=100 scripts/fuzz-api.sh        # longer
#   FUZZ_CHECKS=all scripts/fuzz-api.sh          # also hold the answers to the document
#
# Env: FUZZ_EXAMPLES (examples per operation, default 20), FUZZ_PHASES (default
# examples,coverage,fuzzing), FUZZ_CHECKS (default not_a_server_error), FUZZ_SEED (default 1,
# so a run can be replayed), FUZZ_VENV (default ~/.cache/leopard/fuzz-venv), LEOPARD_BIN,
# DATABASE_URL (see scripts/lib/demo-server.sh). Reports: target/fuzz/.
set -euo pipefail

SCHEMATHESIS_VERSION="4.32.5"
VALIDATOR_VERSION="0.7.2"
EXAMPLES="${FUZZ_EXAMPLES:-20}"
PHASES="${FUZZ_PHASES:-examples,coverage,fuzzing}"
CHECKS="${FUZZ_CHECKS:-not_a_server_error}"
SEED="${FUZZ_SEED:-1}"
VENV="${FUZZ_VENV:-$HOME/.cache/leopard/fuzz-venv}"

if ! "$VENV/bin/schemathesis" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION" ||
    ! "$VENV/bin/python" -c "import openapi_spec_validator" 2>/dev/null; then
    echo "== installing schemathesis $SCHEMATHESIS_VERSION into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q "schemathesis==$SCHEMATHESIS_VERSION" \
        "openapi-spec-validator==$VALIDATOR_VERSION"
fi

source "$(dirname "$0")/lib/demo-server.sh"
REPORTS="$ROOT/target/fuzz"
mkdir -p "$REPORTS"

echo "== validating the document"
curl -fsS "$BASE/api/schema/" -o "$WORK/openapi.json"
"$VENV/bin/python" - "$WORK/openapi.json" <<'EOF'
import json, sys
from openapi_spec_validator import validate
from openapi_spec_validator.validation import OpenAPIV31SpecValidator
doc = json.load(open(sys.argv[1]))
validate(doc, cls=OpenAPIV31SpecValidator)
ops = sum(len(item) for item in doc["paths"].values())
print(f"valid OpenAPI {doc['openapi']}: {len(doc['paths'])} paths, {ops} operations")
EOF

TOKEN="$(login admin)"
PLATFORM_PASSWORD="Fuzz-Platform-2026"
"$BIN" platform-admin create --username fuzz-root --email root@example.com \
    --password "$PLATFORM_PASSWORD" >/dev/null
PLATFORM_TOKEN="$(curl -fsS "$BASE/api/platform/token/" -H 'content-type: application/json' \
    -d "{\"username\": \"fuzz-root\", \"password\": \"$PLATFORM_PASSWORD\"}" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["access"])')"

common=(
    --checks "$CHECKS" --max-examples "$EXAMPLES" --phases "$PHASES" --seed "$SEED"
    --workers 1 --request-timeout 20 --no-shrink --continue-on-failure
    --suppress-health-check all --warnings off
)
status=0
cd "$WORK"   # Schemathesis keeps its cache in the working directory

echo "== schemathesis: tenant operations on $TENANT_HOST as the demo Super Admin"
# The notification stream never ends a response; the platform routes are the next pass's.
"$VENV/bin/schemathesis" run "$BASE/api/schema/" "${common[@]}" \
    --exclude-path "/api/v1/notifications/stream/" --exclude-tag platform \
    -H "Host: $TENANT_HOST" -H "Authorization: Bearer $TOKEN" \
    --report junit --report-junit-path "$REPORTS/tenant.xml" || status=$?

echo "== schemathesis: platform operations on the base host as a platform admin"
# Never DELETE with ?purge=true on a real tenant: only made-up slugs reach the server.
"$VENV/bin/schemathesis" run "$BASE/api/schema/" "${common[@]}" \
    --include-tag platform \
    -H "Authorization: Bearer $PLATFORM_TOKEN" \
    --report junit --report-junit-path "$REPORTS/platform.xml" || status=$?

if grep -q "internal error\|panicked" "$WORK/server.log"; then
    echo "== the server logged errors:"
    grep -n "internal error\|panicked" "$WORK/server.log" | head -40
fi
exit "$status"
