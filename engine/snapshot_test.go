package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"zkd/wire"
)

// snapshotsIn lists the zxids of the snapshots in dataDir/version-2.
func snapshotsIn(t *testing.T, dataDir string) []int64 {
	t.Helper()
	names, err := os.ReadDir(filepath.Join(dataDir, "version-2"))
	if err != nil {
		t.Fatal(err)
	}
	var zxids []int64
	for _, n := range names {
		if hex, ok := strings.CutPrefix(n.Name(), "snapshot."); ok {
			z, err := strconv.ParseInt(hex, 16, 64)
			if err != nil {
				t.Fatalf("snapshot file %s: %v", n.Name(), err)
			}
			zxids = append(zxids, z)
		}
	}
	return zxids
}

// waitSnapshots waits up to 20 s until dataDir holds at least n snapshots
// and returns their zxids.
func waitSnapshots(t *testing.T, dataDir string, n int) []int64 {
	t.Helper()
	var got []int64
	for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if got = snapshotsIn(t, dataDir); len(got) >= n {
			return got
		}
	}
	t.Fatalf("%d snapshots in %s after 20 s, want %d: %x", len(got), dataDir, n, got)
	return nil
}

// The server, which owns the tree, writes the snapshots the log asks for
// at the snapCount points while it runs.
func TestServerSnapshotsAtSnapCount(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.DataDir = dir
	cfg.SnapCount = 100
	s := startServer(t, cfg, Options{})
	c := dialRaw(t, s.Addr().String(), 30000)
	// 600 creates: the log rolls every 50 to 100 txns.
	for i := 0; i < 600; i++ {
		c.roundTrip(t, wire.OpCreate, &wire.CreateRequest{Path: fmt.Sprintf("/n%d", i), Data: []byte("x"), ACL: openACL})
	}
	got := waitSnapshots(t, dir, 4) // snapshot.0 and at least three more
	if z := slices.Max(got); z > s.view.Load().Zxid() {
		t.Fatalf("snapshot at %#x, past the tree's %#x", z, s.view.Load().Zxid())
	}
}

// After a start that replayed txns from the log, the server writes a
// snapshot of where it got to, so the next start need not replay them.
func TestServerSnapshotsAfterReplay(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.DataDir = dir
	s := startServer(t, cfg, Options{})
	c := dialRaw(t, s.Addr().String(), 30000)
	for i := 0; i < 50; i++ {
		c.roundTrip(t, wire.OpCreate, &wire.CreateRequest{Path: fmt.Sprintf("/n%d", i), Data: []byte("x"), ACL: openACL})
	}
	last := s.view.Load().Zxid()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := snapshotsIn(t, dir); !slices.Equal(got, []int64{0}) {
		t.Fatalf("snapshots %x before the restart, want only snapshot.0", got)
	}

	s2 := startServer(t, cfg, Options{})
	if r := s2.store.Load().Recovery(); r.Replayed != int(last) || r.Zxid != last {
		t.Fatalf("recovery %+v, want %d txns replayed up to %#x", r, last, last)
	}
	for end := time.Now().Add(20 * time.Second); !slices.Contains(snapshotsIn(t, dir), last); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("no snapshot at %#x 20 s after a start that replayed to it: %x", last, snapshotsIn(t, dir))
		}
	}
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	s3 := startServer(t, cfg, Options{})
	if r := s3.store.Load().Recovery(); r.Replayed != 0 || r.Zxid != last || r.Snapshot != fmt.Sprintf("snapshot.%x", last) {
		t.Fatalf("third start: recovery %+v, want snapshot.%x and nothing replayed", r, last)
	}
	if n := s3.view.Load().NodeCount(); n < 50 {
		t.Fatalf("the recovered tree has %d znodes, want 50 and more", n)
	}
}
