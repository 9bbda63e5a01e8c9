#!/usr/bin/env bash
# Runs the same loadtest scenarios (connect, single, fanout, publish) against ssecast, nginx
# with the Nchan module, the loadtest's floor broadcaster and a plain axum server
# (loadtest/peers/axum), one after the other in one run, and prints each figure with its ratio
# to ssecast as a Markdown table.
#
# Needs: cargo, jq, curl, and `apt-get install -y nginx libnginx-mod-nchan`.
# Sizes are chosen so the whole run takes a few minutes; override them with the variables
# below, e.g. CONNECT_SUBS=15000 loadtest/compare.sh, or run a part of it:
#   SCENARIOS=publish SERVERS="ssecast axum" loadtest/compare.sh
# Each server is started by the script on its own loopback port and stopped when its
# scenarios are done; the JSON reports stay in $OUT (default: a temporary directory, printed
# at the end).
#
# publish: every server gets the same client (connections, window, events, subscribers) and
# the same form body, but Nchan, which takes the event data as a text/plain body; ssecast runs
# once more with --batch (JSON arrays of events). The floor has no publish path worth
# measuring and is left out of it.
set -euo pipefail

SCENARIOS=${SCENARIOS:-"connect single fanout publish"}
SERVERS=${SERVERS:-"ssecast nchan floor axum"}
CONNECT_SUBS=${CONNECT_SUBS:-10000}   # connect: idle subscribers
HOLD=${HOLD:-3s}                      # connect: how long they are held
SETTLE=${SETTLE:-5s}                  # connect: wait after closing before the last reading
SINGLE_SUBS=${SINGLE_SUBS:-10000}     # single: subscribers
SINGLE_EVENTS=${SINGLE_EVENTS:-10}    # single: events, one at a time
FANOUT_SUBS=${FANOUT_SUBS:-2000}      # fanout: subscribers
FANOUT_RATE=${FANOUT_RATE:-50}        # fanout: events per second
FANOUT_DURATION=${FANOUT_DURATION:-10s}
FANOUT_PUBLISH_CONNECTIONS=${FANOUT_PUBLISH_CONNECTIONS:-1}  # fanout: pipelined publish connections
PUBLISH_EVENTS=${PUBLISH_EVENTS:-100000}     # publish: events in all
PUBLISH_CONNECTIONS=${PUBLISH_CONNECTIONS:-8}  # publish: keep-alive publish connections
PUBLISH_IN_FLIGHT=${PUBLISH_IN_FLIGHT:-16}   # publish: requests unanswered per connection
PUBLISH_SUBS=${PUBLISH_SUBS:-1}              # publish: subscribers checking every event
PUBLISH_BATCH=${PUBLISH_BATCH:-100}          # publish: events per request of ssecast's batch run
SIZE=${SIZE:-64}                      # event data bytes
RATE=${RATE:-5000}                    # new connections per second
BASE_PORT=${BASE_PORT:-19180}         # the servers take this port and the next ones, in order
SSECAST_FLAGS=${SSECAST_FLAGS:-}      # more ssecast flags, e.g. "--history 100000"
AXUM=loadtest/peers/axum/target/release/axum-peer

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
if [[ " $SERVERS " == *" axum "* ]]; then
    cargo build --release -q --manifest-path loadtest/peers/axum/Cargo.toml
fi
LOADTEST=target/release/ssecast-loadtest
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
SERVER_PID=
FORM=(--publish-body 'topic={topic}&data={data}'
    --publish-content-type application/x-www-form-urlencoded)

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

# Starts one server; sets SERVER_PID, FLAGS (the loadtest flags that reach it) and
# PUBLISH_FLAGS (what the publish scenario adds: the body every server gets there).
start_server() {
    local name=$1 port=$2
    PUBLISH_FLAGS=("${FORM[@]}")
    case $name in
    ssecast)
        # shellcheck disable=SC2086 # SSECAST_FLAGS is a list of flags
        target/release/ssecast --listen "127.0.0.1:$port" --max-connections-per-ip 0 \
            $SSECAST_FLAGS >"$OUT/ssecast.log" 2>&1 &
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
        PUBLISH_FLAGS=()
        ;;
    axum)
        "$AXUM" --listen "127.0.0.1:$port" >"$OUT/axum.log" 2>&1 &
        SERVER_PID=$!
        wait_for "$port" /healthz
        # It takes forms only: every scenario publishes one.
        FLAGS=(--url "http://127.0.0.1:$port/events?topic=load" --pid "$SERVER_PID" "${FORM[@]}")
        PUBLISH_FLAGS=()
        ;;
    esac
}

# Runs one scenario into $OUT/$1.json (the rest are the loadtest's arguments); a run that
# fails leaves no report, and the table shows a dash.
run_report() {
    local report=$1
    shift
    if ! "$LOADTEST" "$@" >"$OUT/$report.json"; then
        echo "compare.sh: $report failed" >&2
        rm -f "$OUT/$report.json"
    fi
}

# Whether scenario $1 is to run.
wanted() {
    [[ " $SCENARIOS " == *" $1 "* ]]
}

next_port=$BASE_PORT
RAN=()  # the servers that ran a scenario: the table's columns
for server in $SERVERS; do
    port=$next_port
    next_port=$((port + 1))
    if [ "$server" = floor ] && ! wanted connect && ! wanted single && ! wanted fanout; then
        continue
    fi
    echo "== $server" >&2
    RAN+=("$server")
    start_server "$server" "$port"
    common=("${FLAGS[@]}" --name "$server" --rate "$RATE" --json --quiet)
    if wanted connect; then
        run_report "$server-connect" connect "${common[@]}" --subscribers "$CONNECT_SUBS" \
            --hold "$HOLD" --settle "$SETTLE"
    fi
    if wanted single; then
        run_report "$server-single" single "${common[@]}" --subscribers "$SINGLE_SUBS" \
            --events "$SINGLE_EVENTS" --size "$SIZE"
    fi
    if wanted fanout; then
        run_report "$server-fanout" fanout "${common[@]}" --subscribers "$FANOUT_SUBS" \
            --events-per-second "$FANOUT_RATE" --duration "$FANOUT_DURATION" \
            --publish-connections "$FANOUT_PUBLISH_CONNECTIONS" --size "$SIZE"
    fi
    if wanted publish && [ "$server" != floor ]; then
        publish=("${common[@]}" --subscribers "$PUBLISH_SUBS" --events "$PUBLISH_EVENTS"
            --connections "$PUBLISH_CONNECTIONS" --in-flight "$PUBLISH_IN_FLIGHT" --size "$SIZE")
        run_report "$server-publish" publish "${publish[@]}" "${PUBLISH_FLAGS[@]}"
        if [ "$server" = ssecast ]; then
            # Batches are JSON arrays of JSON events: the default body.
            run_report "$server-publish-batch" publish "${publish[@]}" --batch "$PUBLISH_BATCH"
        fi
    fi
    stop_server
done

# figure label, scenario (the report's name after the server's), jq path to the number,
# number format
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
    "publish: events per second|publish|.report.events_per_second|%.0f"
    "publish: server CPU per event (us)|publish|.report.server_cpu_per_event_us|%.2f"
    "publish: client CPU per event (us)|publish|.report.client_cpu_per_event_us|%.2f"
    "publish: round trip p50 (ms)|publish|.report.publish.round_trip.p50_ms|%.2f"
    "publish: round trip p99 (ms)|publish|.report.publish.round_trip.p99_ms|%.2f"
    "publish: delivery latency p99 (ms)|publish|.report.latency.p99_ms|%.2f"
    "publish: events failed|publish|.report.publish.failed|%.0f"
    "publish: lost|publish|.report.lost|%.0f"
    "publish: reordered|publish|.report.reordered|%.0f"
    "publish, batch $PUBLISH_BATCH: events per second|publish-batch|.report.events_per_second|%.0f"
    "publish, batch $PUBLISH_BATCH: server CPU per event (us)|publish-batch|.report.server_cpu_per_event_us|%.2f"
    "publish, batch $PUBLISH_BATCH: round trip p50 (ms)|publish-batch|.report.publish.round_trip.p50_ms|%.2f"
    "publish, batch $PUBLISH_BATCH: round trip p99 (ms)|publish-batch|.report.publish.round_trip.p99_ms|%.2f"
    "publish, batch $PUBLISH_BATCH: lost|publish-batch|.report.lost|%.0f"
)

# Groups the whole part of a number by thousands: 1234567.5 -> 1,234,567.5.
thousands() {
    sed -E ':a; s/^(-?[0-9]+)([0-9]{3})/\1,\2/; ta' <<<"$1"
}

sizes=
wanted connect && sizes+="connect $CONNECT_SUBS; "
wanted single && sizes+="single $SINGLE_SUBS x $SINGLE_EVENTS events; "
wanted fanout && sizes+="fanout $FANOUT_SUBS x $FANOUT_RATE/s for $FANOUT_DURATION; "
wanted publish && sizes+="publish $PUBLISH_EVENTS events from $PUBLISH_CONNECTIONS connections x \
$PUBLISH_IN_FLIGHT in flight to $PUBLISH_SUBS subscriber(s), form body (Nchan: text/plain), \
and ssecast's in batches of $PUBLISH_BATCH (JSON); "
if wanted single || wanted fanout || wanted publish; then
    sizes+="$SIZE-byte events; "
fi
echo
echo "$sizes$(nproc) cores, client and servers on one machine"
# Ratios are to ssecast, if it ran.
ratios=false
[[ " ${RAN[*]} " == *" ssecast "* ]] && ratios=true
echo
header="| figure |"
rule="|---|"
for server in "${RAN[@]}"; do
    header+=" $server |"
    rule+="---:|"
    if [ "$server" != ssecast ] && $ratios; then
        header+=" ratio |"
        rule+="---:|"
    fi
done
echo "$header"
echo "$rule"
for figure in "${FIGURES[@]}"; do
    IFS='|' read -r label scenario path format <<<"$figure"
    wanted "${scenario%-batch}" || continue
    line="| $label |"
    base=$(jq -r "$path" "$OUT/ssecast-$scenario.json" 2>/dev/null || echo null)
    for server in "${RAN[@]}"; do
        value=$(jq -r "$path" "$OUT/$server-$scenario.json" 2>/dev/null || echo null)
        if [ "$value" = null ]; then
            line+=" - |"
        else
            line+=" $(thousands "$(printf "$format" "$value")") |"
        fi
        if [ "$server" != ssecast ] && $ratios; then
            line+=" $(awk -v a="$value" -v b="$base" \
                'BEGIN { if (a == "null" || b == "null" || b + 0 == 0) print "-"; else printf "%.2fx", a / b }') |"
        fi
    done
    echo "$line"
done
echo
echo "reports: $OUT" >&2
