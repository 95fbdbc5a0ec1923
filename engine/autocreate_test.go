package engine_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"zkd/bench/zkref/zkreftest"
	"zkd/engine/zkdtest"
	"zkd/wire"
)

// zookeeper.db.autocreate=false keeps members whose data is gone from
// outvoting the one that has it. A new ensemble forms once each member's
// log directory has an initialize file (zkServer-initialize.sh's), which
// goes once read. A member whose disk was wiped follows the others and
// gets their data. Two members wiped at once, alone, elect nobody (they
// would elect one of themselves and serve an empty tree otherwise); with
// the member that holds the data back they still wait, until the
// operator's initialize file makes one of the wiped ones trusted; then
// the data is there on all three.
func TestEnsembleEmptyMembersDoNotOutvoteTheData(t *testing.T) {
	e := zkdtest.NewEnsemble(t, 3, map[string]string{"db.autocreate": "false"})
	e.Member = map[int64]map[string]string{}
	logDirs := map[int64]string{}
	for id := int64(1); id <= 3; id++ {
		logDirs[id] = filepath.Join(t.TempDir(), "log")
		if err := os.MkdirAll(logDirs[id], 0o755); err != nil {
			t.Fatal(err)
		}
		initialize(t, logDirs[id])
		e.Member[id] = map[string]string{"dataLogDir": logDirs[id]}
	}
	e.Start(t, 1, 2, 3)
	e.WaitServing(t, 30*time.Second)
	for id, d := range logDirs {
		if _, err := os.Stat(filepath.Join(d, "initialize")); !os.IsNotExist(err) {
			t.Fatalf("server %d's initialize file is still there: %v", id, err)
		}
	}
	c := zkreftest.Dial(t, e.Addr(e.Leader()), zkreftest.NewSession())
	for i := 0; i < 50; i++ {
		c.OK(wire.OpCreate, &wire.CreateRequest{Path: "/kept-" + strconv.Itoa(i), ACL: openACL})
	}
	has := func(id int64, path string) bool {
		r := zkreftest.Dial(t, e.Addr(id), zkreftest.NewSession())
		r.OK(wire.OpSync, &wire.SyncRequest{Path: "/"})
		h, _ := r.Call(wire.OpExists, &wire.ExistsRequest{Path: path})
		return h.Err == wire.ErrOK
	}
	wipe := func(id int64) {
		t.Helper()
		if err := e.Servers[id].Stop(); err != nil {
			t.Fatal(err)
		}
		for _, d := range []string{filepath.Join(e.Servers[id].Dir, "data", "version-2"), filepath.Join(logDirs[id], "version-2")} {
			if err := os.RemoveAll(d); err != nil {
				t.Fatal(err)
			}
		}
	}
	// One member wiped: it follows, and gets the data.
	victim := e.Follower()
	wipe(victim)
	e.Servers[victim].Restart()
	if !has(victim, "/kept-49") {
		t.Fatalf("server %d, wiped and back, lacks the data", victim)
	}
	if !strings.Contains(e.Servers[victim].Log(), "votes zxid -1") {
		t.Fatalf("server %d did not say it votes -1:\n%s", victim, e.Servers[victim].Log())
	}
	// Two members wiped; the third, with the data, stopped. A write
	// taken with server 3 stopped needs server 1's ACK, which it gives
	// once its log holds that write and every one before.
	if err := e.Servers[3].Stop(); err != nil {
		t.Fatal(err)
	}
	writeThrough(t, e.Addr(1), "/kept-last")
	for id := int64(1); id <= 2; id++ {
		if err := e.Servers[id].Stop(); err != nil {
			t.Fatal(err)
		}
	}
	wipe(2)
	wipe(3)
	e.Servers[2].Launch()
	e.Servers[3].Launch()
	quiet := func(what string, ids ...int64) {
		t.Helper()
		for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
			for _, id := range ids {
				if e.Servers[id].Serving() {
					t.Fatalf("%s: server %d serves (%s)", what, id, e.Servers[id].Mode())
				}
			}
		}
	}
	quiet("the two wiped members alone", 2, 3)
	e.Servers[1].Launch()
	quiet("the member with the data back", 1, 2, 3)
	// The operator trusts server 2's empty directory.
	if err := e.Servers[2].Stop(); err != nil {
		t.Fatal(err)
	}
	initialize(t, logDirs[2])
	e.Servers[2].Launch()
	e.WaitServing(t, 60*time.Second)
	for id := int64(1); id <= 3; id++ {
		if !has(id, "/kept-49") || !has(id, "/kept-last") {
			t.Fatalf("server %d lacks the data", id)
		}
	}
	if l := e.Leader(); l != 1 {
		t.Fatalf("server %d leads, want 1, which holds the data", l)
	}
}

func initialize(t *testing.T, logDir string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(logDir, "initialize"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
}
