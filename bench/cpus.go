package bench

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Keeping the server and the load generator on CPUs of their own. On a
// small machine the two otherwise take turns on the same cores, and a
// server's latency tail is then mostly the scheduler's: how long the
// kernel leaves its thread waiting while the load generator runs.

// ParseCPUs reads a CPU list as taskset takes it: "1", "0,2", "0-3,6".
// An empty list is no restriction.
func ParseCPUs(s string) ([]int, error) {
	var cpus []int
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		b := a
		if err == nil && isRange {
			b, err = strconv.Atoi(hi)
		}
		if err != nil || a < 0 || b < a || b >= maxCPUs {
			return nil, fmt.Errorf("CPU list %q: %q is not a CPU number or a range like 0-3", s, part)
		}
		for c := a; c <= b; c++ {
			cpus = append(cpus, c)
		}
	}
	return cpus, nil
}

// maxCPUs is how many CPUs a unix.CPUSet can name.
const maxCPUs = len(unix.CPUSet{}) * 64

func cpuSet(cpus []int) (set unix.CPUSet) {
	for _, c := range cpus {
		set.Set(c)
	}
	return set
}

// withCPUs runs start, which starts a process, on a thread restricted to
// cpus: the new process inherits the restriction from the thread that
// forks it, from its first instruction (so a JVM or a Go runtime sizes
// itself for those CPUs).
func withCPUs(cpus []int, start func() error) error {
	if len(cpus) == 0 {
		return start()
	}
	runtime.LockOSThread()
	var old unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("bench: reading this thread's CPUs: %w", err)
	}
	set := cpuSet(cpus)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("bench: keeping the server on CPUs %v: %w", cpus, err)
	}
	err := start()
	if unix.SchedSetaffinity(0, &old) == nil {
		// Otherwise the thread stays locked, and goes when this
		// goroutine ends, rather than run others on the wrong CPUs.
		runtime.UnlockOSThread()
	}
	return err
}

// PinSelf keeps every thread of this process on cpus. Threads started
// later inherit it from the thread that starts them; a second sweep
// catches those started during the first.
func PinSelf(cpus []int) error {
	if len(cpus) == 0 {
		return nil
	}
	set := cpuSet(cpus)
	for sweep := 0; sweep < 2; sweep++ {
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return fmt.Errorf("bench: listing this process's threads: %w", err)
		}
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil {
				continue
			}
			if err := unix.SchedSetaffinity(tid, &set); err != nil && err != unix.ESRCH {
				return fmt.Errorf("bench: keeping the load generator on CPUs %v: %w", cpus, err)
			}
		}
	}
	return nil
}
