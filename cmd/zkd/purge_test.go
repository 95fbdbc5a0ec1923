package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPurgeCommand(t *testing.T) {
	dir := t.TempDir()
	v2 := filepath.Join(dir, "version-2")
	os.MkdirAll(v2, 0o755)
	// Five intact plain snapshots and the logs around them.
	seal := []byte{0, 0, 0, 1, '/'}
	for _, z := range []string{"0", "10", "20", "30", "40"} {
		os.WriteFile(filepath.Join(v2, "snapshot."+z), append(make([]byte, 20), seal...), 0o644)
	}
	for _, z := range []string{"1", "11", "21", "31", "41"} {
		os.WriteFile(filepath.Join(v2, "log."+z), []byte("ZKLG"), 0o644)
	}
	var out, errb bytes.Buffer
	if code := purge([]string{"-n", "3", dir}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	left, _ := os.ReadDir(v2)
	var names []string
	for _, e := range left {
		names = append(names, e.Name())
	}
	// Oldest kept snapshot 0x20: log.11 (starts before it) holds its next
	// txns and stays; log.1, snapshot.0 and snapshot.10 go.
	if got := strings.Join(names, " "); got != "log.11 log.21 log.31 log.41 snapshot.20 snapshot.30 snapshot.40" {
		t.Fatalf("left %s; said %s", got, out.String())
	}
	if !strings.Contains(out.String(), "3 files removed") {
		t.Fatalf("said %q", out.String())
	}
	if code := purge([]string{"-n", "2", dir}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "at least 3") {
		t.Fatalf("-n 2: exit %d, %s", code, errb.String())
	}
	if code := purge([]string{filepath.Join(dir, "nope")}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "not a directory") {
		t.Fatalf("missing dir: exit %d, %s", code, errb.String())
	}
}
