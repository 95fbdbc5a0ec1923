// Package fdinfo reads how this process has its files open, from
// /proc/self (Linux): for tests that check the flags a file was opened
// with, such as O_DIRECT on the txn log.
package fdinfo

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
)

// Flags returns the status flags of each of this process's file
// descriptors whose path keep accepts, in descriptor order.
func Flags(keep func(path string) bool) ([]int, error) {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil, err
	}
	var fds []int
	for _, e := range entries {
		if fd, err := strconv.Atoi(e.Name()); err == nil {
			fds = append(fds, fd)
		}
	}
	slices.Sort(fds)
	var out []int
	for _, fd := range fds {
		target, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
		if err != nil || !keep(target) {
			continue // closed meanwhile, or another file
		}
		info, err := os.ReadFile(fmt.Sprintf("/proc/self/fdinfo/%d", fd))
		if err != nil {
			return nil, err
		}
		flags, err := parseFlags(string(info))
		if err != nil {
			return nil, fmt.Errorf("/proc/self/fdinfo/%d: %w", fd, err)
		}
		out = append(out, flags)
	}
	return out, nil
}

// parseFlags reads the octal "flags:" line of an fdinfo file.
func parseFlags(info string) (int, error) {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(line, "flags:"); ok {
			flags, err := strconv.ParseInt(strings.TrimSpace(v), 8, 64)
			return int(flags), err
		}
	}
	return 0, fmt.Errorf("no flags line")
}
