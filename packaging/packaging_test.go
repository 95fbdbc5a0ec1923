// Package packaging holds the container and service files (Dockerfile at
// the repository's root, docker-compose.yml, the entry point, the systemd
// unit) and the tests that check them.
package packaging

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"go.yaml.in/yaml/v3"

	"zkd/bench/zkref"
	"zkd/engine/zkdtest"
)

type silent struct{}

func (silent) Printf(string, ...any) {}

type compose struct {
	Services map[string]struct {
		Build       any               `yaml:"build"`
		Image       string            `yaml:"image"`
		Hostname    string            `yaml:"hostname"`
		Ports       []string          `yaml:"ports"`
		Environment map[string]string `yaml:"environment"`
		Volumes     []string          `yaml:"volumes"`
		Restart     string            `yaml:"restart"`
		DependsOn   []string          `yaml:"depends_on"`
	} `yaml:"services"`
	Volumes map[string]any `yaml:"volumes"`
}

// The compose file describes a 3-server ensemble the way the official
// ZooKeeper image's users write it, and it works: each service's
// environment, fed to the image's entry point with the hosts moved to
// loopback, starts a zkd server, and the three elect a leader and replicate
// a write. Every volume the services name is declared.
func TestComposeEnsembleRuns(t *testing.T) {
	raw, err := os.ReadFile("../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var c compose
	dec := yaml.NewDecoder(strings.NewReader(string(raw)))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	if len(c.Services) != 3 {
		t.Fatalf("docker-compose.yml has %d services, want 3", len(c.Services))
	}
	var ports [3]int
	for i := range ports {
		if ports[i], err = zkref.FreePort(); err != nil {
			t.Fatal(err)
		}
	}
	entry, err := filepath.Abs("docker-entrypoint.sh")
	if err != nil {
		t.Fatal(err)
	}
	servers := map[string]*zkdtest.Server{}
	var addrs []string
	for name, svc := range c.Services {
		for _, v := range svc.Volumes {
			if vol, _, _ := strings.Cut(v, ":"); c.Volumes == nil || !hasKey(c.Volumes, vol) {
				t.Errorf("service %s mounts volume %q, which the file does not declare", name, vol)
			}
		}
		id := svc.Environment["ZOO_MY_ID"]
		if id == "" || svc.Hostname != "zk"+id {
			t.Fatalf("service %s: ZOO_MY_ID %q, hostname %q", name, id, svc.Hostname)
		}
		// Each container has an address of its own: here zkN is
		// 127.0.0.N, which also binds the client port the line gives
		// (all addresses, in a container), and the ports are free ones.
		servers1 := svc.Environment["ZOO_SERVERS"]
		var pairs []string
		for n := 1; n <= 3; n++ {
			pairs = append(pairs, fmt.Sprintf("zk%d:2888:3888;2181", n),
				fmt.Sprintf("127.0.0.%d:%d:%d;127.0.0.%d:%d", n, ports[0], ports[1], n, ports[2]))
		}
		r := strings.NewReplacer(pairs...)
		if r.Replace(servers1) == servers1 {
			t.Fatalf("service %s: ZOO_SERVERS %q is not in the zkN:2888:3888;2181 form", name, servers1)
		}
		dir := t.TempDir()
		addr := fmt.Sprintf("127.0.0.%s:%d", id, ports[2])
		s := zkdtest.OnDir(t, dir, addr)
		s.Prefix = []string{"sh", entry}
		s.Env = []string{"ZOO_CONF_DIR=" + dir, "ZOO_DATA_DIR=" + filepath.Join(dir, "data"),
			"ZOO_DATA_LOG_DIR=" + filepath.Join(dir, "datalog"), "ZOO_MY_ID=" + id,
			"ZOO_SERVERS=" + r.Replace(servers1), "ZOO_4LW_COMMANDS_WHITELIST=" + svc.Environment["ZOO_4LW_COMMANDS_WHITELIST"],
			"ZOO_ADMINSERVER_ENABLED=false"}
		servers[id] = s
		addrs = append(addrs, addr)
	}
	for _, s := range servers {
		s.Launch()
	}
	modes := map[string]int{}
	deadline := time.Now().Add(60 * time.Second)
	for id, s := range servers {
		for s.Mode() == "" {
			if time.Now().After(deadline) {
				t.Fatalf("server %s does not serve 60 s on:\n%s", id, s.Log())
			}
			time.Sleep(50 * time.Millisecond)
		}
		modes[s.Mode()]++
		cfg, _ := os.ReadFile(filepath.Join(s.Dir, "zoo.cfg"))
		if !strings.Contains(string(cfg), "server.3=127.0.0.3:") || !strings.Contains(string(cfg), "dataLogDir=") {
			t.Fatalf("the entry point wrote:\n%s", cfg)
		}
	}
	if modes["leader"] != 1 || modes["follower"] != 2 {
		t.Fatalf("modes %v, want one leader and two followers", modes)
	}
	conn, _, err := zk.Connect(addrs[:1], 10*time.Second, zk.WithLogger(silent{}))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Create("/composed", []byte("yes"), 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	other, _, err := zk.Connect(addrs[2:], 10*time.Second, zk.WithLogger(silent{}))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.Sync("/composed"); err != nil {
		t.Fatal(err)
	}
	if data, _, err := other.Get("/composed"); err != nil || string(data) != "yes" {
		t.Fatalf("the write read through another server: %q %v", data, err)
	}
}

func hasKey(m map[string]any, k string) bool { _, ok := m[k]; return ok }

// The image builds where a container engine runs; here the test says it
// could not try, loudly, rather than pass.
func TestDockerfileBuilds(t *testing.T) {
	if err := exec.Command("docker", "info").Run(); err != nil {
		t.Skipf("SKIPPED: no container engine answers (docker info: %v); the Dockerfile was not built", err)
	}
	out, err := exec.Command("docker", "build", "-t", "zkd:test", "..").CombinedOutput()
	if err != nil {
		t.Fatalf("docker build: %v\n%s", err, out)
	}
}

// The systemd unit is one systemd takes without a complaint, its
// ExecStart pointed at a built zkd.
func TestSystemdUnitVerifies(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skipf("SKIPPED: systemd-analyze is not installed; the unit was not checked")
	}
	unit, err := os.ReadFile("zkd.service")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(unit), "ExecStart=/usr/local/bin/zkd /etc/zkd/zoo.cfg") {
		t.Fatalf("the unit does not start /usr/local/bin/zkd /etc/zkd/zoo.cfg:\n%s", unit)
	}
	copied := filepath.Join(t.TempDir(), "zkd.service")
	os.WriteFile(copied, []byte(strings.ReplaceAll(string(unit), "/usr/local/bin/zkd", zkdtest.Binary(t))), 0o644)
	out, err := exec.Command("systemd-analyze", "verify", copied).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}
