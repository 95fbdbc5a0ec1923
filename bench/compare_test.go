package bench

import (
	"bytes"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"zkd/bench/zkref"
	"zkd/bench/zkref/zkreftest"
)

func TestCompareAlternatesAndMeasures(t *testing.T) {
	zkreftest.Start(t, zkref.Options{}) // skips or fails loudly without ZooKeeper
	cc := CompareConfig{
		Bench: Config{Clients: 2, Outstanding: 4, DataSize: 100, Znodes: 20, Duration: 400 * time.Millisecond,
			Warmup: 100 * time.Millisecond, Seed: 1},
		Workload: "saturate", Reads: []int{100}, Kinds: []string{KindZooKeeper, KindNull}, Rounds: 2, RestartZnodes: 300,
	}
	var log bytes.Buffer
	cc.Log = &log
	// 8 MB written and not synced: the first turn must start without it.
	if err := os.WriteFile(filepath.Join(t.TempDir(), "dirty"), bytes.Repeat([]byte{1}, 8<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := Compare(cc)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if len(res.Rounds) != 2 {
		t.Fatalf("%d rounds", len(res.Rounds))
	}
	for i, row := range res.Rounds {
		if len(row) != 2 || row[0].Server != KindZooKeeper || row[1].Server != KindNull {
			t.Fatalf("round %d ran %v", i, row)
		}
		for _, r := range row {
			if r.Phases[0].Ops == 0 {
				t.Fatalf("round %d %s: no ops", i, r.Server)
			}
		}
	}
	// Every turn starts after a flush of the page cache, the first one
	// with at least the 8 MB above in it.
	var turns []string
	flushed, left := -1.0, -1.0
	lines := strings.Split(log.String(), "\n")
	for i, l := range lines {
		if !strings.HasPrefix(l, "round ") {
			continue
		}
		turns = append(turns, l)
		var before, after float64
		if i == 0 || !strings.HasPrefix(lines[i-1], "flushed ") {
			t.Fatalf("turn %q not preceded by a flush:\n%s", l, log.String())
		}
		if _, err := fmt.Sscanf(lines[i-1], "flushed dirty pages: %f MB before, %f MB after", &before, &after); err != nil {
			t.Fatalf("%q: %v", lines[i-1], err)
		}
		if flushed < 0 {
			flushed, left = before, after
		}
	}
	if flushed < 8 || left >= 8 {
		t.Fatalf("the first flush went from %.1f to %.1f MB, want the 8 MB left dirty gone:\n%s", flushed, left, log.String())
	}
	if got := strings.Join(turns, "\n"); got != "round 1/2: saturate on zookeeper\nround 1/2: saturate on null\nround 2/2: saturate on zookeeper\nround 2/2: saturate on null" {
		t.Fatalf("not alternating:\n%s", log.String())
	}
	if res.PeakRSS[KindZooKeeper] < 10<<20 {
		t.Fatalf("ZooKeeper's peak RSS %d bytes", res.PeakRSS[KindZooKeeper])
	}
	if r := res.Restart[KindZooKeeper]; r.Znodes != 300 || r.Seconds <= 0 {
		t.Fatalf("restart %+v", r)
	}
	var out bytes.Buffer
	WriteComparison(&out, res)
	for _, want := range []string{"zookeeper/null", "saturate reads=100% ops/s", "saturate reads=100% p99 ms", "peak RSS MB", "restart to serving s (300 znodes)"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("comparison lacks %q:\n%s", want, out.String())
		}
	}
}

func TestPlotDrawsPNGAndSVG(t *testing.T) {
	h := new(Histogram)
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	mk := func(server string, scale float64) *Result {
		r := &Result{Workload: "saturate", Server: server}
		for _, pct := range []int{0, 50, 100} {
			r.Phases = append(r.Phases, Phase{Name: "reads=" + strconv.Itoa(pct) + "%", OpsPerSec: scale * float64(1000+pct*10),
				Latency: map[string]LatencyStats{"all": summarize(h)}})
		}
		return r
	}
	dir := t.TempDir()
	for _, name := range []string{"p.png", "p.svg"} {
		f := filepath.Join(dir, name)
		if err := Plot(f, []*Result{mk("a", 1), mk("b", 3)}); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(f)
		if err != nil || len(b) < 1000 {
			t.Fatalf("%s: %d bytes, %v", name, len(b), err)
		}
		if strings.HasSuffix(name, ".png") {
			img, err := png.Decode(bytes.NewReader(b))
			if err != nil || img.Bounds().Dx() < 2*img.Bounds().Dy() {
				t.Fatalf("png: %v, bounds %v (want two panels side by side)", err, img.Bounds())
			}
		} else if !bytes.Contains(b, []byte("<svg")) || !bytes.Contains(b, []byte("Throughput vs. read percentage")) {
			t.Fatal("svg lacks the throughput panel")
		}
	}
	if err := Plot(filepath.Join(dir, "p.gif"), []*Result{mk("a", 1)}); err == nil {
		t.Fatal("a .gif plot was accepted")
	}
}

func TestHistogramQuantiles(t *testing.T) {
	h := new(Histogram)
	for i := 1; i <= 100000; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 50 * time.Millisecond}, {0.9, 90 * time.Millisecond}, {0.99, 99 * time.Millisecond}} {
		got := h.Quantile(c.q)
		if d := float64(got-c.want) / float64(c.want); d > 0.035 || d < -0.035 {
			t.Errorf("q%.2f = %v, want %v within 3.5%%", c.q, got, c.want)
		}
	}
	if h.Max() != 100*time.Millisecond || h.Count() != 100000 || h.Quantile(1) != h.Max() {
		t.Fatalf("max %v count %d", h.Max(), h.Count())
	}
}

// A zkd binary that fails at start-up is reported with what it said.
func TestStartServerReportsAServerThatDies(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "fake-zkd")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\necho \"cannot read $1: boom\" >&2\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := StartServer(KindZkd, filepath.Join(dir, "srv"), bin, map[string]string{"maxClientCnxns": "10"}, nil)
	if err == nil || !strings.Contains(err.Error(), "exited during start-up") || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("got %v", err)
	}
	cfg, _ := os.ReadFile(filepath.Join(dir, "srv", "zoo.cfg"))
	if !strings.Contains(string(cfg), "maxClientCnxns=10") || !strings.Contains(string(cfg), "clientPort=") {
		t.Fatalf("zoo.cfg written for zkd:\n%s", cfg)
	}
	if _, err := StartServer("etcd", dir, "", nil, nil); err == nil {
		t.Fatal("an unknown server kind was accepted")
	}
}

// --server-cpus: the server starts on the CPUs asked for, and zkbench's
// own threads keep theirs.
func TestStartServerOnChosenCPUs(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "fake-zkd")
	seen := filepath.Join(dir, "cpus")
	script := "#!/bin/sh\ngrep Cpus_allowed_list /proc/self/status > " + seen + "\necho stopping >&2\nexit 3\n"
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	threadCPUs := func() map[string]bool {
		out := map[string]bool{}
		tasks, _ := filepath.Glob("/proc/self/task/*/status")
		for _, f := range tasks {
			b, err := os.ReadFile(f)
			if err != nil {
				continue // a thread that ended
			}
			for _, l := range strings.Split(string(b), "\n") {
				if v, ok := strings.CutPrefix(l, "Cpus_allowed_list:"); ok {
					out[strings.TrimSpace(v)] = true
				}
			}
		}
		return out
	}
	before := threadCPUs()
	cpus, err := ParseCPUs("0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := StartServer(KindZkd, filepath.Join(dir, "srv"), bin, nil, cpus); err == nil || !strings.Contains(err.Error(), "stopping") {
		t.Fatalf("got %v", err)
	}
	got, err := os.ReadFile(seen)
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(strings.TrimPrefix(string(got), "Cpus_allowed_list:")) != "0" {
		t.Fatalf("the server ran on %q, not on CPU 0", got)
	}
	if after := threadCPUs(); len(after) != 1 || len(before) != 1 || fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("zkbench's threads ran on %v before and on %v after", before, after)
	}
}

func TestParseCPUs(t *testing.T) {
	for in, want := range map[string]string{"": "[]", "1": "[1]", "0,2": "[0 2]", "0-3, 6": "[0 1 2 3 6]"} {
		got, err := ParseCPUs(in)
		if err != nil || fmt.Sprint(got) != want {
			t.Errorf("ParseCPUs(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"x", "3-1", "-1", "1-", "5000"} {
		if _, err := ParseCPUs(in); err == nil {
			t.Errorf("ParseCPUs(%q) took it", in)
		}
	}
}
