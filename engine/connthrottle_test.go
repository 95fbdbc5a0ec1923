package engine_test

import (
	"fmt"
	"strings"
	"testing"

	"zkd/bench/zkref/zkreftest"
	"zkd/engine/zkdtest"
)

// ZooKeeper's connection throttle (connection_throttle_*): each connect
// request takes tokens from a bucket, one or, with weights, 3 for a new
// session and 2 for a resume; a request the bucket cannot pay for is
// closed unanswered and counted in connection_rejected, and mntr's
// connection_token_deficit has the tokens missing after each one let in.
// The bucket refills one token (or weight) a minute here, so nothing
// comes back during the test. The same connects on ZooKeeper 3.8 and on
// zkd get the same outcomes and figures.
func TestDifferentialConnectionThrottle(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  map[string]string
		want string // zkd's outcomes, in order
	}{
		// 4 tokens: the first session, then new, resume, new; then
		// nothing is left.
		{"tokens", map[string]string{"connection_throttle_tokens": "4"},
			"session session session closed, no answer closed, no answer"},
		// 3 sessions' worth, 9 tokens: the first session (3), a resume
		// (2), a new session (3), and 1 token is left for a resume or a
		// new session.
		{"weights", map[string]string{"connection_throttle_tokens": "3", "connection_throttle_weight_enabled": "true"},
			"session session closed, no answer closed, no answer"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := map[string]string{"connection_throttle_fill_time": "60000", "connection_throttle_fill_count": "1",
				"4lw.commands.whitelist": "srvr, mntr"}
			for k, v := range c.cfg {
				cfg[k] = v
			}
			zkdAddr, refAddr := bothServers(t, cfg)
			run := func(addr string) (outcomes, figures string) {
				first := zkreftest.Dial(t, addr, zkreftest.NewSession())
				resume := zkreftest.NewSession()
				resume.SessionID, resume.Passwd = first.Session.SessionID, first.Session.Passwd
				var got []string
				steps := []string{"new", "resume", "new", "resume", "new"}
				if c.name == "weights" {
					steps = []string{"resume", "new", "resume", "new"}
				}
				for _, step := range steps {
					req := zkreftest.NewSession()
					if step == "resume" {
						req = resume
					}
					got = append(got, connectOutcome(t, addr, req))
				}
				out, err := zkdtest.FourLetterWord(addr, "mntr")
				if err != nil {
					t.Fatal(err)
				}
				var b strings.Builder
				for _, line := range strings.Split(out, "\n") {
					k, v, _ := strings.Cut(line, "\t")
					switch k {
					case "zk_connection_rejected", "zk_connection_request_count", "zk_max_connection_token_deficit",
						"zk_cnt_connection_token_deficit", "zk_sum_connection_token_deficit":
						fmt.Fprintf(&b, "%s %s\n", k, v)
					}
				}
				return strings.Join(got, " "), b.String()
			}
			refOut, refFigures := run(refAddr)
			gotOut, gotFigures := run(zkdAddr)
			compareLines(t, "connect outcomes", refOut, gotOut)
			compareLines(t, "mntr", refFigures, gotFigures)
			if gotOut != c.want || strings.Count(gotFigures, "\n") != 5 {
				t.Fatalf("zkd's outcomes: %s; want %s; its figures:\n%s", gotOut, c.want, gotFigures)
			}
			t.Logf("outcomes: %s\n%s", gotOut, gotFigures)
		})
	}
}
