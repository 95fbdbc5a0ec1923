#!/usr/bin/env bash
# Captures golden server-to-server vectors: a 3-server Apache ZooKeeper 3.8
# ensemble (Debian package) on 127.0.0.1-3 forming, replicating writes sent
# to a follower and to the leader, losing its leader to kill -9, electing
# another and taking the old leader back. tcpdump records the election and
# quorum ports on the loopback interface; pcapsplit/ cuts the TCP streams
# into election hellos, notifications and quorum packets, written to
# ../quorum/zk38-ensemble.txt.
#
# Needs: Debian packages zookeeper and tcpdump, Java, Go, root (tcpdump).
# Run from anywhere: wire/testdata/capture/quorum.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$here/../quorum"
work="$(mktemp -d)"
clientport=22181
quorumport=22888
electionport=23888
jars=/usr/share/java
cp="$jars/zookeeper.jar:$jars/zookeeper-jute.jar:$jars/slf4j-api.jar:$jars/slf4j-nop.jar:$jars/netty-all.jar:$jars/metrics-core.jar"
declare -A server
tcpdump_pid=""
cleanup() {
  for p in "${server[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  if [ -n "$tcpdump_pid" ]; then kill "$tcpdump_pid" 2>/dev/null || true; fi
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# fourlw HOST WORD: a four-letter word's answer, empty if none.
fourlw() {
  python3 - "$1" "$clientport" "$2" <<'PY' 2>/dev/null || true
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)
s.sendall(sys.argv[3].encode())
data = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    data += b
print(data.decode(errors="replace"))
PY
}

mode() { fourlw "127.0.0.$1" srvr | sed -n 's/^Mode: //p'; }

# wait_mode ID MODE...: until server ID reports one of the modes (60 s).
wait_mode() {
  local id=$1; shift
  for _ in $(seq 1 300); do
    local m; m="$(mode "$id")"
    for want in "$@"; do
      if [ "$m" = "$want" ]; then return 0; fi
    done
    sleep 0.2
  done
  echo "server $id never became $*" >&2
  return 1
}

start() {
  local id=$1
  mkdir -p "$work/s$id/data"
  echo "$id" >"$work/s$id/data/myid"
  cat >"$work/s$id/zoo.cfg" <<CFG
tickTime=200
initLimit=20
syncLimit=10
dataDir=$work/s$id/data
clientPort=$clientport
clientPortAddress=127.0.0.$id
admin.enableServer=false
4lw.commands.whitelist=*
server.1=127.0.0.1:$quorumport:$electionport
server.2=127.0.0.2:$quorumport:$electionport
server.3=127.0.0.3:$quorumport:$electionport
CFG
  java -cp "$cp" org.apache.zookeeper.server.quorum.QuorumPeerMain "$work/s$id/zoo.cfg" >"$work/s$id.log" 2>&1 &
  server[$id]=$!
}

# zk ID COMMAND...: one zkCli command against server ID (a session of its own).
zk() {
  local id=$1; shift
  java -cp "$cp" org.apache.zookeeper.ZooKeeperMain -server "127.0.0.$id:$clientport" "$@" >>"$work/zkcli.out" 2>&1
}

leader() {
  for id in 1 2 3; do
    if [ "$(mode "$id")" = leader ]; then echo "$id"; return; fi
  done
}

tcpdump -i lo -U -s 0 -w "$work/quorum.pcap" "tcp port $quorumport or tcp port $electionport" 2>"$work/tcpdump.log" &
tcpdump_pid=$!
sleep 1

echo "starting servers 1 and 2, then 3" >&2
start 1
sleep 1
start 2
wait_mode 1 leader follower
wait_mode 2 leader follower
start 3
wait_mode 3 follower
lead="$(leader)"
follower=3
echo "leader is $lead; writing through follower $follower and the leader" >&2
zk "$follower" create /golden first
zk "$follower" set /golden second
zk "$follower" create -e /golden/ephemeral gone-with-its-session
zk "$lead" create -s /golden/seq- x
zk "$follower" sync /golden
zk "$lead" create /golden/tmp x
zk "$follower" delete /golden/tmp
sleep 1 # pings with session touches

echo "kill -9 of leader $lead" >&2
kill -9 "${server[$lead]}"
wait "${server[$lead]}" 2>/dev/null || true
unset "server[$lead]"
for id in 1 2 3; do
  if [ "$id" != "$lead" ]; then wait_mode "$id" leader follower; fi
done
next="$(leader)"
echo "new leader is $next; one more write, then server $lead comes back" >&2
zk "$next" set /golden third
start "$lead"
wait_mode "$lead" follower
zk "$lead" set /golden fourth
sleep 1

for id in "${!server[@]}"; do kill "${server[$id]}" 2>/dev/null || true; done
wait "${server[@]}" 2>/dev/null || true
server=()
sleep 0.5
kill -INT "$tcpdump_pid"
wait "$tcpdump_pid" 2>/dev/null || true
tcpdump_pid=""

mkdir -p "$out"
{
  echo "# a 3-server Apache ZooKeeper ensemble (Debian package zookeeper $(dpkg-query -W -f='${Version}' zookeeper)) on 127.0.0.1-3:"
  echo "# forming, writes through a follower and the leader, kill -9 of the leader, its return."
  echo "# captured by wire/testdata/capture/quorum.sh"
  (cd "$here/pcapsplit" && go run . -election-port "$electionport" -quorum-port "$quorumport" "$work/quorum.pcap")
} >"$out/zk38-ensemble.txt"
echo "vectors written to $out/zk38-ensemble.txt" >&2
