#!/usr/bin/env bash
# Renders the Swagger UI at /api/docs/ in headless Chromium with every host but 127.0.0.1
# unreachable, and checks that the page shows the API's operations and that the browser asked
# for nothing outside the server. Needs /usr/bin/chromium (apt-get install chromium).
#
#   scripts/check-swagger-ui.sh            # screenshot in target/swagger-ui.png
#
# Env: LEOPARD_BIN (a built `leopard`; default: cargo build the debug binary), DATABASE_URL (a
# server where a scratch database may be created; default: the embedded cluster),
# CHROMIUM (default /usr/bin/chromium), SCREENSHOT (default target/swagger-ui.png).
set -euo pipefail

CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
[[ -x "$CHROMIUM" ]] || { echo "$CHROMIUM is missing (apt-get install chromium)" >&2; exit 1; }

source "$(dirname "$0")/lib/demo-server.sh"
SCREENSHOT="${SCREENSHOT:-$ROOT/target/swagger-ui.png}"
mkdir -p "$(dirname "$SCREENSHOT")"

# Nothing but 127.0.0.1 resolves, and any request that would leave the machine goes to a proxy
# on a port where nothing listens.
chromium_flags=(
    --headless --no-sandbox --disable-gpu --no-first-run --no-default-browser-check
    --disable-background-networking --disable-component-update --disable-sync
    --disable-domain-reliability --metrics-recording-only --mute-audio
    --disable-features=AutofillServerCommunication
    --user-data-dir="$WORK/chromium"
    --host-resolver-rules="MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"
    --proxy-server="http://127.0.0.1:9" --proxy-bypass-list="127.0.0.1"
    --window-size=1280,2400 --virtual-time-budget=15000
)
URL="$BASE/api/docs/"

echo "== chromium --dump-dom $URL"
"$CHROMIUM" "${chromium_flags[@]}" --log-net-log="$WORK/netlog.json" --dump-dom "$URL" \
    >"$WORK/dom.html" 2>"$WORK/chromium.log" || { cat "$WORK/chromium.log" >&2; exit 1; }

echo "== chromium --screenshot $SCREENSHOT"
"$CHROMIUM" "${chromium_flags[@]}" --screenshot="$SCREENSHOT" "$URL" \
    >>"$WORK/chromium.log" 2>&1 || { cat "$WORK/chromium.log" >&2; exit 1; }
[[ -s "$SCREENSHOT" ]] || { echo "no screenshot was written" >&2; exit 1; }

python3 - "$WORK/dom.html" "$WORK/netlog.json" "$PORT" <<'EOF'
import json, re, sys, urllib.parse

dom_path, netlog_path, port = sys.argv[1], sys.argv[2], sys.argv[3]
dom = open(dom_path, encoding="utf-8", errors="replace").read()
failures = []
operations = len(re.findall(r'class="opblock opblock-', dom))
if operations < 50:
    failures.append(f"the page shows {operations} operations (expected every route)")
if "Leopard API" not in dom:
    failures.append("the page does not show the title 'Leopard API'")
for needle in ("/api/v1/clients/", "/api/platform/tenants/", "/api/schema/"):
    if needle not in dom:
        failures.append(f"the page does not show {needle}")
if "Failed to load API definition" in dom:
    failures.append("Swagger UI could not load the document")

# Every URL the page requested, from the browser's net log: the page itself and the requests it
# initiated. (The browser's own background requests, update checks and the like, initiate from
# no origin; the resolver rules and the dead proxy stop them anyway.)
text = open(netlog_path).read().rstrip().rstrip(",")
try:
    netlog = json.loads(text)
except json.JSONDecodeError:
    # A log cut short (the browser exits at once after dumping) lacks its closing brackets.
    netlog = json.loads(text + "]}")
server = f"127.0.0.1:{port}"
names = {v: k for k, v in netlog["constants"]["logEventTypes"].items()}
page_urls, background = set(), set()
for event in netlog.get("events", []):
    params = event.get("params") or {}
    if names.get(event["type"]) != "URL_REQUEST_START_JOB" or "url" not in params:
        continue
    by_page = (params.get("initiator") == f"http://{server}"
               or params.get("request_type") == "main frame")
    (page_urls if by_page else background).add(params["url"])
foreign = sorted(u for u in page_urls if urllib.parse.urlsplit(u).netloc != server)
local = sorted(u for u in page_urls if urllib.parse.urlsplit(u).netloc == server)
if foreign:
    failures.append(f"the page asked for other hosts: {foreign}")
if f"http://{server}/api/schema/" not in local:
    failures.append("the page never fetched /api/schema/")
print(f"operations shown: {operations}; the page requested {len(local)} URLs of the server, "
      f"{len(foreign)} elsewhere ({len(background)} browser background requests blocked)")
for url in local:
    print("  ", url)
if failures:
    for f in failures:
        print("FAIL:", f)
    sys.exit(1)
print("Swagger UI renders offline: OK")
EOF
