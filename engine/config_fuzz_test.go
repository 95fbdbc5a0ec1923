package engine

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParseConfig feeds arbitrary zoo.cfg text to the parser, after a
// dataDir holding myid 1 and a clientPort: it must never panic, a
// configuration it takes must pass its own check, and what it refuses
// it refuses with an error that names the file, and the key when the
// fault is in one line.
func FuzzParseConfig(f *testing.F) {
	dir := f.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "myid"), []byte("1\n"), 0o644); err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{
		"",
		"tickTime=2000\ninitLimit=10\nsyncLimit=5\n",
		"server.1=127.0.0.1:2888:3888\nserver.2=127.0.0.2:2888:3888\nserver.3=127.0.0.3:2888:3888:observer;2181\n",
		"server.1=[::1]:2888:3888\nserver.2=[::2]:2888:3888;[::1]:2181\ngroup.1=1:2\nweight.1=1\nweight.2=1\n",
		"maxClientCnxns=60\nminSessionTimeout=4000\nmaxSessionTimeout=40000\nautopurge.snapRetainCount=3\n",
		"4lw.commands.whitelist=srvr, mntr\nadmin.serverPort=8080\nsnapshot.compression.method=gz\n",
		"readonlymode.enabled=true\nstandaloneEnabled=false\nserver.1=h:1:2\n",
		"key \\\n  continued=value\n# comment\n! comment\nkey:value\n",
		"jute.maxbuffer=1048576\nglobalOutstandingLimit=1000\nsnapCount=100000\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, text string) {
		if strings.Contains(text, "/proc") || strings.Contains(text, "/dev") {
			// A key naming a file (dynamicConfigFile, keystores) could
			// name a pipe that never ends, such as this process's stdin.
			return
		}
		full := "dataDir=" + dir + "\nclientPort=2181\n" + text
		c, err := ParseConfig("zoo.cfg", strings.NewReader(full), nil)
		if err != nil {
			var ce *ConfigError
			if errors.As(err, &ce) {
				if ce.File == "" || ce.Key == "" || !strings.HasPrefix(err.Error(), ce.File) {
					t.Fatalf("%q: an error that does not name its file and key: %q (%+v)", full, err, ce)
				}
				return
			}
			// The only other refusal: a line too long to read, named
			// by file and line.
			if !strings.HasPrefix(err.Error(), "zoo.cfg:") {
				t.Fatalf("%q: an error that does not name its file: %v", full, err)
			}
			return
		}
		if c == nil {
			t.Fatalf("%q: no configuration and no error", full)
		}
		if err := c.Check(); err != nil {
			t.Fatalf("%q: taken, then refused by its own check: %v", full, err)
		}
	})
}
