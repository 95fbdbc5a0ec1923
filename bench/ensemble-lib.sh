# ensemble-lib.sh: what the bench/ scripts that run ensembles share.
# Sourced; $port, $qport and $eport may be set before, and $tick, and
# $extra (zoo.cfg lines every server gets). The script then calls scratch,
# which makes $root, the scratch directory the functions below use.
port=${port:-24181}
qport=${qport:-24888}
eport=${eport:-24889}
tick=${tick:-2000}
extra=${extra:-}
zkcp="/usr/share/java/zookeeper.jar:/usr/share/java/zookeeper-jute.jar:/usr/share/java/slf4j-api.jar:/usr/share/java/slf4j-nop.jar:/usr/share/java/netty-all.jar:/usr/share/java/metrics-core.jar"

# scratch <name> [zkbench]: $root, a new scratch directory, removed (and
# every server run from it killed) when the script ends, holding the zkd
# binary built from this tree, and zkbench too when asked.
scratch() {
	root=$(mktemp -d "/tmp/$1.XXXXXX")
	trap 'pkill -f "$root/" 2>/dev/null || true; sleep 1; rm -rf "$root"' EXIT INT TERM
	go build -o "$root/zkd" ./cmd/zkd
	if [ "${2:-}" = zkbench ]; then
		go build -o "$root/zkbench" ./cmd/zkbench
	fi
}

# fourlw host port word: the answer, or nothing if the server is down.
fourlw() { python3 -c '
import socket, sys
try:
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)
    s.sendall(sys.argv[3].encode()); out = b""
    while True:
        d = s.recv(65536)
        if not d: break
        out += d
    print(out.decode(), end="")
except OSError:
    pass' "$@"; }

# An implementation (impl below) is zkd (the binary scratch built from
# this tree), zkd=/path/to/a/zkd binary (another build, to compare two), or
# zookeeper (Apache ZooKeeper 3.8 from Debian).

# dirof <impl>: the name of that ensemble's directories under $root.
dirof() { printf %s "$1" | tr '/=.' '___'; }

# launch <impl>: a fresh 3-server ensemble, server N on 127.0.0.N, in
# $root/<dirof impl>-N; returns at once.
launch() {
	for i in 1 2 3; do
		d="$root/$(dirof "$1")-$i"
		rm -rf "$d"; mkdir -p "$d/data"; echo $i > "$d/data/myid"
		cat > "$d/zoo.cfg" <<CFG
tickTime=$tick
initLimit=10
syncLimit=5
dataDir=$d/data
clientPort=$port
clientPortAddress=127.0.0.$i
admin.enableServer=false
4lw.commands.whitelist=*
server.1=127.0.0.1:$qport:$eport
server.2=127.0.0.2:$qport:$eport
server.3=127.0.0.3:$qport:$eport
$extra
CFG
		serve "$1" $i
	done
}

# serve <impl> <N>: start server N of that ensemble, in the directory
# launch made, in the background, its output appended to its log; a
# server stopped during a run starts again this way.
serve() {
	d="$root/$(dirof "$1")-$2"
	case "$1" in
	zkd) "$root/zkd" "$d/zoo.cfg" >> "$d/log" 2>&1 & ;;
	zkd=*) "${1#zkd=}" "$d/zoo.cfg" >> "$d/log" 2>&1 & ;;
	zookeeper) java -cp "$zkcp" org.apache.zookeeper.server.quorum.QuorumPeerMain "$d/zoo.cfg" >> "$d/log" 2>&1 & ;;
	*) echo "unknown server $1: zkd, zkd=/path/to/zkd or zookeeper" >&2; exit 1 ;;
	esac
}

# stop <impl>: kill that ensemble.
stop() { pkill -f "$root/$(dirof "$1")-" || true; sleep 2; }

# start <impl>: a fresh 3-server ensemble (launch), once all
# three serve. A server already answering on one of the addresses (left
# from an earlier run) would be measured in the new one's place: then it
# stops with a message instead.
start() {
	for i in 1 2 3; do
		if [ -n "$(fourlw 127.0.0.$i $port ruok)" ]; then
			echo "a server already answers on 127.0.0.$i:$port; stop it (or set port) before starting the $1 ensemble" >&2
			exit 1
		fi
	done
	launch $1
	for t in $(seq 1 600); do
		n=0
		for i in 1 2 3; do fourlw 127.0.0.$i $port srvr | grep -q "Mode:" && n=$((n+1)); done
		[ $n = 3 ] && return 0
		sleep 0.1
	done
	echo "the $1 ensemble did not form" >&2; exit 1
}

# role <leader|follower>: the client address of a server in that role.
role() { for i in 1 2 3; do fourlw 127.0.0.$i $port srvr | grep -q "Mode: $1" && echo 127.0.0.$i:$port && return; done; }

# saturate <addr> <reads %> <seconds>: zkbench saturate against addr
# (2 s of warm-up), printed as "ops/s p99ms", or "? ?" if it failed.
saturate() {
	"$root/zkbench" saturate -servers "$1" -reads $2 -duration ${3}s -warmup 2s -progress=false -json 2>/dev/null | python3 -c '
import json, sys
r = json.load(sys.stdin)
while isinstance(r, list): r = r[0]
r = r["phases"][0]
print(int(r["ops_per_sec"]), r["latency"]["all"]["p99_ms"])' 2>/dev/null || echo "? ?"
}
