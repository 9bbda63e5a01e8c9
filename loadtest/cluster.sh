#!/usr/bin/env bash
# Runs loadtest scenarios against a cluster: a redis-server and NODES ssecast nodes joined by it
# (--redis), each on its own loopback port, every scenario given all the nodes' URLs (the
# loadtest deals its subscribers over them in turn, publishes to the first node and measures
# every node's memory and CPU). Prints a Markdown table of the main figures, with Redis's own
# memory after each scenario. In $OUT: run.json, one JSON document of the whole run (machine,
# kernel settings, parameters, each scenario's report with its samples over time, Redis's
# memory), an SVG chart per scenario, the node logs and Redis's INFO.
#
# Needs: cargo, jq, curl, redis-server and redis-cli (apt-get install -y redis-server).
# Everything the script starts is stopped when it ends, whatever happens. Examples:
#   NODES=4 SUBS=76000 SCENARIOS="connect single" loadtest/cluster.sh
#   NODES=4 FANOUT_SUBS=40000 FANOUT_RATE=100 FANOUT_DURATION=10s SCENARIOS=fanout \
#       loadtest/cluster.sh
# One node holds about 19,900 sockets here (open-file limit 20,000): give it at most 19,000
# subscribers. The loadtest spreads its own subscribers over client processes (19,000 each,
# --per-process) and source addresses (127.0.0.2, ... after 20,000, --per-address) itself.
set -euo pipefail

NODES=${NODES:-4}                     # ssecast nodes
SCENARIOS=${SCENARIOS:-"connect single fanout"}
SUBS=${SUBS:-20000}                   # connect and single: subscribers, over all nodes
HOLD=${HOLD:-3s}                      # connect: how long they are held
SETTLE=${SETTLE:-5s}                  # connect: wait after closing before the last reading
SINGLE_EVENTS=${SINGLE_EVENTS:-10}    # single: events, one at a time
SINGLE_TIMEOUT=${SINGLE_TIMEOUT:-10s} # single: the longest wait for one event to reach all
FANOUT_SUBS=${FANOUT_SUBS:-8000}      # fanout: subscribers, over all nodes
FANOUT_RATE=${FANOUT_RATE:-50}        # fanout: events per second
FANOUT_DURATION=${FANOUT_DURATION:-10s}
FANOUT_DRAIN=${FANOUT_DRAIN:-60s}     # fanout: the longest wait for the last deliveries
SIZE=${SIZE:-64}                      # event data bytes
RATE=${RATE:-5000}                    # new connections per second, over all nodes
BASE_PORT=${BASE_PORT:-19280}         # Redis and the nodes take the first free ports from here
SSECAST_FLAGS=${SSECAST_FLAGS:-}      # more flags for every node, e.g. "--history 100000"
LOADTEST_FLAGS=${LOADTEST_FLAGS:-}    # more flags for every scenario, e.g. "--client-threads 2"
PROFILE=${PROFILE:-release}           # cargo profile of the binaries (the tests use dev)

cd "$(dirname "$0")/.."
for tool in cargo jq curl redis-server redis-cli; do
    command -v "$tool" >/dev/null || { echo "cluster.sh: $tool is needed" >&2; exit 1; }
done

cargo build --profile "$PROFILE" -q -p ssecast -p ssecast-loadtest
BIN=target/$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")
LOADTEST=$BIN/ssecast-loadtest
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
STARTED=()  # PIDs of everything this script started

stop_all() {
    local pid
    for pid in "${STARTED[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${STARTED[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
}
trap stop_all EXIT

# The first port from $1 up that nothing on 127.0.0.1 answers on.
free_port() {
    local port=$1
    while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
        port=$((port + 1))
    done
    echo "$port"
}

# Waits until command $2... succeeds (at most 10 s); $1 says what is awaited.
wait_until() {
    local what=$1
    shift
    for _ in $(seq 100); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "cluster.sh: $what" >&2
    return 1
}

# Whether the node on port $1 follows Redis.
following() {
    curl -sf "http://127.0.0.1:$1/stats" | jq -e '.redis_up == true'
}

REDIS_PORT=$(free_port "$BASE_PORT")
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
    >"$OUT/redis.log" 2>&1 &
STARTED+=($!)
wait_until "redis-server does not answer on port $REDIS_PORT" \
    redis-cli -p "$REDIS_PORT" ping

URLS=()
next_port=$((REDIS_PORT + 1))
for node in $(seq "$NODES"); do
    port=$(free_port "$next_port")
    next_port=$((port + 1))
    # shellcheck disable=SC2086 # SSECAST_FLAGS is a list of flags
    "$BIN/ssecast" --listen "127.0.0.1:$port" --redis "redis://127.0.0.1:$REDIS_PORT" \
        --max-connections-per-ip 0 $SSECAST_FLAGS >"$OUT/node-$node.log" 2>&1 &
    STARTED+=($!)
    wait_until "node $node (port $port) does not follow Redis" following "$port"
    URLS+=(--url "http://127.0.0.1:$port/events?topic=load")
done
echo "== redis on $REDIS_PORT, $NODES nodes on ports $((REDIS_PORT + 1))-$((next_port - 1))" >&2

# Redis's INFO memory now (used_memory, used_memory_peak, ... in bytes) into
# $OUT/redis-$1.txt.
redis_memory() {
    redis-cli -p "$REDIS_PORT" info memory | tr -d '\r' >"$OUT/redis-$1.txt"
}

# The machine's TCP counters that say when the kernel, not the server, held connections or
# data back (SYNs dropped at a full accept queue, segments retransmitted or dropped under
# memory pressure), as a JSON object.
tcp_counters() {
    awk 'FNR % 2 == 1 { split($0, names); next }
        { for (i = 2; i <= NF; i++) print substr(names[1], 1, length(names[1]) - 1) names[i], $i }' \
        /proc/net/netstat /proc/net/snmp |
        grep -E '^(TcpExt(ListenOverflows|PruneCalled|TCPMemoryPressures|TCPRcvQDrop|TCPAbortOnMemory)|Tcp(RetransSegs|AttemptFails)) ' |
        jq -R 'split(" ") | {(.[0]): (.[1] | tonumber)}' | jq -s add
}

# Runs one scenario into $OUT/$1.json (the rest are the loadtest's arguments), with its chart
# and the TCP counters it moved; a run that fails leaves no report, and the table shows a dash.
run_report() {
    local report=$1
    shift
    echo "== $report" >&2
    tcp_counters >"$OUT/tcp-before-$report.json"
    if ! "$LOADTEST" "$@" --svg "$OUT/$report.svg" >"$OUT/$report.json"; then
        echo "cluster.sh: $report failed" >&2
        rm -f "$OUT/$report.json"
    fi
    tcp_counters >"$OUT/tcp-after-$report.json"
    redis_memory "$report"
}

# Whether scenario $1 is to run.
wanted() {
    [[ " $SCENARIOS " == *" $1 "* ]]
}

# shellcheck disable=SC2206 # LOADTEST_FLAGS is a list of flags
common=("${URLS[@]}" --name "ssecast x $NODES" --rate "$RATE" --json --quiet $LOADTEST_FLAGS)
if wanted connect; then
    run_report connect connect "${common[@]}" --subscribers "$SUBS" --hold "$HOLD" \
        --settle "$SETTLE"
fi
if wanted single; then
    run_report single single "${common[@]}" --subscribers "$SUBS" --events "$SINGLE_EVENTS" \
        --event-timeout "$SINGLE_TIMEOUT" --size "$SIZE"
fi
if wanted fanout; then
    run_report fanout fanout "${common[@]}" --subscribers "$FANOUT_SUBS" \
        --events-per-second "$FANOUT_RATE" --duration "$FANOUT_DURATION" \
        --drain-limit "$FANOUT_DRAIN" --size "$SIZE"
fi

# The value of kernel setting $1 (a path under /proc/sys), its fields separated by spaces;
# empty where this network namespace does not have it.
kernel_setting() {
    tr -s '\t ' ' ' <"/proc/sys/$1" 2>/dev/null || true
}

# One JSON document of the whole run into $OUT/run.json: the machine, the kernel settings a
# run at this size depends on, the parameters, and each scenario's report (its samples over
# time included) with Redis's INFO memory at its end.
write_run_document() {
    local scenario parts=()
    for scenario in connect single fanout; do
        [ -s "$OUT/$scenario.json" ] || continue
        jq -n --arg name "$scenario" --slurpfile run "$OUT/$scenario.json" \
            --slurpfile before "$OUT/tcp-before-$scenario.json" \
            --slurpfile after "$OUT/tcp-after-$scenario.json" \
            --rawfile redis "$OUT/redis-$scenario.txt" '
            {($name): ($run[0] + {redis_memory: ($redis | split("\n")
                | map(select(test("^[a-z_]+:")) | capture("^(?<k>[^:]+):(?<v>.*)$")
                | {(.k): (.v | tonumber? // .)}) | add),
                tcp_counters: ($after[0] | with_entries(.value -= $before[0][.key]))})}' \
            >"$OUT/part-$scenario.json"
        parts+=("$OUT/part-$scenario.json")
    done
    # Through files: a run's samples are too long for one command-line argument.
    cat "${parts[@]}" </dev/null | jq -s 'add // {}' >"$OUT/scenarios.json"
    rm -f "${parts[@]}"
    jq -n --slurpfile scenarios "$OUT/scenarios.json" \
        --argjson cores "$(nproc)" \
        --argjson mem_total "$(awk '/^MemTotal:/ {printf "%d", $2 * 1024}' /proc/meminfo)" \
        --arg kernel "$(uname -r)" \
        --arg tcp_rmem "$(kernel_setting net/ipv4/tcp_rmem)" \
        --arg tcp_wmem "$(kernel_setting net/ipv4/tcp_wmem)" \
        --arg tcp_mem "$(kernel_setting net/ipv4/tcp_mem)" \
        --arg somaxconn "$(kernel_setting net/core/somaxconn)" \
        --arg tcp_max_syn_backlog "$(kernel_setting net/ipv4/tcp_max_syn_backlog)" \
        --arg tcp_ehash_entries "$(kernel_setting net/ipv4/tcp_ehash_entries)" \
        --arg ip_local_port_range "$(kernel_setting net/ipv4/ip_local_port_range)" \
        --arg file_max "$(kernel_setting fs/file-max)" \
        --arg open_files "$(ulimit -Hn)" \
        --arg nodes "$NODES" --arg subs "$SUBS" --arg hold "$HOLD" --arg settle "$SETTLE" \
        --arg single_events "$SINGLE_EVENTS" --arg single_timeout "$SINGLE_TIMEOUT" \
        --arg fanout_subs "$FANOUT_SUBS" \
        --arg fanout_rate "$FANOUT_RATE" --arg fanout_duration "$FANOUT_DURATION" \
        --arg fanout_drain "$FANOUT_DRAIN" \
        --arg size "$SIZE" --arg rate "$RATE" --arg ssecast_flags "$SSECAST_FLAGS" \
        --arg loadtest_flags "$LOADTEST_FLAGS" '{
            machine: {cores: $cores, mem_total: $mem_total, kernel: $kernel,
                open_files_per_process: $open_files},
            kernel_settings: {"net.ipv4.tcp_rmem": $tcp_rmem, "net.ipv4.tcp_wmem": $tcp_wmem,
                "net.ipv4.tcp_mem": $tcp_mem, "net.core.somaxconn": $somaxconn,
                "net.ipv4.tcp_max_syn_backlog": $tcp_max_syn_backlog,
                "net.ipv4.tcp_ehash_entries": $tcp_ehash_entries,
                "net.ipv4.ip_local_port_range": $ip_local_port_range, "fs.file-max": $file_max},
            parameters: {nodes: $nodes, subs: $subs, hold: $hold, settle: $settle,
                single_events: $single_events, single_timeout: $single_timeout,
                fanout_subs: $fanout_subs,
                fanout_rate: $fanout_rate, fanout_duration: $fanout_duration,
                fanout_drain: $fanout_drain, size: $size,
                rate: $rate, ssecast_flags: $ssecast_flags, loadtest_flags: $loadtest_flags},
            scenarios: $scenarios[0]}' >"$OUT/run.json"
    rm -f "$OUT/scenarios.json"
}
write_run_document

# figure label, scenario, jq path to the number, number format
FIGURES=(
    "connect: subscribers streaming|connect|.report.connected|%.0f"
    "connect: client processes|connect|.report.processes|%.0f"
    "connect: connect time (s)|connect|.report.connect_seconds|%.1f"
    "connect: failed connections|connect|.report.failed|%.0f"
    "connect: never answered|connect|.report.unanswered|%.0f"
    "connect: user RSS / sub, marginal (B)|connect|.report.rss.marginal|%.0f"
    "connect: user RssAnon / sub, marginal (B)|connect|.report.rss_anon.marginal|%.0f"
    "connect: kernel / sub, marginal, both ends (B)|connect|.report.kernel.marginal|%.0f"
    "connect: server RSS at N, all nodes (MiB)|connect|.report.memory.full.rss / 1048576|%.1f"
    "connect: server RSS after settle, all nodes (MiB)|connect|.report.memory.settled.rss / 1048576|%.1f"
    "connect: machine MemAvailable before (MiB)|connect|.report.memory.before.mem_available / 1048576|%.0f"
    "connect: machine MemAvailable at N (MiB)|connect|.report.memory.full.mem_available / 1048576|%.0f"
    "connect: machine MemAvailable after settle (MiB)|connect|.report.memory.settled.mem_available / 1048576|%.0f"
    "single: subscribers|single|.report.subscribers|%.0f"
    "single: to first subscriber (ms)|single|.report.first_ms|%.2f"
    "single: to median subscriber (ms)|single|.report.median_ms|%.2f"
    "single: to last subscriber (ms)|single|.report.last_ms|%.2f"
    "single: delivered|single|.report.delivered|%.0f"
    "single: expected|single|.report.expected|%.0f"
    "single: lost|single|.report.lost|%.0f"
    "single: events timed out|single|.report.timed_out|%.0f"
    "fanout: subscribers|fanout|.report.subscribers|%.0f"
    "fanout: publish rate reached (/s)|fanout|.report.publish.rate|%.1f"
    "fanout: latency p50 (ms)|fanout|.report.latency.p50_ms|%.2f"
    "fanout: latency p99 (ms)|fanout|.report.latency.p99_ms|%.2f"
    "fanout: latency p99.9 (ms)|fanout|.report.latency.p999_ms|%.2f"
    "fanout: latency max (ms)|fanout|.report.latency.max_ms|%.2f"
    "fanout: deliveries per second|fanout|.report.deliveries_per_second|%.0f"
    "fanout: server CPU per delivery, all nodes (us)|fanout|.report.server_cpu_per_delivery_us|%.3f"
    "fanout: client CPU per delivery (us)|fanout|.report.client_cpu_per_delivery_us|%.3f"
    "fanout: delivered|fanout|.report.delivered|%.0f"
    "fanout: expected|fanout|.report.expected|%.0f"
    "fanout: lost|fanout|.report.lost|%.0f"
    "fanout: duplicated|fanout|.report.duplicated|%.0f"
    "fanout: reordered|fanout|.report.reordered|%.0f"
)

# Groups the whole part of a number by thousands: 1234567.5 -> 1,234,567.5.
thousands() {
    sed -E ':a; s/^(-?[0-9]+)([0-9]{3})/\1,\2/; ta' <<<"$1"
}

# The value of field $2 in Redis's INFO after scenario $1, or a dash.
redis_field() {
    sed -n "s/^$2://p" "$OUT/redis-$1.txt" 2>/dev/null | grep . || echo -
}

echo
echo "ssecast nodes: $NODES, on one Redis; $(nproc) cores, client, nodes and Redis on one machine"
echo
echo "| figure | value |"
echo "|---|---:|"
for figure in "${FIGURES[@]}"; do
    IFS='|' read -r label scenario path format <<<"$figure"
    wanted "$scenario" || continue
    value=$(jq -r "$path" "$OUT/$scenario.json" 2>/dev/null || echo null)
    if [ "$value" = null ]; then
        echo "| $label | - |"
    else
        echo "| $label | $(thousands "$(printf "$format" "$value")") |"
    fi
done
if wanted connect; then
    jq -r '.report.by_process_at_n[] |
        "| connect: node pid \(.pid) RSS at N (MiB) | \(.rss / 1048576 * 10 | round / 10) |"' \
        "$OUT/connect.json" 2>/dev/null || true
fi
failures=()
for scenario in connect single fanout; do
    wanted "$scenario" || continue
    for field in used_memory used_memory_peak; do
        echo "| Redis $field at the end of $scenario (B) | $(thousands "$(redis_field "$scenario" "$field")") |"
    done
    jq -r --arg scenario "$scenario" '.scenarios[$scenario].tcp_counters // {} | to_entries[]
        | "| \($scenario): kernel TCP counter \(.key), whole machine | \(.value) |"' \
        "$OUT/run.json"
    error=$(jq -r '.report.first_error // empty' "$OUT/$scenario.json" 2>/dev/null || true)
    [ -z "$error" ] || failures+=("$scenario: first failure: $error")
done
echo
for failure in "${failures[@]}"; do
    echo "$failure"
done
echo "reports: $OUT" >&2
