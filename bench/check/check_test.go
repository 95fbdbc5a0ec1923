package check

import (
	"fmt"
	"io"
	"math"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"zkd/bench/zkref/zkreftest"
)

// The register checker on histories made by hand: a read of a value no
// write could have left fails it; a write whose answer never came may
// have happened, or not.
func TestRegisterChecker(t *testing.T) {
	at := func(ms int) time.Time { return time.Unix(0, int64(ms)*int64(time.Millisecond)) }
	op := func(client int, kind string, v int, from, to int, o Outcome) Op {
		return Op{Client: client, Kind: kind, Value: v, Call: at(from), Return: at(to), Outcome: o}
	}
	for _, c := range []struct {
		name  string
		ops   []Op
		valid bool
	}{
		{"a write, then a read of it", []Op{op(0, "write", 3, 0, 10, OK), op(1, "read", 3, 20, 30, OK)}, true},
		{"a read of the old value after a write returned", []Op{op(0, "write", 3, 0, 10, OK), op(1, "read", 0, 20, 30, OK)}, false},
		{"a read during a write sees either", []Op{op(0, "write", 3, 0, 40, OK), op(1, "read", 0, 20, 30, OK), op(2, "read", 3, 25, 35, OK)}, true},
		{"new then old: not both", []Op{op(0, "write", 3, 0, 40, OK), op(1, "read", 3, 10, 20, OK), op(2, "read", 0, 25, 35, OK)}, false},
		{"an unanswered write seen late", []Op{op(0, "write", 4, 0, 10, Unknown), op(1, "read", 0, 20, 30, OK), op(1, "read", 4, 900, 910, OK)}, true},
		{"an unanswered write never seen", []Op{op(0, "write", 4, 0, 10, Unknown), op(1, "read", 0, 20, 30, OK)}, true},
		{"a failed write seen", []Op{op(0, "write", 4, 0, 10, Failed), op(1, "read", 4, 20, 30, OK)}, false},
		{"a cas that succeeded from the wrong value", []Op{op(0, "write", 2, 0, 10, OK), {Client: 1, Kind: "cas", From: 1, Value: 5, Call: at(20), Return: at(30), Outcome: OK}}, false},
		{"a cas that succeeded", []Op{op(0, "write", 1, 0, 10, OK), {Client: 1, Kind: "cas", From: 1, Value: 5, Call: at(20), Return: at(30), Outcome: OK}, op(2, "read", 5, 40, 50, OK)}, true},
	} {
		v := checkRegister(c.ops, t.TempDir()+"/r.html")
		if v.Valid != c.valid {
			t.Errorf("%s: valid %v, want %v (%s)", c.name, v.Valid, c.valid, v.Summary)
		}
		if !c.valid && (v.History == "" || v.Visualization == "") {
			t.Errorf("%s: no counterexample written", c.name)
		}
	}
}

// The set checker: an acknowledged add missing is lost; an element
// nobody added, or whose add failed, is unexpected; an unanswered add may
// be there or not.
func TestSetChecker(t *testing.T) {
	ops := []Op{{Kind: "add", Elem: "a", Outcome: OK}, {Kind: "add", Elem: "b", Outcome: Unknown},
		{Kind: "add", Elem: "c", Outcome: Failed}, {Kind: "add", Elem: "d", Outcome: OK}}
	for _, c := range []struct {
		final []string
		valid bool
		says  string
	}{
		{[]string{"a", "d"}, true, "0 lost"},
		{[]string{"a", "b", "d"}, true, "1 of them present"},
		{[]string{"a"}, false, "lost: d"},
		{[]string{"a", "c", "d"}, false, "c (its add failed)"},
		{[]string{"a", "d", "x"}, false, "x (never added)"},
	} {
		final := map[string]bool{}
		for _, e := range c.final {
			final[e] = true
		}
		v := checkSet(ops, final)
		if v.Valid != c.valid || !strings.Contains(v.Summary, c.says) {
			t.Errorf("final %v: valid %v, %q; want %v and %q", c.final, v.Valid, v.Summary, c.valid, c.says)
		}
	}
}

// The ids and counter checkers on histories made by hand.
func TestIDsCounterAndBulkCheckers(t *testing.T) {
	id := func(name string, o Outcome) Op { return Op{Kind: "id", Elem: idsRoot + "/" + name, Outcome: o} }
	ids := []Op{id("id-0000000001", OK), id("id-0000000002", OK), {Kind: "id", Outcome: Unknown}}
	for _, c := range []struct {
		ops   []Op
		final []string
		valid bool
	}{
		{ids, []string{"id-0000000001", "id-0000000002"}, true},
		{ids, []string{"id-0000000001", "id-0000000002", "id-0000000003"}, true},                   // the unanswered one
		{ids, []string{"id-0000000001", "id-0000000002", "id-0000000003", "id-0000000004"}, false}, // one too many
		{ids, []string{"id-0000000001"}, false},                                                    // lost
		{append(ids, id("id-0000000002", OK)), []string{"id-0000000001", "id-0000000002"}, false},  // given twice
	} {
		final := map[string]bool{}
		for _, e := range c.final {
			final[e] = true
		}
		if v := checkIDs(c.ops, final); v.Valid != c.valid {
			t.Errorf("ids %v: valid %v, want %v (%s)", c.final, v.Valid, c.valid, v.Summary)
		}
	}
	incr := func(to int, o Outcome) Op { return Op{Kind: "incr", Value: to, Outcome: o} }
	ops := []Op{incr(1, OK), incr(2, OK), incr(3, Unknown), {Kind: "incr-not-made", Outcome: Failed}}
	for _, c := range []struct {
		ops   []Op
		final int
		valid bool
	}{
		{ops, 2, true}, {ops, 3, true}, {ops, 1, false}, {ops, 4, false},
		{append(ops, incr(2, OK)), 3, false}, // two acknowledged increments wrote 2
	} {
		if v := checkCounter(c.ops, c.final); v.Valid != c.valid {
			t.Errorf("counter ending at %d: valid %v, want %v (%s)", c.final, v.Valid, c.valid, v.Summary)
		}
	}
	bulk := func(client, n int, o Outcome) Op { return Op{Client: client, Kind: "bulk", Value: n, Outcome: o} }
	// Client 1: writes 1 and 2 acknowledged, 3 unanswered, 4 refused;
	// client 2: write 1 acknowledged.
	bulks := []Op{bulk(1, 1, OK), bulk(1, 2, OK), bulk(1, 3, Unknown), bulk(1, 4, Failed), bulk(2, 1, OK)}
	for _, c := range []struct {
		final map[int]int
		valid bool
	}{
		{map[int]int{1: 2, 2: 1}, true},
		{map[int]int{1: 3, 2: 1}, true},  // the unanswered one
		{map[int]int{1: 1, 2: 1}, false}, // lost
		{map[int]int{1: 4, 2: 1}, false}, // refused, yet there
		{map[int]int{1: 5, 2: 1}, false}, // never sent
		{map[int]int{1: 2}, false},       // client 2's znode gone
	} {
		if v := checkBulk(bulks, c.final, 1<<20); v.Valid != c.valid {
			t.Errorf("bulk znodes ending at %v: valid %v, want %v (%s)", c.final, v.Valid, c.valid, v.Summary)
		}
	}
	eph := []Op{{Kind: "eph-create", Outcome: OK}, {Kind: "eph-alive", Outcome: OK}, {Kind: "eph-alive", Outcome: Unknown}, {Kind: "eph-closed", Outcome: OK}}
	if v := checkSessions(eph, nil); !v.Valid {
		t.Errorf("sessions: %s", v.Summary)
	}
	if v := checkSessions(append(eph, Op{Kind: "eph-alive", Outcome: Failed}), nil); v.Valid {
		t.Errorf("an ephemeral gone while its session lived passed: %s", v.Summary)
	}
	if v := checkSessions(eph, map[string]bool{"c1-s0": true}); v.Valid {
		t.Errorf("an ephemeral left at the end passed: %s", v.Summary)
	}
	q := []Op{{Kind: "enqueue", Elem: "a", Outcome: OK}, {Kind: "enqueue", Elem: "b", Outcome: OK},
		{Kind: "enqueue", Elem: "c", Outcome: Unknown}, {Kind: "dequeue", Elem: "a", Outcome: OK}}
	for _, c := range []struct {
		ops   []Op
		final []string
		valid bool
	}{
		{q, []string{"b"}, true},
		{q, []string{"b", "c"}, true},  // the unanswered enqueue happened
		{q, nil, false},                // b lost
		{q, []string{"a", "b"}, false}, // a back after its dequeue
		{append(q, Op{Kind: "dequeue", Elem: "a", Outcome: OK}), []string{"b"}, false}, // a twice
		{q, []string{"b", "x"}, false}, // x never enqueued
	} {
		final := map[string]bool{}
		for _, e := range c.final {
			final[e] = true
		}
		if v := checkQueue(c.ops, final); v.Valid != c.valid {
			t.Errorf("queue %v: valid %v, want %v (%s)", c.final, v.Valid, c.valid, v.Summary)
		}
	}
}

var (
	buildOnce sync.Once
	built     string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if built != "" {
		os.RemoveAll(filepath.Dir(built))
	}
	os.Exit(code)
}

// zkdBinary builds zkd from this checkout once for the package's tests
// (bench is a client of the server: it does not import it).
func zkdBinary(t *testing.T) string {
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "check-zkd-")
		if err != nil {
			buildErr = err
			return
		}
		built = filepath.Join(dir, "zkd")
		if out, err := exec.Command("go", "build", "-o", built, "zkd/cmd/zkd").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build zkd/cmd/zkd: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return built
}

// faultsHere are those of faults this machine can make: partitions need
// root and iptables, which make test installs.
func faultsHere(t *testing.T, faults ...string) []string {
	err := CanPartition()
	if err == nil {
		return faults
	}
	var here []string
	for _, f := range faults {
		if isNetworkFault(f) {
			t.Logf("SKIPPED %s: %v", f, err)
			continue
		}
		here = append(here, f)
	}
	return here
}

func runCheck(t *testing.T, o Options) *Report {
	t.Helper()
	port, err := FreeBasePort(o.Servers)
	if err != nil {
		t.Fatal(err)
	}
	o.BasePort, o.Dir, o.Seed = port, t.TempDir(), time.Now().UnixNano()
	// A client a workload on each member (client i talks to member
	// 1 + i mod Servers), so each workload has one on the leader, and on
	// each observer.
	o.Clients, o.Keys = o.Servers, 3
	// A few hundred operations a second are plenty, and leave the CPU
	// to the other packages make test runs beside this one.
	o.Pause = 10 * time.Millisecond
	if o.Workloads == nil {
		o.Workloads = Workloads
	}
	// A fault lasts longer than syncLimit × tickTime (2.5 s), so that a cut
	// or paused leader is noticed and replaced while it lasts.
	o.Hold, o.Rest = 4*time.Second, 1500*time.Millisecond
	if testing.Verbose() {
		o.Log = os.Stderr
	} else {
		o.Log = io.Discard
	}
	r, err := Run(o)
	if err != nil {
		t.Fatalf("seed %d: %v", o.Seed, err)
	}
	var b strings.Builder
	WriteReport(&b, r)
	t.Logf("seed %d:\n%s", o.Seed, b.String())
	return r
}

// zkd, three servers, every workload, under kills, a paused leader and
// a paused follower, a cut-off leader and a bridge, one after the other,
// the clients hopping from member to member with requests in flight:
// every workload passes.
func TestZkdEnsemblePassesUnderFaults(t *testing.T) {
	r := passesUnder(t, "zkd", time.Second, faultsHere(t, FaultKill, FaultKillLeader, FaultPauseLeader, FaultPauseFollower, FaultPartitionLeader,
		FaultPartitionBridge))
	png := filepath.Join(t.TempDir(), "timeline.png")
	if err := Timeline(png, r); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(png); err != nil || st.Size() < 10000 {
		t.Fatalf("the timeline: %v, %v", st, err)
	}
}

// zkd, three voters and two observers, every workload, a minority of
// the voters and some observers cut off, then a member killed: every
// workload passes, through the observers' clients too, and the
// observers are observers again at the end.
func TestZkdEnsembleWithObserversPassesUnderFaults(t *testing.T) {
	faults := faultsHere(t, FaultPartitionHalves, FaultKill)
	r := runCheck(t, Options{Impl: "zkd", Binary: zkdBinary(t), Servers: 5, Observers: 2,
		Duration: time.Duration(len(faults)) * 5500 * time.Millisecond, Faults: faults})
	if !r.Valid() {
		t.Fatal("the ensemble with observers failed the check (the report above; the history is in the test's directory)")
	}
	mustHaveMade(t, r, faults)
}

// passesUnder runs a 3-server ensemble of impl (zkd or mixed) under the
// faults in turn, 5.5 s each, its clients hopping from member to member
// about every hop (0: staying on theirs), and fails the test unless every
// workload passes, every fault was made and the clients hopped.
func passesUnder(t *testing.T, impl string, hop time.Duration, faults []string) *Report {
	t.Helper()
	r := runCheck(t, Options{Impl: impl, Binary: zkdBinary(t), Servers: 3, Duration: time.Duration(len(faults)) * 5500 * time.Millisecond,
		Faults: faults, Hop: hop})
	if !r.Valid() {
		t.Fatalf("the %s ensemble failed the check (the report above; the history is in the test's directory)", impl)
	}
	mustHaveMade(t, r, faults)
	if hop > 0 && r.Hops == 0 {
		t.Error("no client hopped to another member")
	}
	return r
}

// mustHaveMade fails the test unless each of faults was made at least
// once.
func mustHaveMade(t *testing.T, r *Report, faults []string) {
	t.Helper()
	made := map[string]int{}
	for _, f := range r.Faults {
		if f.Err == "" {
			made[f.Name]++
		}
	}
	for _, f := range faults {
		if made[f] == 0 {
			t.Errorf("the %s fault was never made", f)
		}
	}
}

// The other faults: a follower cut off, a minority cut from the
// majority, a link to the leader lost one way, links between members and
// to the clients that lose packets, a member whose disk fails, one whose
// disk stalls, a member's power cut (its writes since their last fsync
// undone) and the power of all three cut at once.
func TestZkdEnsemblePassesUnderPartitionsAndDiskFaults(t *testing.T) {
	passesUnder(t, "zkd", 0, faultsHere(t, FaultPartitionOne, FaultPartitionHalves, FaultPartitionOneWay, FaultLossyLinks, FaultLossyClients,
		FaultDiskError, FaultDiskStall, FaultPowerCut, FaultPowerCutAll))
}

// The checker finds a planted bug: a server whose txn log fsync does
// nothing (ZKD_FAULTS=fsync-lies) acknowledges writes that a power cut of
// the whole ensemble then takes away.
func TestCheckerFindsAnFsyncThatLies(t *testing.T) {
	r := runCheck(t, Options{Impl: "zkd", Binary: zkdBinary(t), Servers: 3, Duration: 8 * time.Second,
		Faults: []string{FaultPowerCutAll}, Env: []string{"ZKD_FAULTS=fsync-lies"},
		Workloads: []string{"set", "counter", "ids"}})
	mustHaveMade(t, r, []string{FaultPowerCutAll})
	for _, v := range r.Verdicts {
		if v.Valid {
			t.Errorf("the %s workload passed servers whose fsync lies through a power cut: %s", v.Workload, v.Summary)
		}
	}
}

// The checker finds a planted bug: a leader that commits on its own ACK
// (ZKD_FAULTS=ack-before-quorum), cut off from its followers, goes on
// acknowledging writes the next leader never has: the set, the counter,
// the ids and the queue lose or double writes. (The register's history
// shows it only when the two sides' operations on a register overlap in
// time in a way no order explains, which a short run may not have.)
func TestCheckerFindsALeaderThatAcksBeforeQuorum(t *testing.T) {
	if err := CanPartition(); err != nil {
		t.Skipf("SKIPPED: the planted bug shows under a partition: %v", err)
	}
	r := runCheck(t, Options{Impl: "zkd", Binary: zkdBinary(t), Servers: 3, Duration: 12 * time.Second,
		Faults: []string{FaultPartitionLeader}, Env: []string{"ZKD_FAULTS=ack-before-quorum"},
		Workloads: []string{"set", "counter", "ids", "queue"}})
	for _, v := range r.Verdicts {
		if v.Valid {
			t.Errorf("the %s workload passed a server that acknowledges before a quorum has the write: %s", v.Workload, v.Summary)
		}
	}
}

// The control: Apache ZooKeeper 3.8, three servers, paused and cut off,
// passes. Not killed: Debian's 3.8.0 has the data-loss bug of ZooKeeper
// before 3.8.5 (ZOOKEEPER-4643/4785: a follower synced by DIFF acknowledges
// NEWLEADER before the synced txns are on its disk), and a leader killed
// soon after a follower's restart loses acknowledged writes in about one
// run in three; docs/reliability.md shows zkbench check finding it.
func TestZooKeeperEnsemblePassesUnderPausesAndPartitions(t *testing.T) {
	zkreftest.Need(t)
	faults := []string{FaultPauseLeader}
	if err := CanPartition(); err != nil {
		t.Logf("SKIPPED partitions: %v", err)
	} else {
		faults = append(faults, FaultPartitionLeader, FaultPartitionOne, FaultPartitionHalves)
	}
	r := runCheck(t, Options{Impl: "zookeeper", Servers: 3, Duration: 16 * time.Second, Faults: faults})
	if !r.Valid() {
		t.Fatal("ZooKeeper failed the check (the report above)")
	}
}

// A mixed ensemble, zkd on members 1 and 3 and Apache ZooKeeper 3.8 on
// member 2, its leader paused and cut off, then a zkd member's power cut,
// passes: whichever kind leads, the other follows it without losing or
// doubling an acknowledged write, and a zkd member that lost its unsynced
// writes rejoins whichever kind leads. The first leader (3, the highest
// id) is zkd; pausing it makes 2, ZooKeeper, the likely next. ZooKeeper
// is never killed, for its 3.8.0's data-loss bug (the test above); the
// other faults are the zkd and ZooKeeper tests' above, and make
// check-long CHECK_IMPL=mixed's. The clients hop from member to member,
// so sessions move between the two kinds of server.
func TestMixedEnsemblePassesUnderPausesPartitionsAndPowerCuts(t *testing.T) {
	zkreftest.Need(t)
	r := passesUnder(t, "mixed", time.Second, faultsHere(t, FaultPauseLeader, FaultPartitionLeader, FaultPowerCut))
	impls, _ := Impls("mixed", 3)
	for _, f := range r.Faults {
		if len(f.Target) == 1 && f.Err == "" {
			t.Logf("%s hit member %d (%s)", f.Name, f.Target[0], impls[f.Target[0]-1])
			if f.Name == FaultPowerCut && impls[f.Target[0]-1] != "zkd" {
				t.Errorf("the power cut hit member %d, Apache ZooKeeper", f.Target[0])
			}
		}
	}
}

// Impls gives each member its server.
func TestImpls(t *testing.T) {
	for _, c := range []struct {
		impl string
		n    int
		want string
	}{
		{"zkd", 3, "zkd zkd zkd"},
		{"zookeeper", 1, "zookeeper"},
		{"mixed", 3, "zkd zookeeper zkd"},
		{"mixed", 5, "zkd zookeeper zkd zookeeper zkd"},
		{"zookeeper,zkd,zkd", 3, "zookeeper zkd zkd"},
		{"zkd,zkd", 3, "error"},
		{"zkd,etcd,zkd", 3, "error"},
		{"etcd", 1, "error"},
	} {
		got, err := Impls(c.impl, c.n)
		g := strings.Join(got, " ")
		if err != nil {
			g = "error"
		}
		if g != c.want {
			t.Errorf("Impls(%q, %d) = %q (%v), want %q", c.impl, c.n, g, err, c.want)
		}
	}
}

// Kills and disk faults hit any member of an ensemble of one kind, and
// only the zkd members of a mixed one.
func TestCrashableMembers(t *testing.T) {
	for _, c := range []struct {
		impl string
		n    int
		want []int
	}{
		{"zkd", 3, []int{1, 2, 3}},
		{"zookeeper", 3, []int{1, 2, 3}},
		{"mixed", 3, []int{1, 3}},
		{"mixed", 5, []int{1, 3, 5}},
		{"zookeeper,zookeeper,zkd", 3, []int{3}},
	} {
		cl := &Cluster{Impl: c.impl, N: c.n}
		if got := cl.crashable(); !slices.Equal(got, c.want) {
			t.Errorf("%s, %d members: kills may hit %v, want %v", c.impl, c.n, got, c.want)
		}
	}
}

// Observers are the last members: their own configuration says
// peerType=observer, and every member's server list marks them.
func TestObserverConfig(t *testing.T) {
	c := &Cluster{Impl: "zkd", N: 5, Observers: 2, Dir: "/d", ClientPort: 2181, QuorumPort: 2182, ElectionPort: 2183, TickMs: 500}
	for i := 1; i <= 5; i++ {
		cfg := c.config(i)
		if got, want := strings.Contains(cfg, "peerType=observer\n"), i >= 4; got != want {
			t.Errorf("member %d's configuration says peerType=observer: %v, want %v\n%s", i, got, want, cfg)
		}
		for j := 1; j <= 5; j++ {
			line := fmt.Sprintf("server.%d=127.0.0.%d:2182:2183", j, j)
			if j >= 4 {
				line += ":observer"
			}
			if !strings.Contains(cfg, line+"\n") {
				t.Errorf("member %d's configuration has no line %q:\n%s", i, line, cfg)
			}
		}
	}
}

// --sync-limit reaches every member's zoo.cfg; 5 ticks unless told.
func TestSyncLimitConfig(t *testing.T) {
	for _, c := range []struct{ set, want int }{{0, 5}, {20, 20}} {
		cl := &Cluster{Impl: "zkd", N: 3, Dir: "/d", ClientPort: 2181, QuorumPort: 2182, ElectionPort: 2183, TickMs: 500, SyncLimit: c.set}
		for i := 1; i <= 3; i++ {
			if cfg := cl.config(i); !strings.Contains(cfg, fmt.Sprintf("\nsyncLimit=%d\n", c.want)) {
				t.Errorf("SyncLimit %d: member %d's configuration has no syncLimit=%d:\n%s", c.set, i, c.want, cfg)
			}
		}
	}
}

// partition-halves cuts a minority off and leaves the others a quorum of
// the voters, with observers or without.
func TestMinorityLeavesAQuorum(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for _, c := range []struct{ n, observers int }{{3, 0}, {5, 0}, {5, 2}, {4, 1}, {7, 2}, {3, 2}} {
		cl := &Cluster{N: c.n, Observers: c.observers}
		voters := c.n - c.observers
		cutObservers := 0
		for k := 0; k < 200; k++ {
			alone := cl.minority(rng)
			if len(alone) == 0 || len(alone) >= c.n {
				t.Fatalf("%d members, %d observers: cut off %v", c.n, c.observers, alone)
			}
			cutVoters := 0
			for _, m := range alone {
				if cl.observer(m) {
					cutObservers++
				} else {
					cutVoters++
				}
			}
			if left := voters - cutVoters; left <= voters/2 {
				t.Fatalf("%d members, %d observers: cutting off %v leaves %d of %d voters", c.n, c.observers, alone, left, voters)
			}
		}
		if c.observers > 0 && cutObservers == 0 {
			t.Errorf("%d members, %d observers: no observer was ever cut off", c.n, c.observers)
		}
	}
}

// The disk faults go through zkd's fault hook: a run that asks for them
// with no zkd member, or for every member's power cut with a ZooKeeper
// member, is refused before it starts anything.
func TestDiskFaultsNeedZkdMembers(t *testing.T) {
	for _, c := range []struct {
		impl, fault, want string
	}{
		{"zookeeper", FaultDiskError, "they need zkd members"},
		{"zookeeper", FaultPowerCut, "they need zkd members"},
		{"mixed", FaultPowerCutAll, "power-cut-all needs zkd's disk fault hook on every member"},
	} {
		_, err := Run(Options{Impl: c.impl, Binary: "/nonexistent/zkd", Servers: 3, Dir: t.TempDir(), Faults: []string{c.fault}})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s with %s: %v, want an error saying %q", c.impl, c.fault, err, c.want)
		}
	}
}

// The fifo and watch checkers on histories made by hand.
func TestFIFOAndWatchCheckers(t *testing.T) {
	w := func(index, value int, seq uint64, version int32, o Outcome) Op {
		return Op{Kind: "fifo-write", Session: 1, Index: index, Value: value, Seq: seq, Version: version, Outcome: o}
	}
	r := func(index, value int, seq uint64) Op {
		return Op{Kind: "fifo-read", Session: 1, Index: index, Value: value, Seq: seq, Outcome: OK}
	}
	for _, c := range []struct {
		name  string
		ops   []Op
		valid bool
	}{
		{"in order", []Op{r(0, 0, 1), w(1, 1, 2, 1, OK), r(2, 1, 3), w(3, 2, 4, 2, OK), r(4, 2, 5)}, true},
		{"replies out of order", []Op{r(0, 0, 2), w(1, 1, 1, 1, OK), r(2, 1, 3)}, false},
		{"writes applied out of order", []Op{w(0, 1, 1, 2, OK), w(1, 2, 2, 1, OK), r(2, 1, 3)}, false},
		{"a read misses the write sent before it", []Op{w(0, 1, 1, 1, OK), r(1, 0, 2)}, false},
		{"a read sees a write sent after it", []Op{r(0, 1, 1), w(1, 1, 2, 1, OK)}, false},
		{"a read sees a refused write", []Op{w(0, 1, 0, 0, Failed), r(1, 1, 1)}, false},
		{"a read sees an unanswered write", []Op{w(0, 1, 0, 0, Unknown), r(1, 1, 1), w(2, 2, 2, 2, OK)}, true},
		{"or does not", []Op{w(0, 1, 0, 0, Unknown), r(1, 0, 1), w(2, 2, 2, 1, OK)}, true},
	} {
		if v := checkFIFO(c.ops); v.Valid != c.valid {
			t.Errorf("fifo, %s: valid %v, want %v (%s)", c.name, v.Valid, c.valid, v.Summary)
		}
	}
	op := func(kind string, key int, seq uint64, version int32) Op {
		return Op{Kind: kind, Session: 1, Key: key, Seq: seq, Version: version, Outcome: OK}
	}
	for _, c := range []struct {
		name  string
		ops   []Op
		valid bool
	}{
		{"the event, then the new version", []Op{op("watch-set", 1, 1, 3), op("watch-event", 1, 1, 0), op("watch-read", 1, 2, 4)}, true},
		{"the new version before the event", []Op{op("watch-set", 1, 1, 3), op("watch-read", 1, 2, 4), op("watch-event", 1, 2, 0)}, false},
		{"the session's own write before its event", []Op{op("watch-set", 1, 1, 3), op("watch-write", 1, 2, 4), op("watch-event", 1, 2, 0)}, false},
		{"a change never announced", []Op{op("watch-set", 1, 1, 3), op("watch-read", 1, 2, 3), op("watch-read", 1, 3, 5), op("watch-set", 2, 4, 0), op("watch-event", 2, 4, 0)}, false},
		{"an event with no watch", []Op{op("watch-set", 1, 1, 3), op("watch-event", 1, 1, 0), op("watch-event", 1, 2, 0)}, false},
		{"an event for another znode", []Op{op("watch-set", 1, 1, 3), op("watch-event", 2, 1, 0)}, false},
	} {
		if v := checkWatch(c.ops); v.Valid != c.valid {
			t.Errorf("watch, %s: valid %v, want %v (%s)", c.name, v.Valid, c.valid, v.Summary)
		}
	}
	// The same for children: cversions and children events.
	cop := func(kind string, key int, seq uint64, cversion int32) Op {
		return Op{Kind: "cwatch-" + kind, Session: 1, Key: key, Seq: seq, Version: cversion, Outcome: OK}
	}
	for _, c := range []struct {
		name  string
		ops   []Op
		valid bool
	}{
		{"the session's own create, its event, then the new cversion", []Op{cop("set", 1, 1, 3), cop("create", 1, 2, 0),
			{Kind: "cwatch-event", Session: 1, Key: 1, Seq: 1, Outcome: OK}, cop("read", 1, 3, 4)}, true},
		{"a child added without an event", []Op{cop("set", 1, 1, 3), cop("read", 1, 2, 4), cop("event", 1, 2, 0)}, false},
		{"an event on another znode", []Op{cop("set", 1, 1, 3), cop("event", 2, 1, 0), cop("read", 2, 2, 9)}, false},
	} {
		if v := checkCWatch(c.ops); v.Valid != c.valid {
			t.Errorf("cwatch, %s: valid %v, want %v (%s)", c.name, v.Valid, c.valid, v.Summary)
		}
	}
}

// The pwatch checker: while a connection lasts with the persistent
// recursive watch set, two replies showing versions U and V of a znode
// have exactly V-U data events of it between them.
func TestPWatchChecker(t *testing.T) {
	// op is a reply (seq, version) or an event (after seq) on connection
	// conn of session 1.
	op := func(kind string, conn uint64, key int, seq uint64, version int32) Op {
		return Op{Kind: "pwatch-" + kind, Session: 1, Conn: conn, Key: key, Seq: seq, Version: version, Outcome: OK}
	}
	unknownAdd := Op{Kind: "pwatch-add", Session: 1, Conn: 1, Outcome: Unknown}
	for _, c := range []struct {
		name  string
		ops   []Op
		valid bool
	}{
		{"every change announced before the reply showing it", []Op{op("add", 1, 0, 1, 0), op("read", 1, 1, 2, 3),
			op("event", 1, 1, 2, 0), op("event", 1, 2, 2, 0), op("event", 1, 1, 2, 0), op("write", 1, 1, 3, 5), op("read", 1, 2, 4, 9)}, true},
		{"a change missed", []Op{op("add", 1, 0, 1, 0), op("read", 1, 1, 2, 3), op("event", 1, 1, 2, 0), op("read", 1, 1, 3, 5)}, false},
		{"a change announced twice", []Op{op("add", 1, 0, 1, 0), op("read", 1, 1, 2, 3), op("event", 1, 1, 2, 0), op("event", 1, 1, 2, 0),
			op("read", 1, 1, 3, 4)}, false},
		{"a change announced after the reply showing it", []Op{op("add", 1, 0, 1, 0), op("read", 1, 1, 2, 3), op("write", 1, 1, 3, 4),
			op("event", 1, 1, 3, 0), op("read", 1, 1, 4, 4)}, false},
		{"an event before the addWatch's reply", []Op{op("event", 1, 1, 0, 0), op("add", 1, 0, 1, 0), op("read", 1, 1, 2, 3)}, false},
		{"an event on a connection of a session that set no watch", []Op{op("event", 1, 1, 0, 0)}, false},
		{"the watch set again on the next connection", []Op{op("add", 1, 0, 1, 0), op("read", 2, 1, 2, 3), op("event", 2, 1, 2, 0),
			op("read", 2, 1, 3, 4)}, true},
		{"changes made between connections go unannounced", []Op{op("add", 1, 0, 1, 0), op("read", 1, 1, 2, 3), op("read", 2, 1, 3, 7),
			op("event", 2, 1, 3, 0), op("read", 2, 1, 4, 8)}, true},
		{"an addWatch without an answer may have set the watch", []Op{unknownAdd, op("event", 1, 1, 0, 0), op("add", 2, 0, 1, 0),
			op("read", 2, 1, 2, 3), op("event", 2, 1, 2, 0), op("read", 2, 1, 3, 4)}, true},
	} {
		if v := checkPWatch(c.ops); v.Valid != c.valid {
			t.Errorf("pwatch, %s: valid %v, want %v (%s)", c.name, v.Valid, c.valid, v.Summary)
		}
	}
}

// A running server zkbench did not start (--connect): the workloads run
// and are checked, without faults; a second run on the same server is
// refused, since the first run's znodes would count as its own.
func TestCheckARunningServer(t *testing.T) {
	port, err := FreeBasePort(1)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := fmt.Sprintf("tickTime=500\ndataDir=%s\nclientPort=%d\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\n", filepath.Join(dir, "data"), port)
	if err := os.WriteFile(filepath.Join(dir, "zoo.cfg"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := exec.Command(zkdBinary(t), "zoo.cfg")
	srv.Dir = dir
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	o := Options{Connect: []string{addr}, Dir: t.TempDir(), Duration: 4 * time.Second, Clients: 2, Keys: 2,
		Pause: 5 * time.Millisecond, Workloads: []string{"set", "fifo", "watch"}, Log: io.Discard}
	r, err := Run(o)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Valid() || len(r.Verdicts) != 3 {
		var b strings.Builder
		WriteReport(&b, r)
		t.Fatalf("a healthy server failed the check:\n%s", b.String())
	}
	o.Dir = t.TempDir()
	if _, err := Run(o); err == nil || !strings.Contains(err.Error(), "from an earlier run") {
		t.Errorf("a second run on the same znodes: %v", err)
	}
	o.Faults = []string{FaultKill}
	if _, err := Run(o); err == nil || !strings.Contains(err.Error(), "--nemesis none") {
		t.Errorf("faults on a running ensemble: %v", err)
	}
}

// The report lists each fault of a short run on a line: its name, the
// members it hit as one list, when, and how (a lossy fault's share).
func TestReportListsFaults(t *testing.T) {
	start := time.Now()
	r := &Report{Start: start, Faults: []FaultEvent{
		{Name: FaultLossyLinks, Target: []int{1, 2, 3}, Start: start.Add(2 * time.Second), End: start.Add(6 * time.Second), Detail: "40% lost"},
		{Name: FaultKillLeader, Target: []int{2}, Start: start.Add(8 * time.Second), End: start.Add(12 * time.Second)},
		{Name: FaultPartitionOneWay, Err: "no leader", Start: start.Add(14 * time.Second), End: start.Add(14 * time.Second)},
	}}
	var b strings.Builder
	WriteReport(&b, r)
	for _, want := range []string{
		"  lossy-links        [1 2 3]      2.0s–   6.0s  40% lost\n",
		"  kill-leader        [2]          8.0s–  12.0s\n",
		"  partition-oneway   []          14.0s–  14.0s  not made: no leader\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("the report lacks the line %q:\n%s", want, b.String())
		}
	}
}

// The report says, for each kind of fault, the longest spell without an
// acknowledged write from a fault's start to 3 s after its end (or the
// next fault's start, or the workloads' end): writes stop for 1.5 s in
// the first kill, 0.5 s in the second, 2 s in the pause, whose spell runs
// into the settling time; reads and failed writes do not count, nor the
// time after the last write sent.
func TestReportSaysHowLongEachFaultStoppedTheWrites(t *testing.T) {
	start := time.Now()
	at := func(s float64) time.Time { return start.Add(time.Duration(s * float64(time.Second))) }
	r := &Report{Start: start, Faults: []FaultEvent{
		{Name: FaultKill, Target: []int{1}, Start: at(2), End: at(6)},
		{Name: FaultPauseLeader, Target: []int{2}, Start: at(10), End: at(14)},
		{Name: FaultKill, Target: []int{3}, Start: at(20), End: at(24)},
		{Name: FaultPartitionOneWay, Err: "no leader", Start: at(30), End: at(30)},
		// After the workloads' end (40 s): no spell.
		{Name: FaultPauseFollower, Target: []int{1}, Start: at(39.5), End: at(43.5)},
	}}
	gaps := [][2]float64{{3, 4.5}, {13, 15}, {21, 21.5}}
	for s := 0.0; s < 40; s += 0.01 {
		in := false
		for _, g := range gaps {
			in = in || s > g[0] && s < g[1]
		}
		if in {
			// A read and a failed write still answered.
			r.Ops = append(r.Ops, Op{Kind: "read", Outcome: OK, Call: at(s), Return: at(s)}, Op{Kind: "write", Outcome: Failed, Call: at(s), Return: at(s)})
			continue
		}
		r.Ops = append(r.Ops, Op{Kind: "add", Outcome: OK, Call: at(s), Return: at(s)})
	}
	stalls := Stalls(r)
	if len(stalls) != 3 {
		t.Fatalf("stalls %+v, want one for kill, pause-leader and pause-follower", stalls)
	}
	if f := stalls[2]; f.Fault != FaultPauseFollower || f.Longest > 50*time.Millisecond {
		t.Errorf("pause-follower, at the end of the workloads: %+v, want no spell", f)
	}
	near := func(d time.Duration, s float64) bool { return math.Abs(d.Seconds()-s) < 0.05 }
	if k := stalls[0]; k.Fault != FaultKill || k.Made != 2 || !near(k.Longest, 1.5) || !near(k.At, 1) || !near(k.Median, 1.5) {
		t.Errorf("kill: %+v, want 2 made, the longest 1.5 s at 1 s, the median 1.5 s", k)
	}
	if p := stalls[1]; p.Fault != FaultPauseLeader || p.Made != 1 || !near(p.Longest, 2) || !near(p.At, 3) {
		t.Errorf("pause-leader: %+v, want the longest 2 s at 3 s", p)
	}
	var b strings.Builder
	WriteReport(&b, r)
	if !strings.Contains(b.String(), "longest spell without an acknowledged write") || !strings.Contains(b.String(), "  kill                 1.5") {
		t.Errorf("the report lacks the kills' spell:\n%s", b.String())
	}
}
