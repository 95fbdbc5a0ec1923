#!/bin/sh
# ensemble-compare.sh: 3-server ensembles of zkd and of Apache ZooKeeper
# 3.8, started in turn (zkd, ZooKeeper, zkd, ZooKeeper, ...) on
# 127.0.0.1-3 with the same zoo.cfg, each loaded by zkbench saturate
# through its leader and through a follower. It prints one line per run;
# docs/benchmarks.md has the figures and the command.
#
# The servers may be named: "zkd zkd=/tmp/zkd-other" compares this tree's
# zkd with another build of it (see ensemble-lib.sh), and the runs may be
# narrowed to some roles and read percentages.
#
# usage: bench/ensemble-compare.sh [rounds] [seconds per run] [servers] [through] [reads %]
#   defaults: 2 10 "zkd zookeeper" "leader follower" "0 90 100"
set -eu
rounds=${1:-2}
secs=${2:-10}
impls=${3:-zkd zookeeper}
throughs=${4:-leader follower}
readss=${5:-0 90 100}
. bench/ensemble-lib.sh
scratch ensemble-compare zkbench

printf "%-10s %-6s %-8s %-6s %12s %10s\n" server round through reads ops/s p99ms
for r in $(seq 1 "$rounds"); do
	for impl in $impls; do
		start $impl
		for through in $throughs; do
			addr=$(role $through)
			for reads in $readss; do
				set -- $(saturate "$addr" $reads $secs)
				ops=$1 p99=$2
				printf "%-10s %-6s %-8s %-6s %12s %10s\n" "$impl" $r $through $reads "$ops" "$p99"
			done
		done
		stop $impl
	done
done
