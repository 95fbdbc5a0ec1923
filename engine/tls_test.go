package engine_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"zkd/bench/zkref"
	"zkd/bench/zkref/zkreftest"
	"zkd/engine"
	"zkd/engine/zkdtest"
)

// testPKI is a certificate authority and the PEM files made with it: the
// server's key store (key and certificate for 127.0.0.1 to 127.0.0.5, the
// addresses of an ensemble's members), a client's (subject CN=client),
// one signed by another authority, and one the authority signed for
// 127.0.0.99 alone (misnamed).
type testPKI struct {
	dir                               string
	ca, server, client, clientKey     string // ca.pem; key stores; the client's key alone
	clientCert, stranger, strangerKey string
	misnamed                          string
}

func makePKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	write := func(name string, blocks ...*pem.Block) string {
		var b []byte
		for _, blk := range blocks {
			b = append(b, pem.EncodeToMemory(blk)...)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	serial := int64(1)
	members := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("127.0.0.2"), net.ParseIP("127.0.0.3"),
		net.ParseIP("127.0.0.4"), net.ParseIP("127.0.0.5")}
	issue := func(subject string, isCA bool, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, ips ...net.IP) (*x509.Certificate, *ecdsa.PrivateKey, *pem.Block, *pem.Block) {
		dns := []string{"localhost"}
		if len(ips) == 0 {
			ips = members
		} else {
			dns = nil
		}
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		serial++
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: subject},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
			KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
			IsCA:        isCA, BasicConstraintsValid: true,
			IPAddresses: ips, DNSNames: dns}
		if parent == nil {
			parent, parentKey = tmpl, key
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
		if err != nil {
			t.Fatal(err)
		}
		cert, _ := x509.ParseCertificate(der)
		pk, _ := x509.MarshalPKCS8PrivateKey(key)
		return cert, key, &pem.Block{Type: "CERTIFICATE", Bytes: der}, &pem.Block{Type: "PRIVATE KEY", Bytes: pk}
	}
	ca, caKey, caPEM, _ := issue("zkd test CA", true, nil, nil)
	_, _, srvCert, srvKey := issue("server", false, ca, caKey)
	_, _, cliCert, cliKey := issue("client", false, ca, caKey)
	other, otherKey, _, _ := issue("another CA", true, nil, nil)
	_, _, strCert, strKey := issue("stranger", false, other, otherKey)
	_, _, misCert, misKey := issue("misnamed", false, ca, caKey, net.ParseIP("127.0.0.99"))
	return testPKI{dir: dir, ca: write("ca.pem", caPEM),
		server: write("server.pem", srvKey, srvCert), client: write("client.pem", cliKey, cliCert),
		clientCert: write("client-cert.pem", cliCert), clientKey: write("client-key.pem", cliKey),
		stranger: write("stranger.pem", strKey, strCert), strangerKey: write("stranger-key.pem", strKey),
		misnamed: write("misnamed.pem", misKey, misCert)}
}

// nettyJars are the Netty modules Debian's netty-all.jar (a stub) leaves
// out, which ZooKeeper's TLS, server and client, needs.
var nettyJars = []string{"/usr/share/java/netty-buffer.jar", "/usr/share/java/netty-codec.jar", "/usr/share/java/netty-common.jar",
	"/usr/share/java/netty-handler.jar", "/usr/share/java/netty-resolver.jar", "/usr/share/java/netty-transport.jar",
	"/usr/share/java/netty-transport-native-unix-common.jar", "/usr/share/java/netty-transport-native-epoll.jar"}

// TLS on secureClientPort, with ZooKeeper's ssl.* settings and PEM stores,
// and the certificate's subject as an x509 identity: zkd and Apache
// ZooKeeper 3.8 (with Netty, as its TLS needs) set up alike answer
// zkCli.sh over TLS and kazoo (use_ssl) alike; a client whose certificate
// another authority signed, or that speaks plaintext, is refused.
func TestSecureClientPortIsZooKeepers(t *testing.T) {
	zkreftest.Need(t)
	need(t, "zkCli.sh (Debian zookeeper)", zkCli)
	need(t, "python3-kazoo", "/usr/lib/python3/dist-packages/kazoo/client.py")
	need(t, "Netty (Debian libnetty-java, which zookeeper brings)", nettyJars...)
	pki := makePKI(t)
	zkdPort, err := zkref.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	refPort, err := zkref.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cfg := func(port int) map[string]string {
		return map[string]string{"secureClientPort": itoa(port), "ssl.keyStore.location": pki.server,
			"ssl.trustStore.location": pki.ca, "authProvider.x509": engine.X509Provider,
			"serverCnxnFactory": "org.apache.zookeeper.server.NettyServerCnxnFactory"}
	}
	zkd := zkdtest.Start(t, cfg(zkdPort))
	refDir := t.TempDir()
	ref, err := zkref.Start(refDir, zkref.Options{Config: cfg(refPort), ClassPath: nettyJars})
	if err != nil {
		out, _ := os.ReadFile(filepath.Join(refDir, "zookeeper.out"))
		t.Fatalf("%v\n%s", err, out)
	}
	t.Cleanup(func() { ref.Stop() })

	// zkCli.sh's own class path lacks Netty, which the Java client's TLS
	// needs: its main class is run with Netty beside it.
	tlsCli := func(port int, keyStore, script string) string {
		t.Helper()
		args := []string{"-cp", strings.Join(append(append([]string(nil), zkref.Jars...), nettyJars...), ":"),
			"-Dzookeeper.client.secure=true", "-Dzookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty",
			"-Dzookeeper.ssl.keyStore.location=" + keyStore, "-Dzookeeper.ssl.trustStore.location=" + pki.ca,
			"org.apache.zookeeper.ZooKeeperMain", "-server", "127.0.0.1:" + itoa(port)}
		return cliCommand(t, "java", args, nil, script)
	}
	for _, step := range []struct{ name, keyStore, script, want string }{
		{"a client with a certificate of the authority", pki.client,
			"create /t x x509:CN=client:cdrwa\ngetAcl /t\nget /t\nwhoami\n", "x509: CN=client"},
		{"a client whose certificate another authority signed", pki.stranger, "ls /\n", "ConnectionLoss"},
	} {
		got, want := tlsCli(zkdPort, step.keyStore, step.script), tlsCli(refPort, step.keyStore, step.script)
		if got != want {
			t.Errorf("%s: zkCli.sh on zkd:\n%s\n\non ZooKeeper:\n%s", step.name, got, want)
		}
		if !strings.Contains(got, step.want) {
			t.Errorf("%s: zkCli.sh's output lacks %q:\n%s", step.name, step.want, got)
		}
	}
	kazoo := func(port int, cert, key string) string {
		t.Helper()
		out, _ := run(t, time.Minute, kazooPython, "-c", `
import sys
from kazoo.client import KazooClient
zk = KazooClient(hosts=sys.argv[1], use_ssl=True, ca=sys.argv[2], certfile=sys.argv[3], keyfile=sys.argv[4],
                 verify_certs=True, connection_retry={"max_tries": 1}, timeout=10)
try:
    zk.start(timeout=15)
    print("connected; /t holds", zk.get("/t")[0])
    zk.stop()
except Exception as e:
    print("failed:", type(e).__name__)
`, "127.0.0.1:"+itoa(port), pki.ca, cert, key)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		return lines[len(lines)-1]
	}
	for _, c := range []struct{ cert, key, want string }{
		{pki.clientCert, pki.clientKey, "connected; /t holds b'x'"},
		{pki.stranger, pki.strangerKey, "failed: "},
	} {
		got, want := kazoo(zkdPort, c.cert, c.key), kazoo(refPort, c.cert, c.key)
		if got != want || !strings.HasPrefix(got, c.want) {
			t.Errorf("kazoo with %s: zkd %q, ZooKeeper %q; want %q", filepath.Base(c.cert), got, want, c.want)
		}
	}
	// Plaintext on the TLS port gets nowhere, and the plain port is
	// still there.
	if out := cliWithFlags(t, "127.0.0.1:"+itoa(zkdPort), "", "ls /\n"); strings.Contains(out, "[t, zookeeper]") {
		t.Errorf("a plaintext client was served on the TLS port:\n%s", out)
	}
	if out := cliWithFlags(t, zkd.Addr, "", "ls /\n"); !strings.Contains(out, "[t, zookeeper]") {
		t.Errorf("the plain port:\n%s", out)
	}
	if !strings.Contains(zkd.Log(), "TLS handshake failed") {
		t.Error("no log line says why the stranger's connection was refused")
	}
}
