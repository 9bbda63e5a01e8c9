#!/usr/bin/env bash
# Memory per idle subscriber when each subscribes with a topic pattern: SUBS subscribers of
# /.well-known/mercure, dealt over PATTERNS distinct patterns (subscriber k takes pattern
# k mod PATTERNS), beside the same number subscribed to one plain topic. KINDS says which
# runs: `plain` (/events?topic=load), `template` (Mercure 0.x URI templates,
# https://example.com/rN/{id}) and `urlpattern` (Mercure 1.0 URL patterns,
# https://example.com/rN/:id). Each run starts its own server (release build) and stops it;
# prints one JSON line per run: connected, and user-space bytes per subscriber (average over
# all, which includes the patterns' own cost, and marginal).
#
# Needs: cargo, jq, curl, python3. Example: SUBS=15000 PATTERNS=1000 loadtest/patterns.sh
set -euo pipefail

SUBS=${SUBS:-15000}
PATTERNS=${PATTERNS:-1000}
KINDS=${KINDS:-"plain template urlpattern"}
PORT=${PORT:-19380}

cd "$(dirname "$0")/.."
for tool in cargo jq curl python3; do
    command -v "$tool" >/dev/null || { echo "patterns.sh: $tool is needed" >&2; exit 1; }
done
cargo build --release -q -p ssecast -p ssecast-loadtest
OUT=$(mktemp -d)
SERVER=""
trap '[ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null; wait 2>/dev/null; rm -rf "$OUT"' EXIT

urls() {
    python3 - "$1" "$PORT" "$PATTERNS" <<'PY'
import sys
kind, port, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
base = f"http://127.0.0.1:{port}"
if kind == "plain":
    print(f"{base}/events?topic=load")
elif kind == "template":
    print(",".join(f"{base}/.well-known/mercure?topic=https%3A%2F%2Fexample.com%2Fr{n}%2F%7Bid%7D" for n in range(count)))
else:
    print(",".join(f"{base}/.well-known/mercure?match_urlpattern=https%3A%2F%2Fexample.com%2Fr{n}%2F%3Aid" for n in range(count)))
PY
}

for kind in $KINDS; do
    target/release/ssecast --listen "127.0.0.1:$PORT" --max-connections-per-ip 0 \
        >"$OUT/server.log" 2>&1 &
    SERVER=$!
    for _ in $(seq 50); do curl -sf "127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
    target/release/ssecast-loadtest connect --url "$(urls "$kind")" --pid "$SERVER" \
        --subscribers "$SUBS" --json --quiet >"$OUT/report.json"
    jq -c --arg kind "$kind" --argjson patterns "$PATTERNS" \
        '{kind: $kind, patterns: (if $kind == "plain" then 0 else $patterns end),
          connected: .report.connected,
          user_bytes_average: (.report.rss_anon.average | floor),
          user_bytes_marginal: (.report.rss_anon.marginal | floor)}' "$OUT/report.json"
    kill "$SERVER"; wait "$SERVER" 2>/dev/null || true
    SERVER=""
done
