package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"zkd/bench"
	"zkd/bench/nullserver"
)

func TestSaturateCommandOnTheNullServer(t *testing.T) {
	srv, err := nullserver.Start("127.0.0.1:0", 1024)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	plot := filepath.Join(t.TempDir(), "sat.svg")
	var out, errb bytes.Buffer
	code := run([]string{"saturate", "--servers", srv.Addr(), "--reads", "0,100", "--duration", "300ms", "--warmup", "100ms",
		"--clients", "2", "--outstanding", "8", "--znodes", "10", "--json", "--plot", plot}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var res []bench.Result
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("%v:\n%s", err, out.String())
	}
	if len(res) != 1 || len(res[0].Phases) != 2 || res[0].Phases[1].Name != "reads=100%" || res[0].Phases[1].OpsPerSec <= 0 {
		t.Fatalf("result %+v", res)
	}
	if !strings.Contains(errb.String(), "reads=") {
		t.Fatalf("no progress line on stderr: %q", errb.String())
	}
}

func TestTableOutputAndBadFlags(t *testing.T) {
	srv, err := nullserver.Start("127.0.0.1:0", 100)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	var out, errb bytes.Buffer
	if code := run([]string{"timed", "--servers", srv.Addr(), "--mode", "sync", "--duration", "200ms", "--warmup", "0s",
		"--clients", "1", "--progress=false"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"timed: servers=" + srv.Addr(), "phase", "ops/s", "p99 ms", "read", "set single", "delete"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("table lacks %q:\n%s", want, out.String())
		}
	}
	for _, args := range [][]string{
		{"saturate", "--reads", "120"},
		{"latency", "--mode", "fast"},
		{"saturate", "--plot", "x.jpg"},
		{"frobnicate"},
		{"sessions", "--config", "noequals"},
		{"fairness", "--pipeline", "many"},
	} {
		errb.Reset()
		if code := run(args, &out, &errb); code != 2 || errb.Len() == 0 {
			t.Errorf("%v: exit %d, said %q", args, code, errb.String())
		}
	}
	out.Reset()
	if run([]string{"help"}, &out, &errb) != 0 || !strings.Contains(out.String(), "saturate") || !strings.Contains(out.String(), "compare") ||
		!strings.Contains(out.String(), "sessions") || !strings.Contains(out.String(), "fairness") {
		t.Fatalf("help: %s", out.String())
	}
	out.Reset()
	if run([]string{"help", "latency"}, &out, &errb) != 0 || !strings.Contains(out.String(), "-mode") {
		t.Fatalf("help latency: %s", out.String())
	}
}

// zkbench check refuses a run it cannot make before it starts anything,
// and says why once: disk faults with no zkd member to make them.
func TestCheckRefusesDiskFaultsWithoutZkd(t *testing.T) {
	var out, errb bytes.Buffer
	code := run([]string{"check", "--impl", "zookeeper", "--nemesis", "disk-error", "--dir", t.TempDir()}, &out, &errb)
	msg := errb.String()
	if code != 1 || !strings.Contains(msg, "zkbench check: the disk faults need zkd's fault hook") || strings.Contains(msg, "check: check:") {
		t.Fatalf("exit %d, said %q", code, msg)
	}
}

// zkbench check refuses a bulk write size or a syncLimit it cannot use,
// naming the flag, before it starts anything.
func TestCheckRefusesBadBulkSizeAndSyncLimit(t *testing.T) {
	for _, c := range []struct{ flag, value, says string }{
		{"--bulk-size", "0", "--bulk-size 0: give 16 bytes to 1 MB"},
		{"--bulk-size", "2000000", "--bulk-size 2000000: give 16 bytes to 1 MB"},
		{"--sync-limit", "0", "--sync-limit 0: give 1 tick or more"},
	} {
		var out, errb bytes.Buffer
		code := run([]string{"check", c.flag, c.value, "--nemesis", "none", "--dir", t.TempDir()}, &out, &errb)
		if code != 2 || !strings.Contains(errb.String(), c.says) {
			t.Errorf("check %s %s: exit %d, said %q", c.flag, c.value, code, errb.String())
		}
	}
}
