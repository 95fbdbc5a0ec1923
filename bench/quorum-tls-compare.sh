#!/bin/sh
# quorum-tls-compare.sh: what TLS between servers costs a zkd ensemble.
# Alternates a 3-server zkd ensemble in plaintext and one with sslQuorum
# (a test authority's certificates for 127.0.0.1-3, made here with
# openssl), each loaded by zkbench saturate through a follower, whose
# writes and their commits cross the quorum port. One line per run;
# docs/security.md has the figures and the command.
#
# usage: bench/quorum-tls-compare.sh [rounds] [seconds per run]
set -eu
rounds=${1:-2}
secs=${2:-10}
. bench/ensemble-lib.sh
scratch quorum-tls-compare zkbench

# A test authority and one certificate for the three servers.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=bench-ca \
	-keyout "$root/ca.key" -out "$root/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=server \
	-keyout "$root/server.key" -out "$root/server.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,IP:127.0.0.2,IP:127.0.0.3\nextendedKeyUsage=serverAuth,clientAuth\n' > "$root/ext"
openssl x509 -req -in "$root/server.csr" -CA "$root/ca.pem" -CAkey "$root/ca.key" -CAcreateserial -days 1 \
	-extfile "$root/ext" -out "$root/server.crt" 2>/dev/null
cat "$root/server.key" "$root/server.crt" > "$root/server.pem"
tls="sslQuorum=true
ssl.quorum.keyStore.location=$root/server.pem
ssl.quorum.trustStore.location=$root/ca.pem"

printf "%-10s %-6s %-6s %12s %10s\n" quorum round reads ops/s p99ms
for r in $(seq 1 "$rounds"); do
	for mode in plaintext tls; do
		extra=""
		[ $mode = tls ] && extra="$tls"
		start zkd
		addr=$(role follower)
		for reads in 0 90; do
			set -- $(saturate "$addr" $reads $secs)
			printf "%-10s %-6s %-6s %12s %10s\n" $mode $r $reads "$1" "$2"
		done
		stop zkd
	done
done
