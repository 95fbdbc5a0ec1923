package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"zkd/engine/zkdtest"
)

// The ensemble configurations zkd cannot run are refused before anything
// is written, naming the file, line and key: dynamic reconfiguration, and
// standaloneEnabled=false with no ensemble to be a member of. (The
// other mistakes in the ensemble's lines or myid: engine.TestEnsembleConfig.)
func TestEnsembleConfigIsRefused(t *testing.T) {
	bin := zkdtest.Binary(t)
	for _, c := range []struct{ name, cfg, want string }{
		{"reconfigEnabled", "server.1=127.0.0.1:2888:3888\nserver.2=127.0.0.2:2888:3888\nserver.3=127.0.0.3:2888:3888\nreconfigEnabled=true\n",
			"zoo.cfg:6: reconfigEnabled: dynamic reconfiguration is not supported yet"},
		{"standaloneEnabled=false", "standaloneEnabled=false\n", "zoo.cfg:3: standaloneEnabled: standaloneEnabled=false asks for an ensemble member"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			data := filepath.Join(dir, "data")
			// The member's myid is there: the refusal is about the
			// configuration, not a missing file.
			if err := os.MkdirAll(data, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(data, "myid"), []byte("1\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			cfg := "dataDir=" + data + "\nclientPort=0\n" + c.cfg
			if err := os.WriteFile(filepath.Join(dir, "zoo.cfg"), []byte(cfg), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(bin, filepath.Join(dir, "zoo.cfg")).CombinedOutput()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
				t.Fatalf("zkd exited with %v, want exit code 2; output:\n%s", err, out)
			}
			if !strings.Contains(string(out), c.want) {
				t.Fatalf("the message does not name the line and key or say why:\n%s", out)
			}
			if _, err := os.Stat(filepath.Join(data, "version-2")); !os.IsNotExist(err) {
				t.Fatalf("the data directory was written to (%v): the refusal came too late", err)
			}
		})
	}
}
