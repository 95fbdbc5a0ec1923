package main

import (
	"os/exec"
	"strings"
	"testing"

	"zkd/engine"
	"zkd/engine/zkdtest"
)

// zkd version prints the version srvr reports; a mistyped command or flag
// says what was wrong instead of printing the usage text or trying to read
// a configuration file of that name.
func TestVersionAndBadArguments(t *testing.T) {
	bin := zkdtest.Binary(t)
	for _, arg := range []string{"version", "--version"} {
		out, err := exec.Command(bin, arg).CombinedOutput()
		if err != nil || !strings.HasPrefix(string(out), "zkd "+engine.Version) {
			t.Fatalf("zkd %s: %v\n%s", arg, err, out)
		}
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-x"}, "unknown flag -x"},
		{[]string{"stauts"}, `"stauts" is neither a command (status, cli, snapshot, txnlog, purge, version, help) nor a configuration file`},
		{[]string{"a.cfg", "b.cfg"}, "too many arguments (a.cfg b.cfg)"},
		{[]string{"missing/zoo.cfg"}, "open missing/zoo.cfg: no such file or directory"},
	} {
		out, err := exec.Command(bin, c.args...).CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
			t.Errorf("zkd %v: exit %v, want 2", c.args, err)
		}
		if !strings.Contains(string(out), c.want) || strings.Contains(string(out), "usage") {
			t.Errorf("zkd %v said %q, want it to say %q", c.args, out, c.want)
		}
	}
}
