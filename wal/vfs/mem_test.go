package vfs_test

import (
	"bytes"
	"math/rand"
	"testing"

	"zkd/wal/vfs"
)

func read(t *testing.T, fs vfs.FS, name string) []byte {
	t.Helper()
	b, err := vfs.ReadFile(fs, name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMemCrashKeepsOnlyWhatWasMadeDurable(t *testing.T) {
	fs := vfs.NewMem()
	fs.MkdirAll("/d")
	f, _ := fs.Create("/d/a")
	f.WriteAt([]byte("hello"), 0)
	f.Sync()
	// Synced data, but the name was never made durable: gone.
	if _, err := fs.Crash(nil).Open("/d/a"); err == nil {
		t.Fatal("a file whose directory was never synced survived the crash")
	}
	fs.SyncDir("/d")
	f.WriteAt([]byte(" world"), 5)
	c := fs.Crash(nil)
	if got := read(t, c, "/d/a"); string(got) != "hello" {
		t.Fatalf("after the crash the file holds %q, want only the synced %q", got, "hello")
	}
	// With r, a prefix of the unsynced writes survives, the last one torn.
	seen := map[string]bool{}
	for seed := int64(0); seed < 200; seed++ {
		seen[string(read(t, fs.Crash(rand.New(rand.NewSource(seed))), "/d/a"))] = true
	}
	for s := range seen {
		if !bytes.HasPrefix([]byte("hello world"), []byte(s)) || len(s) < 5 {
			t.Fatalf("crash left %q, not a prefix of the writes", s)
		}
	}
	if len(seen) < 5 {
		t.Fatalf("only %d different tears in 200 crashes", len(seen))
	}
	// Removal and rename count only once the directory is synced.
	fs.Rename("/d/a", "/d/b")
	if _, err := fs.Crash(nil).Open("/d/a"); err != nil {
		t.Fatal("an unsynced rename took effect in the crash")
	}
	fs.SyncDir("/d")
	if _, err := fs.Crash(nil).Open("/d/b"); err != nil {
		t.Fatal("a synced rename was lost")
	}
}

func TestMemInjectedFaults(t *testing.T) {
	fs := vfs.NewMem()
	fs.MkdirAll("/d")
	f, _ := fs.Create("/d/a")
	boom := bytes.ErrTooLarge
	fs.Inject(func(op, name string) error {
		if op == "sync" {
			return boom
		}
		return nil
	})
	if _, err := f.WriteAt([]byte("x"), 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != boom {
		t.Fatalf("sync: %v", err)
	}
	fs.Inject(nil)
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
}
