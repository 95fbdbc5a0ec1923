package engine

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"zkd/internal/java"
)

// srvr's average latency is formatted as ZooKeeper's: Java's own code
// formats the same totals and counts, and the two must agree.
func TestAverageLatencyFormatIsJavas(t *testing.T) {
	if _, err := exec.LookPath("java"); err != nil {
		if os.Getenv("ZKD_REQUIRE_REFERENCE") != "" {
			t.Fatal("java is not installed; make test installs it")
		}
		t.Skip("SKIPPED: java is not installed; make test installs it")
	}
	pairs := [][2]int64{{0, 1}, {1, 5}, {43, 9}, {1, 3}, {2, 3}, {1, 20000}, {49, 100000}, {5, 1}, {123456785, 10},
		{12345, 100000}, {15, 100000}, {7, 7}, {1000000, 3}, {1, 1000}, {99999, 100000}, {12345678901, 1}}
	var args []string
	for _, p := range pairs {
		args = append(args, strconv.FormatInt(p[0], 10), strconv.FormatInt(p[1], 10))
	}
	out, err := exec.Command("java", append([]string{"testdata/java/AvgLatency.java"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("java: %v\n%s", err, out)
	}
	want := strings.Split(strings.TrimSpace(string(out)), "\n")
	for i, p := range pairs {
		got := java.Double(java.RoundHalfUp4(float64(p[0]) / float64(p[1])))
		if got != want[i] {
			t.Errorf("%d/%d: zkd prints %s, ZooKeeper %s", p[0], p[1], got, want[i])
		}
	}
}
