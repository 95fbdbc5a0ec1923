#!/bin/sh
# ensemble-cpu.sh: where the machine's CPU goes while zkbench saturate
# loads a 3-server ensemble (zkd and Apache ZooKeeper 3.8 started in turn,
# as ensemble-compare.sh starts them). For each process, over 8 s in the
# middle of the run: its CPU in user space and in the kernel (cores, from
# /proc/PID/stat, every thread included) and its read and write system
# calls per second (/proc/PID/io); then the rate, and the CPU per request
# of the three servers together. docs/benchmarks.md has the figures and
# the command.
#
# The servers may be named as ensemble-compare.sh names them: "zkd
# zkd=/tmp/zkd-other" compares the CPU per request of two builds.
#
# usage: bench/ensemble-cpu.sh [rounds] [leader|follower] [reads %] [servers]
#   defaults: 1 follower 0 "zkd zookeeper"
set -eu
rounds=${1:-1}
through=${2:-follower}
reads=${3:-0}
impls=${4:-zkd zookeeper}
. bench/ensemble-lib.sh
scratch ensemble-cpu zkbench

# counters <pid>: "user-ticks system-ticks read-calls write-calls".
counters() {
	set -- "$(cut -d' ' -f14,15 /proc/$1/stat)" "$(awk '/^syscr/{r=$2} /^syscw/{w=$2} END{print r, w}' /proc/$1/io)"
	echo "$1 $2"
}

hz=$(getconf CLK_TCK)
printf "%-10s %-6s %-20s %7s %7s %9s %9s\n" server round process user sys reads/s writes/s
for r in $(seq 1 "$rounds"); do
	for impl in $impls; do
		start $impl
		addr=$(role $through)
		pids=""
		for i in 1 2 3; do
			pids="$pids $(pgrep -f "$root/$(dirof $impl)-$i/zoo.cfg")"
		done
		"$root/zkbench" saturate -servers "$addr" -reads $reads -duration 14s -warmup 2s -progress=false -json > "$root/out.json" 2>/dev/null &
		bench=$!
		sleep 5
		for p in $pids $bench; do counters $p > "$root/before.$p"; done
		sleep 8
		for p in $pids $bench; do counters $p > "$root/after.$p"; done
		total=0
		for p in $pids $bench; do
			name=zkbench
			for i in 1 2 3; do
				if [ $p != $bench ] && grep -qs "$(dirof $impl)-$i/zoo.cfg" /proc/$p/cmdline; then
					name="127.0.0.$i-$(fourlw 127.0.0.$i $port srvr | sed -n 's/^Mode: //p')"
				fi
			done
			set -- $(cat "$root/before.$p" "$root/after.$p")
			printf "%-10s %-6s %-20s %s\n" $impl $r "$name" "$(echo "$@" | awk -v hz=$hz '{printf "%7.2f %7.2f %9d %9d", ($5-$1)/hz/8, ($6-$2)/hz/8, ($7-$3)/8, ($8-$4)/8}')"
			[ $name = zkbench ] || total=$(echo "$@" | awk -v t=$total -v hz=$hz '{print t + ($5-$1+$6-$2)/hz/8}')
		done
		wait $bench
		ops=$(python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
while isinstance(r, list): r = r[0]
print(int(r["phases"][0]["ops_per_sec"]))' "$root/out.json" 2>/dev/null || echo 0)
		echo "$impl $r: $ops ops/s through the $through, the three servers $(printf "%.2f" $total) cores, $(awk -v t=$total -v o=$ops 'BEGIN{if (o > 0) printf "%.0f", t*1e6/o; else print "?"}') µs of CPU per request"
		stop $impl
	done
done
