package engine_test

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"zkd/engine/zkdtest"
)

// These tests drive a real zkd process with go-zookeeper, a client no one
// here wrote, and check what a user of that client sees.

func connect(t testing.TB, addr string) *zk.Conn {
	t.Helper()
	c, events, err := zk.Connect([]string{addr}, 10*time.Second, zk.WithLogger(quietLogger{}))
	if err != nil {
		t.Fatal(err)
	}
	waitConnected(t, events)
	t.Cleanup(c.Close)
	return c
}

func waitConnected(t testing.TB, events <-chan zk.Event) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev := <-events:
			if ev.State == zk.StateHasSession {
				return
			}
		case <-deadline:
			t.Fatal("no session within 10 s")
		}
	}
}

type quietLogger struct{}

func (quietLogger) Printf(string, ...interface{}) {}

// check and check2 fail the test on an error: check(c.Create(…))(t).
func check[T any](v T, err error) func(testing.TB) T {
	return func(t testing.TB) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func check2[A, B any](a A, b B, err error) func(testing.TB) (A, B) {
	return func(t testing.TB) (A, B) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return a, b
	}
}

func TestEveryOperationThroughGoZookeeper(t *testing.T) {
	srv := zkdtest.Start(t, nil)
	c := connect(t, srv.Addr)
	acl := zk.WorldACL(zk.PermAll)

	if p := check(c.Create("/app", []byte("v0"), 0, acl))(t); p != "/app" {
		t.Fatalf("create returned %q", p)
	}
	data, st := check2(c.Get("/app"))(t)
	if string(data) != "v0" || st.Version != 0 || st.DataLength != 2 || st.NumChildren != 0 {
		t.Fatalf("get: %q %+v", data, st)
	}
	st2 := check(c.Set("/app", []byte("v1"), 0))(t)
	if st2.Version != 1 || st2.Mzxid <= st.Mzxid || st2.Czxid != st.Czxid {
		t.Fatalf("set: %+v after %+v", st2, st)
	}
	if _, err := c.Set("/app", []byte("v2"), 0); !errors.Is(err, zk.ErrBadVersion) {
		t.Fatalf("set with a stale version: %v", err)
	}
	// Sequential names come from the parent's cversion, %010d.
	for i := 0; i < 3; i++ {
		p := check(c.Create("/app/item-", nil, zk.FlagSequence, acl))(t)
		if want := fmt.Sprintf("/app/item-%010d", i); p != want {
			t.Fatalf("sequential create %d gave %q, want %q", i, p, want)
		}
	}
	kids, cst := check2(c.Children("/app"))(t)
	sort.Strings(kids)
	if strings.Join(kids, ",") != "item-0000000000,item-0000000001,item-0000000002" || cst.NumChildren != 3 || cst.Cversion != 3 {
		t.Fatalf("children: %v %+v", kids, cst)
	}
	ok, est := check2(c.Exists("/app/item-0000000001"))(t)
	if !ok || est.Version != 0 {
		t.Fatalf("exists: %v %+v", ok, est)
	}
	if ok, _ := check2(c.Exists("/nope"))(t); ok {
		t.Fatal("exists on a missing node said yes")
	}
	if _, _, err := c.Get("/nope"); !errors.Is(err, zk.ErrNoNode) {
		t.Fatalf("get of a missing node: %v", err)
	}
	if _, err := c.Create("/app", nil, 0, acl); !errors.Is(err, zk.ErrNodeExists) {
		t.Fatalf("create of an existing node: %v", err)
	}
	if _, err := c.Create("/missing/child", nil, 0, acl); !errors.Is(err, zk.ErrNoNode) {
		t.Fatalf("create under a missing parent: %v", err)
	}
	if err := c.Delete("/app", -1); !errors.Is(err, zk.ErrNotEmpty) {
		t.Fatalf("delete of a node with children: %v", err)
	}
	if err := c.Delete("/app/item-0000000000", 5); !errors.Is(err, zk.ErrBadVersion) {
		t.Fatalf("delete with a wrong version: %v", err)
	}
	if err := c.Delete("/app/item-0000000000", 0); err != nil {
		t.Fatal(err)
	}
	// Ephemerals cannot have children.
	check(c.Create("/eph", nil, zk.FlagEphemeral, acl))(t)
	if _, err := c.Create("/eph/kid", nil, 0, acl); !errors.Is(err, zk.ErrNoChildrenForEphemerals) {
		t.Fatalf("child of an ephemeral: %v", err)
	}
	_, est = check2(c.Exists("/eph"))(t)
	if est.EphemeralOwner != c.SessionID() {
		t.Fatalf("ephemeralOwner 0x%x, session 0x%x", est.EphemeralOwner, c.SessionID())
	}

	// ACLs: a digest ACL shuts out other sessions until they add auth.
	secret := zk.DigestACL(zk.PermAll, "alice", "pw")
	check(c.Create("/secret", []byte("s"), 0, secret))(t)
	if _, _, err := c.Get("/secret"); !errors.Is(err, zk.ErrNoAuth) {
		t.Fatalf("get without auth: %v", err)
	}
	if err := c.AddAuth("digest", []byte("alice:pw")); err != nil {
		t.Fatal(err)
	}
	if d, _ := check2(c.Get("/secret"))(t); string(d) != "s" {
		t.Fatalf("get with auth: %q", d)
	}
	got, _ := check2(c.GetACL("/secret"))(t)
	if len(got) != 1 || got[0].Scheme != "digest" || got[0].ID != secret[0].ID {
		t.Fatalf("getACL: %+v", got)
	}
	if _, err := c.SetACL("/secret", zk.WorldACL(zk.PermRead), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Set("/secret", nil, -1); !errors.Is(err, zk.ErrNoAuth) {
		t.Fatalf("set on a read-only ACL: %v", err)
	}
	if _, err := c.Create("/bad-acl", nil, 0, []zk.ACL{{Perms: zk.PermAll, Scheme: "nonsense", ID: "x"}}); !errors.Is(err, zk.ErrInvalidACL) {
		t.Fatalf("create with an unknown ACL scheme: %v", err)
	}

	// multi: all or nothing.
	_, err := c.Multi(&zk.CreateRequest{Path: "/m1", Acl: acl}, &zk.CreateRequest{Path: "/app", Acl: acl})
	if !errors.Is(err, zk.ErrNodeExists) {
		t.Fatalf("failing multi: %v", err)
	}
	if ok, _ := check2(c.Exists("/m1"))(t); ok {
		t.Fatal("a failed multi left /m1 behind")
	}
	res, err := c.Multi(&zk.CreateRequest{Path: "/m1", Data: []byte("a"), Acl: acl},
		&zk.SetDataRequest{Path: "/m1", Data: []byte("b"), Version: 0},
		&zk.CheckVersionRequest{Path: "/m1", Version: 1},
		&zk.DeleteRequest{Path: "/app/item-0000000001", Version: -1})
	if err != nil || len(res) != 4 || res[0].String != "/m1" {
		t.Fatalf("multi: %v %+v", err, res)
	}
	if d, _ := check2(c.Get("/m1"))(t); string(d) != "b" {
		t.Fatalf("after multi /m1 = %q", d)
	}
	if p := check(c.Sync("/m1"))(t); p != "/m1" {
		t.Fatalf("sync returned %q", p)
	}
}
