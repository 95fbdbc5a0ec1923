package engine

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"zkd/bench/zkref"
	"zkd/bench/zkref/zkreftest"
	"zkd/internal/quorumsec"
)

func TestParseConfigReadsZooKeepersKeys(t *testing.T) {
	var logged bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logged, nil))
	cfg, err := ParseConfig("zoo.cfg", strings.NewReader(`# a ZooKeeper 3.8 zoo.cfg
tickTime=1000
initLimit=10
syncLimit=5
dataDir=/var/lib/zookeeper
dataLogDir = /txnlog
clientPort: 2182
maxClientCnxns 100
autopurge.snapRetainCount=5
autopurge.purgeInterval=24
4lw.commands.whitelist=srvr, ruok ,mntr
forceSync=no
jute.maxbuffer=0x100000
zookeeper.snapCount=5000
zookeeper.fsync.warningthresholdms=250
snapshot.compression.method=gz
audit.enable=true
zookeeper.db.autocreate=false
admin.serverPort=8081
metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider
server.2=zk2:2888:3888;2181
someUnknownKey=value
observerMasterPort=2191
maxConcurrentSnapSyncs=3
connectionMaxTokens=5
`), log)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TickTime != 1000 || cfg.DataDir != "/var/lib/zookeeper" || cfg.LogDir() != "/txnlog" ||
		cfg.ClientPort != 2182 || cfg.MaxClientCnxns != 100 || cfg.SnapRetainCount != 5 ||
		cfg.PurgeIntervalHours != 24 || cfg.ForceSync || cfg.MaxBuffer != 0x100000 ||
		cfg.SnapCount != 5000 || cfg.SnapshotCompression != "gz" || cfg.FsyncWarningThreshold != 250 || !cfg.AuditEnable || cfg.DBAutocreate || !cfg.DataDirAutocreate {
		t.Fatalf("parsed %+v", cfg)
	}
	if cfg.MinTimeout() != 2000 || cfg.MaxTimeout() != 20000 {
		t.Fatalf("session timeout bounds %d..%d, want 2000..20000", cfg.MinTimeout(), cfg.MaxTimeout())
	}
	words, unknown := cfg.fourLetterWords()
	if !words["srvr"] || !words["ruok"] || !words["mntr"] || words["stat"] || len(unknown) != 0 {
		t.Fatalf("4lw whitelist %v %v", words, unknown)
	}
	if cfg.Servers[2] != "zk2:2888:3888;2181" || cfg.AdminPort != 8081 {
		t.Fatalf("kept keys: %v %v", cfg.Servers, cfg.Extra)
	}
	if !strings.Contains(logged.String(), "key=someUnknownKey") || !strings.Contains(logged.String(), "line=22") {
		t.Fatalf("no warning naming the unknown key and its line:\n%s", logged.String())
	}
	// Served by followers: kept for the ensemble, without a warning.
	if strings.Contains(logged.String(), "observerMasterPort") || cfg.Extra["observerMasterPort"] != "2191" {
		t.Fatalf("observerMasterPort not kept quietly:\n%s", logged.String())
	}
	// ZooKeeper's leader reads leader.maxConcurrentSnapSyncs; this key
	// sets nothing there, and the warning names the one that does.
	if !strings.Contains(logged.String(), "the setting is leader.maxConcurrentSnapSyncs") || !strings.Contains(logged.String(), "line=24") {
		t.Fatalf("no warning that maxConcurrentSnapSyncs sets nothing:\n%s", logged.String())
	}
	if !strings.Contains(logged.String(), "the setting is connection_throttle_tokens") || !strings.Contains(logged.String(), "line=25") ||
		cfg.ConnThrottle.Tokens != 0 {
		t.Fatalf("no warning that connectionMaxTokens sets nothing:\n%s", logged.String())
	}
	if strings.Contains(logged.String(), "admin.serverPort") {
		t.Fatalf("a key ZooKeeper reads was warned about:\n%s", logged.String())
	}
}

func TestParseConfigErrorsNameFileLineAndKey(t *testing.T) {
	for _, c := range []struct{ text, want string }{
		{"dataDir=/d\nclientPort=2181\ntickTime=fast\n", `zoo.cfg:3: tickTime: "fast" is not an integer`},
		{"dataDir=/d\nclientPort=21x81\n", `zoo.cfg:2: clientPort: "21x81" is not an integer`},
		{"dataDir=/d\nclientPort=2181\nforceSync=maybe\n", `zoo.cfg:3: forceSync: "maybe" is not true or false`},
		{"dataDir=/d\nclientPort=2181\nfsync.warningthresholdms=1s\n", `zoo.cfg:3: fsync.warningthresholdms: "1s" is not an integer`},
		{"dataDir=/d\nclientPort=2181\njute.maxbuffer=-5\n", `zoo.cfg:3: jute.maxbuffer: "-5" is not a positive integer`},
		{"dataDir=/d\nclientPort=2181\nsnapshot.compression.method=lz4\n", `zoo.cfg:3: snapshot.compression.method: "lz4" is not a snapshot compression method`},
		{"dataDir=/d\nclientPort=2181\nserver.x=a:1:2\n", `zoo.cfg:3: server.x: the server id must be a non-negative integer`},
		{"dataDir=/d\nclientPort=2181\nconnection_throttle_fill_time=0\n", `zoo.cfg:3: connection_throttle_fill_time: "0" is not a positive number of milliseconds`},
		{"dataDir=/d\nclientPort=2181\nzookeeper.connection_throttle_drop_increase=2\n", `zoo.cfg:3: zookeeper.connection_throttle_drop_increase: "2" is not a number from 0 to 1`},
		{"dataDir=/d\nclientPort=2181\nreadonlymode.enabled=yes\n", `zoo.cfg:3: readonlymode.enabled: "yes" is not true or false`},
		{"dataDir=/d\nclientPort=2181\nleaderServes=false\n", `zoo.cfg:3: leaderServes: "false" is neither yes nor no`},
		{"clientPort=2181\n", `zoo.cfg: dataDir: not set`},
		{"dataDir=/d\n", `zoo.cfg: clientPort: not set`},
		{"dataDir=/d\nclientPort=99999\n", `zoo.cfg: clientPort: 99999 is not a port`},
		{"dataDir=/d\nclientPort=2181\nadmin.serverPort=80800\n", `zoo.cfg:3: admin.serverPort: "80800" is not a port number`},
		{"dataDir=/d\nclientPort=2181\nadmin.enableServer=on\n", `zoo.cfg:3: admin.enableServer: "on" is not true or false`},
		{"dataDir=/d\nclientPort=2181\ncloseSessionTxn.enabled=off\n", `zoo.cfg:3: closeSessionTxn.enabled: "off" is not true or false`},
		{"dataDir=/d\nclientPort=1\nminSessionTimeout=9000\nmaxSessionTimeout=4000\n", `minSessionTimeout: 9000 is above maxSessionTimeout 4000`},
		// An ensemble member needs its myid (TestEnsembleConfig has the rest).
		{"dataDir=/d\nclientPort=2181\nserver.1=a:2888:3888\nserver.2=b:2888:3888\nserver.3=c:2888:3888\n",
			`zoo.cfg:1: dataDir: /d/myid is missing; an ensemble member needs it`},
		{"dataDir=/d\nclientPort=2181\nstandaloneEnabled=false\n", `zoo.cfg:3: standaloneEnabled: standaloneEnabled=false asks for an ensemble member, and there is no server.N line`},
		{"dataDir=/d\nserver.1=a:2888:3888\n", `zoo.cfg:2: server.1: "a:2888:3888" gives no client port`},
	} {
		_, err := ParseConfig("zoo.cfg", strings.NewReader(c.text), nil)
		var ce *ConfigError
		if err == nil || !errors.As(err, &ce) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want an error containing %q", c.text, err, c.want)
		}
	}
}

// A lone server.N line is a standalone server to ZooKeeper, which takes
// its client port from the line when clientPort is not set.
func TestLoneServerLineIsStandalone(t *testing.T) {
	cfg, err := ParseConfig("zoo.cfg", strings.NewReader("dataDir=/d\nserver.1=localhost:2888:3888;127.0.0.1:2191\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ClientPort != 2191 || cfg.ClientPortAddress != "127.0.0.1" {
		t.Fatalf("client address %q port %d, want 127.0.0.1:2191", cfg.ClientPortAddress, cfg.ClientPort)
	}
}

// A session's password is a function of its id, the same one ZooKeeper
// uses, so a client whose session moves from ZooKeeper to zkd (after a
// migration of the data directory) is accepted with its password.
func TestSessionPasswordIsZooKeepers(t *testing.T) {
	ref := zkreftest.Start(t, zkref.Options{})
	for i := 0; i < 3; i++ {
		c := zkreftest.Dial(t, ref.Addr, zkreftest.NewSession())
		id := c.Session.SessionID
		if want, got := c.Session.Passwd, sessionPassword(id); !bytes.Equal(want, got[:]) {
			t.Fatalf("session 0x%x: ZooKeeper gave password %x, zkd computes %x", id, want, got)
		}
	}
}

// An ensemble's mistakes are named (file, line, key); a correct one is
// read into Config.Ensemble.
func TestEnsembleConfig(t *testing.T) {
	three := "server.1=127.0.0.1:2888:3888\nserver.2=127.0.0.2:2888:3888\nserver.3=127.0.0.3:2888:3888:observer;2181\n"
	for _, c := range []struct {
		name, myid, cfg, want string
	}{
		{"correct", "1", three, ""},
		{"myid missing", "", three, "zoo.cfg:1: dataDir: "},
		{"myid not a number", "one", three, `myid holds "one", which is not a server id`},
		{"myid not listed", "7", three, "zoo.cfg:3: server.N: " /* dir */},
		{"two servers on one port", "1", "server.1=127.0.0.1:2888:3888\nserver.2=127.0.0.1:2888:3889\n",
			"zoo.cfg:4: server.2: 127.0.0.1:2888 is also given to server.1"},
		{"quorum and election port the same", "1", "server.1=h:2888:2888\nserver.2=g:2888:3888\n",
			"zoo.cfg:3: server.1: the quorum port and the election port are both 2888"},
		{"a bad port", "1", "server.1=h:2888:0\nserver.2=g:2888:3888\n", `zoo.cfg:3: server.1: the election port "0" is not a port number`},
		{"a bad type", "1", "server.1=h:2888:3888:leader\nserver.2=g:2888:3888\n", `zoo.cfg:3: server.1: "leader" is neither participant nor observer`},
		{"several addresses", "1", "server.1=h:2888:3888|i:2888:3888\nserver.2=g:2888:3888\n", "zoo.cfg:3: server.1: several addresses"},
		{"only observers", "1", "server.1=h:2888:3888:observer\nserver.2=g:2888:3888:observer\n", "every server is an observer"},
		{"reconfigEnabled", "1", three + "reconfigEnabled=true\n", "zoo.cfg:6: reconfigEnabled: dynamic reconfiguration is not supported yet"},
		{"electionAlg", "1", three + "electionAlg=1\n", `zoo.cfg:6: electionAlg: "1": only 3 (fast leader election)`},
		{"electionAlg 3", "1", three + "electionAlg=3\n", ""},
		{"a server in two groups", "1", three + "group.1=1:2\ngroup.2=2:3\n", "zoo.cfg:7: group.2: server 2 is in group.1 too"},
		{"a participant in no group", "1", three + "group.1=1:3\n", "zoo.cfg:4: server.2: is a participant in no group.N line"},
		{"a bad group", "1", three + "group.1=1,2\n", `zoo.cfg:6: group.1: "1,2" is not a list of server ids`},
		{"a bad weight", "1", three + "group.1=1:2\nweight.2=-1\n", `zoo.cfg:7: weight.2: "-1" is not a weight`},
		{"weightless groups", "1", three + "group.1=1:2\nweight.1=0\nweight.2=0\n", "zoo.cfg:6: group.1: every group weighs nothing"},
		{"initLimit", "1", three + "initLimit=zero\n", `zoo.cfg:6: initLimit: "zero" is not a positive number of ticks`},
		{"peerType disagrees", "1", three + "peerType=observer\n", "zoo.cfg:6: peerType: is observer, and server.1 says otherwise"},
		{"quorumListenOnAllIPs", "1", three + "quorumListenOnAllIPs=maybe\n", `zoo.cfg:6: quorumListenOnAllIPs: "maybe" is neither true nor false`},
		{"observerMasterPort", "1", three + "observerMasterPort=70000\n", `zoo.cfg:6: observerMasterPort: "70000" is not a port number`},
		{"cnxTimeout", "1", three + "cnxTimeout=-5\n", `zoo.cfg:6: cnxTimeout: "-5" is not a positive number of milliseconds`},
		{"electionPortBindRetry", "1", three + "electionPortBindRetry=x\n", `zoo.cfg:6: electionPortBindRetry: "x" is not a number of retries`},
		{"snapshotSizeFactor", "1", three + "zookeeper.snapshotSizeFactor=big\n", `zoo.cfg:6: zookeeper.snapshotSizeFactor: "big" is not a number`},
		{"commitLogCount", "1", three + "commitLogCount=0\n", `zoo.cfg:6: commitLogCount: "0" is not a positive number of txns`},
		{"connectToLearnerMasterLimit", "1", three + "connectToLearnerMasterLimit=soon\n", `zoo.cfg:6: connectToLearnerMasterLimit: "soon" is not a number of ticks`},
		{"connectToLearnerMasterLimit 0", "1", three + "connectToLearnerMasterLimit=0\n", ""},
		{"leader.maxConcurrentSnapSyncs", "1", three + "leader.maxConcurrentSnapSyncs=0\n", `zoo.cfg:6: leader.maxConcurrentSnapSyncs: "0" is not a positive number of syncs`},
		{"leader.maxConcurrentDiffSyncs", "1", three + "zookeeper.leader.maxConcurrentDiffSyncs=many\n", `zoo.cfg:6: zookeeper.leader.maxConcurrentDiffSyncs: "many" is not a positive number of syncs`},
		{"observer.election.DelayMs", "1", three + "observer.election.DelayMs=-1\n", `zoo.cfg:6: observer.election.DelayMs: "-1" is not a number of milliseconds (0 or more)`},
		{"fastleader.maxNotificationInterval", "1", three + "fastleader.maxNotificationInterval=0\n", `zoo.cfg:6: fastleader.maxNotificationInterval: "0" is not a positive number of milliseconds`},
		{"fastleader intervals crossed", "1", three + "fastleader.maxNotificationInterval=100\n",
			`zoo.cfg:6: fastleader.maxNotificationInterval: the first wait for notifications (200ms) is longer than the longest (100ms)`},
		{"zkd.election.finalizeWaitMs", "1", three + "zkd.election.finalizeWaitMs=0\n", `zoo.cfg:6: zkd.election.finalizeWaitMs: "0" is not a positive number of milliseconds`},
		{"IPv6", "1", "server.1=[::1]:2888:3888\nserver.2=[::2]:2888:3888;[::1]:2181\n", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if c.myid != "" {
				if err := os.WriteFile(filepath.Join(dir, "myid"), []byte(c.myid+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			cfg, err := ParseConfig("zoo.cfg", strings.NewReader("dataDir="+dir+"\nclientPort=2181\n"+c.cfg), nil)
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if e := cfg.Ensemble; e == nil || e.MyID != 1 || len(e.Members) < 2 || e.Members[0].ID != 1 ||
					e.ConnectTimeout != 5*time.Second || e.BindRetry != 3 || e.SnapshotSizeFactor != 0.33 || e.ListenOnAllIPs ||
					e.CommitLogCount != 500 || e.FinalizeWait != 50*time.Millisecond ||
					e.MaxSnapSyncs != 10 || e.MaxDiffSyncs != 100 || e.ObserverElectionDelay != 200*time.Millisecond ||
					e.MinNotificationInterval != 200*time.Millisecond || e.MaxNotificationInterval != time.Minute {
					t.Fatalf("the ensemble read: %+v", e)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error containing %q", err, c.want)
			}
			if c.name == "myid not listed" && !strings.Contains(err.Error(), "says this is server 7, and there is no server.7 line") {
				t.Fatalf("got %v", err)
			}
		})
	}
}

// The ensemble settings ZooKeeper reads as system properties may come as
// JVM flags (SERVER_JVMFLAGS), where zoo.cfg is silent; a bad one is an
// error naming SERVER_JVMFLAGS and the key.
func TestEnsembleSettingsFromJVMFlags(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "myid"), []byte("1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	parse := func(extra string) *Config {
		t.Helper()
		c, err := ParseConfig("zoo.cfg", strings.NewReader("dataDir="+dir+"\nclientPort=2181\n"+
			"server.1=127.0.0.1:2888:3888\nserver.2=127.0.0.2:2888:3888\nserver.3=127.0.0.3:2888:3888\n"+extra), nil)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	flags := "-Xmx2g -Dzookeeper.cnxTimeout=9000 -Dzookeeper.leader.maxConcurrentSnapSyncs=2 " +
		"-Dzookeeper.fastleader.maxNotificationInterval=1000 -Dzookeeper.observer.election.DelayMs=50"
	c := parse("")
	if err := ApplyJVMFlags(c, "SERVER_JVMFLAGS", flags); err != nil {
		t.Fatal(err)
	}
	if e := c.Ensemble; e.ConnectTimeout != 9*time.Second || e.MaxSnapSyncs != 2 || e.MaxNotificationInterval != time.Second ||
		e.ObserverElectionDelay != 50*time.Millisecond || e.MyID != 1 || len(e.Members) != 3 {
		t.Fatalf("after the flags: %+v", e)
	}
	// zoo.cfg's own wins, as ZooKeeper sets the property from it after
	// the JVM has started.
	c = parse("cnxTimeout=3000\n")
	if err := ApplyJVMFlags(c, "SERVER_JVMFLAGS", flags); err != nil || c.Ensemble.ConnectTimeout != 3*time.Second {
		t.Fatalf("zoo.cfg's cnxTimeout under a flag: %v %v", err, c.Ensemble.ConnectTimeout)
	}
	err := ApplyJVMFlags(parse(""), "SERVER_JVMFLAGS", "-Dzookeeper.cnxTimeout=soon")
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.File != "SERVER_JVMFLAGS" || ce.Key != "cnxTimeout" {
		t.Fatalf("a bad flag: %v", err)
	}
}

// The SASL settings: zoo.cfg's keys, or the -D flags of SERVER_JVMFLAGS
// where zoo.cfg is silent; a JAAS file that cannot serve stops the server
// with the file and what is wrong.
func TestSASLSettings(t *testing.T) {
	dir := t.TempDir()
	parse := func(text string) *Config {
		t.Helper()
		c, err := ParseConfig("zoo.cfg", strings.NewReader("dataDir="+dir+"\nclientPort=0\nclientPortAddress=127.0.0.1\n"+text), nil)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := parse("")
	if err := ApplyJVMFlags(c, "SERVER_JVMFLAGS", "-Xmx1g -Djava.security.auth.login.config=/etc/zk/jaas.conf -Dzookeeper.superUser=admin "+
		"-Dzookeeper.authProvider.sasl="+SASLProvider); err != nil {
		t.Fatal(err)
	}
	if c.JAASFile != "/etc/zk/jaas.conf" || c.SASLSuperUser != "admin" || c.SASLLoginContext != "Server" || !c.TreeOptions().SASLACLs {
		t.Errorf("after SERVER_JVMFLAGS: %q %q %q %v", c.JAASFile, c.SASLSuperUser, c.SASLLoginContext, c.TreeOptions().SASLACLs)
	}
	c = parse("java.security.auth.login.config=/cfg/jaas.conf\nzookeeper.sasl.serverconfig=ZkServer\n")
	ApplyJVMFlags(c, "SERVER_JVMFLAGS", "-Djava.security.auth.login.config=/flags/jaas.conf")
	if c.JAASFile != "/cfg/jaas.conf" || c.SASLLoginContext != "ZkServer" || c.TreeOptions().SASLACLs {
		t.Errorf("zoo.cfg's own: %q %q %v", c.JAASFile, c.SASLLoginContext, c.TreeOptions().SASLACLs)
	}
	// skipACL as ZooKeeper reads it: only "yes" turns the checks off.
	for flags, want := range map[string]bool{"-Dzookeeper.skipACL=yes": true, "-Dzookeeper.skipACL=true": false, "": false} {
		c = parse("")
		ApplyJVMFlags(c, "SERVER_JVMFLAGS", flags)
		if c.TreeOptions().SkipACL != want {
			t.Errorf("SERVER_JVMFLAGS %q: SkipACL %v, want %v", flags, c.TreeOptions().SkipACL, want)
		}
	}
	// The leader's and the connection throttle's, often set as flags.
	c = parse("")
	if err := ApplyJVMFlags(c, "SERVER_JVMFLAGS", "-Dzookeeper.leaderServes=no -Dzookeeper.connection_throttle_tokens=40"); err != nil ||
		c.LeaderServes || c.ConnThrottle.Tokens != 40 {
		t.Errorf("leaderServes and the throttle from SERVER_JVMFLAGS: %v %v %d", err, c.LeaderServes, c.ConnThrottle.Tokens)
	}
	if c = parse("skipACL=yes\n"); !c.TreeOptions().SkipACL {
		t.Errorf("skipACL=yes in zoo.cfg: ACLs still checked")
	}
	err := ApplyJVMFlags(parse(""), "SERVER_JVMFLAGS", "-Dzookeeper.snapCount=many")
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.File != "SERVER_JVMFLAGS" || ce.Key != "zookeeper.snapCount" {
		t.Errorf("a bad flag: %v", err)
	}

	for text, want := range map[string]string{
		"sessionRequireClientSASLAuth=true\n":                           "sessionRequireClientSASLAuth: the sasl scheme is not available",
		"enforce.auth.enabled=true\n":                                   "enforce.auth.enabled: true, but enforce.auth.schemes names no scheme",
		"enforce.auth.enabled=true\nenforce.auth.schemes=digest,x509\n": "enforce.auth.schemes: authentication scheme x509 is not available",
		"enforce.auth.enabled=true\nenforce.auth.schemes=sasl\n":        "enforce.auth.schemes: authentication scheme sasl is not available",
	} {
		_, err := New(parse(text), Options{})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v; want %q", text, err, want)
		}
	}
	if s, err := New(parse("enforce.auth.enabled=true\nenforce.auth.schemes=digest\n"), Options{}); err != nil {
		t.Errorf("enforcing digest: %v", err)
	} else {
		s.Close()
	}
	for text, want := range map[string]string{
		"Server {\n com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true;\n};\n":    "not GSSAPI",
		"Server {\n org.apache.zookeeper.server.auth.DigestLoginModule required user_a=\"b\"\n};\n": "jaas.conf:3",
	} {
		jaas := filepath.Join(t.TempDir(), "jaas.conf")
		os.WriteFile(jaas, []byte(text), 0o600)
		c := parse("java.security.auth.login.config=" + jaas + "\n")
		s, err := New(c, Options{})
		if err == nil {
			s.Close()
			t.Errorf("%q: the server started", text)
			continue
		}
		if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "java.security.auth.login.config") {
			t.Errorf("%q: %v; want it to name the key and say %q", text, err, want)
		}
	}
}

// The AdminServer's system properties never show a password.
func TestSystemPropertiesHidePasswords(t *testing.T) {
	c, err := ParseConfig("zoo.cfg", strings.NewReader("dataDir=/d\nclientPort=2181\nzookeeper.ssl.keyStore.password=hunter2\nzookeeper.ssl.keyStore.location=/k.p12\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{cfg: c}
	var r jsonObject
	for _, cmd := range adminCommands {
		if cmd.names[0] == "system_properties" {
			cmd.run(s, nil, &r)
		}
	}
	var b strings.Builder
	for _, f := range r {
		b.WriteString(f.key + "=" + fmt.Sprint(f.val) + "\n")
	}
	if strings.Contains(b.String(), "hunter2") || !strings.Contains(b.String(), "zookeeper.ssl.keyStore.location=/k.p12") ||
		!strings.Contains(b.String(), "zookeeper.ssl.keyStore.password=******") {
		t.Errorf("system properties:\n%s", b.String())
	}
}

// The settings of security between servers: what cannot work stops the
// server, naming the key, and what can is read as ZooKeeper reads it.
func TestQuorumSecuritySettings(t *testing.T) {
	dir := t.TempDir()
	jaas := filepath.Join(dir, "jaas.conf")
	os.WriteFile(jaas, []byte("QuorumServer {\n org.apache.zookeeper.server.auth.DigestLoginModule required user_peer=\"pw\";\n};\n"+
		"QuorumLearner {\n org.apache.zookeeper.server.auth.DigestLoginModule required username=\"peer\" password=\"pw\";\n};\n"+
		"Server {\n org.apache.zookeeper.server.auth.DigestLoginModule required user_bob=\"pw\";\n};\n"), 0o600)
	security := func(text string) (*quorumsec.Config, error) {
		t.Helper()
		c, err := ParseConfig("zoo.cfg", strings.NewReader("dataDir="+dir+"\nclientPort=0\n"+text), nil)
		if err != nil {
			t.Fatal(err)
		}
		return (&Server{cfg: c, log: slog.New(slog.DiscardHandler)}).quorumSecurity()
	}
	for text, want := range map[string]string{
		"quorum.auth.serverRequireSasl=true\n":                              "quorum.auth.serverRequireSasl: true, but quorum.auth.enableSasl is not",
		"quorum.auth.learnerRequireSasl=true\n":                             "quorum.auth.learnerRequireSasl: true, but quorum.auth.enableSasl is not",
		"quorum.auth.enableSasl=true\nquorum.auth.serverRequireSasl=true\n": "quorum.auth.serverRequireSasl: true, but quorum.auth.learnerRequireSasl is not",
		"quorum.auth.enableSasl=true\n":                                     "quorum.auth.enableSasl: true, but no JAAS file",
		"quorum.auth.enableSasl=true\njava.security.auth.login.config=" + jaas + "\nquorum.auth.learner.saslLoginContext=Learner\n": "quorum.auth.learner.saslLoginContext: " + jaas + `: no "Learner" login context`,
		"quorum.auth.enableSasl=true\njava.security.auth.login.config=" + jaas + "\nquorum.auth.server.saslLoginContext=Server2\n":  "quorum.auth.server.saslLoginContext: " + jaas + `: no "Server2" login context`,
		"quorum.auth.enableSasl=yes\n": `quorum.auth.enableSasl: "yes": want true or false`,
		"sslQuorum=ture\n":             `sslQuorum: "ture": want true or false`,
		"sslQuorum=true\n":             "sslQuorum: set, but ssl.quorum.keyStore.location is not",
		"portUnification=true\n":       "portUnification: set, but ssl.quorum.keyStore.location is not",
		"sslQuorum=true\nssl.quorum.keyStore.location=" + filepath.Join(dir, "none.pem") + "\n": "ssl.quorum.keyStore.location: open",
		"sslQuorum=true\nssl.quorum.keyStore.location=" + jaas + "\n":                           "ssl.quorum.keyStore.location: " + jaas + ": cannot tell the store's type",
	} {
		if _, err := security(text); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v; want %q", text, err, want)
		}
	}
	sec, err := security("quorum.auth.enableSasl=true\nquorum.auth.learnerRequireSasl=true\njava.security.auth.login.config=" + jaas + "\n")
	if err != nil || !sec.SASL || !sec.LearnerRequire || sec.ServerRequire || sec.User != "peer" || sec.Password != "pw" || sec.Users["peer"] != "pw" || sec.Users["bob"] != "" {
		t.Errorf("quorum SASL: %+v, %v", sec, err)
	}
	krb := filepath.Join(dir, "krb.conf")
	os.WriteFile(krb, []byte("QuorumServer {\n com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true;\n};\n"), 0o600)
	if _, err := security("quorum.auth.enableSasl=true\njava.security.auth.login.config=" + krb + "\n"); err == nil || !strings.Contains(err.Error(), "not GSSAPI") {
		t.Errorf("a Kerberos QuorumServer section: %v", err)
	}
	c, err := ParseConfig("zoo.cfg", strings.NewReader("dataDir="+dir+"\nclientPort=0\nclient.portUnification=on\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.secure(nil); err == nil || !strings.Contains(err.Error(), `client.portUnification: "on": want true or false`) {
		t.Errorf("client.portUnification=on: %v", err)
	}
	if sec, err := security(""); sec != nil || err != nil {
		t.Errorf("nothing set: %+v, %v", sec, err)
	}
}

// sslQuorumReloadCertFiles: the stores between servers are looked at
// again, as client.certReload's on the client port; without it they stay
// as read at the start.
func TestQuorumStoresReload(t *testing.T) {
	dir := t.TempDir()
	selfSigned := func(cn string) []byte {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			t.Fatal(err)
		}
		pk, _ := x509.MarshalPKCS8PrivateKey(key)
		return append(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	put := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p+".new", b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(p+".new", p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	first := selfSigned("first")
	for _, reload := range []bool{true, false} {
		store := put(fmt.Sprintf("server-%v.pem", reload), first)
		c, err := ParseConfig("zoo.cfg", strings.NewReader(fmt.Sprintf("dataDir=%s\nclientPort=0\nsslQuorum=true\n"+
			"ssl.quorum.keyStore.location=%s\nssl.quorum.trustStore.location=%s\nsslQuorumReloadCertFiles=%v\n", dir, store, store, reload)), nil)
		if err != nil {
			t.Fatal(err)
		}
		sec, err := (&Server{cfg: c, log: slog.New(slog.DiscardHandler)}).quorumSecurity()
		if err != nil {
			t.Fatal(err)
		}
		put(fmt.Sprintf("server-%v.pem", reload), selfSigned("renewed"))
		cert, _ := sec.TLS.Current()
		want := "first"
		if reload {
			want = "renewed"
		}
		if got := cert.Leaf.Subject.CommonName; got != want {
			t.Errorf("sslQuorumReloadCertFiles=%v: after the renewal the servers show %q, want %q", reload, got, want)
		}
	}
}

// dynamicConfigFile: the ensemble's lines come from the file it names, as
// ZooKeeper writes them once reconfiguration has been on, and the
// configuration's version from that file's name. A member must not take
// such a zoo.cfg for a standalone server's.
func TestDynamicConfigFile(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "myid"), []byte("2\n"), 0o644)
	dyn := filepath.Join(dir, "zoo.cfg.dynamic.100000000")
	write := func(text string) { os.WriteFile(dyn, []byte(text), 0o644) }
	three := "server.1=127.0.0.1:2888:3888:participant;127.0.0.1:2181\n" +
		"server.2=127.0.0.2:2888:3888:participant;127.0.0.2:2181\n" +
		"# a comment\nserver.3=127.0.0.3:2888:3888:observer;127.0.0.3:2181\n"
	parse := func(cfg string) (*Config, error) {
		return ParseConfig("zoo.cfg", strings.NewReader("tickTime=2000\ndataDir="+dir+"\nreconfigEnabled=false\n"+cfg), nil)
	}
	write(three)
	c, err := parse("dynamicConfigFile=" + dyn + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if e := c.Ensemble; e == nil || e.MyID != 2 || len(e.Members) != 3 || !e.Members[2].Observer || e.ConfigVersion != 0x100000000 ||
		c.ClientPort != 2181 || c.ClientPortAddress != "127.0.0.2" {
		t.Fatalf("read %+v, client port %s:%d", c.Ensemble, c.ClientPortAddress, c.ClientPort)
	}
	if got := quorumConfigText(c.Ensemble); !strings.HasSuffix(got, "\nversion=100000000") ||
		!strings.Contains(got, "server.3=127.0.0.3:2888:3888:observer;127.0.0.3:2181\n") {
		t.Fatalf("/zookeeper/config would hold:\n%s", got)
	}
	for _, tc := range []struct{ name, dynamic, cfg, want string }{
		{"a server line in zoo.cfg too", three, "dynamicConfigFile=" + dyn + "\nserver.1=127.0.0.1:2888:3888\n",
			"zoo.cfg:5: server.1: must be in the dynamic config file"},
		{"no such file", three, "dynamicConfigFile=" + dyn + ".gone\n", "zoo.cfg:4: dynamicConfigFile: cannot read the dynamic config file"},
		{"a version line", three + "version=100000000\n", "dynamicConfigFile=" + dyn + "\n", dyn + ":5: version: a dynamic config file carries its version in its name"},
		{"another key", "tickTime=1\n" + three, "dynamicConfigFile=" + dyn + "\n", dyn + ":1: tickTime: only server.N"},
		{"a bad server line", "server.1=127.0.0.1:2888\n" + three[strings.Index(three, "server.2"):], "dynamicConfigFile=" + dyn + "\n", dyn + ":1: server.1: "},
		{"groups", three + "group.1=1\n", "dynamicConfigFile=" + dyn + "\n", dyn + ":2: server.2: is a participant in no group.N line"},
	} {
		write(tc.dynamic)
		if _, err := parse(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
}
