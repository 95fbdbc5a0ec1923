#!/bin/sh
# failover.sh: a 3-server ensemble started, then its leader killed (kill
# -9), zkd and Apache ZooKeeper 3.8 in turn (same zoo.cfg, servers on
# 127.0.0.1-3). "formed" is the time from starting the processes until all
# three serve (ZooKeeper's includes the JVM's start); "failover" the time
# from the kill until the two left serve again, one leading and one
# following (srvr polled every 5 ms); "write" the time from the kill until
# a client's first acknowledged write, the client trying each server left
# in turn, each try a new session and a create.
#
# usage: bench/failover.sh [rounds] [tickTime ms]
set -eu
rounds=${1:-3}
tick=${2:-2000}
port=25181 qport=25888 eport=25889
. bench/ensemble-lib.sh
scratch failover

run() { # run <zkd|zookeeper> <round>
	start=$(date +%s.%N)
	launch $1
	python3 - "$1" "$2" "$root" $port $start <<'PY'
import subprocess, sys, time
sys.path.insert(0, "bench")
from ensemble_lib import srvr, create
impl, rnd, root, port, started = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
def mode(i): return srvr("127.0.0.%d" % i, port, timeout=1).get("Mode", "")
t0 = time.time()
while True:
    ms = {i: mode(i) for i in (1, 2, 3)}
    if sorted(ms.values()) == ["follower", "follower", "leader"]: break
    if time.time() - t0 > 120: sys.exit("%s: no ensemble within 120 s" % impl)
    time.sleep(0.005)
formed = time.time() - started
time.sleep(1)
leader = [i for i in ms if ms[i] == "leader"][0]
subprocess.run(["pkill", "-9", "-f", "%s/%s-%d/" % (root, impl, leader)])
t0 = time.time()
others = [i for i in (1, 2, 3) if i != leader]
wrote, served, tries = None, None, 0
while time.time() - t0 < 60 and (wrote is None or served is None):
    if wrote is None:
        tries += 1
        if create("127.0.0.%d" % others[tries % 2], port, "/failover-%d" % tries, timeout=0.2):
            wrote = time.time() - t0
    if served is None and sorted(mode(i) for i in others) == ["follower", "leader"]:
        served = time.time() - t0
    time.sleep(0.002)
fmt = lambda x: ">60" if x is None else "%.3f" % x
print("%-10s %-6s %8.3f %8s %8s" % (impl, rnd, formed, fmt(served), fmt(wrote)))
PY
	stop $1
}

printf "%-10s %-6s %8s %8s %8s\n" server round formed failover write
for r in $(seq 1 "$rounds"); do
	run zkd $r
	run zookeeper $r
done
