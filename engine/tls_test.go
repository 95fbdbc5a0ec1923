package engine_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"zkd/bench/zkref"
	"zkd/bench/zkref/zkreftest"
	"zkd/engine"
	"zkd/engine/zkdtest"
	"zkd/internal/keystore"
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
// another authority signed, or that speaks plaintext, is refused. With
// client.portUnification the plain port serves TLS and plaintext alike.
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
			"serverCnxnFactory": "org.apache.zookeeper.server.NettyServerCnxnFactory", "client.portUnification": "true"}
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
	// kazoo connects over TLS with each certificate and key in turn, to
	// the TLS port and then, for client.portUnification, to the plain
	// one; one line per connection. A refused client retries until its
	// start times out: it is given 3 s, the others 15.
	kazoo := func(tlsAddr, plainAddr string, out *bytes.Buffer) *exec.Cmd {
		cmd := exec.Command(kazooPython, "-c", `
import sys
from kazoo.client import KazooClient
ca, cases = sys.argv[1], sys.argv[2:]
for i in range(0, len(cases), 4):
    addr, cert, key, wait = cases[i:i+4]
    zk = KazooClient(hosts=addr, use_ssl=True, ca=ca, certfile=cert, keyfile=key,
                     verify_certs=True, connection_retry={"max_tries": 1}, timeout=10)
    try:
        zk.start(timeout=float(wait))
        print("connected; /t holds", zk.get("/t")[0])
        zk.stop()
    except Exception as e:
        print("failed:", type(e).__name__)
`, pki.ca, tlsAddr, pki.clientCert, pki.clientKey, "15", tlsAddr, pki.stranger, pki.strangerKey, "3",
			plainAddr, pki.clientCert, pki.clientKey, "15", plainAddr, pki.stranger, pki.strangerKey, "3")
		cmd.Stdout, cmd.Stderr = out, out
		return cmd
	}
	var zkdOut, refOut bytes.Buffer
	zkdKazoo, refKazoo := kazoo("127.0.0.1:"+itoa(zkdPort), zkd.Addr, &zkdOut), kazoo("127.0.0.1:"+itoa(refPort), ref.Addr, &refOut)
	if err := zkdKazoo.Start(); err != nil {
		t.Fatal(err)
	}
	if err := refKazoo.Start(); err != nil {
		t.Fatal(err)
	}
	zkdKazoo.Wait()
	refKazoo.Wait()
	got, want := verdicts(zkdOut.String()), verdicts(refOut.String())
	wantLines := []string{"connected; /t holds b'x'", "failed: ", "connected; /t holds b'x'", "failed: "}
	for i, line := range strings.Split(strings.TrimSpace(got), "\n") {
		if i < len(wantLines) && !strings.HasPrefix(line, wantLines[i]) {
			t.Errorf("kazoo on zkd, connection %d: %q, want %q", i+1, line, wantLines[i])
		}
	}
	if got != want {
		t.Errorf("kazoo over TLS, to the TLS port then the unified one, with the client's certificate and the stranger's: zkd\n%s\nZooKeeper\n%s", got, want)
	}
	// Plaintext on the TLS port gets nowhere, and the unified port
	// serves it still.
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

// verdicts are the lines of a client's output that say how each
// connection went (kazoo's "connected" and "failed"), without its logging.
func verdicts(out string) string {
	var b strings.Builder
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "connected") || strings.HasPrefix(line, "failed") {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

// client.certReload: a renewed key store is used from the next handshake
// on, without a restart; one that does not load leaves the last good one
// in use, with a log line. Without the setting, as ZooKeeper, the store
// read at the start stays.
func TestCertificatesReloadWithoutRestart(t *testing.T) {
	pki := makePKI(t)
	start := func(reload bool) (*zkdtest.Server, string, string) {
		keyStore := filepath.Join(t.TempDir(), "server.pem")
		copyFile(t, pki.server, keyStore)
		port, err := zkref.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		cfg := map[string]string{"secureClientPort": itoa(port), "ssl.keyStore.location": keyStore,
			"ssl.trustStore.location": pki.ca, "ssl.clientAuth": "none"}
		if reload {
			cfg["client.certReload"] = "true"
		}
		return zkdtest.Start(t, cfg), "127.0.0.1:" + itoa(port), keyStore
	}
	subject := func(addr string) string {
		t.Helper()
		roots, err := keystore.Trust(pki.ca, "", "")
		if err != nil {
			t.Fatal(err)
		}
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	reloading, addr, keyStore := start(true)
	_, fixedAddr, fixedStore := start(false)
	if got := subject(addr); got != "server" {
		t.Fatalf("before the renewal the server shows %q", got)
	}
	// The renewed certificate: the CA's CN=client one stands in.
	copyFile(t, pki.client, keyStore)
	copyFile(t, pki.client, fixedStore)
	if got := subject(addr); got != "client" {
		t.Fatalf("after the renewal, with client.certReload, the server shows %q, want the renewed certificate", got)
	}
	if got := subject(fixedAddr); got != "server" {
		t.Fatalf("after the renewal, without client.certReload, the server shows %q, want the one it started with", got)
	}
	if err := os.WriteFile(keyStore, []byte("half a file"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := subject(addr); got != "client" {
		t.Fatalf("with a broken key store the server shows %q, want the last good certificate", got)
	}
	if !strings.Contains(reloading.Log(), "does not load") {
		t.Errorf("no log line about the broken key store:\n%s", reloading.Log())
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	// A new file renamed over the old, as a renewal tool writes it.
	tmp := to + ".new"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, to); err != nil {
		t.Fatal(err)
	}
}
