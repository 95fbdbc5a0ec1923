package engine_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"zkd/bench/zkref"
	"zkd/bench/zkref/zkreftest"
	"zkd/engine/zkdtest"
	"zkd/wire"
	"zkd/ztree"
)

// TestDifferentialRandomOps plays the same random requests against Apache
// ZooKeeper and zkd and compares every reply and watch event. Two sessions
// take turns: B has authenticated as a digest user, A has not, so ACLs
// refuse one and admit the other. Only B, which may read every znode, sets
// watches: Debian's ZooKeeper 3.8.0 predates the fix of CVE-2024-23944,
// which zkd has (events only to sessions that may read the znode). The requests are every client opcode
// with right and wrong paths, versions, modes, TTLs and ACLs, on a small
// tree where they collide: creates under ephemerals, deletes of parents,
// multis that fail part way, watches of every kind set and removed. The
// script reacts to the replies (a sequential create's name joins the
// paths), so a difference shows first where it starts.
//
// ZKD_RANDOM_OPS_SEEDS=N plays N scripts instead of the default few,
// ZKD_RANDOM_OPS_SEED=N only script N.
func TestDifferentialRandomOps(t *testing.T) {
	first, last := randomOpsSeeds(4)
	// The container and TTL reaper is kept from running: its txns would
	// come at different moments on the two servers.
	const never = "86400000"
	ref := zkreftest.Start(t, zkref.Options{Config: map[string]string{"extendedTypesEnabled": "true"},
		SystemProperties: map[string]string{"znode.container.checkIntervalMs": never}})
	srv := zkdtest.Start(t, map[string]string{"extendedTypesEnabled": "true", "znode.container.checkIntervalMs": never})
	zkdAddr, refAddr := srv.Addr, ref.Addr
	for seed := first; seed <= last; seed++ {
		ref := playRandomOps(t, newOpPlayer(t, refAddr), uint64(seed), 250)
		got := playRandomOps(t, newOpPlayer(t, zkdAddr), uint64(seed), 250)
		compareLines(t, fmt.Sprintf("random ops, seed %d (ZKD_RANDOM_OPS_SEEDS)", seed), ref, got)
	}
}

// TestDifferentialRandomOpsInAnEnsemble plays the same scripts on two
// 3-server ensembles, one of Apache ZooKeeper and one of zkd, with A on
// the leader and B on a follower: B's writes go through the leader, and
// the events of each session's writes reach the other on another server.
func TestDifferentialRandomOpsInAnEnsemble(t *testing.T) {
	first, last := randomOpsSeeds(2)
	const never = "86400000"
	// Sessions may wait a while for the other server (see settle).
	e := zkdtest.StartEnsemble(t, 3, map[string]string{"extendedTypesEnabled": "true",
		"znode.container.checkIntervalMs": never, "maxSessionTimeout": "60000"})
	ze := zkreftest.NewEnsemble(t)
	refs := map[int64]*zkref.Server{}
	for id := int64(1); id <= 3; id++ {
		cfg := ze.Config(id)
		cfg["extendedTypesEnabled"] = "true"
		cfg["maxSessionTimeout"] = "60000"
		refs[id] = zkreftest.Start(t, zkref.Options{MyID: id, Config: cfg,
			SystemProperties: map[string]string{"znode.container.checkIntervalMs": never}})
	}
	refLeader := zkreftest.Leader(t, refs)
	refFollower := int64(1)
	if refLeader == 1 {
		refFollower = 2
	}
	leader, follower := e.Leader(), e.Follower()
	for seed := first; seed <= last; seed++ {
		// No bursts here: a ZooKeeper follower now and then leaves one of
		// a burst's failing writes unanswered.
		refPl := newOpPlayerOn(t, refs[refLeader].Addr, refs[refFollower].Addr)
		ref := playRandomOps(t, refPl, uint64(seed), 250)
		zkdPl := newOpPlayerOn(t, e.Addr(leader), e.Addr(follower))
		got := playRandomOps(t, zkdPl, uint64(seed), 250)
		what := fmt.Sprintf("random ops in an ensemble, seed %d (ZKD_RANDOM_OPS_SEEDS)", seed)
		if refPl.broken && !zkdPl.broken {
			// ZooKeeper 3.8.0's ensemble now and then leaves a request
			// unanswered (an error reply, on the leader too), and stays
			// so: compare what came before, and stop.
			refLines, gotLines := strings.Split(ref, "\n"), strings.Split(got, "\n")
			n := min(len(refLines)-1, len(gotLines))
			t.Logf("seed %d: ZooKeeper stopped answering (%s); compared the %d lines before", seed, refLines[n], n)
			compareLines(t, what, strings.Join(refLines[:n], "\n"), strings.Join(gotLines[:n], "\n"))
			return
		}
		compareLines(t, what, ref, got)
	}
}

// randomOpsSeeds are the scripts to play: 1 to n, 1 to
// ZKD_RANDOM_OPS_SEEDS, or only ZKD_RANDOM_OPS_SEED.
func randomOpsSeeds(n int) (first, last int) {
	if s, err := strconv.Atoi(os.Getenv("ZKD_RANDOM_OPS_SEED")); err == nil && s > 0 {
		return s, s
	}
	if s, err := strconv.Atoi(os.Getenv("ZKD_RANDOM_OPS_SEEDS")); err == nil && s > 0 {
		n = s
	}
	return 1, n
}

// playRandomOps runs script seed with pl's sessions, under a root of its
// own, and returns what each session saw, one line per reply or event.
func playRandomOps(t *testing.T, pl *opPlayer, seed uint64, steps int) string {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 0x2181))
	root := fmt.Sprintf("/rnd%d", seed)
	paths := []string{root, root + "/a", root + "/a/x", root + "/a/y", root + "/b", root + "/b/z", root + "/c", root + "/c/d/e"}
	bad := []string{root + "/", root + "//a", "rnd", root + "/a/./x", ""}
	acls := [][]wire.ACL{
		openACL,
		{{Perms: wire.PermRead, ID: wire.Id{Scheme: "world", ID: "anyone"}}},
		{{Perms: wire.PermAll, ID: wire.Id{Scheme: "digest", ID: ztree.DigestID("u", "pw")}}},
		{{Perms: wire.PermAll &^ wire.PermDelete &^ wire.PermCreate, ID: wire.Id{Scheme: "world", ID: "anyone"}}},
		{{Perms: wire.PermAll, ID: wire.Id{Scheme: "auth", ID: ""}}},
		{{Perms: wire.PermRead, ID: wire.Id{Scheme: "world", ID: "anyone"}}, {Perms: wire.PermAll, ID: wire.Id{Scheme: "digest", ID: ztree.DigestID("u", "pw")}}},
		{},
		{{Perms: wire.PermAll, ID: wire.Id{Scheme: "ip", ID: "127.0.0.1"}}},
		{{Perms: wire.PermAll, ID: wire.Id{Scheme: "nosuch", ID: "x"}}},
	}
	path := func() string {
		if rng.IntN(20) == 0 {
			return bad[rng.IntN(len(bad))]
		}
		return paths[rng.IntN(len(paths))]
	}
	// B sets persistent watches on some paths and one-shot watches on
	// the others. A one-shot watch set on a path with a persistent one
	// replaces it in 3.8 (TestDifferentialWatchModes); zkd does that when
	// the read registers it, which for a read answered from a version
	// just before the newest is a moment after ZooKeeper's order would.
	persistent := []string{root, root + "/a", ""}
	oneShot := func(p string, who int) bool {
		watch := rng.IntN(2) == 0
		return watch && who == 1 && !slices.Contains(persistent, p)
	}
	version := func() int32 {
		if rng.IntN(20) == 0 {
			return []int32{-2, 1 << 30}[rng.IntN(2)]
		}
		return int32(rng.IntN(4)) - 1
	}
	data := func() []byte { return []byte(strings.Repeat("v", rng.IntN(12))) }
	acl := func() []wire.ACL { return acls[rng.IntN(len(acls))] }
	// Children, Data and Any, and now and then a number ZooKeeper 3.8
	// does not know.
	watcherType := func() wire.WatcherType {
		if rng.IntN(10) == 0 {
			return wire.WatcherType([]int{0, 4, 5, 6}[rng.IntN(4)])
		}
		return wire.WatcherType(1 + rng.IntN(3))
	}
	mode := func() wire.CreateMode {
		return []wire.CreateMode{wire.ModePersistent, wire.ModePersistent, wire.ModeEphemeral, wire.ModePersistentSequential,
			wire.ModeEphemeralSequential, wire.ModeContainer, wire.ModePersistentWithTTL, 9}[rng.IntN(8)]
	}
	// createMode is mostly a mode a plain create takes, now and then a
	// TTL mode or a bad one.
	createMode := func() wire.CreateMode {
		m := mode()
		if rng.IntN(4) != 0 {
			m %= 5
		}
		return m
	}
	subOp := func(read, watch bool) wire.MultiOp {
		if read {
			if rng.IntN(2) == 0 {
				p := path()
				return wire.MultiOp{Type: wire.OpGetData, Path: p, Watch: watch && oneShot(p, 1)}
			}
			p := path()
			return wire.MultiOp{Type: wire.OpGetChildren, Path: p, Watch: watch && oneShot(p, 1)}
		}
		switch rng.IntN(4) {
		case 0:
			// Any mode, TTL ones and a bad one too: in a multi the
			// mode says what kind of create it is.
			return wire.MultiOp{Type: wire.OpCreate, Path: path(), Data: data(), ACL: acl(), Flags: mode(),
				TTL: []int64{0, 1000, -1}[rng.IntN(3)]}
		case 1:
			return wire.MultiOp{Type: wire.OpDelete, Path: path(), Version: version()}
		case 2:
			return wire.MultiOp{Type: wire.OpSetData, Path: path(), Data: data(), Version: version()}
		}
		return wire.MultiOp{Type: wire.OpCheck, Path: path(), Version: version()}
	}

	pl.do(0, wire.OpCreate, &wire.CreateRequest{Path: root, ACL: openACL})
	// next is a random request for session who.
	next := func(who int, burst bool) (wire.OpCode, wire.Record) {
		var op wire.OpCode
		var body wire.Record
		switch k := rng.IntN(24); k {
		case 0, 1, 2:
			op, body = wire.OpCreate, &wire.CreateRequest{Path: path(), Data: data(), ACL: acl(), Flags: createMode()}
		case 3:
			op, body = wire.OpCreate2, &wire.CreateRequest{Path: path(), Data: data(), ACL: acl(), Flags: createMode()}
		case 4:
			op, body = wire.OpCreateContainer, &wire.CreateRequest{Path: path(), Data: data(), ACL: acl(), Flags: wire.ModeContainer}
		case 5:
			ttl := []int64{1, 60000, 0, -5}[rng.IntN(4)]
			flags := []wire.CreateMode{wire.ModePersistentWithTTL, wire.ModePersistentSequentialWithTTL, wire.ModePersistent}[rng.IntN(3)]
			if !flags.TTL() && ttl < 0 {
				// ZooKeeper takes this one and fails to apply it,
				// closing the connection; zkd refuses it (BADARGUMENTS).
				ttl = -ttl
			}
			op, body = wire.OpCreateTTL, &wire.CreateTTLRequest{Path: path(), Data: data(), ACL: acl(), Flags: flags, TTL: ttl}
		case 6, 7:
			op, body = wire.OpDelete, &wire.DeleteRequest{Path: path(), Version: version()}
		case 8, 9:
			op, body = wire.OpSetData, &wire.SetDataRequest{Path: path(), Data: data(), Version: version()}
		case 10, 11, 12, 13:
			p := path()
			w := oneShot(p, who)
			switch k {
			case 10:
				op, body = wire.OpGetData, &wire.GetDataRequest{Path: p, Watch: w}
			case 11:
				op, body = wire.OpExists, &wire.ExistsRequest{Path: p, Watch: w}
			case 12:
				op, body = wire.OpGetChildren, &wire.GetChildrenRequest{Path: p, Watch: w}
			default:
				op, body = wire.OpGetChildren2, &wire.GetChildren2Request{Path: p, Watch: w}
			}
		case 14:
			op, body = wire.OpSetACL, &wire.SetACLRequest{Path: path(), ACL: acl(), Version: version()}
			if burst {
				// ZooKeeper checks the requests behind a setACL that
				// is not yet applied against the ACL before it; zkd
				// against the new one (compatibility.md).
				op, body = wire.OpGetACL, &wire.GetACLRequest{Path: path()}
			}
		case 15:
			op, body = wire.OpGetACL, &wire.GetACLRequest{Path: path()}
		case 16, 17:
			ops := make([]wire.MultiOp, 1+rng.IntN(4))
			for j := range ops {
				// Now and then a read among the writes.
				ops[j] = subOp(rng.IntN(12) == 0, false)
				if j > 0 && ops[j].Flags.TTL() && ops[j].Type == wire.OpCreate {
					// Only first: after ops that prep, ZooKeeper keeps
					// their changes for requests prepped while this
					// multi's MARSHALLINGERROR txn is in flight
					// (compatibility.md).
					ops[j].Type = wire.OpCreateTTL
				}
			}
			op, body = wire.OpMulti, &wire.MultiRequest{Ops: ops}
		case 18:
			ops := make([]wire.MultiOp, 1+rng.IntN(3))
			for j := range ops {
				// Now and then writes, which a multiRead refuses.
				ops[j] = subOp(j == 0 && rng.IntN(10) != 0 || j > 0 && ops[0].Type == wire.OpGetData || j > 0 && ops[0].Type == wire.OpGetChildren, who == 1)
			}
			op, body = wire.OpMultiRead, &wire.MultiRequest{Ops: ops}
		case 19:
			if who == 0 {
				// Only B sets watches.
				return wire.OpSetData, &wire.SetDataRequest{Path: path(), Data: data(), Version: -1}
			}
			op, body = wire.OpAddWatch, &wire.AddWatchRequest{Path: persistent[rng.IntN(len(persistent))], Mode: wire.AddWatchMode(rng.IntN(2))}
		case 20:
			op, body = wire.OpRemoveWatches, &wire.RemoveWatchesRequest{Path: path(), Type: watcherType()}
		case 21:
			op, body = wire.OpCheckWatches, &wire.CheckWatchesRequest{Path: path(), Type: watcherType()}
		case 22:
			op, body = []wire.OpCode{wire.OpGetAllChildrenNumber, wire.OpGetEphemerals, wire.OpSync}[rng.IntN(3)], &wire.PathRequest{Path: path()}
		case 23:
			op, body = wire.OpSetData, &wire.SetDataRequest{Path: path(), Data: data(), Version: -1}
		}
		return op, body
	}
	for step := 0; step < steps; step++ {
		who := rng.IntN(2)
		if rng.IntN(5) == 0 && !pl.apart {
			// A burst: requests sent back to back, replies read after.
			reqs := make([]request, 2+rng.IntN(4))
			for i := range reqs {
				reqs[i].op, reqs[i].body = next(who, true)
			}
			created, open := pl.burst(who, reqs)
			if !open {
				break
			}
			for _, c := range created {
				paths = appendNew(paths, c)
			}
			continue
		}
		op, body := next(who, false)
		created, open := pl.do(who, op, body)
		if !open {
			break
		}
		if created != "" {
			paths = appendNew(paths, created)
		}
	}
	return pl.close()
}

// opPlayer plays requests from two sessions on one server and notes what
// each saw, one line per reply or event: A has not authenticated, B has,
// as the digest user u (password pw).
type opPlayer struct {
	t        *testing.T
	sessions []*zkreftest.Client
	names    []string
	out      []string
	seen     []int
	broken   bool  // a connection was closed, or a reply did not come
	apart    bool  // A and B are on different servers of an ensemble
	zxid     int64 // the newest zxid a reply carried
}

// newOpPlayer connects A and B to addr.
func newOpPlayer(t *testing.T, addr string) *opPlayer {
	t.Helper()
	return newOpPlayerOn(t, addr, addr)
}

// newOpPlayerOn connects A to addrA and B to addrB.
func newOpPlayerOn(t *testing.T, addrA, addrB string) *opPlayer {
	t.Helper()
	pl := &opPlayer{t: t, names: []string{"A", "B"}, seen: []int{0, 0}, apart: addrA != addrB,
		sessions: []*zkreftest.Client{zkreftest.Dial(t, addrA, zkreftest.NewSession()), zkreftest.Dial(t, addrB, zkreftest.NewSession())}}
	if h, _ := pl.sessions[1].Call(wire.OpAuth, &wire.AuthPacket{Scheme: "digest", Auth: []byte("u:pw")}); h.Err != wire.ErrOK {
		t.Fatalf("addauth: %v", h.Err)
	}
	return pl
}

// events notes the events session i got since last time.
func (pl *opPlayer) events(i int) {
	for _, ev := range pl.sessions[i].Events[pl.seen[i]:] {
		pl.out = append(pl.out, fmt.Sprintf("  %s event %v %v %s", pl.names[i], ev.Type, ev.State, ev.Path))
	}
	pl.seen[i] = len(pl.sessions[i].Events)
}

// do sends one request from session who (0 is A, 1 is B) and notes its
// reply and events, then pings the other session for the events it got:
// any its next reply would follow. created is the name a create made;
// open is false once a connection is closed.
func (pl *opPlayer) do(who int, op wire.OpCode, body wire.Record) (created string, open bool) {
	line, created, zxid, open := randomOpCall(pl.t, pl.sessions[who], op, body)
	pl.zxid = max(pl.zxid, zxid)
	pl.out = append(pl.out, pl.names[who]+" "+line)
	if !open {
		pl.broken = true
		return "", false
	}
	pl.events(who)
	if !pl.settle(1 - who) {
		return "", false
	}
	return created, true
}

// settle collects the events the other session has been sent, with a
// ping; false when its connection is closed. When the sessions are on
// different servers it pings until the other's server has applied every
// txn the replies so far came from (for up to 10 s): it has sent their
// events before that ping's reply.
func (pl *opPlayer) settle(other int) bool {
	start := time.Now()
	deadline := start.Add(30 * time.Second)
	for {
		zxid, ok := randomOpPing(pl.t, pl.sessions[other])
		if !ok {
			pl.out = append(pl.out, pl.names[other]+" connection closed")
			pl.broken = true
			return false
		}
		if !pl.apart || zxid >= pl.zxid {
			if d := time.Since(start); d > time.Second {
				pl.t.Logf("%s's server took %v to apply %#x", pl.names[other], d, pl.zxid)
			}
			break
		}
		if time.Now().After(deadline) {
			pl.out = append(pl.out, fmt.Sprintf("%s's server still at zxid %#x after 30 s, not %#x", pl.names[other], zxid, pl.zxid))
			pl.broken = true
			return false
		}
		time.Sleep(time.Millisecond)
	}
	pl.events(other)
	return true
}

// request is one request of a burst.
type request struct {
	op   wire.OpCode
	body wire.Record
}

// burst sends reqs from session who back to back, before reading any
// reply, and notes the replies in order, each followed by the events that
// came before it; then the other session's events, as do. It returns the
// names the creates made.
func (pl *opPlayer) burst(who int, reqs []request) (created []string, open bool) {
	c := pl.sessions[who]
	xids := make([]int32, len(reqs))
	for i, r := range reqs {
		xids[i] = randomOpSend(c, r.op, r.body)
	}
	for i, r := range reqs {
		line, name, zxid, open := randomOpReply(pl.t, c, r.op, r.body, xids[i])
		pl.zxid = max(pl.zxid, zxid)
		pl.out = append(pl.out, fmt.Sprintf("%s %d/%d %s", pl.names[who], i+1, len(reqs), line))
		if !open {
			pl.broken = true
			return created, false
		}
		if name != "" {
			created = append(created, name)
		}
		pl.events(who)
	}
	if !pl.settle(1 - who) {
		return created, false
	}
	return created, true
}

// close closes both sessions and returns what was seen, the sessions'
// ids in Stats replaced by their names.
func (pl *opPlayer) close() string {
	owners := map[string]string{}
	for i, c := range pl.sessions {
		owners[strconv.FormatInt(c.Session.SessionID, 10)] = pl.names[i]
	}
	for i, c := range pl.sessions {
		if pl.broken {
			break // the script stopped there
		}
		line, _, _, _ := randomOpCall(pl.t, c, wire.OpCloseSession, nil)
		pl.out = append(pl.out, pl.names[i]+" "+line)
		pl.events(1 - i)
	}
	text := strings.Join(pl.out, "\n")
	for id, name := range owners {
		text = strings.ReplaceAll(text, "EphemeralOwner:"+id, "EphemeralOwner:"+name)
	}
	return text
}

// randomOpCall sends one request and reads its reply, keeping the
// notifications that come first in c.Events. The line shows the request,
// the error code and the body (decoded, its times taken out; raw bytes
// with an error); created is the name a create made; open is false when
// the server closed the connection instead of answering.
func randomOpCall(t *testing.T, c *zkreftest.Client, op wire.OpCode, body wire.Record) (line, created string, zxid int64, open bool) {
	t.Helper()
	return randomOpReply(t, c, op, body, randomOpSend(c, op, body))
}

// randomOpSend sends one request and returns its xid.
func randomOpSend(c *zkreftest.Client, op wire.OpCode, body wire.Record) int32 {
	c.Xid++
	p := (&wire.RequestHeader{Xid: c.Xid, Type: op}).Append(nil)
	if body != nil {
		p = body.Append(p)
	}
	c.Write(p)
	return c.Xid
}

// randomOpReply reads the reply to the request sent with xid, the next
// one on the connection, as randomOpCall does.
func randomOpReply(t *testing.T, c *zkreftest.Client, op wire.OpCode, body wire.Record, xid int32) (line, created string, zxid int64, open bool) {
	t.Helper()
	for {
		reply, err := c.ReadErr()
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return fmt.Sprintf("%v %+v: no reply within 10 s", op, body), "", 0, false
			}
			return fmt.Sprintf("%v %+v: connection closed", op, body), "", 0, false
		}
		rh, n, err := wire.DecodeReplyHeader(reply)
		if err != nil {
			t.Fatal(err)
		}
		if rh.Xid == wire.XidNotification {
			var ev wire.WatcherEvent
			if _, err := ev.Decode(reply[n:], wire.Copy); err != nil {
				t.Fatal(err)
			}
			c.Events = append(c.Events, ev)
			continue
		}
		if rh.Xid != xid {
			t.Fatalf("%v: reply for xid %d, want %d", op, rh.Xid, xid)
		}
		line = fmt.Sprintf("%v %+v: %v %s", op, body, rh.Err, describe(op, rh.Err, reply[n:]))
		if rh.Err == wire.ErrOK {
			switch op {
			case wire.OpCreate, wire.OpCreateContainer:
				var r wire.CreateResponse
				r.Decode(reply[n:], wire.Copy)
				created = r.Path
			case wire.OpCreate2, wire.OpCreateTTL:
				var r wire.Create2Response
				r.Decode(reply[n:], wire.Copy)
				created = r.Path
			}
		}
		return line, created, rh.Zxid, true
	}
}

// randomOpPing pings and reads the reply, keeping the notifications that
// come first, and returns the zxid the reply carries (the newest txn the
// server has applied); ok is false when the connection is closed.
func randomOpPing(t *testing.T, c *zkreftest.Client) (zxid int64, ok bool) {
	t.Helper()
	c.Write((&wire.RequestHeader{Xid: wire.XidPing, Type: wire.OpPing}).Append(nil))
	for {
		reply, err := c.ReadErr()
		if err != nil {
			return 0, false
		}
		rh, n, err := wire.DecodeReplyHeader(reply)
		if err != nil {
			t.Fatal(err)
		}
		if rh.Xid != wire.XidNotification {
			return rh.Zxid, true
		}
		var ev wire.WatcherEvent
		if _, err := ev.Decode(reply[n:], wire.Copy); err != nil {
			t.Fatal(err)
		}
		c.Events = append(c.Events, ev)
	}
}

func appendNew(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}
