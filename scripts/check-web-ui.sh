#!/usr/bin/env bash
# The browser suite of the web interface: starts `leopard demo` on a free port and drives it in
# Debian's headless Chromium with playwright-core (tests/browser/suite.mjs): log in, a client
# form with a validation error fixed and saved, an assignment that raises the other user's bell
# live, a pool task claimed, a calendar event created and seen in the month, keyboard navigation,
# the dark theme, logout; nothing loaded from another host; the dashboard's first load under
# 150 KB. Screenshots go to target/ui/.
#
#   scripts/check-web-ui.sh
#
# Needs /usr/bin/chromium (apt-get install chromium) and node/npm (playwright-core is installed
# from the npm registry into tests/browser/node_modules; it downloads no browser).
# Env: LEOPARD_BIN, DATABASE_URL (see scripts/lib/demo-server.sh), SCREENSHOTS.
set -euo pipefail

CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
[[ -x "$CHROMIUM" ]] || { echo "$CHROMIUM is missing (apt-get install chromium)" >&2; exit 1; }
command -v node >/dev/null || { echo "node is required" >&2; exit 1; }

source "$(dirname "$0")/lib/demo-server.sh"
SUITE="$ROOT/tests/browser"
if [[ ! -d "$SUITE/node_modules/playwright-core" ]]; then
    echo "== npm ci (playwright-core, no browser download)"
    (cd "$SUITE" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent)
fi
export PORT SCREENSHOTS="${SCREENSHOTS:-$TARGET_DIR/ui}" CHROMIUM
echo "== browser suite against $TENANT_HOST (screenshots: $SCREENSHOTS)"
(cd "$SUITE" && node suite.mjs)
