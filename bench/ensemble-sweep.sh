#!/bin/sh
# ensemble-sweep.sh: setData through a follower of a 3-server ensemble at
# several loads (connections × requests each keeps outstanding), zkd and
# Apache ZooKeeper 3.8 started in turn on 127.0.0.1-3 as
# ensemble-compare.sh starts them. Where the rate stops rising as the
# load grows, the ensemble is at its capacity; below that, the rate is
# what the load's latency allows. For zkd, the quorum's own timings from
# mntr during the 32 × 16 point (the load), in ms: the leader's
# (a txn's wait for a quorum's ACKs and for its own log, and an fsync)
# and the follower's (a PROPOSAL's way from the leader, its log, the
# COMMIT's wait, and a client's write in all). $extra (zoo.cfg lines, such as
# forceSync=no) goes to every server. docs/benchmarks.md has the figures
# and the command.
#
# usage: bench/ensemble-sweep.sh [rounds] [seconds per point] [servers]
set -eu
rounds=${1:-1}
secs=${2:-5}
impls=${3:-zkd zookeeper}
. bench/ensemble-lib.sh
scratch ensemble-sweep zkbench

# point <addr> <clients> <outstanding>: "ops/s p50ms p99ms", or "? ? ?".
point() {
	"$root/zkbench" saturate -servers "$1" -reads 0 -clients $2 -outstanding $3 -duration ${secs}s -warmup 1s -progress=false -json 2>/dev/null | python3 -c '
import json, sys
r = json.load(sys.stdin)
while isinstance(r, list): r = r[0]
r = r["phases"][0]
l = r["latency"]["all"]
print(int(r["ops_per_sec"]), l["p50_ms"], l["p99_ms"])' 2>/dev/null || echo "? ? ?"
}

# timings <addr> <keys>: those mntr averages, as key=ms.
timings() {
	a=$1
	shift
	fourlw ${a%:*} $port mntr | python3 -c '
import sys
keys = sys.argv[1:]
got = dict(l.rstrip("\n").split("\t", 1) for l in sys.stdin if "\t" in l)
print(" ".join("%s=%s" % (k, got.get("zk_avg_" + k, "?")) for k in keys))' "$@" 2>/dev/null || true
}

printf "%-10s %-6s %8s %12s %10s %10s %10s\n" server round clients outstanding ops/s p50ms p99ms
for r in $(seq 1 "$rounds"); do
	for impl in $impls; do
		start $impl
		f=$(role follower)
		l=$(role leader)
		for load in "1 1" "32 1" "32 4" "32 16" "32 64"; do
			set -- $load
			c=$1 o=$2
			if [ "$load" = "32 16" ]; then
				fourlw ${l%:*} $port srst >/dev/null
				fourlw ${f%:*} $port srst >/dev/null
			fi
			set -- $(point "$f" $c $o)
			printf "%-10s %-6s %8s %12s %10s %10s %10s\n" $impl $r $c $o "$1" "$2" "$3"
			if [ "$load" = "32 16" ] && [ $impl = zkd ]; then
				lt=$(timings $l quorum_ack_latency proposal_ack_creation_latency fsynctime)
				ft=$(timings $f proposal_latency proposal_ack_creation_latency commit_propagation_latency updatelatency)
			fi
		done
		if [ $impl = zkd ]; then
			echo "  zkd at 32 x 16, leader:   $lt"
			echo "  zkd at 32 x 16, follower: $ft"
		fi
		stop $impl
	done
done
