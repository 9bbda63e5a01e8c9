#!/bin/sh
# Publishes two events to ssecast with curl: one form-encoded, whose data has two lines, and one
# JSON, with an event type and a JSON value as its data. Prints the server's answer to each,
# `{"id": "...", "subscribers": N}`, and exits non-zero if the server refuses one.
#
# Run:   ./examples/publish.sh [TOPIC]        (TOPIC defaults to news)
#        SSECAST_URL=http://host:8080 ./examples/publish.sh news
# Watch: curl -N 'http://127.0.0.1:8080/events?topic=news', or the demo page at /
set -eu

url="${SSECAST_URL:-http://127.0.0.1:8080}"
topic="${1:-news}"

# Form-encoded: one -d per field; --data-urlencode for values with spaces, '&' or newlines.
# Each line of data becomes its own `data:` line on the wire; EventSource joins them again.
curl -sS --fail-with-body \
  --data-urlencode "topic=$topic" \
  --data-urlencode 'data=hello from curl
a second line' \
  "$url/publish"
echo

# JSON: `data` may be a string or any JSON value (sent as its JSON text); `topic` a string or
# an array. (This builds the JSON by hand, so the topic must not contain a quote.)
curl -sS --fail-with-body \
  -H 'content-type: application/json' \
  -d "{\"topic\": \"$topic\", \"event\": \"score\", \"data\": {\"home\": 2, \"away\": 1}}" \
  "$url/publish"
echo
