package engine_test

import (
	"fmt"
	"strings"
	"testing"

	"zkd/bench/zkref/zkreftest"
	"zkd/wire"
)

// addauth with every scheme and shape of credentials, against ZooKeeper
// and zkd: the reply code, whether the connection stays, and the ids the
// session then holds (whoami) must be the same. go-zookeeper's own suite
// does AddAuth("digest", "blah"), with no colon.
func TestDifferentialAddAuth(t *testing.T) {
	super := "super:D/InIHSb7yEEbrWz8b9l71RjZJU=" // digest of super:test
	zkdAddr, refAddr := bothServers(t, map[string]string{"DigestAuthenticationProvider.superDigest": super})
	cases := []struct{ scheme, auth string }{
		{"digest", "blah"},
		{"digest", "user:secret"},
		{"digest", "user:pass:with:colons"},
		{"digest", ""},
		{"digest", "super:test"},
		{"ip", "anything"},
		{"ip", ""},
		{"world", "anyone"},
		{"super", ""},
		{"sasl", "x"},
		{"nosuchscheme", "x"},
	}
	run := func(addr string) string {
		var b strings.Builder
		for _, c := range cases {
			cl := zkreftest.Dial(t, addr, zkreftest.NewSession())
			h, _ := cl.CallXid(-4, wire.OpAuth, &wire.AuthPacket{Scheme: c.scheme, Auth: []byte(c.auth)})
			fmt.Fprintf(&b, "addauth %s %q: %v zxid %d;", c.scheme, c.auth, h.Err, h.Zxid)
			if h.Err != wire.ErrOK {
				_, err := cl.ReadErr()
				fmt.Fprintf(&b, " then the connection closes: %v\n", err != nil)
				continue
			}
			// A second addauth of the same adds nothing.
			cl.CallXid(-4, wire.OpAuth, &wire.AuthPacket{Scheme: c.scheme, Auth: []byte(c.auth)})
			_, rec := cl.Call(wire.OpWhoAmI, nil)
			for _, ci := range rec.(*wire.WhoAmIResponse).ClientInfo {
				fmt.Fprintf(&b, " %s:%s", ci.AuthScheme, ci.User)
			}
			b.WriteString("\n")
		}
		return b.String()
	}
	compareLines(t, "addauth", run(refAddr), run(zkdAddr))
}
