package wal

import (
	"errors"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"zkd/bench/zkref/zkreftest"
	"zkd/wal/vfs"
)

func TestEpochFilesAsZooKeeperKeepsThem(t *testing.T) {
	dir := t.TempDir()
	fsys := vfs.OS
	// A data directory without epoch files (a standalone server's) gets
	// them, from the epoch of its newest txn.
	e, err := LoadEpochs(fsys, dir, 0x300000007)
	if err != nil || e != (Epochs{Current: 3, Accepted: 3}) {
		t.Fatalf("%+v %v", e, err)
	}
	if err := WriteEpoch(fsys, dir, AcceptedEpochFile, 4); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "version-2", "acceptedEpoch"))
	if err != nil || string(b) != "4" {
		t.Fatalf("acceptedEpoch holds %q (%v); ZooKeeper writes the bare decimal", b, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "version-2", "acceptedEpoch.tmp")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the temporary file stayed: %v", err)
	}
	if e, err := LoadEpochs(fsys, dir, 0x300000007); err != nil || e != (Epochs{Current: 3, Accepted: 4}) {
		t.Fatalf("%+v %v", e, err)
	}
}

func TestEpochFilesThatContradictStopTheServer(t *testing.T) {
	write := func(t *testing.T, dir, name, text string) {
		t.Helper()
		os.MkdirAll(filepath.Join(dir, "version-2"), 0o755)
		if err := os.WriteFile(filepath.Join(dir, "version-2", name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		name    string
		files   map[string]string
		zxid    int64
		want    Epochs
		problem string // in the error, naming the file
	}{
		{"current behind the log", map[string]string{"currentEpoch": "2", "acceptedEpoch": "2"}, 0x300000001, Epochs{}, "currentEpoch"},
		{"current behind the log, the crashed write's tmp makes up", map[string]string{"currentEpoch": "2", "currentEpoch.tmp": "3", "acceptedEpoch": "3"}, 0x300000001, Epochs{3, 3}, ""},
		{"a tmp still behind the log", map[string]string{"currentEpoch": "2", "currentEpoch.tmp": "2", "acceptedEpoch": "3"}, 0x300000001, Epochs{}, "currentEpoch"},
		{"accepted behind current", map[string]string{"currentEpoch": "5", "acceptedEpoch": "4"}, 0x500000001, Epochs{}, "acceptedEpoch"},
		{"not a number", map[string]string{"currentEpoch": "five"}, 0, Epochs{}, "currentEpoch"},
		{"negative", map[string]string{"currentEpoch": "-1"}, 0, Epochs{}, "currentEpoch"},
		{"a trailing newline, as a hand edit leaves", map[string]string{"currentEpoch": "6\n", "acceptedEpoch": "7\n"}, 0x600000000, Epochs{6, 7}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, text := range c.files {
				write(t, dir, name, text)
			}
			e, err := LoadEpochs(vfs.OS, dir, c.zxid)
			if c.problem == "" {
				if err != nil || e != c.want {
					t.Fatalf("%+v %v; want %+v", e, err, c.want)
				}
				return
			}
			var ee *EpochError
			if !errors.As(err, &ee) || !strings.HasSuffix(ee.File, c.problem) {
				t.Fatalf("got %+v, %v; want an EpochError naming %s", e, err, c.problem)
			}
		})
	}
}

// A crash while an epoch is replaced leaves the old value or the new one,
// and a write that cannot be made durable fails: never a missing or torn
// file read back as something else.
func TestEpochWritesSurviveCrashes(t *testing.T) {
	for seed := int64(0); seed < 200; seed++ {
		m := vfs.NewMem()
		if err := WriteEpoch(m, "/d", CurrentEpochFile, 7); err != nil {
			t.Fatal(err)
		}
		if err := WriteEpoch(m, "/d", AcceptedEpochFile, 7); err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewSource(seed))
		// The power fails at a random step of replacing acceptedEpoch.
		ops := 0
		cut := rng.Intn(6)
		m.Inject(func(op, name string) error {
			if ops++; ops > cut {
				return errors.New("power cut")
			}
			return nil
		})
		err := WriteEpoch(m, "/d", AcceptedEpochFile, 8)
		m.Inject(nil)
		after := m.Crash(rng)
		e, lerr := LoadEpochs(after, "/d", 0x700000001)
		if lerr != nil {
			t.Fatalf("seed %d: after a crash: %v", seed, lerr)
		}
		switch {
		case err == nil && e.Accepted != 8:
			t.Fatalf("seed %d: the write returned success, and %d came back", seed, e.Accepted)
		case e.Accepted != 7 && e.Accepted != 8:
			t.Fatalf("seed %d: acceptedEpoch came back as %d", seed, e.Accepted)
		}
	}
}

// An I/O error reading an epoch file is reported as one, never taken for
// a missing file (which would be rewritten with the log's epoch).
func TestEpochReadErrorIsNotMissing(t *testing.T) {
	m := vfs.NewMem()
	if err := WriteEpoch(m, "/d", CurrentEpochFile, 9); err != nil {
		t.Fatal(err)
	}
	m.Inject(func(op, name string) error {
		if op == "openread" && strings.HasSuffix(name, CurrentEpochFile) {
			return errors.New("input/output error")
		}
		return nil
	})
	_, err := LoadEpochs(m, "/d", 0x100000000)
	if err == nil || !strings.Contains(err.Error(), "input/output error") || !strings.Contains(err.Error(), "currentEpoch") {
		t.Fatalf("got %v", err)
	}
}

// The files a two-server Apache ZooKeeper 3.8 ensemble writes when it
// establishes its first epoch read back as that epoch.
func TestEpochFilesOfAZooKeeperEnsemble(t *testing.T) {
	servers := zkreftest.NewEnsemble(t).Start(t, 1, 2)
	zkreftest.Leader(t, servers)
	var dirs []string
	for _, s := range servers {
		dirs = append(dirs, filepath.Join(s.Dir, "data"))
	}
	for _, s := range servers {
		s.Stop()
	}
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, "version-2", CurrentEpochFile))
		if err != nil || string(b) != "1" {
			t.Fatalf("%s: currentEpoch holds %q (%v)", dir, b, err)
		}
		got, err := LoadEpochs(vfs.OS, dir, 0x100000000)
		if err != nil || got != (Epochs{Current: 1, Accepted: 1}) {
			t.Fatalf("%s: %+v %v", dir, got, err)
		}
	}
}
