#!/usr/bin/env bash
# Captures golden wire vectors: real clients (go-zookeeper, kazoo, zkCli.sh,
# the C client and the Java client API) talking to Apache ZooKeeper 3.8 from Debian,
# recorded frame by frame by a proxy into ../golden/<client>.txt.
#
# Needs: Debian packages zookeeper, zookeeper-bin and python3-kazoo, Java, Go.
# Run from anywhere: wire/testdata/capture/capture.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
golden="$here/../golden"
work="$(mktemp -d)"
zkport=21810
proxyport=21811
jars=/usr/share/java
cp="$jars/zookeeper.jar:$jars/zookeeper-jute.jar:$jars/slf4j-api.jar:$jars/slf4j-nop.jar:$jars/netty-all.jar:$jars/metrics-core.jar"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

wait_port() {
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  echo "port $1 never opened" >&2
  return 1
}

cat >"$work/zoo.cfg" <<CFG
tickTime=2000
dataDir=$work/data
clientPort=$zkport
clientPortAddress=127.0.0.1
admin.enableServer=false
authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider
CFG
# SASL (DIGEST-MD5) is configured so that one client run can show the sasl
# opcode; clients without a JAAS file are unaffected.
cat >"$work/server-jaas.conf" <<JAAS
Server {
  org.apache.zookeeper.server.auth.DigestLoginModule required user_alice="alice-secret";
};
JAAS
cat >"$work/client-jaas.conf" <<JAAS
Client {
  org.apache.zookeeper.server.auth.DigestLoginModule required username="alice" password="alice-secret";
};
JAAS
java -Dzookeeper.extendedTypesEnabled=true -Djava.security.auth.login.config="$work/server-jaas.conf" -cp "$cp" \
  org.apache.zookeeper.server.ZooKeeperServerMain "$work/zoo.cfg" >"$work/zk.log" 2>&1 &
pids+=($!)
wait_port $zkport

(cd "$here/proxy" && go build -o "$work/proxy" .)
(cd "$here/gozk" && go build -o "$work/gozk" .)

# record NAME COMMAND...: runs one client through a fresh proxy.
record() {
  local name=$1; shift
  echo "capturing $name" >&2
  "$work/proxy" -listen 127.0.0.1:$proxyport -target 127.0.0.1:$zkport \
    -out "$work/$name.txt" 2>>"$work/proxy.log" &
  local proxy=$!
  pids+=($proxy)
  wait_port $proxyport
  "$@"
  sleep 0.5
  kill $proxy; wait $proxy 2>/dev/null || true
  {
    echo "# $name <-> Apache ZooKeeper (Debian package zookeeper $(dpkg-query -W -f='${Version}' zookeeper))"
    echo "# captured by wire/testdata/capture/capture.sh; <conn> > client frame, <conn> < server frame (hex, length prefix included)"
    cat "$work/$name.txt"
  } >"$golden/$name.txt"
}

mkdir -p "$golden"
record gozk "$work/gozk" -server 127.0.0.1:$proxyport
record kazoo /usr/bin/python3 "$here/kazoo_client.py" 127.0.0.1:$proxyport
record zkcli bash -c "/usr/share/zookeeper/bin/zkCli.sh -server 127.0.0.1:$proxyport <'$here/zkcli_commands.txt' >'$work/zkcli.out' 2>&1"
record zkcli-sasl bash -c "CLIENT_JVMFLAGS=-Djava.security.auth.login.config=$work/client-jaas.conf /usr/share/zookeeper/bin/zkCli.sh -server 127.0.0.1:$proxyport <'$here/zkcli_sasl_commands.txt' >'$work/zkcli-sasl.out' 2>&1"
# The C client (cli_mt from zookeeper-bin) is asynchronous: pace its input.
record cclient bash -c "while read -r line; do echo \"\$line\"; sleep 0.3; done <'$here/cclient_commands.txt' | /usr/lib/zookeeper/bin/cli_mt 127.0.0.1:$proxyport >'$work/cclient.out' 2>&1"
record java java -cp "$cp" "$here/JavaClient.java" 127.0.0.1:$proxyport
echo "golden vectors written to $golden" >&2
