#!/usr/bin/env bash
# Runs the same loadtest scenarios (connect, single, fanout) against ssecast, nginx with the
# Nchan module, and the loadtest's floor broadcaster, one after the other in one run, and
# prints each figure with its ratio to ssecast as a Markdown table.
#
# Needs: cargo, jq, curl, and `apt-get install -y nginx libnginx-mod-nchan`.
# Sizes are chosen so the whole run takes a few minutes; override them with the variables
# below, e.g. CONNECT_SUBS=15000 loadtest/compare.sh. Each server is started by the script
# on its own loopback port and stopped when its scenarios are done; the JSON reports stay in
# $OUT (default: a temporary directory, printed at the end).
set -euo pipefail

CONNECT_SUBS=${CONNECT_SUBS:-10000}   # connect: idle subscribers
HOLD=${HOLD:-3s}                      # connect: how long they are held
SETTLE=${SETTLE:-5s}                  # connect: wait after closing before the last reading
SINGLE_SUBS=${SINGLE_SUBS:-10000}     # single: subscribers
SINGLE_EVENTS=${SINGLE_EVENTS:-10}    # single: events, one at a time
FANOUT_SUBS=${FANOUT_SUBS:-2000}      # fanout: subscribers
FANOUT_RATE=${FANOUT_RATE:-50}        # fanout: events per second
FANOUT_DURATION=${FANOUT_DURATION:-10s}
PUBLISH_CONNECTIONS=${PUBLISH_CONNECTIONS:-1}  # fanout: pipelined publish connections
SIZE=${SIZE:-64}                      # event data bytes
RATE=${RATE:-5000}                    # new connections per second
BASE_PORT=${BASE_PORT:-19180}         # ssecast, nchan, floor take this port and the next two
SERVERS=${SERVERS:-"ssecast nchan floor"}

cd "$(dirname "$0")/.."
for tool in cargo jq curl; do
    command -v "$tool" >/dev/null || { echo "compare.sh: $tool is needed" >&2; exit 1; }
done
if [[ " $SERVERS " == *" nchan "* ]] && { ! command -v nginx >/dev/null ||
        [ ! -e /usr/lib/nginx/modules/ngx_nchan_module.so ]; }; then
    echo "compare.sh: install nginx and Nchan: apt-get install -y nginx libnginx-mod-nchan" >&2
    exit 1
fi

cargo build --release -q -p ssecast -p ssecast-loadtest
LOADTEST=target/release/ssecast-loadtest
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
SERVER_PID=

stop_server() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=
    fi
}
trap stop_server EXIT

# Waits until http://127.0.0.1:$1$2 answers (at most 10 s).
wait_for() {
    for _ in $(seq 100); do
        curl -s -o /dev/null "http://127.0.0.1:$1$2" && return 0
        sleep 0.1
    done
    echo "compare.sh: nothing answers on port $1" >&2
    return 1
}

# Starts one server; sets SERVER_PID and FLAGS (the loadtest flags that reach it).
start_server() {
    local name=$1 port=$2
    case $name in
    ssecast)
        target/release/ssecast --listen "127.0.0.1:$port" --max-connections-per-ip 0 >"$OUT/ssecast.log" 2>&1 &
        SERVER_PID=$!
        wait_for "$port" /healthz
        FLAGS=(--url "http://127.0.0.1:$port/events?topic=load")
        ;;
    floor)
        "$LOADTEST" serve-floor --listen "127.0.0.1:$port" >"$OUT/floor.log" 2>&1 &
        SERVER_PID=$!
        wait_for "$port" /stats
        FLAGS=(--url "http://127.0.0.1:$port/events?topic=load")
        ;;
    nchan)
        local dir="$OUT/nginx"
        mkdir -p "$dir"
        sed -e "s|@PORT@|$port|g" -e "s|@DIR@|$dir|g" loadtest/nchan.conf.template >"$dir/nginx.conf"
        nginx -c "$dir/nginx.conf" -p "$dir" &
        SERVER_PID=$!
        wait_for "$port" "/publish?topic=warmup"
        local worker
        worker=$(pgrep -P "$SERVER_PID" | head -1)
        FLAGS=(--url "http://127.0.0.1:$port/events?topic=load"
            --publish-url "http://127.0.0.1:$port/publish?topic={topic}"
            --publish-body '{data}' --publish-content-type text/plain --pid "$worker")
        ;;
    esac
}

port=$BASE_PORT
for server in $SERVERS; do
    echo "== $server" >&2
    start_server "$server" "$port"
    common=("${FLAGS[@]}" --name "$server" --rate "$RATE" --json --quiet)
    "$LOADTEST" connect "${common[@]}" --subscribers "$CONNECT_SUBS" --hold "$HOLD" \
        --settle "$SETTLE" >"$OUT/$server-connect.json"
    "$LOADTEST" single "${common[@]}" --subscribers "$SINGLE_SUBS" --events "$SINGLE_EVENTS" \
        --size "$SIZE" >"$OUT/$server-single.json"
    "$LOADTEST" fanout "${common[@]}" --subscribers "$FANOUT_SUBS" \
        --events-per-second "$FANOUT_RATE" --duration "$FANOUT_DURATION" \
        --publish-connections "$PUBLISH_CONNECTIONS" --size "$SIZE" >"$OUT/$server-fanout.json"
    stop_server
    port=$((port + 1))
done

# figure label, scenario, jq path to the number, number format
FIGURES=(
    "connect: subscribers streaming|connect|.report.connected|%.0f"
    "connect: user RssAnon / sub, average (B)|connect|.report.rss_anon.average|%.0f"
    "connect: user RssAnon / sub, marginal (B)|connect|.report.rss_anon.marginal|%.0f"
    "connect: user RSS / sub, marginal (B)|connect|.report.rss.marginal|%.0f"
    "connect: kernel / sub, marginal, both ends (B)|connect|.report.kernel.marginal|%.0f"
    "connect: server RSS after close (MiB)|connect|.report.memory.settled.rss / 1048576|%.1f"
    "single: to first subscriber (ms)|single|.report.first_ms|%.2f"
    "single: to median subscriber (ms)|single|.report.median_ms|%.2f"
    "single: to last subscriber (ms)|single|.report.last_ms|%.2f"
    "single: lost|single|.report.lost|%.0f"
    "fanout: latency p50 (ms)|fanout|.report.latency.p50_ms|%.2f"
    "fanout: latency p99 (ms)|fanout|.report.latency.p99_ms|%.2f"
    "fanout: latency max (ms)|fanout|.report.latency.max_ms|%.2f"
    "fanout: deliveries per second|fanout|.report.deliveries_per_second|%.0f"
    "fanout: server CPU per delivery (us)|fanout|.report.server_cpu_per_delivery_us|%.3f"
    "fanout: client CPU per delivery (us)|fanout|.report.client_cpu_per_delivery_us|%.3f"
    "fanout: lost|fanout|.report.lost|%.0f"
    "fanout: duplicated|fanout|.report.duplicated|%.0f"
    "fanout: reordered|fanout|.report.reordered|%.0f"
)

echo
echo "connect $CONNECT_SUBS; single $SINGLE_SUBS x $SINGLE_EVENTS events; fanout $FANOUT_SUBS x" \
    "$FANOUT_RATE/s for $FANOUT_DURATION; $SIZE-byte events; $(nproc) cores, client and servers on one machine"
echo
header="| figure |"
rule="|---|"
for server in $SERVERS; do
    header+=" $server |"
    rule+="---:|"
    if [ "$server" != ssecast ]; then
        header+=" ratio |"
        rule+="---:|"
    fi
done
echo "$header"
echo "$rule"
for figure in "${FIGURES[@]}"; do
    IFS='|' read -r label scenario path format <<<"$figure"
    line="| $label |"
    base=$(jq -r "$path" "$OUT/ssecast-$scenario.json" 2>/dev/null || echo null)
    for server in $SERVERS; do
        value=$(jq -r "$path" "$OUT/$server-$scenario.json" 2>/dev/null || echo null)
        if [ "$value" = null ]; then
            line+=" - |"
        else
            line+=" $(printf "$format" "$value") |"
        fi
        if [ "$server" != ssecast ]; then
            line+=" $(awk -v a="$value" -v b="$base" \
                'BEGIN { if (a == "null" || b == "null" || b + 0 == 0) print "-"; else printf "%.2fx", a / b }') |"
        fi
    done
    echo "$line"
done
echo
echo "reports: $OUT" >&2
