package fdinfo

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// Flags finds the descriptors of one file, with the flags each was opened
// with, and only those.
func TestFlagsOfAFileOpenTwice(t *testing.T) {
	name := filepath.Join(t.TempDir(), "f")
	w, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	r, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	other, err := os.CreateTemp(t.TempDir(), "other")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()

	got, err := Flags(func(path string) bool { return path == name })
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("found %d descriptors of %s, want 2", len(got), name)
	}
	const mode = syscall.O_ACCMODE
	if got[0]&mode != syscall.O_RDWR || got[0]&syscall.O_APPEND == 0 {
		t.Errorf("the first descriptor's flags are %#o, want read-write and append", got[0])
	}
	if got[1]&mode != syscall.O_RDONLY || got[1]&syscall.O_APPEND != 0 {
		t.Errorf("the second descriptor's flags are %#o, want read-only without append", got[1])
	}
}

func TestParseFlagsWithoutAFlagsLine(t *testing.T) {
	if _, err := parseFlags("pos:\t0\nmnt_id:\t21\n"); err == nil {
		t.Error("an fdinfo without a flags line parsed")
	}
	if f, err := parseFlags("pos:\t0\nflags:\t02140002\n"); err != nil || f != 0o2140002 {
		t.Errorf("parseFlags = %#o, %v; want 02140002", f, err)
	}
}
