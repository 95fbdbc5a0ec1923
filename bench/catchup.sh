#!/bin/sh
# catchup.sh: a follower of a 3-server ensemble stopped while the others
# take N znodes of 100 bytes (in multis of 1,000), then started again: the
# time from its start until it serves at the leader's zxid. zkd and Apache
# ZooKeeper 3.8 in turn, servers on 127.0.0.1-3, the same zoo.cfg.
#
# usage: bench/catchup.sh [rounds] [znodes]
set -eu
rounds=${1:-2}
znodes=${2:-1000000}
port=26181 qport=26888 eport=26889
. bench/ensemble-lib.sh
scratch catchup


printf "%-10s %-6s %9s %14s %12s\n" server round znodes load_seconds catchup_s
for r in $(seq 1 "$rounds"); do
	for impl in zkd zookeeper; do
		launch $impl
		/usr/bin/python3 - "$impl" "$r" "$root" $port $znodes <<'PY'
import subprocess, sys, time, logging
sys.path.insert(0, "bench")
from ensemble_lib import srvr as srvr_at
from kazoo.client import KazooClient
logging.basicConfig(level=logging.ERROR)
impl, rnd, root, port, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
def srvr(i): return srvr_at("127.0.0.%d" % i, port)
t0 = time.time()
while sorted(srvr(i).get("Mode", "") for i in (1, 2, 3)) != ["follower", "follower", "leader"]:
    if time.time() - t0 > 120: sys.exit("no ensemble")
    time.sleep(0.1)
modes = {i: srvr(i)["Mode"] for i in (1, 2, 3)}
leader = [i for i in modes if modes[i] == "leader"][0]
f = [i for i in modes if modes[i] == "follower"][0]
subprocess.run(["pkill", "-TERM", "-f", "%s/%s-%d/" % (root, impl, f)])
time.sleep(2)
zk = KazooClient(hosts="127.0.0.%d:%d" % (leader, port), timeout=30)
zk.start(timeout=60)
zk.create("/c")
data = b"x" * 100
t0 = time.time()
for b in range(0, n, 1000):
    t = zk.transaction()
    for i in range(b, min(n, b + 1000)):
        t.create("/c/%07d" % i, data)
    t.commit()
load = time.time() - t0
want = int(srvr(leader)["Zxid"], 16)
zk.stop()
subprocess.run(["sh", "-c", ". bench/ensemble-lib.sh; root=%s; serve %s %d" % (root, impl, f)])
t0 = time.time()
while True:
    s = srvr(f)
    if s.get("Mode") == "follower" and int(s.get("Zxid", "0"), 16) >= want: break
    if time.time() - t0 > 600: print("%-10s %-6s %9d %14.1f %12s" % (impl, rnd, n, load, ">600")); sys.exit(0)
    time.sleep(0.05)
print("%-10s %-6s %9d %14.1f %12.2f" % (impl, rnd, n, load, time.time() - t0))
PY
		stop $impl
	done
done
