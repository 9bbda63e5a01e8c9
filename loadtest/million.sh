#!/usr/bin/env bash
# Many subscribers on this one machine: SUBS of them (100,000 by default; 1,000,000 by hand)
# over as many ssecast nodes as one process's file limit needs (PER_NODE each, 19,000 here,
# where a process may hold 20,000 files), joined by one Redis, with as many client processes
# (the loadtest spreads its own over processes and loopback source addresses). Runs, through
# loadtest/cluster.sh, which starts and stops everything:
#   connect: all of them, held idle HOLD (a minute), then closed, memory read at each step;
#   single:  one event to all of them, SINGLE_EVENTS times, each awaited up to SINGLE_TIMEOUT
#            (two minutes) before the next (time to first, median, last; lost);
#   fanout:  FANOUT_RATE events a second for FANOUT_DURATION to all of them (p50, p99; lost),
#            the last deliveries awaited up to FANOUT_DRAIN (15 minutes).
# Needs what cluster.sh needs (cargo, jq, curl, redis-server, redis-cli). Examples:
#   loadtest/million.sh                      # 100,000, a few minutes
#   SUBS=1000000 FANOUT_RATE=1 loadtest/million.sh
#       by hand: 53 nodes, about 20 minutes and 10 GB of kernel memory. Two cores deliver about
#       half a million frames a second to a million subscribers, so 10 events a second to all
#       of them fills the kernel's TCP memory (BENCHMARKS.md, "One million subscribers").
# The run's JSON document (run.json) and charts are written to OUT (a new temporary directory
# unless given), as cluster.sh says.
set -euo pipefail

SUBS=${SUBS:-100000}
PER_NODE=${PER_NODE:-19000}
export SUBS
export NODES=$(((SUBS + PER_NODE - 1) / PER_NODE))
export FANOUT_SUBS=${FANOUT_SUBS:-$SUBS}
export FANOUT_RATE=${FANOUT_RATE:-10}
export FANOUT_DURATION=${FANOUT_DURATION:-30s}
export FANOUT_DRAIN=${FANOUT_DRAIN:-900s}
export HOLD=${HOLD:-60s}
export SINGLE_TIMEOUT=${SINGLE_TIMEOUT:-120s}
export SCENARIOS=${SCENARIOS:-"connect single fanout"}
export LOADTEST_FLAGS=${LOADTEST_FLAGS:-"--per-process $PER_NODE"}
exec "$(dirname "$0")/cluster.sh"
