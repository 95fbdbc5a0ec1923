package zkref

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
)

// Ports for servers under test. The tests of several packages run at
// once, each starting servers on ports it picked; a port the kernel hands
// out for a moment (listening on port 0) can be handed to another
// process next, which then starts a server of another ensemble on it:
// its members connect to the wrong one. So ports are picked below the
// kernel's range for outgoing connections (32768 and up on Linux), at
// random, and each is reserved for as long as the process that got it
// runs, by an exclusive lock on a file named after it in a directory
// every process shares; the kernel drops the lock when the process ends.

const (
	reservedLow  = 15000
	reservedHigh = 32000 // below ip_local_port_range
)

var held struct {
	sync.Mutex
	files []*os.File
}

// ReservePorts reserves count consecutive ports, free on loopback
// addresses 127.0.0.1 to 127.0.0.hosts, for the rest of this process's
// life, and returns the first.
func ReservePorts(count, hosts int) (int, error) {
	dir := filepath.Join(os.TempDir(), "zkd-test-ports")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return 0, err
	}
	for try := 0; try < 2000; try++ {
		base := reservedLow + rand.IntN(reservedHigh-reservedLow-count)
		var locks []*os.File
		ok := true
		for p := base; p < base+count && ok; p++ {
			f, err := lockPort(dir, p)
			if err != nil {
				return 0, err
			}
			if f == nil || !free(p, hosts) {
				ok = false
				if f != nil {
					f.Close()
				}
				break
			}
			locks = append(locks, f)
		}
		if !ok {
			for _, f := range locks {
				f.Close()
			}
			continue
		}
		held.Lock()
		held.files = append(held.files, locks...)
		held.Unlock()
		return base, nil
	}
	return 0, fmt.Errorf("zkref: no %d free ports in a row between %d and %d", count, reservedLow, reservedHigh)
}

// lockPort takes the lock of port p, or returns nil when another process
// holds it (or this one does).
func lockPort(dir string, p int) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(p)), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, nil
	}
	return f, nil
}

// free reports whether port p can be listened on at 127.0.0.1 to
// 127.0.0.hosts now.
func free(p, hosts int) bool {
	for h := 1; h <= hosts; h++ {
		l, err := net.Listen("tcp", net.JoinHostPort(fmt.Sprintf("127.0.0.%d", h), strconv.Itoa(p)))
		if err != nil {
			return false
		}
		l.Close()
	}
	return true
}
