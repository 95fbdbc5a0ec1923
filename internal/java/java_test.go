package java

import (
	"encoding/json"
	"testing"
)

// What JSONQuote escapes reads back as the string it was given, control
// characters, quotes, backslashes and non-ASCII alike.
func TestJSONQuoteRoundTrips(t *testing.T) {
	for _, s := range []string{"", "plain", "a \"quoted\" \\ back", "tab\tnew\nline\r\b\f", "\x00\x01\x1f", "zoo.cfg\nkey=value\n", "ünïcödé ✓"} {
		var back string
		if err := json.Unmarshal([]byte(`"`+JSONQuote(s)+`"`), &back); err != nil || back != s {
			t.Errorf("%q: quoted %q, read back %q, %v", s, JSONQuote(s), back, err)
		}
	}
}
