package engine_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"zkd/bench/zkref/zkreftest"
	"zkd/engine/zkdtest"
	"zkd/internal/keystore"
	"zkd/internal/quorumsec"
	"zkd/wire"
)

// Security between servers, against Apache ZooKeeper 3.8 as a fellow
// member: a mixed ensemble (zkd 1 and 2, ZooKeeper 3) with quorum SASL
// required, and one with TLS on the quorum and election ports. Each
// elects, replicates writes made through every member, and survives its
// leader's restart, so that each implementation has been leader and
// learner to the other; and each member, of either implementation,
// refuses a server that does not prove itself: no credentials, a wrong
// password, plaintext on a TLS port, a certificate another authority
// signed or one naming another address.
func TestQuorumSecurityWithZooKeeper(t *testing.T) {
	zkreftest.Need(t)
	t.Run("sasl", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		jaas := filepath.Join(dir, "quorum.jaas")
		if err := os.WriteFile(jaas, []byte(`QuorumServer {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    user_zkpeer="peersecret";
};
QuorumLearner {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    username="zkpeer"
    password="peersecret";
};
`), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg := map[string]string{"quorum.auth.enableSasl": "true", "quorum.auth.learnerRequireSasl": "true",
			"quorum.auth.serverRequireSasl": "true", "java.security.auth.login.config": jaas}
		props := map[string]string{"java.security.auth.login.config": jaas}
		good := &quorumsec.Config{LearnerRequire: true, User: "zkpeer", Password: "peersecret"}
		probes := []securityProbe{
			{"a server without credentials", &quorumsec.Config{}, false, false},
			{"a wrong password", &quorumsec.Config{LearnerRequire: true, User: "zkpeer", Password: "guess"}, false, false},
			{"an unknown user", &quorumsec.Config{LearnerRequire: true, User: "eve", Password: "evesecret"}, false, false},
			{"the ensemble's credentials", good, true, false},
			// ZooKeeper 3.8.0 lets this one in once any server has
			// authenticated: its callback handler keeps the last user's
			// name, and so checks the password against that user's
			// (docs/security.md).
			{"an unknown user with a known user's password", &quorumsec.Config{LearnerRequire: true, User: "eve", Password: "peersecret"}, false, true},
		}
		runSecureMixed(t, cfg, nil, props, probes, &quorumsec.Config{}, good)
	})
	t.Run("tls", func(t *testing.T) {
		t.Parallel()
		pki := makePKI(t)
		cfg := map[string]string{"sslQuorum": "true", "ssl.quorum.keyStore.location": pki.server,
			"ssl.quorum.trustStore.location": pki.ca}
		peer := func(keyStore string) *quorumsec.Config { return tlsPeer(t, pki, keyStore) }
		good := peer(pki.server)
		probes := []securityProbe{
			// ZooKeeper 3.8.0's election port stops listening for
			// good when a server speaks plaintext to it, and the member
			// takes no further part in elections (docs/security.md).
			{"plaintext", &quorumsec.Config{}, false, true},
			{"a certificate another authority signed", peer(pki.stranger), false, false},
			{"a certificate for another address (hostname verification)", peer(pki.misnamed), false, false},
			{"the ensemble's certificate", good, true, false},
		}
		runSecureMixed(t, cfg, nil, nil, probes, &quorumsec.Config{}, good)
	})
	// Moving a running ensemble to TLS a server at a time, as ZooKeeper's
	// guide has it: every server takes TLS and plaintext alike
	// (portUnification), some already dial with TLS (sslQuorum), others
	// not yet.
	t.Run("migration", func(t *testing.T) {
		t.Parallel()
		pki := makePKI(t)
		cfg := map[string]string{"portUnification": "true", "ssl.quorum.keyStore.location": pki.server,
			"ssl.quorum.trustStore.location": pki.ca}
		member := map[int64]map[string]string{1: {"sslQuorum": "true"}, 3: {"sslQuorum": "true"}}
		peer := func(keyStore string) *quorumsec.Config { return tlsPeer(t, pki, keyStore) }
		good := peer(pki.server)
		probes := []securityProbe{
			{"plaintext", &quorumsec.Config{}, true, false},
			{"a certificate another authority signed", peer(pki.stranger), false, false},
			{"the ensemble's certificate", good, true, false},
		}
		runSecureMixed(t, cfg, member, nil, probes, peer(pki.stranger), good)
	})
}

// tlsPeer is a server that dials with TLS, showing keyStore's
// certificate and trusting pki's authority.
func tlsPeer(t *testing.T, pki testPKI, keyStore string) *quorumsec.Config {
	t.Helper()
	live, err := keystore.NewLive(keystore.Store{Location: keyStore}, keystore.Store{Location: pki.ca}, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &quorumsec.Config{TLS: live, DialTLS: true}
}

// securityProbe is a server that tries to join: how it connects, and
// whether a member should let it in.
type securityProbe struct {
	what    string
	as      *quorumsec.Config
	admit   bool
	zkdOnly bool // ZooKeeper 3.8.0 differs, a bug of its own
}

// runSecureMixed runs zkd 1 and 2 and ZooKeeper 3 with cfg and each
// member's keys in member (ZooKeeper's JVM with props), checks that they serve and replicate, probes every
// member's election port with probes, restarts the leader and checks
// again; each leader's quorum port is probed with refused (a server that
// must be refused there) and good.
func runSecureMixed(t *testing.T, cfg map[string]string, member map[int64]map[string]string, props map[string]string,
	probes []securityProbe, refused, good *quorumsec.Config) {
	e := zkdtest.NewEnsemble(t, 3, cfg)
	e.Member = member
	m := map[int64]*mixedMember{}
	for id := int64(1); id <= 3; id++ {
		// ZooKeeper's leader needs the Netty modules Debian's
		// netty-all.jar leaves out, with TLS between servers.
		m[id] = startMixed(t, e, id, id == 3, props, nettyJars...)
	}
	for _, mm := range m {
		mm.waitServing(t)
	}

	leader := func() int64 {
		for id, mm := range m {
			if mm.mode() == "leader" {
				return id
			}
		}
		return 0
	}
	writeEverywhere := func(round string) {
		t.Helper()
		var want []string
		for id := int64(1); id <= 3; id++ {
			c := connect(t, e.Addr(id))
			if round == "first" && id == 1 {
				check(c.Create("/secure", nil, 0, zk.WorldACL(zk.PermAll)))(t)
			}
			name := fmt.Sprintf("%s-via-%d", round, id)
			check(c.Create("/secure/"+name, nil, 0, zk.WorldACL(zk.PermAll)))(t)
			want = append(want, name)
			c.Close()
		}
		for id := int64(1); id <= 3; id++ {
			c := connect(t, e.Addr(id))
			if _, err := c.Sync("/secure"); err != nil {
				t.Fatal(err)
			}
			got, _, err := c.Children("/secure")
			c.Close()
			if err != nil {
				t.Fatal(err)
			}
			have := map[string]bool{}
			for _, g := range got {
				have[g] = true
			}
			for _, w := range want {
				if !have[w] {
					t.Fatalf("%s has %v, lacking %s", m[id].label, got, w)
				}
			}
		}
	}
	writeEverywhere("first")
	first := leader()
	t.Logf("leader: %s", m[first].label)

	for id := int64(1); id <= 3; id++ {
		addr := fmt.Sprintf("127.0.0.%d:%d", id, e.ElectionPort)
		for _, p := range probes {
			if p.zkdOnly && m[id].isZK {
				continue
			}
			if got := probeElection(t, addr, p.as); got != p.admit {
				t.Errorf("%s's election port: %s: let in %v, want %v", m[id].label, p.what, got, p.admit)
			}
		}
	}

	probeLeader := func(id int64) {
		t.Helper()
		addr := fmt.Sprintf("127.0.0.%d:%d", id, e.QuorumPort)
		if probeQuorum(t, addr, refused) {
			t.Errorf("%s's quorum port let in a server that should be refused", m[id].label)
		}
		if !probeQuorum(t, addr, good) {
			t.Errorf("%s's quorum port refused a server with the ensemble's credentials", m[id].label)
		}
	}
	probeLeader(first)

	// The leader goes and comes back: the others elect one of
	// themselves, and the old leader learns from the new one.
	m[first].stop(t)
	survivor := int64(1)
	if first == 1 {
		survivor = 2
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		c := connect(t, e.Addr(survivor))
		_, err := c.Create("/secure/between", nil, 0, zk.WorldACL(zk.PermAll))
		c.Close()
		if err == nil || errors.Is(err, zk.ErrNodeExists) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no write through %s within 60 s of the leader's stop", m[survivor].label)
		}
		time.Sleep(100 * time.Millisecond)
	}
	m[first].launch(t)
	m[first].waitServing(t)
	second := leader()
	t.Logf("after the restart, leader: %s; %s is %s", m[second].label, m[first].label, m[first].mode())
	if second == first || second == 0 {
		t.Fatalf("the restarted %s leads again, or no one does", m[first].label)
	}
	writeEverywhere("second")

	probeLeader(second)
	for id := int64(1); id <= 2; id++ {
		if log := e.Servers[id].Log(); !strings.Contains(log, "refusing") {
			t.Errorf("zkd %d logged no refusal:\n%s", id, log)
		}
	}
}

// probeElection joins addr's election port as server 5, which no member
// has in its configuration, securing the connection as as does: the hello,
// authentication if as asks, then a LOOKING notification. A member that
// lets it in answers with its vote, as it answers any server outside its
// configuration; one that refuses closes the connection, or (ZooKeeper,
// given plaintext on its TLS port) waits for more.
func probeElection(t *testing.T, addr string, as *quorumsec.Config) bool {
	t.Helper()
	hello := wire.ElectionHello{Protocol: wire.ElectionProtocolV1, ServerID: 5, Addrs: "127.0.0.5:1"}
	c := join(t, addr, as, hello.Append(nil))
	if c == nil {
		return false
	}
	defer c.Close()
	n := wire.Notification{State: wire.StateLooking, Leader: 5, ElectionEpoch: 1, Version: 2, Config: ""}
	if _, err := c.Write(wire.AppendFrame(nil, n.Append(nil))); err != nil {
		return false
	}
	var head [4]byte
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := io.ReadFull(c, head[:])
	return err == nil && binary.BigEndian.Uint32(head[:]) > 0
}

// join connects to addr as as does, writes first (the election port's
// hello) and authenticates if as asks; nil if refused on the way. The
// connection has 10 s left.
func join(t *testing.T, addr string, as *quorumsec.Config, first []byte) net.Conn {
	t.Helper()
	c, err := as.Dial(context.Background(), addr, 5*time.Second)
	if err != nil {
		t.Logf("%s: %v", addr, err)
		return nil
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(first); err != nil {
		c.Close()
		return nil
	}
	if err := as.Learn(c, addr); err != nil {
		t.Logf("%s: %v", addr, err)
		c.Close()
		return nil
	}
	return c
}

// probeQuorum joins the leader's quorum port at addr, securing the
// connection as as does, and reports whether the leader let it in.
func probeQuorum(t *testing.T, addr string, as *quorumsec.Config) bool {
	t.Helper()
	c := join(t, addr, as, nil)
	if c == nil {
		return false
	}
	defer c.Close()
	// The start of an OBSERVERINFO: a member refusing a server that does
	// not authenticate sees it is not the exchange and closes now; one
	// that lets it in waits for the rest of the packet, and the
	// connection stays open. A second and a half of silence tells them
	// apart.
	var start [8]byte
	binary.BigEndian.PutUint32(start[:], uint32(wire.PacketObserverInfo))
	if _, err := c.Write(start[:]); err != nil {
		return false
	}
	c.SetReadDeadline(time.Now().Add(1500 * time.Millisecond))
	_, err := bufio.NewReader(c).ReadByte()
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
