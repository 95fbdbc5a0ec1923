package zkref

import (
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
)

// Reserved ports are below the kernel's range for outgoing connections,
// never given twice, and locked for this process: another process (a
// fresh lock here stands for one) cannot take them.
func TestReservedPortsAreOurs(t *testing.T) {
	seen := map[int]bool{}
	for i := 0; i < 100; i++ {
		base, err := ReservePorts(3, 2)
		if err != nil {
			t.Fatal(err)
		}
		for p := base; p < base+3; p++ {
			if p < reservedLow || p >= reservedHigh || seen[p] {
				t.Fatalf("port %d: out of range or given twice", p)
			}
			seen[p] = true
			f, err := os.OpenFile(filepath.Join(os.TempDir(), "zkd-test-ports", strconv.Itoa(p)), os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err == nil {
				t.Fatalf("port %d's lock was free", p)
			}
			f.Close()
		}
	}
}
